"""A request (``FetchOptions``) as code to copy: a curl command, a ``.http``
block, or Python for nbfetch, httpx or requests.

Each one sends what nbfetch would send: the same method, URL, headers and body
bytes, redirects followed or not, decoding asked for or not. What the target
cannot say is written as a comment above the code (curl has no read timeout).
Credentials are masked where they are (``core.redact``: ``Authorization: Bearer ***``,
``-u al:***``, ``api_key=***``, OAuth's ``code=``, secret form fields and JSON
strings, whatever the body's Content-Type) and, from ``SCRUB_ELSEWHERE``
characters up, wherever else they appear, unless ``show_secrets=True``; masked
code still runs, with ``***`` for the secrets.
"""

from __future__ import annotations

import json as jsonlib
import os
import re
import shlex
from base64 import b64encode
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import unquote, urlencode

from ..core.auth import DigestAuth
from ..core.headers import Headers
from ..core.redact import (
    REDACTED,
    Secrets,
    is_secret_name,
    redact_header,
    redact_pairs,
    redact_url,
)
from .curl import CURL_MAX_REDIRS, with_query
from .options import FetchOptions

#: A multipart file part: (field name, file name, a path or in-memory bytes, media type).
FilePart = tuple[str, str | None, "Path | bytes", str | None]
#: fetch() options every target can say (or has no use for, as trace=).
_KNOWN = frozenset(
    {
        "headers",
        "body",
        "json",
        "data",
        "files",
        "params",
        "auth",
        "cookies",
        "allow_body",
        "decompress",
        "connect_timeout",
        "read_timeout",
        "request_timeout",
        "follow_redirects",
        "max_redirects",
        "proxy",
        "trace",
        "on_headers",
        "on_chunk",
    }
)
_UNSET = object()


@dataclass
class _Request:
    """The request in one shape every writer reads, secrets already masked or not."""

    method: str
    url: str
    headers: list[tuple[str, str]]
    body: bytes | None = None  # the bytes nbfetch sends, for body=, data= (a form) and json=
    json: Any = _UNSET  # json=, also kept as a value (Python writers pass it as json=)
    form: list[tuple[str, str]] | None = None  # data= without files=: a urlencoded form
    fields: list[tuple[str, str]] | None = None  # multipart: the text fields ...
    files: list[FilePart] = field(default_factory=list)  # ... and the files
    auth: tuple[str, str] | None = None
    digest: bool = False
    cookies: list[tuple[str, str]] = field(default_factory=list)
    follow: bool = True
    max_redirects: int | None = None
    decompress: bool = True
    timeouts: dict[str, float] = field(default_factory=dict)
    proxy: Any = _UNSET  # a URL, None (direct), or _UNSET (nbfetch's default)
    verify: bool = True
    allow_body: bool = False
    notes: list[str] = field(default_factory=list)  # what the target cannot say
    shown: Any = str  # a literal's text as written: scrubbed unless show_secrets


def _pairs(value, kept=str) -> list[tuple[str, Any]]:
    """Pairs from a dict (a list value repeats the name) or pairs; each value a
    str, or as given when it is a ``kept`` (headers keep bytes)."""
    if value is None:
        return []
    items = value.items() if isinstance(value, (Mapping, Headers)) else value
    out = []
    for name, v in items:
        for one in v if isinstance(v, (list, tuple)) and not isinstance(value, Headers) else [v]:
            out.append((str(name), one if isinstance(one, kept) else str(one)))
    return out


def _header_pairs(value) -> list[tuple[str, str]]:
    """``headers=`` with each value as the bytes nbfetch sends (``core.headers``: a
    str as ISO-8859-1, else UTF-8; bytes as given), held as UTF-8 text with any
    other byte surrogate-escaped, so that a curl word can write them exactly."""
    return [
        (n, _wire(v).decode("utf-8", "surrogateescape")) for n, v in _pairs(value, (str, bytes))
    ]


def _wire(value) -> bytes:
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    text = str(value)
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogateescape")


def _raw(text: str) -> bytes:
    """A value held as ``_header_pairs`` holds it, as its bytes."""
    return text.encode("utf-8", "surrogateescape")


def _header_values(headers: list[tuple[str, str]], shown) -> list[tuple[str, Any]]:
    """Headers for Python code: a value that is not ASCII as its bytes, which
    nbfetch, httpx and requests all send as given."""
    return [(n, shown(v) if v.isascii() else _raw(shown(v))) for n, v in headers]


def _bytes(value) -> bytes:
    return value.encode("utf-8") if isinstance(value, str) else bytes(value)


def _file_parts(files) -> list[FilePart]:
    """``files=`` (a dict or pairs; a path, bytes, or a (filename, content[, type]) tuple)."""
    parts = []
    for name, value in files.items() if isinstance(files, Mapping) else files:
        content_type = None
        if isinstance(value, tuple):
            filename, content, *rest = value
            content_type = rest[0] if rest else None
        elif isinstance(value, (str, os.PathLike)):
            filename, content = os.path.basename(os.fspath(value)), Path(value)
        else:
            filename, content = "upload", value
        if isinstance(content, os.PathLike):
            content = Path(content)
        elif hasattr(content, "read"):  # an open file: named by its path
            content = Path(getattr(content, "name", "upload"))
        else:
            content = _bytes(content)
        parts.append((name, filename, content, content_type))
    return parts


def _mask_json(value, secret: bool = False):
    if isinstance(value, dict):
        return {k: _mask_json(v, secret or is_secret_name(str(k))) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask_json(v, secret) for v in value]
    return REDACTED if secret and isinstance(value, str) else value


def _describe(opts: FetchOptions, show_secrets: bool) -> _Request:
    kw = opts.fetch_kwargs
    url = opts.url
    if kw.get("params"):  # after the query, as with_params() adds them
        url = with_query(url, urlencode(kw["params"], doseq=True))
    req = _Request(method=opts.method.upper(), url=url, headers=_header_pairs(kw.get("headers")))
    if kw.get("json") is not None:
        req.json = kw["json"]
        req.body = jsonlib.dumps(req.json, ensure_ascii=False).encode("utf-8")
    elif kw.get("files") is not None:
        req.fields = _pairs(kw.get("data"))
        req.files = _file_parts(kw["files"])
    elif kw.get("data") is not None:
        req.form = _pairs(kw["data"])
        req.body = urlencode(req.form).encode("ascii")
    elif kw.get("body") is not None:
        body = kw["body"]
        if hasattr(body, "__aiter__"):
            req.notes.append("body= is an async iterable: not shown")
        else:
            req.body = _bytes(body)
    auth = kw.get("auth")
    if isinstance(auth, DigestAuth):  # its password, for show_secrets=True only
        req.auth, req.digest = (auth.username, auth._password), True
    elif auth is not None:
        req.auth = (str(auth[0]), str(auth[1]))
    req.cookies = _pairs(kw.get("cookies"))
    req.follow = kw.get("follow_redirects", True)
    req.max_redirects = kw.get("max_redirects")
    req.decompress = kw.get("decompress", True)
    for name in ("connect_timeout", "read_timeout", "request_timeout"):
        if kw.get(name) is not None:
            req.timeouts[name] = kw[name]
    if "proxy" in kw:
        req.proxy = None if kw["proxy"] is None else str(getattr(kw["proxy"], "url", kw["proxy"]))
    req.verify = opts.client_kwargs.get("verify", True) is not False
    req.allow_body = bool(kw.get("allow_body"))
    unknown = sorted(kw.keys() - _KNOWN)
    if unknown:
        req.notes.append(f"not carried over: {', '.join(unknown)}")
    if not show_secrets:
        _mask(req)
    return req


#: Shorter secrets are masked only where they are (the -u value, the header, the
#: secret-named field): scrubbed from any other place, ``admin`` or ``http``
#: would turn the URL ``http://h/admin`` into ``***://h/***``.
SCRUB_ELSEWHERE = 8
#: Query and form names secret here though not in ``core.redact``: OAuth 2.0's
#: authorization code (RFC 6749 4.1.2, 4.1.3), a credential while it is fresh.
_MORE_SECRET_PAIRS = re.compile(r"(?<![^?&;#])(code)=([^&;#]+)", re.I)


class _LongSecrets(Secrets):
    def add(self, value: str, served: bool = False) -> None:
        if len(value.strip()) >= SCRUB_ELSEWHERE:
            super().add(value, served)


def _redact_pairs(text: str, secrets: Secrets) -> str:
    """``code=`` values masked too (after ``core.redact``'s names)."""
    for m in _MORE_SECRET_PAIRS.finditer(text):
        secrets.add(unquote(m[2]))
    return _MORE_SECRET_PAIRS.sub(lambda m: f"{m[1]}={REDACTED}", text)


def _json_secrets(value, secret: bool = False) -> list[str]:
    """The string values under secret-named keys of a JSON value."""
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in _json_secrets(v, secret or is_secret_name(k))]
    if isinstance(value, list):
        return [s for v in value for s in _json_secrets(v, secret)]
    return [value] if secret and isinstance(value, str) and value else []


def _mask_body(body: bytes, form: bool, secrets: Secrets) -> bytes:
    """A raw body's credentials masked where they are, whatever its Content-Type
    says: a JSON document's secret-named strings, a form's secret-named values."""
    text = body.decode("utf-8", "surrogateescape")
    try:
        document = jsonlib.loads(text)
    except ValueError:
        document = None
    for value in _json_secrets(document):
        secrets.add(value)
        for quoted in {jsonlib.dumps(value), jsonlib.dumps(value, ensure_ascii=False)}:
            text = text.replace(quoted, f'"{REDACTED}"')
    if form:
        text = _redact_pairs(redact_pairs(text), secrets)
    return text.encode("utf-8", "surrogateescape")


def _mask(req: _Request) -> None:
    """Mask each credential where it is, and remember the long ones (``SCRUB_ELSEWHERE``)
    to scrub them anywhere else."""
    secrets = _LongSecrets()
    secrets.add_url(req.url)
    if isinstance(req.proxy, str):
        secrets.add_url(req.proxy)
        req.proxy = redact_url(req.proxy)
    content_type = "application/json" if req.json is not _UNSET else ""
    content_type = "application/x-www-form-urlencoded" if req.form is not None else content_type
    typed = [("Content-Type", content_type)] if content_type else []
    sent = Headers([(n, _raw(v)) for n, v in [*req.headers, *typed]])
    multipart = SimpleNamespace(fields=[(n, v.encode()) for n, v in req.fields or ()])
    secrets.add_request(SimpleNamespace(url=req.url, headers=sent, body=req.body or multipart))
    secrets.add_headers([("Cookie", f"{n}={v}") for n, v in req.cookies])
    if req.auth is not None:
        secrets.add(req.auth[1])
        req.auth = (req.auth[0], REDACTED)
    req.url = _redact_pairs(redact_url(req.url), secrets)
    req.headers = [(n, redact_header(n, v)) for n, v in req.headers]
    req.cookies = [(n, REDACTED) for n, _ in req.cookies]
    if req.form is not None:
        req.form = [(n, REDACTED if _secret_field(n) else v) for n, v in req.form]
        req.body = urlencode(req.form).encode("ascii")
    if req.fields is not None:
        req.fields = [(n, REDACTED if is_secret_name(n) else v) for n, v in req.fields]
    if req.json is not _UNSET:  # masked where it is, short values too
        req.json = _mask_json(req.json)
        req.body = jsonlib.dumps(req.json, ensure_ascii=False).encode("utf-8")
    elif req.body is not None and req.form is None:
        form = sent.get("content-type", "").lower().startswith("application/x-www-form-urlencoded")
        req.body = _mask_body(req.body, form, secrets)
    if req.body is not None:
        req.body = secrets.scrub_bytes(req.body)
    req.shown = secrets.scrub


def _secret_field(name: str) -> bool:
    return is_secret_name(name) or name.lower() == "code"


# -- curl -----------------------------------------------------------------------------------------
def _shell(text: str) -> str:
    """``text`` as one shell word: '...' when printable, else bash's $'...'
    (as DevTools writes it: a newline or a byte that is not UTF-8 stays exact)."""
    if text.isprintable():
        return shlex.quote(text)
    escaped = []
    for byte in text.encode("utf-8", "surrogateescape"):
        c = chr(byte)
        if c in "\\'":
            escaped.append("\\" + c)
        elif 0x20 <= byte < 0x7F:
            escaped.append(c)
        else:
            escaped.append({"\n": "\\n", "\r": "\\r", "\t": "\\t"}.get(c, f"\\x{byte:02x}"))
    return "$'" + "".join(escaped) + "'"


def _body_text(body: bytes) -> str:
    return body.decode("utf-8", "surrogateescape")


def to_curl(opts: FetchOptions, *, show_secrets: bool = False) -> str:
    """A curl (7.82+, for --json) command line that sends what nbfetch sends."""
    req = _describe(opts, show_secrets)
    shown = req.shown
    args = []  # one option and its value per item
    if re.search(r"[][{}]", req.url):  # curl would expand {a,b} and [1-3]: one request
        args.append("-g")
    # A part no argument can hold (a NUL byte) is left out, with a note: the method stays.
    shown_files = [f for f in req.files if not (isinstance(f[2], bytes) and b"\x00" in f[2])]
    inferred = "POST" if req.body is not None or req.fields or shown_files else "GET"
    custom = req.method not in ("HEAD", inferred)
    if req.method == "HEAD":
        args.append("-I")
    elif custom:  # also -X GET with a body: curl sends it (allow_body)
        args.append(f"-X {shlex.quote(req.method)}")
    headers = list(req.headers)
    if req.json is not _UNSET and all(n.lower() != "content-type" for n, _ in headers):
        headers.append(("Content-Type", "application/json"))  # json= sets it
    names = [n.lower() for n, _ in headers]
    data_flag = "--data-raw"
    if req.body is not None:
        if req.body.startswith(b"@"):
            pass  # --json @x reads the file x: --data-raw takes no file, and -H the types
        elif headers[-2:] == [("Content-Type", "application/json"), ("Accept", "application/json")]:
            headers, data_flag = headers[:-2], "--json"  # what --json sets itself
        elif headers[-1:] == [("Content-Type", "application/x-www-form-urlencoded")]:
            headers = headers[:-1]  # what -d sets itself
    for name, value in headers:
        args.append("-H " + _shell(shown(f"{name}: {value}" if value else f"{name};")))
    if req.body is not None and req.form is None and "content-type" not in names:
        args.append("-H 'Content-Type:'")  # body= sends none; curl's -d would send its own
    if req.cookies:
        args.append("-b " + _shell(shown("; ".join(f"{n}={v}" for n, v in req.cookies))))
    if req.auth is not None:
        args += ["--digest"] if req.digest else []
        args.append("-u " + _shell(shown(":".join(req.auth))))
    pipe = ""
    if req.body is not None:
        text = _body_text(req.body)
        if "\x00" in text:  # no argument can hold a NUL byte: the body comes on stdin
            pipe = "printf '%b' '" + "".join(f"\\0{b:03o}" for b in req.body) + "' | "
            args.append("--data-binary @-")
        else:
            args.append(f"{data_flag} {_shell(shown(text))}")
    for name, value in req.fields or ():
        # -F reads @file, <file, "quoted", ;type= and strips spaces; --form-string does not.
        literal = value.startswith(("@", "<", '"')) or ";" in value or value != value.strip()
        args.append(f"{'--form-string' if literal else '-F'} {_shell(shown(f'{name}={value}'))}")
    for name, filename, content, content_type in req.files:
        content_type = content_type or _guess(filename)
        if isinstance(content, Path):
            spec = f"{name}=@{_form_word(str(content))}"
            if filename != content.name:
                spec += f";filename={_form_word(filename or '')}"
        elif (name, filename, content, content_type) not in shown_files:
            req.notes.append(f"files={name!r}: left out: in-memory content with a NUL byte")
            continue
        else:  # a text part with a file name: what curl sends for the same bytes
            spec = f"{name}={_form_word(_body_text(content), always=True)}"
            spec += f";filename={_form_word(filename)}" if filename is not None else ""
        args.append(f"-F {_shell(shown(f'{spec};type={content_type}'))}")
    if req.follow and custom:
        # curl -L sends the -X method on every hop, where nbfetch sends GET after
        # a 303 (and after a 301/302 to a POST; RFC 9110 15.4): a DELETE would be
        # repeated on the page it points to. --post30x keep a POST only.
        req.notes.append(
            f"redirects are not followed: curl -X {req.method} -L would send"
            f" {req.method} again on every redirect (nbfetch sends GET after a 303)"
        )
    elif req.follow:
        args.append("-L")
        if req.max_redirects is not None and req.max_redirects != CURL_MAX_REDIRS:
            args.append(f"--max-redirs {req.max_redirects}")
    if req.decompress:
        args.append("--compressed")
    if not req.verify:
        args.append("-k")
    if req.proxy is not _UNSET:
        args.append(f"-x {shlex.quote(shown(req.proxy or ''))}")
    for name, flag in (("request_timeout", "--max-time"), ("connect_timeout", "--connect-timeout")):
        if name in req.timeouts:
            args.append(f"{flag} {_number(req.timeouts[name])}")
    if "read_timeout" in req.timeouts:
        req.notes.append(f"read_timeout={_number(req.timeouts['read_timeout'])}: curl has none")
    if opts.include:
        args.append("-i")
    if opts.output:
        args.append(f"-o {shlex.quote(opts.output)}")
    # One option a line, as DevTools writes it.
    command = " \\\n  ".join([f"curl {shlex.quote(shown(req.url))}", *args])
    return _comments(req.notes) + pipe + command


def _form_word(text: str, always: bool = False) -> str:
    """``text`` as one word of a -F value: ``"..."`` when curl would read a ``,``
    ``;`` ``"`` or a space around it as syntax (tool_formparse.c, get_param_word)."""
    if not always and text and not re.search(r'[,;"\\]', text) and text == text.strip():
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _guess(filename: str | None) -> str:
    import mimetypes

    return (mimetypes.guess_type(filename)[0] if filename else None) or "application/octet-stream"


def _comments(notes: list[str]) -> str:
    return "".join(f"# {note}\n" for note in notes)


# -- .http ---------------------------------------------------------------------------------------
#: The multipart boundary of a .http block (REST Client's documented example form).
HTTP_BOUNDARY = "nbfetch-boundary"


def to_http(opts: FetchOptions, *, show_secrets: bool = False) -> str:
    """One ``.http`` block (VS Code REST Client / JetBrains / httpyac syntax)."""
    req = _describe(opts, show_secrets)
    shown = req.shown
    lines = []
    if not req.follow:
        lines.append("# @no-redirect")
    if "request_timeout" in req.timeouts:
        lines.append(f"# @timeout {_number(req.timeouts['request_timeout'])}")
    if "connect_timeout" in req.timeouts:
        lines.append(f"# @connection-timeout {_number(req.timeouts['connect_timeout'])}")
    for what, said in (
        (not req.verify, "verify=False (curl -k)"),
        (req.proxy is not _UNSET, f"proxy={shown(str(req.proxy))}"),
        (req.max_redirects not in (None, CURL_MAX_REDIRS), f"max_redirects={req.max_redirects}"),
        ("read_timeout" in req.timeouts, "read_timeout"),
        (not req.decompress, "decompress=False (nbfetch sends no Accept-Encoding)"),
    ):
        if what:
            req.notes.append(f"not expressible in .http: {said}")
    headers = list(req.headers)
    names = {n.lower() for n, _ in headers}
    if req.auth is not None and "authorization" not in names:  # headers= win over auth=
        if req.digest:  # REST Client's form; the others have none
            headers.append(("Authorization", f"Digest {req.auth[0]} {req.auth[1]}"))
        else:
            token = b64encode(":".join(req.auth).encode()).decode()
            value = "Basic ***" if req.auth[1] == REDACTED else f"Basic {token}"
            headers.append(("Authorization", value))
    if req.cookies:
        headers.append(("Cookie", "; ".join(f"{n}={v}" for n, v in req.cookies)))
    body = None
    if req.json is not _UNSET:
        if "content-type" not in names:
            headers.append(("Content-Type", "application/json"))
        body = _body_text(req.body)  # the bytes json= sends, not re-indented
        if "{{" in body:  # one line: only a template can change it
            req.notes.append("the body is not shown: its '{{' would be read as a template")
            body = None
    elif req.form is not None:
        if "content-type" not in names:
            headers.append(("Content-Type", "application/x-www-form-urlencoded"))
        body = urlencode(req.form)
    elif req.fields is not None:
        headers.append(("Content-Type", f"multipart/form-data; boundary={HTTP_BOUNDARY}"))
        texts = [v for _, v in req.fields] + [
            _body_text(c) for _, _, c, _ in req.files if isinstance(c, bytes)
        ]
        problem = next(filter(None, map(_http_syntax, texts)), None)
        if problem:
            req.notes.append(f"the body is not shown: a part's {problem}")
        else:
            body = _http_multipart(req)
    elif req.body is not None:
        body = _body_text(req.body)
        problem = _http_syntax(body)
        if not body.isprintable() and not all(c.isprintable() or c in "\r\n\t" for c in body):
            req.notes.append("the body is binary: not shown")
            body = None
        elif problem:  # "< /etc/passwd" would send that file; "###" start a request
            req.notes.append(f"the body is not shown: its {problem}")
            body = None
        if body is not None and "\r" in body:
            req.notes.append(".http sends the body's lines joined with LF, not CR LF")
        if body is not None and body.endswith("\n"):
            req.notes.append(".http sends the body without its final newline")
    if "{{" in req.url or any("{{" in f"{n}{v}" for n, v in headers):
        req.notes.append("'{{' in the URL or a header is read as a template by .http")
    lines = [*(f"# {note}" for note in req.notes), *lines, f"{req.method} {shown(req.url)}"]
    # The parser's str value is sent as ISO-8859-1 when it can be: as text of that
    # encoding every byte goes out as it is.
    lines += [shown(f"{n}: {_raw(v).decode('latin-1')}") for n, v in headers]
    if body is not None:
        lines += ["", shown(body)]
    return "\n".join(lines) + "\n"


#: Lines the .http parser reads as its own (parse.py: comments, "??" checks,
#: ">" handlers, "HTTP/" responses, "###" requests, "< path" file bodies).
_HTTP_LINE = re.compile(r"^[ \t]*(?:\?\?|<>|>|#|//|HTTP/|<)", re.MULTILINE)


def _http_syntax(text: str) -> str | None:
    """What in ``text`` the .http parser would not read as body text."""
    m = _HTTP_LINE.search(text)
    if m:
        number = text.count("\n", 0, m.start()) + 1
        return f"line {number} starts with {m.group().strip()!r}, which .http reads as syntax"
    if "{{" in text:
        return "'{{' would be read as a template"
    return None


def _http_multipart(req: _Request) -> str:
    """REST Client's multipart form: a file part's content is ``< path``."""
    out = []
    for name, value in req.fields or ():
        out += [f"--{HTTP_BOUNDARY}", f'Content-Disposition: form-data; name="{name}"', "", value]
    for name, filename, content, content_type in req.files:
        out += [
            f"--{HTTP_BOUNDARY}",
            f'Content-Disposition: form-data; name="{name}"; filename="{filename}"',
            f"Content-Type: {content_type or _guess(filename)}",
            "",
            f"< {content}" if isinstance(content, Path) else _body_text(content),
        ]
    return "\n".join([*out, f"--{HTTP_BOUNDARY}--"])


# -- Python ----------------------------------------------------------------------------------------
LIBRARIES = ("nbfetch", "httpx", "requests")


def to_python(opts: FetchOptions, library: str = "nbfetch", *, show_secrets: bool = False) -> str:
    """Python code for ``library`` ("nbfetch", "httpx" or "requests") that sends
    this request; nbfetch's uses ``await`` (a notebook cell, or any coroutine)."""
    if library not in LIBRARIES:
        raise ValueError(f"library must be one of {', '.join(LIBRARIES)}, not {library!r}")
    req = _describe(opts, show_secrets)
    return {"nbfetch": _nbfetch, "httpx": _httpx, "requests": _requests}[library](req, opts)


class _Py:
    """Python literals, with every str and bytes scrubbed (``req.shown``)."""

    def __init__(self, req: _Request):
        self.req = req
        self.imports: set[str] = set()

    def __call__(self, value) -> str:
        shown = self.req.shown
        if isinstance(value, str):
            return repr(shown(value))
        if isinstance(value, bytes):  # a body: already scrubbed (scrub_bytes)
            return repr(value)
        if isinstance(value, Path):
            self.imports.add("from pathlib import Path")
            return f"Path({shown(str(value))!r})"
        if isinstance(value, tuple):
            inner = ", ".join(map(self, value))
            return f"({inner},)" if len(value) == 1 else f"({inner})"
        if isinstance(value, list):
            return "[" + ", ".join(map(self, value)) + "]"
        if isinstance(value, dict):
            return "{" + ", ".join(f"{self(k)}: {self(v)}" for k, v in value.items()) + "}"
        return repr(value)


def _call(head: str, args: list[str]) -> str:
    return head + "(\n" + "".join(f"    {a},\n" for a in args) + ")"


def _script(imports: set[str], notes: list[str], code: str) -> str:
    return "\n".join(sorted(imports)) + "\n\n" + _comments(notes) + code + "\n"


def _nbfetch(req: _Request, opts: FetchOptions) -> str:
    py = _Py(req)
    args = [py(req.url)]
    if req.method != "GET":
        args.append(f"method={py(req.method)}")
    if req.headers:
        args.append(f"headers={py(_header_values(req.headers, req.shown))}")
    if req.json is not _UNSET:
        args.append(f"json={py(req.json)}")
    elif req.form is not None:  # a dict: a list value repeats the name
        form = dict(req.form) if len(dict(req.form)) == len(req.form) else _grouped(req.form)
        args.append(f"data={py(form)}")
    elif req.fields is not None:
        args.append(f"data={py(req.fields)}")
        files = [(n, (f, c, t)) if t else (n, (f, c)) for n, f, c, t in req.files]
        args.append(f"files={py(files)}")
    elif req.body is not None:
        args.append(f"body={py(req.body)}")
    if req.allow_body:
        args.append("allow_body=True")
    if req.auth is not None:
        auth = py(req.auth)
        args.append(f"auth=nbfetch.DigestAuth{auth}" if req.digest else f"auth={auth}")
    if req.cookies:
        args.append(f"cookies={py(dict(req.cookies))}")
    if not req.follow:
        args.append("follow_redirects=False")
    if req.max_redirects is not None:
        args.append(f"max_redirects={req.max_redirects}")
    if not req.decompress:
        args.append("decompress=False")
    for name, value in req.timeouts.items():
        args.append(f"{name}={value!r}")
    if req.proxy is not _UNSET:
        args.append(f"proxy={py(req.proxy)}")
    py.imports.add("import nbfetch")
    if req.verify:
        return _script(py.imports, req.notes, "response = await " + _call("nbfetch.fetch", args))
    code = "async with nbfetch.AsyncClient(verify=False) as client:\n    response = await "
    code += _call("client.fetch", args).replace("\n", "\n    ")
    return _script(py.imports, req.notes, code)


def _grouped(pairs: list[tuple[str, str]]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for name, value in pairs:
        out.setdefault(name, []).append(value)
    return out


def _third_party_body(req: _Request, py: _Py, body_arg: str) -> list[str]:
    """The body arguments httpx and requests share the shape of."""
    if req.json is not _UNSET:
        # Their JSON is not byte for byte nbfetch's (separators, ASCII escapes):
        # the bytes as nbfetch sends them, with its Content-Type.
        return [f"{body_arg}={py(req.body)}"]
    if req.form is not None:
        return [f"data={py(_grouped(req.form))}"]
    if req.fields is not None:
        # Every part in files=: a text field as (None, value), so that a form of
        # text fields only is still multipart.
        parts = [(n, (None, v)) for n, v in req.fields]
        opened = []
        for name, filename, content, content_type in req.files:
            content_type = content_type or _guess(filename)
            if isinstance(content, Path):
                file = f"open({py(str(content))}, 'rb')"
                opened.append(f"({py(name)}, ({py(filename)}, {file}, {py(content_type)}))")
            else:
                parts.append((name, (filename, content, content_type)))
        return [f"files=[{', '.join([*map(py, parts), *opened])}]"]
    if req.body is not None:
        return [f"{body_arg}={py(req.body)}"]
    return []


def _third_party_headers(req: _Request) -> list[tuple[str, str]]:
    headers = list(req.headers)
    names = {n.lower() for n, _ in headers}
    if req.json is not _UNSET and "content-type" not in names:
        headers.append(("Content-Type", "application/json"))
    if req.cookies:  # httpx 0.28 deprecates per-request cookies=: the header nbfetch sends
        headers.append(("Cookie", "; ".join(f"{n}={v}" for n, v in req.cookies)))
    if not req.decompress and "accept-encoding" not in names:
        # nbfetch sends no Accept-Encoding; these send their own unless told.
        headers.append(("Accept-Encoding", "identity"))
    return headers


def _httpx(req: _Request, opts: FetchOptions) -> str:
    py = _Py(req)
    py.imports.add("import httpx")
    args = [py(req.method), py(req.url)]
    headers = _third_party_headers(req)
    if headers:
        args.append(f"headers={py(_header_values(headers, req.shown))}")
    args += _third_party_body(req, py, "content")
    if req.auth is not None:
        args.append(
            f"auth=httpx.DigestAuth{py(req.auth)}" if req.digest else f"auth={py(req.auth)}"
        )
    if req.follow:  # httpx's default is not to follow
        args.append("follow_redirects=True")
    t = req.timeouts
    if t:
        read = t.get("read_timeout", t.get("request_timeout"))
        if "request_timeout" in t:
            req.notes.append("httpx has no total timeout: request_timeout is its read timeout")
        args.append(f"timeout=httpx.Timeout({read!r}, connect={t.get('connect_timeout', read)!r})")
    client = []
    if not req.verify:
        client.append("verify=False")
    if req.proxy is not _UNSET:
        client.append(f"proxy={py(req.proxy)}")
    if req.follow:  # nbfetch's default limit, not httpx's 20
        client.append(f"max_redirects={req.max_redirects or 5}")
    code = f"with httpx.Client({', '.join(client)}) as client:\n    response = " + _call(
        "client.request", args
    ).replace("\n", "\n    ")
    return _script(py.imports, req.notes, code)


def _requests(req: _Request, opts: FetchOptions) -> str:
    py = _Py(req)
    py.imports.add("import requests")
    args = [py(req.method), py(req.url)]
    headers: dict[str, str] = {}
    for name, value in _third_party_headers(req):  # requests takes a dict: one value a name
        joined = "; " if name.lower() == "cookie" else ", "
        key = next((k for k in headers if k.lower() == name.lower()), name)
        headers[key] = f"{headers[key]}{joined}{value}" if key in headers else value
    if headers:
        args.append(f"headers={py(dict(_header_values(list(headers.items()), req.shown)))}")
    args += _third_party_body(req, py, "data")
    if req.auth is not None:
        if req.digest:
            py.imports.add("from requests.auth import HTTPDigestAuth")
            args.append(f"auth=HTTPDigestAuth{py(req.auth)}")
        else:
            args.append(f"auth={py(req.auth)}")
    args.append(f"allow_redirects={req.follow}")
    t = req.timeouts
    if t:
        read = t.get("read_timeout", t.get("request_timeout"))
        if "request_timeout" in t:
            req.notes.append("requests has no total timeout: request_timeout is its read timeout")
        args.append(f"timeout=({t.get('connect_timeout', read)!r}, {read!r})")
    if not req.verify:
        args.append("verify=False")
    if req.proxy is not _UNSET:
        proxy = py(req.proxy)
        args.append(f"proxies={{'http': {proxy}, 'https': {proxy}}}")
    code = "with requests.Session() as session:\n"
    if req.follow:  # nbfetch's default limit, not requests' 30
        code += f"    session.max_redirects = {req.max_redirects or 5}\n"
    code += "    response = " + _call("session.request", args).replace("\n", "\n    ")
    return _script(py.imports, req.notes, code)


# -- what a response says was sent -----------------------------------------------------------------
#: Headers nbfetch writes itself from the request's framing and its client.
_FRAMING = frozenset({"host", "content-length", "transfer-encoding", "accept-encoding"})


# A part head as core.multipart writes it: name="..."; filename="..." (RFC 7578 4.2).
_PART_PARAM = re.compile(rb'\b(name|filename)="([^"]*)"')
_PART_TYPE = re.compile(rb"^content-type: *(.+)$", re.I | re.M)


def _sent_file(head: bytes, content) -> tuple:
    """A multipart file part as sent, as a ``files=`` entry: its path (or its bytes)."""
    params = {
        k.decode(): unquote(v.decode("utf-8", "replace")) for k, v in _PART_PARAM.findall(head)
    }
    match = _PART_TYPE.search(head)
    if isinstance(content, bytes):
        source = content
    else:  # a FileSource: a path, or a file object known by its name
        source = Path(content.path if content.path is not None else content.file.name)
    return params["name"], (params.get("filename"), source, match and match[1].decode())


def options_from_response(response) -> FetchOptions:
    """The request that started ``response`` (the first hop, before redirects) as
    ``FetchOptions``, for "copy as": its method, URL, headers and body as sent.

    Left out: what nbfetch writes by itself (Host, Content-Length, its default
    User-Agent and Accept, a multipart body's boundary). A file is named by its
    path: what it holds now is what a copy sends."""
    from .._version import __version__

    first = response.history[0] if response.history else response
    request = first.request
    url = request.url.copy_with(username=None, password=None)  # its Basic header is kept
    defaults = {("user-agent", f"nbfetch/{__version__}"), ("accept", "*/*")}
    body = request.body
    multipart = body is not None and not isinstance(body, bytes) and hasattr(body, "boundary")
    headers = [
        (name, value)
        for name, value in request.headers.items()
        if name.lower() not in _FRAMING
        and (name.lower(), value) not in defaults
        and not (multipart and name.lower() == "content-type")
    ]
    kwargs: dict[str, Any] = {}
    if headers:
        kwargs["headers"] = headers
    if isinstance(body, bytes):
        kwargs["body"] = body
    elif multipart:
        kwargs["data"] = [(n, v.decode("utf-8", "replace")) for n, v in body.fields]
        kwargs["files"] = [_sent_file(*part) for part in body.parts[len(body.fields) :]]
    if (
        not response.history
        and 300 <= response.status_code < 400
        and "location" in response.headers
    ):
        kwargs["follow_redirects"] = False  # a redirect that was not followed
    if "accept-encoding" not in request.headers:
        kwargs["decompress"] = False
    return FetchOptions(url=str(url), method=request.method, fetch_kwargs=kwargs)
