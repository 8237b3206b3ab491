"""The ``nbfetch`` command (``python -m nbfetch``): curl-like options in, the
response as text out (options in ``nbfetch.text.options``, rendering in
``nbfetch.text.render``).

    nbfetch -X POST --json '{"a": 1}' http://127.0.0.1:8000/post
    nbfetch --timing http://127.0.0.1:8000/drip?duration=1

Output, like HTTPie: the status line and headers (unless ``-q``), the body, and
with ``--timing`` an httpstat-style waterfall of the phases.
"""

from __future__ import annotations

import asyncio
import sys

from .client import AsyncClient
from .core.errors import FetchError, InvalidRequest
from .text.options import FetchOptions, HelpShown, parse_options
from .text.render import render_text


async def run_cli(opts: FetchOptions, out=sys.stdout) -> int:
    def show_chunk(chunk) -> None:
        out.write(chunk.data.decode("utf-8", errors="replace"))
        out.flush()

    kwargs = dict(opts.fetch_kwargs)
    if opts.stream:
        kwargs["on_chunk"] = show_chunk
    async with AsyncClient(**opts.client_kwargs) as client:
        if opts.output:  # -o FILE: streamed to disk, never held in memory
            response = await client.download(opts.url, opts.output, opts.method, **kwargs)
        else:
            response = await client.fetch(opts.url, opts.method, **kwargs)
    if opts.stream:
        out.write("\n")
    if not opts.quiet:
        out.write(render_text(response, opts, head=True) + "\n")
    return 0 if response.status_code < 400 else 4 if response.status_code < 500 else 5


def main(argv: list[str] | None = None) -> int:
    """The ``nbfetch`` command. Exit status: 0 ok, 4 for 4xx, 5 for 5xx, 1 on error."""
    try:
        opts = parse_options(sys.argv[1:] if argv is None else argv, prog="nbfetch")
        return asyncio.run(run_cli(opts))
    except HelpShown:
        return 0
    except FetchError as exc:
        print(f"nbfetch: {type(exc).__name__}: {exc}", file=sys.stderr)
        if exc.hint:
            print(f"nbfetch: hint: {exc.hint}", file=sys.stderr)
        return 2 if isinstance(exc, InvalidRequest) else 1
    except KeyboardInterrupt:
        return 130
