"""The curl-like options shared by ``%fetch`` and the terminal CLI, and the CLI.

    python -m nbfetch [options] URL            (or the ``nbfetch`` console script)
    nbfetch -X POST --json '{"a": 1}' http://127.0.0.1:8000/post
    nbfetch --timing http://127.0.0.1:8000/drip?duration=1

Output, like HTTPie: the status line and headers (``-i`` in ``%fetch``; always in
the terminal unless ``-q``), the body, and with ``--timing`` an httpstat-style
waterfall of the phases.
"""

from __future__ import annotations

import argparse
import asyncio
import json as jsonlib
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .core.errors import FetchError, InvalidRequest
from .core.redact import redact_headers, redact_url


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of exiting (a magic must not kill the kernel)."""

    def error(self, message: str):
        raise InvalidRequest(f"{self.prog}: {message}")

    def exit(self, status: int = 0, message: str | None = None):
        if message:
            raise InvalidRequest(message.strip())
        raise _HelpShown()


class _HelpShown(Exception):
    """``-h`` was given: the help text has been printed."""


def build_parser(prog: str, need_url: bool = True) -> _Parser:
    p = _Parser(prog=prog, description="Fetch a URL and show it.", add_help=True)
    p.add_argument(
        "url", nargs=None if need_url else "?", help="the URL (http or https; no scheme means http)"
    )
    p.add_argument(
        "-X",
        "--request",
        dest="method",
        default=None,
        help="method (default GET, POST with a body)",
    )
    p.add_argument(
        "-H",
        "--header",
        dest="headers",
        action="append",
        default=[],
        metavar="'Name: value'",
        help="a request header (repeatable)",
    )
    p.add_argument(
        "-d", "--data", dest="data", default=None, help="request body; @file reads a file"
    )
    p.add_argument(
        "--json", dest="json", default=None, help="JSON request body (sets Content-Type)"
    )
    p.add_argument(
        "--no-follow", dest="follow", action="store_false", help="do not follow redirects"
    )
    p.add_argument(
        "--timeout", type=float, default=None, help="request_timeout: the whole fetch, seconds"
    )
    p.add_argument("--connect-timeout", type=float, default=None, help="connect_timeout, seconds")
    p.add_argument("--read-timeout", type=float, default=None, help="read_timeout, seconds")
    p.add_argument(
        "-i", "--include", action="store_true", help="show the response headers in text output"
    )
    p.add_argument("-o", "--output", default=None, metavar="FILE", help="save the body to FILE")
    p.add_argument("--stream", action="store_true", help="show each chunk as it arrives")
    p.add_argument(
        "-q", "--quiet", action="store_true", help="show nothing; just return the response"
    )
    p.add_argument(
        "--bg", action="store_true", help="(%%fetch) run in the background, return a handle"
    )
    p.add_argument("--timing", action="store_true", help="show the timing waterfall")
    p.add_argument("-k", "--insecure", action="store_true", help="do not verify TLS certificates")
    p.add_argument("--raw", action="store_true", help="do not decompress the body")
    p.add_argument("-u", "--user", default=None, metavar="USER:PASSWORD", help="Basic auth")
    return p


@dataclass
class FetchOptions:
    """What a command line asked for, as ``AsyncClient.fetch`` arguments plus display flags."""

    url: str
    method: str = "GET"
    fetch_kwargs: dict[str, Any] = field(default_factory=dict)
    client_kwargs: dict[str, Any] = field(default_factory=dict)
    include: bool = False
    output: str | None = None
    stream: bool = False
    quiet: bool = False
    background: bool = False
    timing: bool = False


def parse_header(text: str) -> tuple[str, str]:
    name, colon, value = text.partition(":")
    if not colon or not name.strip():
        raise InvalidRequest(f"header {text!r} must look like 'Name: value'")
    return name.strip(), value.strip()


def parse_options(
    args: list[str] | str, prog: str = "%fetch", need_url: bool = True
) -> FetchOptions:
    """Parse curl-like arguments; raises ``InvalidRequest`` with the reason."""
    if isinstance(args, str):
        try:
            args = shlex.split(args)
        except ValueError as exc:
            raise InvalidRequest(f"{prog}: {exc}") from None
    ns = build_parser(prog, need_url).parse_args(args)
    kwargs: dict[str, Any] = {}
    headers = [parse_header(h) for h in ns.headers]
    if headers:
        kwargs["headers"] = headers
    if ns.data is not None and ns.json is not None:
        raise InvalidRequest("use only one of -d/--data and --json")
    if ns.data is not None:
        if ns.data.startswith("@"):
            path = Path(ns.data[1:]).expanduser()
            try:
                kwargs["body"] = path.read_bytes()
            except OSError as exc:
                raise InvalidRequest(f"cannot read {path}: {exc.strerror}") from None
        else:
            kwargs["body"] = ns.data.encode("utf-8")
        if not any(n.lower() == "content-type" for n, _ in headers):
            kwargs.setdefault("headers", []).append(
                ("Content-Type", "application/x-www-form-urlencoded")
            )
    if ns.json is not None:
        try:
            kwargs["json"] = jsonlib.loads(ns.json)
        except ValueError as exc:
            raise InvalidRequest(f"--json is not valid JSON: {exc}") from None
    if not ns.follow:
        kwargs["follow_redirects"] = False
    for option, name in (
        ("timeout", "request_timeout"),
        ("connect_timeout", "connect_timeout"),
        ("read_timeout", "read_timeout"),
    ):
        value = getattr(ns, option)
        if value is not None:
            kwargs[name] = value
    if ns.raw:
        kwargs["decompress"] = False
    if ns.user is not None:
        user, _, password = ns.user.partition(":")
        kwargs["auth"] = (user, password)
    method = ns.method or ("POST" if ("body" in kwargs or "json" in kwargs) else "GET")
    return FetchOptions(
        url=ns.url or "",
        method=method.upper(),
        fetch_kwargs=kwargs,
        client_kwargs={"verify": False} if ns.insecure else {},
        include=ns.include,
        output=ns.output,
        stream=ns.stream,
        quiet=ns.quiet,
        background=ns.bg,
        timing=ns.timing,
    )


# -- text output (terminal, and text/plain in notebooks) -------------------------------

BAR_WIDTH = 40


def timing_waterfall(timing) -> str:
    """An httpstat-style waterfall: one line per phase, bar offset by its start."""
    total = timing.total or 0.0
    lines = []
    start = 0.0
    for name, value in timing.phases().items():
        if value is None:
            continue
        if total > 0:
            lead = round(start / total * BAR_WIDTH)
            width = max(1, round(value / total * BAR_WIDTH)) if value > 0 else 0
        else:
            lead, width = 0, 0
        bar = " " * lead + "█" * width
        lines.append(f"  {name:<9} {value * 1000:9.2f} ms  |{bar:<{BAR_WIDTH + 1}}|")
        start += value
    lines.append(f"  {'total':<9} {total * 1000:9.2f} ms")
    return "\n".join(lines)


def status_line(response) -> str:
    return f"{response.http_version} {response.status_code} {response.reason}".rstrip()


def head_text(response) -> str:
    lines = [status_line(response)]
    # Only URL userinfo is redacted: -i shows what the server sent, as curl -i does.
    lines += [
        f"{name}: {value}"
        for name, value in redact_headers(response.headers.items(), hidden=frozenset())
    ]
    return "\n".join(lines)


def body_text(response, limit: int = 100_000) -> str:
    """The body for a terminal: JSON indented, text decoded, binary summarised."""
    body = response.body
    ctype = (response.headers.get("content-type") or "").lower()
    if "json" in ctype:
        try:
            return jsonlib.dumps(response.json(), indent=2, ensure_ascii=False)[:limit]
        except ValueError:
            pass
    if ctype.startswith("text/") or "json" in ctype or "xml" in ctype or _looks_textual(body):
        text = response.text
        return text if len(text) <= limit else text[:limit] + f"\n… ({len(body):,} bytes in all)"
    return (
        f"[{len(body):,} bytes of binary data ({ctype or 'no Content-Type'}); use -o FILE to save]"
    )


def _looks_textual(data: bytes) -> bool:
    sample = data[:2048]
    if b"\0" in sample:
        return False
    try:
        sample.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start > len(sample) - 4  # cut mid-character at the end
    return True


def render_text(response, opts: FetchOptions, *, head: bool) -> str:
    parts = []
    for earlier in response.history:
        parts.append(f"{status_line(earlier)}  → {redact_url(earlier.headers.get('location', ''))}")
    if head:
        parts.append(head_text(response))
        parts.append("")
    if response.path is not None:
        parts.append(f"[saved {response.decoded_bytes:,} bytes to {response.path}]")
    elif not opts.stream:
        parts.append(body_text(response))
    if opts.timing:
        parts.append("")
        parts.append(timing_waterfall(response.timing))
    return "\n".join(parts).rstrip("\n")


async def run_cli(opts: FetchOptions, out=sys.stdout) -> int:
    from .client import AsyncClient

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
    except _HelpShown:
        return 0
    except FetchError as exc:
        print(f"nbfetch: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, InvalidRequest) else 1
    except KeyboardInterrupt:
        return 130
