"""The ``nbfetch`` command (``python -m nbfetch``): curl-like options in, the
response as text out (options in ``nbfetch.text.options``, rendering in
``nbfetch.text.render``).

    nbfetch -X POST --json '{"a": 1}' http://127.0.0.1:8000/post
    nbfetch --timing http://127.0.0.1:8000/drip?duration=1

Output, like HTTPie: the status line and headers (unless ``-q``), the body, and
with ``--timing`` an httpstat-style waterfall of the phases.

``nbfetch run FILE`` runs every request of a ``.http`` file and prints the
table of ``nbfetch.httpfile.report`` (exit status for CI: ``run_main``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
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


def _run_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="nbfetch run",
        description="Run every request of a .http file in order and check its ?? lines."
        " Exit status: 0 all passed, 1 a check or a request failed, 2 bad input"
        " (a file with no requests too).",
    )
    p.add_argument("file", help="the .http file")
    p.add_argument("--env", default=None, help="the environment of http-client.env.json")
    p.add_argument("--env-file", default=None, metavar="PATH", help="another env file")
    p.add_argument("-k", "--insecure", action="store_true", help="do not verify TLS certificates")
    p.add_argument(
        "--fail-fast", action="store_true", help="skip the requests after the first failure"
    )
    p.add_argument("--show-secrets", action="store_true", help="show credentials instead of ***")
    return p


async def _run_file(ns: argparse.Namespace):
    from .httpfile.run import arun_http

    async with AsyncClient(verify=not ns.insecure) as client:
        return await arun_http(
            ns.file,
            env=ns.env,
            env_file=ns.env_file,
            client=client,
            stop_on_failure=ns.fail_fast,
            show_secrets=ns.show_secrets,
        )


def run_main(args: list[str], out=sys.stdout) -> int:
    """``nbfetch run FILE [--env NAME] [--env-file PATH] [-k] [--fail-fast]
    [--show-secrets]``. Exit status: 0 when every request was answered and every
    check passed, 1 when one failed, 2 for bad input (no such file, a syntax
    error, a file with no requests, an unknown environment, a bad option:
    argparse's own 2)."""
    from .httpfile.report import render_table

    ns = _run_parser().parse_args(args)
    try:
        run = asyncio.run(_run_file(ns))
    except OSError as exc:
        print(f"nbfetch run: cannot read {ns.file}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    except InvalidRequest as exc:
        # The message alone: the file was not sent, so the " [request]" phase of
        # str(exc) says nothing here.
        print(f"nbfetch run: {exc.message}", file=sys.stderr)
        if exc.hint:
            print(f"nbfetch run: hint: {exc.hint}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    if not run.results:  # empty, comments only, /dev/null: a CI job that checks nothing
        print(f"nbfetch run: no requests in {ns.file}", file=sys.stderr)
        return 2
    # Colour only for a person at a terminal (https://no-color.org).
    colour = out.isatty() and not os.environ.get("NO_COLOR")
    out.write(render_table(run, show_secrets=ns.show_secrets, colour=colour) + "\n")
    return 0 if run.passed else 1


def main(argv: list[str] | None = None) -> int:
    """The ``nbfetch`` command. Exit status: 0 ok, 4 for 4xx, 5 for 5xx, 1 on error;
    ``nbfetch run FILE``: see ``run_main``."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["run"]:
        return run_main(argv[1:])
    try:
        opts = parse_options(argv, prog="nbfetch")
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
