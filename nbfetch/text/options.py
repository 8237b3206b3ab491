"""The curl-like options shared by ``%fetch``, ``%%fetch`` and the ``nbfetch``
command: ``-X``, ``-H``, ``-d``, ``--json``, ``-o``, ``--timing``, ... parsed into
``AsyncClient.fetch`` arguments plus what to show."""

from __future__ import annotations

import argparse
import json as jsonlib
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.errors import InvalidRequest
from ..core.redact import redact_url


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of exiting (a magic must not kill the kernel)."""

    def error(self, message: str):
        # argparse quotes what it could not place: a URL may carry a password.
        # One line and a pointer to --help, instead of argparse's usage block.
        raise InvalidRequest(f"{self.prog}: {redact_url(message)}", hint=f"see {self.prog} --help")

    def exit(self, status: int = 0, message: str | None = None):
        if message:
            raise InvalidRequest(message.strip())
        raise HelpShown()


class HelpShown(Exception):
    """``-h`` was given: the help text has been printed."""


def build_parser(prog: str, need_url: bool = True) -> _Parser:
    # The command's other form lives in nbfetch.cli (it runs files, not one URL).
    also = "also: nbfetch run FILE.http [--env NAME] (see nbfetch run --help)"
    p = _Parser(
        prog=prog,
        description="Fetch a URL and show it.",
        epilog=also if prog == "nbfetch" else None,
        add_help=True,
    )
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
        "-F",
        "--form",
        dest="form",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a multipart/form-data field (repeatable); NAME=@FILE[;type=TYPE] uploads FILE,"
        " streamed from disk (curl's -F)",
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
    p.add_argument(
        "-x",
        "--proxy",
        default=None,
        metavar="URL",
        help="the proxy: http://[user:password@]host:port (default: HTTP(S)_PROXY, NO_PROXY)",
    )
    p.add_argument("-u", "--user", default=None, metavar="USER:PASSWORD", help="Basic auth")
    p.add_argument(
        "--file",
        default=None,
        metavar="FILE.http",
        help="(%%fetch) run every request of a .http file, in order, with a live table",
    )
    p.add_argument(
        "--env",
        default=None,
        metavar="NAME",
        help="the environment of http-client.env.json (and its private file) for {{variables}}",
    )
    p.add_argument(
        "--env-file",
        default=None,
        metavar="PATH",
        help="the env file to read (default: http-client.env.json beside the .http file)",
    )
    p.add_argument(
        "--show-secrets",
        action="store_true",
        help="show credentials (Authorization, cookies, api_key=...) instead of ***",
    )
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
    show_secrets: bool = False
    #: ``--file``, ``--env``, ``--env-file``: a .http file to run, and its environment.
    file: str | None = None
    env: str | None = None
    env_file: str | None = None


def parse_header(text: str) -> tuple[str, str]:
    name, colon, value = text.partition(":")
    if not colon or not name.strip():
        # Only the first word: the rest may be the credential itself
        # ("Authorization Bearer s3cr3t" with the colon forgotten).
        shown = re.match(r"[!#$%&'*+.^_`|~0-9A-Za-z-]*", text.strip()).group()
        raise InvalidRequest(f"header {shown!r}… must look like 'Name: value' (no ':' found)")
    return name.strip(), value.strip()


def _form(items: list[str]) -> tuple[list, list]:
    """curl's ``-F`` arguments as ``data=`` and ``files=`` pairs: ``name=value``
    is a field, ``name=@path[;type=TYPE]`` a file, opened only when it is sent."""
    data, files = [], []
    for item in items:
        name, equals, value = item.partition("=")
        if not equals or not name:
            raise InvalidRequest(f"-F {item!r} must look like NAME=VALUE or NAME=@FILE")
        if not value.startswith("@"):
            data.append((name, value))
            continue
        path, _, content_type = value[1:].partition(";type=")
        file = Path(path).expanduser()
        files.append((name, (file.name, file, content_type or None)))
    return data, files


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
    if ns.form:
        if ns.data is not None or ns.json is not None:
            raise InvalidRequest("-F/--form goes with neither -d/--data nor --json")
        kwargs["data"], kwargs["files"] = _form(ns.form)
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
    if ns.proxy is not None:
        kwargs["proxy"] = ns.proxy
    if ns.user is not None:
        user, _, password = ns.user.partition(":")
        kwargs["auth"] = (user, password)
    method = ns.method or ("POST" if kwargs.keys() & {"body", "json", "files"} else "GET")
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
        show_secrets=ns.show_secrets,
        file=ns.file,
        env=ns.env,
        env_file=ns.env_file,
    )
