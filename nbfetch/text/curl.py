"""A pasted ``curl ...`` command line as ``FetchOptions``, the way curl 7.88 reads it.

What curl does, and so what this does (``curl --manual``):

* No ``-L``: redirects are not followed (nbfetch's default is to follow).
  ``-L`` follows up to 50 (curl's ``--max-redirs`` default; nbfetch's is 5).
  Not as curl: with ``-X`` curl sends that method again on every hop (a
  ``-X POST`` stays a POST after a 302); nbfetch follows RFC 9110 15.4 (GET after
  a 303, and after a 301 or 302 to a POST).
* No ``--compressed``: no ``Accept-Encoding`` is sent and the body is not decoded.
* ``-d``/``--data``/``--data-ascii``, ``--data-raw``, ``--data-binary``,
  ``--data-urlencode`` and ``--json`` pieces are joined with ``&`` (a ``--json``
  piece is appended without one); they make the request a POST with
  ``Content-Type: application/x-www-form-urlencoded`` (``--json``: ``application/json``
  and ``Accept: application/json``) unless ``-H`` sets them. ``-d @file`` drops
  the file's CR and LF bytes; ``--data-binary @file`` and ``--json @file`` keep them.
  A file read into the command must be a regular file of at most ``MAX_BODY_FILE``.
* ``-F``: ``name=value``, ``name=@path``, ``name=<path``, each with ``;type=`` and
  ``;filename=``, and ``"quoted"`` words (``@"a,b;c.txt"``), as curl reads them.
* A header value that is not ASCII is sent as the bytes of the argument, as curl
  sends it (``$'\\xe9'`` the byte E9, a typed ``é`` UTF-8).
* ``-G`` appends the data to the query instead; ``-I`` is HEAD.
* ``-b 'a=1; b=2'`` is a ``Cookie`` header (several ``-b`` joined with ``;`` as
  curl joins them). ``-b FILE`` (no ``=``: a cookie file) is refused: nbfetch reads
  no cookie files, so the cookies are given as ``-b 'name=value; ...'``.
* ``-A``, ``-e`` (``;auto`` dropped), ``-u`` and ``--oauth2-bearer`` set their
  headers unless ``-H`` sets the same one (curl's own headers yield to ``-H``).
* ``-H 'Name:'`` (curl: do not send its own ``Name``) keeps curl's generated
  header of that name out; nbfetch's defaults (``User-Agent``, ``Accept``) stay.
* Display flags (``-s -S -v -f --fail-with-body -# --http1.1 ...``) are accepted
  and change nothing. URL globbing (``{a,b}``, ``[1-3]``) is not done, as with
  ``-g``; but without ``-g`` a backslash before ``[ ] { }`` in the URL is dropped,
  as curl's globbing drops it (DevTools' "Copy as cURL (bash)" writes ``\\[``).

Words are split as a POSIX shell does (quotes, backslashes, ``\\``-newline
continuations, bash's ``$'...'`` as DevTools' "Copy as cURL (bash)" writes it);
shell operators, variables and command substitutions are refused, not guessed.
"""

from __future__ import annotations

import re
import stat
from pathlib import Path
from urllib.parse import quote_plus

from ..core.auth import DigestAuth
from ..core.errors import InvalidRequest
from ..core.redact import redact_url
from .options import FetchOptions, parse_header

#: Flags without an argument -> the attribute of ``_Command`` they set to True
#: (``--no-NAME`` sets it back to False, as curl's ``--no-`` forms do).
SWITCHES = {
    "-L": "location",
    "--location": "location",
    "-k": "insecure",
    "--insecure": "insecure",
    "--compressed": "compressed",
    "-I": "head",
    "--head": "head",
    "-G": "get",
    "--get": "get",
    "-i": "include",
    "--include": "include",
    "--digest": "digest",
    "-g": "globoff",
    "--globoff": "globoff",
}
#: Flags curl takes that change nothing nbfetch does: output, progress, verbosity.
HARMLESS = frozenset(
    {
        "-s",
        "--silent",
        "-S",
        "--show-error",
        "-v",
        "--verbose",
        "-f",
        "--fail",
        "--fail-with-body",
        "-#",
        "--progress-bar",
        "--no-progress-meter",
        "--http1.1",
        "-N",
        "--no-buffer",
        "--basic",
    }
)
#: Flags that take an argument -> what it is.
VALUED = {
    "-X": "method",
    "--request": "method",
    "-H": "header",
    "--header": "header",
    "-d": "data",
    "--data": "data",
    "--data-ascii": "data",
    "--data-raw": "data-raw",
    "--data-binary": "data-binary",
    "--data-urlencode": "data-urlencode",
    "--json": "json",
    "-F": "form",
    "--form": "form",
    "--form-string": "form-string",
    "-u": "user",
    "--user": "user",
    "--oauth2-bearer": "bearer",
    "-b": "cookie",
    "--cookie": "cookie",
    "-A": "user-agent",
    "--user-agent": "user-agent",
    "-e": "referer",
    "--referer": "referer",
    "-m": "max-time",
    "--max-time": "max-time",
    "--connect-timeout": "connect-timeout",
    "-x": "proxy",
    "--proxy": "proxy",
    "--max-redirs": "max-redirs",
    "--url": "url",
    "-o": "output",
    "--output": "output",
}
#: The most a file read into the command (-d @file, -F 'name=<file', ...) may hold:
#: the .http side's bound for the same bodies (httpfile.requests.MAX_BODY_FILE;
#: text may not import httpfile). It is read whole, in memory.
MAX_BODY_FILE = 10 * 1024 * 1024
#: curl's default limit with -L (``--max-redirs``).
CURL_MAX_REDIRS = 50
#: The media types curl gives a ``-F name=@file`` part by its extension
#: (lib/mime.c, ContentTypeForFilename); anything else is application/octet-stream.
CURL_FILE_TYPES = {
    ".gif": "image/gif",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".png": "image/png",
    ".svg": "image/svg+xml",
    ".txt": "text/plain",
    ".htm": "text/html",
    ".html": "text/html",
    ".pdf": "application/pdf",
    ".xml": "application/xml",
}
_ANSI_C = re.compile(
    r"\\(x[0-9A-Fa-f]{1,2}|u[0-9A-Fa-f]{1,4}|U[0-9A-Fa-f]{1,8}|[0-7]{1,3}|c[^']|.)", re.S
)
_ANSI_C_SIMPLE = {
    "a": "\a",
    "b": "\b",
    "e": "\x1b",
    "E": "\x1b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "v": "\v",
    "\\": "\\",
    "'": "'",
    '"': '"',
    "?": "?",
}


def split_command(command: str) -> list[str]:
    """The words of ``command`` as a POSIX shell (bash, for ``$'...'``) splits them.

    A byte that ``$'\\xff'`` writes and that is not UTF-8 is kept as a surrogate
    escape (as Python keeps such bytes of ``sys.argv``)."""
    text = command.replace("\r\n", "\n")
    words: list[str] = []
    word: list[str] | None = None  # None: between words
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == "\\" and text[i + 1 : i + 2] == "\n":  # a continuation: nothing at all
            i += 2
            continue
        if c in " \t\n":
            if word is not None:
                words.append("".join(word))
                word = None
            i += 1
            continue
        if c == "#" and word is None:  # a comment runs to the end of the line
            end = text.find("\n", i)
            i = n if end == -1 else end
            continue
        if word is None:
            word = []
        if c == "\\":
            if i + 1 == n:
                raise InvalidRequest("the command ends with a lone backslash")
            word.append(text[i + 1])
            i += 2
        elif c == "'":
            end = text.find("'", i + 1)
            if end == -1:
                raise InvalidRequest("a single quote (') is not closed")
            word.append(text[i + 1 : end])
            i = end + 1
        elif c == "$" and text[i + 1 : i + 2] == "'":
            i = _ansi_c(text, i + 2, word)
        elif c == '"' or (c == "$" and text[i + 1 : i + 2] == '"'):  # $"...": bash's "..."
            i = _double_quoted(text, text.index('"', i) + 1, word)
        elif c == "$" and re.match(r"[A-Za-z_{(0-9@*#?!-]", text[i + 1 : i + 2]):
            raise _expansion(text, i)
        elif c in "|&;<>()`":
            raise InvalidRequest(
                f"{c!r} is shell syntax, not part of a curl command",
                hint="paste the curl command alone (no pipes, redirections or ';')",
            )
        else:
            word.append(c)
            i += 1
    if word is not None:
        words.append("".join(word))
    return words


def _expansion(text: str, i: int) -> InvalidRequest:
    shown = re.match(r"\$(\{[^}]*\}?|\(|[A-Za-z_][A-Za-z0-9_]*|.)", text[i:]).group()
    return InvalidRequest(
        f"{shown} is expanded by a shell; nbfetch does not run one",
        hint="put the value itself in the command",
    )


def _double_quoted(text: str, i: int, word: list[str]) -> int:
    """Inside "...": a backslash escapes only $ ` " \\ and a newline (POSIX 2.2.3)."""
    while i < len(text):
        c = text[i]
        if c == '"':
            return i + 1
        if c == "\\" and text[i + 1 : i + 2] in ("$", "`", '"', "\\", "\n"):
            if text[i + 1] != "\n":
                word.append(text[i + 1])
            i += 2
            continue
        if c == "`" or (c == "$" and re.match(r"[A-Za-z_{(0-9@*#?!-]", text[i + 1 : i + 2])):
            raise _expansion(text, i)
        word.append(c)
        i += 1
    raise InvalidRequest('a double quote (") is not closed')


def _ansi_c(text: str, i: int, word: list[str]) -> int:
    """bash's $'...': backslash escapes as in C (DevTools writes bodies this way)."""
    out = bytearray()
    while i < len(text):
        c = text[i]
        if c == "'":
            word.append(out.decode("utf-8", "surrogateescape"))
            return i + 1
        if c != "\\":
            out += c.encode("utf-8", "surrogateescape")
            i += 1
            continue
        m = _ANSI_C.match(text, i)
        if m is None:
            break
        esc = m.group(1)
        if esc in _ANSI_C_SIMPLE:
            out += _ANSI_C_SIMPLE[esc].encode("utf-8", "surrogateescape")
        elif esc[0] in "01234567":
            out.append(int(esc, 8) & 0xFF)
        elif len(esc) == 1:  # bash keeps an escape it does not know (\x, \q) as written
            out += ("\\" + esc).encode("utf-8", "surrogateescape")
        elif esc[0] == "c":  # \cX: the control character (bash)
            out.append(ord(esc[1]) & 0x1F)
        elif esc[0] == "x":
            out.append(int(esc[1:], 16))
        elif esc[0] in "uU":
            if int(esc[1:], 16) > 0x10FFFF:
                raise InvalidRequest(f"$'...': \\{esc} is not a Unicode character")
            out += chr(int(esc[1:], 16)).encode("utf-8", "surrogatepass")
        i = m.end()
    raise InvalidRequest("a $'...' string is not closed")


def _bytes(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


def _read(path: str, flag: str) -> bytes:
    if path == "-":
        raise InvalidRequest(f"{flag} @- reads standard input, which a notebook does not have")
    file = Path(path).expanduser()
    try:
        if not stat.S_ISREG(file.stat().st_mode):  # a FIFO or a device may block or never end
            raise InvalidRequest(f"{flag} @{path}: {file} is not a regular file")
        with open(file, "rb") as handle:
            data = handle.read(MAX_BODY_FILE + 1)  # read here, whole: so bounded
    except OSError as exc:
        raise InvalidRequest(f"{flag} @{path}: cannot read {file}: {exc.strerror}") from None
    if len(data) > MAX_BODY_FILE:
        raise InvalidRequest(
            f"{flag} @{path}: {file} holds more than {MAX_BODY_FILE:,} bytes",
            hint="a file part (-F name=@file) is streamed from disk instead",
        )
    return data


def _seconds(value: str, flag: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not seconds > 0:  # also NaN
        # Not the value: a password pasted one word too early would be shown.
        raise InvalidRequest(f"{flag} takes a positive number of seconds")
    return seconds


class _Command:
    """What the flags of one command said, before it is turned into options."""

    def __init__(self) -> None:
        self.location = self.insecure = self.compressed = False
        self.head = self.get = self.include = self.digest = self.globoff = False
        self.method: str | None = None
        self.urls: list[str] = []
        self.headers: list[tuple[str, str]] = []
        self.suppressed: set[str] = set()  # -H 'Name:': curl's own Name is not sent
        self.data: bytes | None = None
        self.json = False
        self.form: list[tuple[str, str, bool]] = []  # (name=value, flag, literal)
        self.user: str | None = None
        self.bearer: str | None = None
        self.cookies: list[str] = []
        self.user_agent: str | None = None
        self.referer: str | None = None
        self.fetch: dict = {}
        self.output: str | None = None

    def add_data(self, piece: bytes, json: bool = False) -> None:
        # curl: pieces are joined with "&"; a --json piece is appended as it is.
        if self.data is None:
            self.data = piece
        else:
            self.data += piece if json else b"&" + piece
        self.json |= json

    def valued(self, kind: str, value: str, flag: str) -> None:
        if kind == "method":
            self.method = value
        elif kind == "header":
            self.header(value, flag)
        elif kind == "data":
            self.add_data(
                _read(value[1:], flag).replace(b"\r", b"").replace(b"\n", b"")
                if value.startswith("@")
                else _bytes(value)
            )
        elif kind == "data-raw":
            self.add_data(_bytes(value))
        elif kind in ("data-binary", "json"):
            piece = _read(value[1:], flag) if value.startswith("@") else _bytes(value)
            self.add_data(piece, json=kind == "json")
        elif kind == "data-urlencode":
            self.add_data(_urlencoded(value, flag))
        elif kind in ("form", "form-string"):
            self.form.append((value, flag, kind == "form-string"))
        elif kind == "user":
            self.user = value
        elif kind == "bearer":
            self.bearer = value
        elif kind == "cookie":
            if "=" not in value:
                raise InvalidRequest(  # the value is not shown: it may be a token
                    "-b without '=' names a cookie file, and nbfetch reads no cookie files",
                    hint="give the cookies themselves: -b 'name=value; other=value'",
                )
            self.cookies.append(value)
        elif kind == "user-agent":
            self.user_agent = value
        elif kind == "referer":
            self.referer = value.removesuffix(";auto")
        elif kind == "max-time":
            self.fetch["request_timeout"] = _seconds(value, flag)
        elif kind == "connect-timeout":
            self.fetch["connect_timeout"] = _seconds(value, flag)
        elif kind == "proxy":
            self.fetch["proxy"] = _proxy(value)
        elif kind == "max-redirs":
            if not value.isdigit():
                raise InvalidRequest(f"--max-redirs takes a number of redirects, not {value!r}")
            self.fetch["max_redirects"] = int(value)
        elif kind == "url":
            self.urls.append(value)
        elif kind == "output":
            self.output = None if value == "-" else value

    def header(self, value: str, flag: str) -> None:
        if value.startswith("@"):
            raise InvalidRequest(f"{flag} @FILE (headers from a file) is not supported")
        name, colon, rest = value.partition(":")
        if not colon and value.rstrip().endswith(";"):  # "Name;": send it empty (curl)
            self.headers.append((value.rstrip()[:-1].strip(), ""))
        elif colon and not rest.strip():  # "Name:": curl does not send its own Name
            self.suppressed.add(name.strip().lower())
        else:
            self.headers.append(parse_header(value))

    def generated(self, name: str, value: str) -> None:
        """One of curl's own headers: -H of the same name (set or suppressed) wins."""
        lowered = name.lower()
        if lowered not in self.suppressed and all(n.lower() != lowered for n, _ in self.headers):
            self.headers.append((name, value))


def _urlencoded(value: str, flag: str) -> bytes:
    """--data-urlencode's forms: content, =content, name=content, @file, name@file.
    curl 7.88 encodes a space as "+" and keeps only ALPHA DIGIT - . _ ~."""
    sep = value.find("=")
    if sep == -1:
        sep = value.find("@")
    name, kind, content = (
        ("", "", value) if sep == -1 else (value[:sep], value[sep], value[sep + 1 :])
    )
    raw = _read(content, flag) if kind == "@" else _bytes(content)
    encoded = quote_plus(raw, safe="").encode("ascii")
    return _bytes(name) + b"=" + encoded if name else encoded


def _proxy(value: str) -> str | None:
    if not value:
        return None  # curl: -x "" goes direct, whatever the environment says
    scheme, sep, rest = value.partition("://")
    if not sep:
        scheme, rest = "http", value
    if scheme.lower() not in ("http", "https"):
        raise InvalidRequest(f"-x {redact_url(value)}: nbfetch speaks to HTTP(S) proxies only")
    authority, slash, path = rest.partition("/")
    userinfo, at, host = authority.rpartition("@")
    if not re.search(r":\d+$", host):
        host += ":1080"  # curl's default proxy port
    return f"{scheme}://{userinfo}{at}{host}{slash}{path}"


def _form_word(spec: str, i: int, ends: str = ";") -> tuple[str, int]:
    """One word of a -F value from ``spec[i]``, as curl's get_param_word reads it:
    ``"..."`` (``\\"`` and ``\\\\`` escaped) or up to the next of ``ends``,
    without the spaces around it."""
    while spec[i : i + 1].isspace():
        i += 1
    if spec.startswith('"', i):
        m = re.compile(r'"((?:\\[\\"]|[^"\\]|\\(?![\\"]))*)"').match(spec, i)
        if m:  # curl: an unclosed quote is no quote
            return re.sub(r'\\([\\"])', r"\1", m[1]), m.end()
    end = re.compile(f"[{ends}]|$").search(spec, i).start()
    return spec[i:end].rstrip(), end


def _form_value(name: str, spec: str, flag: str, ends: str) -> tuple[str, str | None, str | None]:
    """A -F value (after ``@`` or ``<``, or a text) and its ``;type=`` and
    ``;filename=``, as curl reads them (tool_formparse.c, get_param_part: after
    ``@`` a ``,`` separates files too)."""
    value, i = _form_word(spec, 0, ends)
    filename = content_type = None
    while i < len(spec):
        if spec[i] == ",":
            raise InvalidRequest(f"{flag} {name}=: several files in one part are not supported")
        i += 1
        while spec[i : i + 1].isspace():
            i += 1
        key = spec[i : spec.find("=", i)] if "=" in spec[i:] else spec[i:]
        if key == "filename":
            filename, i = _form_word(spec, i + len("filename="), ends)
        elif key == "type":
            content_type, i = _form_word(spec, i + len("type="), ends)
            content_type = content_type.strip()
        else:  # curl skips it with a warning; what was meant is not known
            raise InvalidRequest(  # its name only: the value may be a secret
                f"{flag} {name}=...: {key.strip()!r} is not a part parameter nbfetch reads",
                hint="type= and filename= are; for a value holding ';' use --form-string",
            )
    return value, filename, content_type


def _multipart(items: list[tuple[str, str, bool]]) -> tuple[list, list]:
    data, files = [], []
    for item, flag, literal in items:
        name, equals, value = item.partition("=")
        if not equals or not name:
            raise InvalidRequest(f"{flag} {item!r} must look like NAME=VALUE or NAME=@FILE")
        if literal:
            data.append((name, value))
            continue
        kind = value[:1] if value[:1] in ("@", "<") else ""
        ends = ";," if kind == "@" else ";"
        text, filename, content_type = _form_value(name, value[len(kind) :], flag, ends)
        if kind == "@":  # a file part, opened when sent
            file = Path(text).expanduser()
            filename = file.name if filename is None else filename
            if content_type is None:
                content_type = CURL_FILE_TYPES.get(file.suffix.lower(), "application/octet-stream")
            files.append((name, (filename, file, content_type)))
            continue
        if kind == "<":  # the field's text, read from a file
            text = _read(text, flag).decode("utf-8", "surrogateescape")
        if filename is None and content_type is None:
            data.append((name, text))
        else:  # a text part with a type or a file name: a part of its own
            if content_type is None:
                suffix = Path(filename).suffix.lower()
                content_type = CURL_FILE_TYPES.get(suffix, "application/octet-stream")
            files.append((name, (filename, _bytes(text), content_type)))
    return data, files


def _words(command: str) -> list[str]:
    words = split_command(command)
    if words and Path(words[0]).name in ("curl", "curl.exe"):
        words = words[1:]
    return words


def parse_curl(command: str) -> FetchOptions:
    """``command`` ("curl ..." as pasted, or its arguments) as ``FetchOptions``;
    ``InvalidRequest`` naming the flag it cannot take."""
    if command.lstrip().startswith('curl ^"'):  # DevTools' "Copy as cURL (cmd)"
        raise InvalidRequest(
            "this is a curl command for Windows cmd.exe (^ escapes)",
            hint='copy it with "Copy as cURL (bash)"',
        )
    cmd = _Command()
    words = _words(command)
    i = 0
    while i < len(words):
        word = words[i]
        i += 1
        if word == "--":  # the end of the options: the rest are URLs
            cmd.urls += words[i:]
            break
        if not word.startswith("-") or word == "-":
            cmd.urls.append(word)
            continue
        # A cluster of short flags: -sSL, -XPOST, -d@file.
        flags = [word] if word.startswith("--") else [f"-{c}" for c in word[1:]]
        for position, flag in enumerate(flags):
            if flag.startswith("--") and "=" in flag and flag.partition("=")[0] in VALUED:
                # Not curl's syntax; and what follows "=" may be a password.
                raise InvalidRequest(
                    f"curl takes {flag.partition('=')[0]} VALUE, not {flag.partition('=')[0]}=VALUE"
                )
            if flag in VALUED:
                attached = word[position + 2 :] if not word.startswith("--") else ""
                if attached:
                    value = attached
                elif i < len(words):
                    value, i = words[i], i + 1
                else:
                    raise InvalidRequest(f"curl option {flag} needs a value")
                cmd.valued(VALUED[flag], value, flag)
                break
            if flag in SWITCHES:
                setattr(cmd, SWITCHES[flag], True)
            elif flag.startswith("--no-") and f"--{flag[5:]}" in SWITCHES:
                setattr(cmd, SWITCHES[f"--{flag[5:]}"], False)
            elif flag not in HARMLESS:
                raise InvalidRequest(  # not the whole word: -Zuhunter22 holds a password
                    f"curl option {flag} is not supported"
                    + (
                        f" (in a cluster of flags, {word[: position + 2]}...)"
                        if flag != word
                        else ""
                    ),
                    hint="nbfetch reads -X -H -d --data-raw --data-binary --data-urlencode --json"
                    " -F -u -b -A -e -L -k --compressed -I -G -m --connect-timeout -x --url -o -i",
                )
    return _options(cmd)


def _options(cmd: _Command) -> FetchOptions:
    if len(cmd.urls) != 1:
        raise InvalidRequest(
            "the curl command has no URL" if not cmd.urls else "give one URL per curl command"
        )
    url = cmd.urls[0]
    if not cmd.globoff:  # curl's glob parser takes \[ \] \{ \} as the characters
        url = re.sub(r"\\([][{}])", r"\1", url)
    body_kinds = [
        kind for kind, given in (("data", cmd.data is not None), ("-F", cmd.form)) if given
    ]
    if len(body_kinds) > 1 or (cmd.head and body_kinds and not (cmd.get and not cmd.form)):
        raise InvalidRequest("you can only select one HTTP request method (curl: -d, -F and -I)")
    if cmd.get and cmd.form:
        raise InvalidRequest("-G moves -d data into the query; it does not go with -F")
    kwargs: dict = dict(cmd.fetch)
    if cmd.user is not None:
        user, colon, password = cmd.user.partition(":")
        if not colon:
            raise InvalidRequest(
                "-u USER without ':PASSWORD': curl would ask for the password",
                hint="give -u user:password (an empty password: -u user:)",
            )
        kwargs["auth"] = DigestAuth(user, password) if cmd.digest else (user, password)
    if cmd.bearer is not None:
        cmd.generated("Authorization", f"Bearer {cmd.bearer}")
    if cmd.cookies:
        cmd.generated("Cookie", ";".join(cmd.cookies))
    if cmd.user_agent is not None:
        cmd.generated("User-Agent", cmd.user_agent)
    if cmd.referer:
        cmd.generated("Referer", cmd.referer)
    if cmd.json:  # --json is -H 'Content-Type: ...' -H 'Accept: ...', with -G too
        cmd.generated("Content-Type", "application/json")
        cmd.generated("Accept", "application/json")
    method = "HEAD" if cmd.head else "GET"
    if cmd.data is not None and cmd.get:
        url = with_query(url, cmd.data.decode("utf-8", "surrogateescape"))
    elif cmd.data is not None:
        method = "POST"
        kwargs["body"] = cmd.data
        if not cmd.json:
            cmd.generated("Content-Type", "application/x-www-form-urlencoded")
    elif cmd.form:
        method = "POST"
        kwargs["data"], kwargs["files"] = _multipart(cmd.form)
    if cmd.headers:
        # curl sends the bytes of its argument: a value that is not ASCII as bytes
        # (nbfetch would send a str as ISO-8859-1, or fail on a byte $'\xe9' gave).
        kwargs["headers"] = [(n, v if v.isascii() else _bytes(v)) for n, v in cmd.headers]
    kwargs["follow_redirects"] = cmd.location
    if cmd.location:
        kwargs.setdefault("max_redirects", CURL_MAX_REDIRS)
    kwargs["decompress"] = cmd.compressed
    if cmd.method is not None:
        method = cmd.method
        if "body" in kwargs and method.upper() in ("GET", "HEAD"):
            kwargs["allow_body"] = True  # curl -X GET -d ... sends the body
    return FetchOptions(
        url=url,
        method=method.upper(),
        fetch_kwargs=kwargs,
        client_kwargs={"verify": False} if cmd.insecure else {},
        include=cmd.include,
        output=cmd.output,
    )


def with_query(url: str, data: str) -> str:
    """-G: the data after the query (before a fragment, which is never sent)."""
    base, hash_, fragment = url.partition("#")
    return f"{base}{'&' if '?' in base else '?'}{data}{hash_}{fragment}"
