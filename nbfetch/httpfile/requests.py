"""One parsed request block, its templates expanded, as ``FetchOptions`` for
``AsyncClient.fetch``. This is where a body file is read: when the request
runs, never when the file is parsed."""

from __future__ import annotations

import json
import re
import stat
from functools import partial
from pathlib import Path

from ..core.auth import DigestAuth
from ..core.errors import InvalidRequest
from ..text.options import FetchOptions
from .model import HttpRequestBlock
from .parse import parse_duration
from .variables import Scope

#: The most a request body assembled from text and "< ./file" includes may hold:
#: REST Client's limit for the same bodies (its CombinedStream maxDataSize,
#: 10 MiB). It is built whole in memory, so it is bounded.
MAX_BODY_FILE = 10 * 1024 * 1024
# REST Client's inputFileSyntax (httpRequestParser.ts), as a line of a body; the
# path greedy to the line's end, stripped in Python (a lazy path before "[ \t]*$"
# rescans a run of inner spaces from each of its characters: quadratic).
_INCLUDE_LINE = re.compile(
    r"^<(?:(?P<templates>@)(?P<encoding>\w+)?)?[ \t]+(?P<path>[^\n]+)", re.MULTILINE
)


def _content_type(headers: list[tuple[str, str]]) -> str:
    """The media type, lower case, without parameters ("" when none)."""
    value = next((v for n, v in headers if n.lower() == "content-type"), "")
    return value.partition(";")[0].strip().lower()


_JSON_OR_NONE = ("", "application/json")
_GRAPHQL = re.compile(
    r"\s*(?:(?:query|mutation)\b(?:\s+(?P<name>[^\s({]+))?|fragment\s+[^\s({]+\s+on\s)"
)


class _Body:
    """A body being assembled from text lines and ``< file`` includes, bounded."""

    def __init__(self, scope: Scope, block: HttpRequestBlock):
        self.scope, self.source, self.confined = scope, block.source, block.confined
        self.first_line = block.body_line or block.line
        self.where = f"{block.source} line {self.first_line} (body)"
        self.parts: list[bytes] = []
        self.size = 0

    def add(self, piece: bytes, what: str = "text") -> None:
        self.size += len(piece)
        if self.size > MAX_BODY_FILE:
            raise InvalidRequest(
                f"{self.where}: {what} makes the body {self.size:,} bytes;"
                f" a body from files and templates may have {MAX_BODY_FILE:,}"
            )
        self.parts.append(piece)

    def text(self, text: str, line: int = 0) -> None:
        """Body text, its templates expanded; ``line``: its first line's offset
        in the body, for messages that name a template's line."""
        start = self.first_line + line

        def where(offset: int) -> str:
            return f"{self.source} line {start + offset} (body)"

        expanded = self.scope.expand(text, where, limit=MAX_BODY_FILE - self.size)
        self.add(expanded.encode("utf-8"))

    def include(self, spec: str, templates: bool, encoding: str | None) -> None:
        """The file ``spec`` names (relative to the .http file's folder), its
        templates expanded for ``<@`` (REST Client's "processVariables")."""
        path = Path(self.scope.expand(spec, self.where)).expanduser()
        folder = self.scope.directory
        if not path.is_absolute():
            path = Path(folder or ".") / path
        inside = folder is None or path.resolve().is_relative_to(Path(folder).resolve())
        if self.confined and not inside:
            # A .http file from elsewhere must not send the reader's own files
            # ("< ~/.ssh/id_rsa" to its server): its body files stay in its folder.
            # A cell is the reader's own text: its paths go anywhere.
            raise InvalidRequest(
                f"{self.where}: {spec} is outside {folder}, the folder of {self.source}",
                hint="a .http file's body files must be in its folder (or below it)",
            )
        try:
            info = path.stat()
            if not stat.S_ISREG(info.st_mode):  # a FIFO or a device could block or never end
                raise InvalidRequest(f"{self.where}: {path} is not a file")
            if self.size + info.st_size > MAX_BODY_FILE:
                self.add(b"\0" * (MAX_BODY_FILE + 1 - self.size), str(path))  # raises
            with open(path, "rb") as file:
                data = file.read(MAX_BODY_FILE - self.size + 1)  # it may have grown since
        except OSError as exc:
            raise InvalidRequest(
                f"{self.where}: cannot read {path}: {exc.strerror or exc}"
            ) from None
        if templates:
            try:
                text = data.decode(encoding or "utf-8")
            except (LookupError, UnicodeDecodeError) as exc:
                raise InvalidRequest(f"{self.where}: cannot decode {path} ({exc})") from None
            where = f"{self.where}, {path.name}"
            data = self.scope.expand(text, where, limit=MAX_BODY_FILE - self.size).encode()
        self.add(data, str(path))


def _body(block: HttpRequestBlock, scope: Scope, headers: list[tuple[str, str]]) -> bytes | None:
    body = _Body(scope, block)
    if block.body_file is not None:
        body.include(block.body_file, block.body_file_templates, block.body_file_encoding)
        return b"".join(body.parts)
    if block.body is None:
        return None
    ctype = _content_type(headers)
    # REST Client's parseBody: multipart parts are separated by CRLF (RFC 2046
    # section 5.1.1), other bodies by newlines; form lines starting with "&" join
    # the previous line; NDJSON ends with a newline. The text between "< file"
    # lines is expanded in one piece (a body of megabytes is not a line loop).
    if ctype.startswith("multipart/"):
        newlines = partial(re.compile(r"\r?\n").sub, "\r\n")
    elif ctype.startswith("application/x-www-form-urlencoded"):
        newlines = partial(re.compile(r"\n(?=&)").sub, "")
    else:
        newlines = str
    # (A form's joined "&" lines make a template's line an earlier one in messages.)
    text, done, line = block.body, 0, 0
    for include in _INCLUDE_LINE.finditer(text):
        body.text(newlines(text[done : include.start()]), line)
        line += text.count("\n", done, include.end())
        body.include(include["path"].rstrip(" \t"), bool(include["templates"]), include["encoding"])
        done = include.end()
    body.text(newlines(text[done:]), line)
    if "ndjson" in ctype:
        body.add(b"\n")
    return b"".join(body.parts)


def _graphql(body: bytes, where: str, operation: str | None = None) -> bytes:
    """``{"query": ..., "variables": ...}`` from a GraphQL request's body: the
    query, then after a blank line its variables as JSON."""
    query, *rest = re.split(rb"\r?\n[ \t]*\r?\n", body, maxsplit=1)
    variables = {}
    if rest and rest[0].strip():
        try:
            variables = json.loads(rest[0])
        except ValueError as exc:
            raise InvalidRequest(f"{where}: not JSON ({exc})") from None
    payload = {"query": query.decode("utf-8", errors="replace"), "variables": variables}
    if operation:
        payload["operationName"] = operation
    return json.dumps(payload).encode("utf-8")


def _authorization(headers: list, kwargs: dict, secrets) -> list:
    """REST Client's Authorization forms (README "Basic Auth", "Digest Auth";
    httpClient.ts): ``Basic user:passwd`` and ``Basic user passwd`` are encoded
    for you, ``Digest user passwd`` answers the server's Digest challenge.
    A base64 ``Basic dXNlcjpwYXNzd2Q=`` (no ":" in base64) is sent as written."""
    for i, (name, value) in enumerate(headers):
        if name.lower() != "authorization":
            continue
        scheme, *words = value.split()
        scheme = scheme.lower() if scheme else ""
        if scheme in ("basic", "digest") and len(words) >= 2:
            user, password = words[0], " ".join(words[1:])
        elif scheme == "basic" and len(words) == 1 and ":" in words[0]:
            user, password = words[0].split(":", 1)
        else:
            continue
        secrets.add(password)
        kwargs["auth"] = (user, password) if scheme == "basic" else DigestAuth(user, password)
        return headers[:i] + headers[i + 1 :]
    return headers


def to_options(block: HttpRequestBlock, scope: Scope) -> FetchOptions:
    """``block`` with its templates expanded (URL, headers, body, a body file's
    path and, for ``<@``, its content) and its settings applied:
    ``# @no-redirect``, ``# @timeout 5`` (seconds; ``500 ms``, ``2 m``),
    ``# @connection-timeout 2`` (JetBrains). ``InvalidRequest`` before anything
    is sent when a template or a body file cannot be resolved."""
    if scope.block is not block:
        scope = scope.for_request(block)
    url = scope.expand(block.url, f"{block.source} line {block.line} (URL)").strip()
    if not url:
        raise InvalidRequest(f"{block.source} line {block.line}: the URL is empty")
    headers = []
    for i, (name, value) in enumerate(block.headers):
        line = block.header_lines[i] if i < len(block.header_lines) else block.line
        where = f"{block.source} line {line} (header {name})"
        headers.append((scope.expand(name, where), scope.expand(value, where)))
    host = next((v for n, v in headers if n.lower() == "host"), None)
    if host and url.startswith("/"):
        # REST Client: a path with a Host header is a URL on that host (https
        # for ports 443 and 8443).
        port = host.rpartition(":")[2]
        url = f"{'https' if port in ('443', '8443') else 'http'}://{host}{url}"
    # REST Client's GraphQL requests (README, "Making GraphQL Request"): the
    # header marks one and is not sent; the body is the query, then after a
    # blank line the variables as JSON.
    graphql = any(n.lower() == "x-request-type" and v.lower() == "graphql" for n, v in headers)
    if graphql:
        headers = [(n, v) for n, v in headers if n.lower() != "x-request-type"]
    operation = None
    if not graphql and block.body is not None and _content_type(headers) in _JSON_OR_NONE:
        # httpyac (src/plugins/graphql/gqlHttpRegionParser.ts): a body that starts
        # "query", "mutation" or "fragment NAME on" is GraphQL, its name the
        # operationName.
        start = _GRAPHQL.match(block.body)
        graphql, operation = start is not None, start and start["name"]
    kwargs: dict = {}
    headers = _authorization(headers, kwargs, scope.secrets)
    if headers:
        kwargs["headers"] = headers
    body = _body(block, scope, headers)
    if graphql and body is not None:
        where = f"{block.source} line {block.body_line} (body: GraphQL variables)"
        body = _graphql(body, where, operation)
    if body is not None:
        kwargs["body"] = body
    settings = block.settings
    if "no-redirect" in settings:
        kwargs["follow_redirects"] = False
    for setting, option in (
        ("timeout", "request_timeout"),
        ("connection-timeout", "connect_timeout"),
    ):
        if setting in settings:
            where = f"{block.source} line {block.line} (# @{setting})"
            kwargs[option] = parse_duration(scope.expand(settings[setting], where), where)
    # What the request sends that is secret, for every display of it to scrub.
    scope.secrets.add_url(url)
    scope.secrets.add_headers(headers)
    return FetchOptions(url=url, method=block.method or "GET", fetch_kwargs=kwargs)
