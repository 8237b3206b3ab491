"""``python -m nbfetch.lite {prepare,build,serve}``."""

from __future__ import annotations

import argparse
import signal
import threading
import time
from pathlib import Path

from . import build as build_mod
from . import deps
from . import serve as serve_mod


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nbfetch.lite", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    cache_help = f"the download cache (default: {deps.default_cache()})"
    prepare = sub.add_parser(
        "prepare", help="fetch the build tools, Pyodide and the wheels (online)"
    )
    prepare.add_argument("--cache", type=Path, default=deps.default_cache(), help=cache_help)
    build = sub.add_parser("build", help="build the site from the cache (offline)")
    build.add_argument("--output", type=Path, required=True, help="the site's directory (replaced)")
    build.add_argument("--cache", type=Path, default=deps.default_cache(), help=cache_help)
    build.add_argument(
        "--contents",
        type=Path,
        action="append",
        default=[],
        help="a file or folder to add to the site's files (repeatable)",
    )
    serve = sub.add_parser("serve", help="serve a built site and the demo endpoints on 127.0.0.1")
    serve.add_argument("site", type=Path)
    serve.add_argument("--port", type=int, default=8000, help="port (0: a free one)")
    args = parser.parse_args(argv)

    if args.command == "prepare":
        deps.prepare(args.cache)
    elif args.command == "build":
        started = time.monotonic()
        out = build_mod.build(args.output, args.cache, args.contents)
        print(
            f"built {out} in {time.monotonic() - started:.1f} s: "
            f"{build_mod.size(out) / 1e6:.1f} MB",
            flush=True,
        )
    else:
        return _serve(args.site, args.port)
    return 0


def _serve(site: Path, port: int) -> int:
    stop = threading.Event()
    # SIGTERM (a test, a service manager) stops as Ctrl+C does: the server's
    # loop closes its connections and its thread ends.
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    server = serve_mod.serve(site, port)
    print(f"serving {site} at {server.url}/ (the notebooks: {server.url}/lab/)", flush=True)
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
        print("stopped", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
