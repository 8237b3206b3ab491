"""``serve``: a built site and the demo endpoints on one origin, on 127.0.0.1.

One server answers both, so the notebooks' fetches are same-origin: the
browser shows them every response header (but Set-Cookie) and needs no CORS.
A path is the site's file when the site has it, else a demo endpoint
(``/json``, ``/drip``, ``/get``...: the site has none of those names), so the
demo's own redirects (``Location: /get``) land where they should.
"""

from __future__ import annotations

import mimetypes
from pathlib import Path
from urllib.parse import quote

from ..demo.server import DemoServer

#: Types the browser insists on: module workers need a JavaScript type for
#: .mjs, and WebAssembly.instantiateStreaming needs application/wasm.
TYPES = {
    ".mjs": "text/javascript",
    ".js": "text/javascript",
    ".wasm": "application/wasm",
    ".json": "application/json",
    ".ipynb": "application/json",
    ".whl": "application/octet-stream",
    ".zip": "application/zip",
}


class SiteServer(DemoServer):
    """The demo server, answering the files of a built site first."""

    def __init__(self, root: Path, host: str = "127.0.0.1", port: int = 0):
        super().__init__(host, port)
        self.root = Path(root).resolve()
        if not (self.root / "jupyter-lite.json").is_file():
            raise FileNotFoundError(f"{self.root} is not a JupyterLite site (no jupyter-lite.json)")

    async def _dispatch(self, ex) -> None:
        try:
            path = self._file(ex.path)
        except (ValueError, OSError):
            # a NUL byte (ValueError from the OS layer), a name too long for
            # the file system...: no file can have that name, and the demo
            # endpoints have no such path either
            await ex.send(400, b"invalid path\n", content_type="text/plain")
            return
        if path is None:
            await super()._dispatch(ex)
        elif ex.method not in ("GET", "HEAD"):
            await ex.send(405, b"", [("Allow", "GET, HEAD")], content_type="text/plain")
        elif path.is_dir():
            # relative asset URLs in index.html resolve against the directory.
            # The Location is the directory's own path under the root, never
            # the request's: a decoded path can start with "//" (from %2F),
            # which a browser reads as another host (an open redirect).
            rel = path.relative_to(self.root).as_posix()
            location = "/" if rel == "." else "/" + quote(rel) + "/"
            await ex.send(301, b"", [("Location", location)], content_type="text/plain")
        else:
            ctype = TYPES.get(path.suffix) or mimetypes.guess_type(path.name)[0]
            await ex.send(
                200,
                path.read_bytes(),
                [("Cache-Control", "no-cache")],
                content_type=ctype or "application/octet-stream",
            )

    def _file(self, url_path: str) -> Path | None:
        """The site's file (or directory with an index.html) for a URL path;
        None if the site has none there (the path is never outside the root).
        Raises ValueError or OSError for a path no file can have."""
        if "\x00" in url_path:
            raise ValueError("NUL in the path")
        path = (self.root / url_path.lstrip("/")).resolve()
        if not path.is_relative_to(self.root):
            return None
        if path.is_dir():
            if not (path / "index.html").is_file():
                return None
            return path / "index.html" if url_path.endswith("/") else path
        return path if path.is_file() else None


def serve(root: Path, port: int = 0, host: str = "127.0.0.1") -> SiteServer:
    """Start serving ``root`` in a background thread; returns the server (a
    context manager: ``stop()`` ends it)."""
    return SiteServer(root, host, port).start()
