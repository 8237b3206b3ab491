"""The ``.http`` format as VS Code REST Client, JetBrains HTTP Client and
httpyac write it, parsed into ``HttpFile`` (templates not yet expanded; no file
a request names is read here: that happens when the request runs).

The rules follow REST Client's ``src/utils/httpRequestParser.ts`` (request
line, query continuation lines, ``< file`` bodies) and README (``###``,
comments, ``@name = value``, ``# @name``, ``# @no-redirect``,
``# @no-cookie-jar``), with httpyac's ``??`` assertion lines and ``# @timeout``.
JetBrains' scripts (``> {% %}``, ``< {% %}``) and response references
(``<> ./x.json``) are parsed and skipped: ``block.settings["ignored"]`` says so.
"""

from __future__ import annotations

import itertools
import os
import re
from bisect import bisect
from pathlib import Path

from ..core.errors import InvalidRequest
from ..core.redact import MIN_SECRET_LENGTH
from .environments import read_text_file
from .jsonpath import parse_path
from .model import Assertion, HttpFile, HttpRequestBlock

#: A .http file larger than this is refused: it is written by hand.
MAX_HTTP_FILE = 4 * 1024 * 1024
#: At most this many requests ("###" separators) in a file or cell: each is a
#: Python step of the parse on the event loop (4 MiB of "###" took 5.6 s).
MAX_REQUESTS = 10_000

# REST Client's request line: a known method (any case), else the line is the URL
# (GET); a trailing " HTTP/1.1" is dropped. WebDAV methods as its newer releases.
_METHODS = [
    *("GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "CONNECT", "TRACE"),
    *("LOCK", "UNLOCK", "PROPFIND", "PROPPATCH", "COPY", "MOVE", "MKCOL", "MKCALENDAR"),
    *("ACL", "SEARCH"),
]
_METHOD = re.compile(rf"^({'|'.join(_METHODS)})\s+", re.IGNORECASE)
# An all-capitals token with a URL after it is a method too (RFC 9110 section 9.1:
# methods are extensible; "QUERY", "PURGE").
_OTHER_METHOD = re.compile(r"^([A-Z][A-Z0-9_-]*)\s+(?=\S)")
# REST Client: "lines immediately after the request line which start with ? or &";
# never "??", which is an assertion (httpyac), even with no header before it.
_QUERY_LINE = re.compile(r"^\s*(?:&|\?(?!\?))")
_INDENTED = re.compile(r"^[ \t]+\S")
# REST Client's inputFileSyntax: "< path", "<@ path", "<@latin1 path".
# The line regexes below match stripped lines and end in a greedy ".*": a lazy
# ".*?" before "\s*$" rescans a run of inner spaces from each of its characters
# (20,000 spaces took seconds).
_INPUT_FILE = re.compile(r"^<(?:(?P<templates>@)(?P<encoding>\w+)?)?\s+(?P<path>.+)")
# REST Client's file variable: "@name = value" on a whole line.
_VARIABLE = re.compile(r"^@(?P<name>[^\s=]+)\s*=\s*(?P<value>.*)")
# "# @name login", "// @no-redirect", "# @timeout 5 s", "# @name=login" (JetBrains);
# REST Client's RequestVariableDefinitionRegex takes "##" and "///" too.
_META = re.compile(r"^(?:#+|//+)\s*@(?P<key>[\w.-]+)(?:\s*=\s*|\s+|$)(?P<value>.*)")
_REQUEST_NAME = re.compile(r"^[A-Za-z_][\w-]*$")
_SPECIAL = re.compile(r"^[ \t]*(?:\?\?|>|<>|#|//|HTTP/)", re.MULTILINE)
_SEPARATOR = re.compile(r"^###", re.MULTILINE)
_RESPONSE_LINE = re.compile(r"^HTTP/[\d.]+(\s|$)")
# RFC 9110 section 5.1: a field name is a token; here {{templates}} may make it.
_HEADER = re.compile(
    r"^(?P<name>(?:[!#$%&'*+.^_`|~0-9A-Za-z-]|\{\{[^}]*\}\})+)\s*:\s*(?P<value>.*)"
)


def _without_version(url: str) -> str:
    r"""``url`` without a trailing `` HTTP/1.1`` (split in Python: a regex
    ``\s+HTTP/\S*$`` searched from each space of a long run is quadratic)."""
    head, *last = url.rsplit(None, 1) or [""]
    return head if last and last[0][:5].upper() == "HTTP/" else url


def _unescape(value: str) -> str:
    """REST Client's escapes in a file variable's value: ``\\n``, ``\\r``, ``\\t``;
    a backslash before any other character keeps that character."""
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "r": "\r", "t": "\t"}.get(m[1], m[1]), value)


def _is_comment(line: str) -> bool:
    return line.lstrip().startswith(("#", "//"))


def _line_numbers(pattern: re.Pattern, text: str):
    """The 0-based line of each match of ``pattern`` in ``text``, in order."""
    line, offset = 0, 0
    for m in pattern.finditer(text):
        line += text.count("\n", offset, m.start())
        offset = m.start()
        yield line


class _Parser:
    def __init__(self, text: str, source: str, directory: str | None, confined: bool):
        # REST Client's LineSplitterRegex, /\r?\n/: not str.splitlines, which also
        # breaks at U+2028, form feeds and lone CRs that a body may hold.
        text = text.removeprefix("\ufeff").replace("\r\n", "\n")
        self.lines = text.split("\n")
        self.source = source
        self.file = HttpFile(source=source, directory=directory, confined=confined)
        self.separators = list(itertools.islice(_line_numbers(_SEPARATOR, text), MAX_REQUESTS + 1))
        if len(self.separators) > MAX_REQUESTS:
            raise self.error(
                self.separators[-1] + 1,
                f"more than {MAX_REQUESTS:,} '###' separators; a file may have {MAX_REQUESTS:,}"
                " requests",
                hint="split it into several files",
            )
        # The lines a body loop must look at one by one (comments, "??", ">",
        # "<>", "HTTP/") and the "###" separators, each found in one pass over
        # the text (a body of megabytes is not a Python loop over its lines).
        self.specials = [*_line_numbers(_SPECIAL, text), len(self.lines)]  # the end: a sentinel
        self.special = set(self.specials)

    def error(self, line: int, message: str, hint: str | None = None) -> InvalidRequest:
        return InvalidRequest(f"{self.source} line {line}: {message}", hint=hint)

    def parse(self) -> HttpFile:
        # "###" (three or more "#") starts a request; the text after it is its title.
        start, title = 0, None
        for i in self.separators:
            self.block(start, i, title)
            start, title = i + 1, self.lines[i].lstrip("#").strip() or None
        self.block(start, len(self.lines), title)
        return self.file

    def block(self, start: int, end: int, title: str | None) -> None:
        block = HttpRequestBlock(
            method="", url="", title=title, source=self.source, confined=self.file.confined
        )
        ignored: list[str] = []
        i = start
        # Before the request line: comments, settings, variables, pre-request scripts.
        while i < end:
            line, number = self.lines[i], i + 1
            stripped = line.strip()
            i += 1
            if not stripped:
                continue
            meta = _META.match(stripped)
            if meta:
                self.setting(block, meta.group("key"), meta.group("value"), number)
            elif _is_comment(stripped):
                continue
            elif stripped.startswith("@"):
                var = _VARIABLE.match(stripped)
                if var is None:
                    raise self.error(number, f"{_first(stripped)!r} must look like '@name = value'")
                block.variables[var.group("name")] = _unescape(var.group("value"))
            elif stripped.startswith("< {%") or stripped == "{{" or stripped.startswith("{{@"):
                # JetBrains' "< {% script %}", httpyac's "{{ script }}" block
                closing = "%}" if stripped.startswith("<") else "}}"
                i = self.skip_script(i - 1, end, closing)
                ignored.append(f"the pre-request script at line {number}")
            elif stripped.startswith("<") and _INPUT_FILE.match(stripped):
                ignored.append(f"the pre-request script {stripped[1:].strip()} (line {number})")
            elif stripped.startswith("??"):
                raise self.error(number, "a ?? assertion must follow a request")
            else:
                i = self.request(block, i - 1, end, ignored)
                break
        # REST Client (README, "File Variables"): "no matter where you define the
        # file variables in the http file, they can be referenced in any requests
        # of whole file"; a later definition replaces an earlier one. A block's own
        # stay on top for its request (JetBrains and httpyac define them per request).
        self.file.variables.update(block.variables)
        if not block.url:
            if block.name or block.settings:
                raise self.error(start + 1, "settings (# @name, # @...) but no request after them")
            return
        if ignored:
            block.settings["ignored"] = "not run: " + "; ".join(ignored)
        self.file.requests.append(block)

    def skip_script(self, i: int, end: int, closing: str) -> int:
        """The index after the line that closes the script starting at line ``i``."""
        first = self.lines[i].strip()
        if first.endswith(closing) and len(first) > 4:  # "> {% client.log(1) %}"
            return i + 1
        for j in range(i + 1, end):
            if self.lines[j].strip().endswith(closing):
                return j + 1
        raise self.error(i + 1, f"the script starting here has no closing {closing!r}")

    def setting(self, block: HttpRequestBlock, key: str, value: str, number: int) -> None:
        if key == "name":
            if not _REQUEST_NAME.match(value):
                raise self.error(
                    number,
                    f"request name {value!r} must be a letter or _ then letters, digits, _ or -",
                )
            block.name = value
        elif key in ("timeout", "connection-timeout") and "{{" not in value:
            parse_duration(value, f"{self.source} line {number} (# @{key})")  # fail early
            block.settings[key] = value
        else:
            # Others ("no-redirect", "no-cookie-jar", httpyac's "ref", REST Client's
            # "prompt", ...): kept as written, a repeated one ("# @prompt a", "# @prompt
            # b") line by line; the runner acts on those it knows.
            before = block.settings.get(key)
            block.settings[key] = value if before is None else f"{before}\n{value}"

    def request(self, block: HttpRequestBlock, i: int, end: int, ignored: list[str]) -> int:
        number = i + 1
        first = self.lines[i].strip()
        method, url = "GET", first
        m = _METHOD.match(first) or _OTHER_METHOD.match(first)
        if m:
            method, url = m.group(1).upper(), first[m.end() :]
        block.method, block.line = method, number
        i += 1
        # REST Client's query lines ("?a=1", "&b=2" after the request line) and
        # JetBrains' request target continued on indented lines (spec 3.2.1.3,
        # 4.2.1: each line trimmed, joined with nothing between); an indented
        # "Name: value" is still a header, as REST Client reads it. A check, a
        # comment or setting, a handler or a body file is never part of the URL,
        # indented or not: joined to it, "  ?? status == 200" would never run.
        while i < end and (
            _QUERY_LINE.match(self.lines[i])
            or (_INDENTED.match(self.lines[i]) and not _HEADER.match(self.lines[i].strip()))
        ):
            if self.lines[i].lstrip().startswith(("??", "#", "//", ">", "<")):
                break
            url += self.lines[i].strip()
            i += 1
        block.url = _without_version(url.strip())
        # Headers, up to the blank line.
        while i < end and self.lines[i].strip():
            line, number = self.lines[i].strip(), i + 1
            if line.startswith(("??", ">", "<>")):
                break
            i += 1
            if _is_comment(line):
                continue
            if block.headers and _INDENTED.match(self.lines[i - 1]):
                # JetBrains' spec 3.2.2: a field value continues on indented lines;
                # joined by one space, as RFC 9112 section 5.2 unfolds obs-fold.
                name, value = block.headers[-1]
                block.headers[-1] = (name, f"{value} {line}")
                continue
            header = _HEADER.match(line)
            if header is None:
                raise self.error(
                    number,
                    # Its first word only: the rest may be the credential itself
                    # ("Authorization Bearer s3cr3t" with the colon forgotten).
                    f"expected a header 'Name: value' after the request line, got {_first(line)!r}",
                    hint="a body goes after one blank line",
                )
            block.headers.append((header.group("name"), header.group("value")))
            block.header_lines.append(number)
        # The body, then what may follow it: ?? assertions, response handlers and
        # response references (JetBrains' spec: a line starting with "> " or "<> "
        # ends the body). Comment lines are dropped, in the body too, as REST Client
        # does (selector.ts filters every "#" or "//" line); a pasted response's
        # status line ("HTTP/1.1 200 OK") ends the request there.
        body: list[str] = []
        body_start = 0
        closed = False  # after an assertion or a handler: no more body
        while i < end:
            if i not in self.special:
                # Lines that cannot be any of those, taken in one slice: a body of
                # megabytes is not a Python loop over its lines.
                stop = min(self.specials[bisect(self.specials, i)], end)
                chunk = self.lines[i:stop]
                first = next((k for k, text in enumerate(chunk) if text.strip()), len(chunk))
                if closed and first < len(chunk):
                    raise self.error(
                        i + first + 1,
                        f"{_first(chunk[first].strip())!r} after the assertions or response handlers",
                    )
                if not body and first < len(chunk):  # the blank line(s) before it are not in it
                    body_start, chunk = i + first + 1, chunk[first:]
                if body or body_start:
                    body.extend(chunk)
                i = stop
                continue
            line, number = self.lines[i], i + 1
            stripped = line.strip()
            i += 1
            if stripped.startswith("??"):
                block.assertions.append(parse_assertion(stripped[2:], number, self.source))
                closed = True
            elif stripped.startswith("> {%"):
                i = self.skip_script(i - 1, end, "%}")
                ignored.append(f"the response handler at line {number}")
                closed = True
            elif stripped.startswith(("> ", "<> ")):
                what = "response reference" if stripped.startswith("<>") else "response handler"
                ignored.append(f"the {what} {stripped.split(None, 1)[1]} (line {number})")
                closed = True
            elif _is_comment(stripped) or (closed and not stripped):
                continue
            elif closed:
                raise self.error(
                    number, f"{_first(stripped)!r} after the assertions or response handlers"
                )
            elif _RESPONSE_LINE.match(stripped):
                break
            elif body or stripped:  # the blank line(s) before the body are not in it
                body_start = body_start or number
                body.append(line)
        while body and not body[-1].strip():
            body.pop()
        if not body:
            return end
        block.body_line = body_start
        include = _INPUT_FILE.match(body[0].strip()) if len(body) == 1 else None
        if include:
            block.body_file = include.group("path")
            block.body_file_templates = bool(include.group("templates"))
            block.body_file_encoding = include.group("encoding")
        else:
            block.body = "\n".join(body)
        return end


_NAME = re.compile(r"[^\s:=&]*")


def _first(line: str) -> str:
    """The first word of a line for a message, "…" for the rest: the rest may be
    a secret ("Authorization Bearer s3cr3t" with the colon forgotten, "@token
    s3cr3t" with the "=", "password=s3cr3t" in a body)."""
    word = _NAME.match(line).group()
    return word if word == line else word + "…"


def parse_duration(text: str, where: str) -> float:
    """``"5"`` / ``"5 s"`` / ``"500 ms"`` / ``"2 m"`` as seconds (plain numbers are
    seconds, as in JetBrains' ``# @timeout``)."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m)?\s*", text)
    if m is None or float(m.group(1)) <= 0:
        raise InvalidRequest(f"{where}: {text!r} is not a duration like 5, 5 s, 500 ms or 2 m")
    return float(m.group(1)) * {"ms": 0.001, "s": 1.0, "m": 60.0, None: 1.0}[m.group(2)]


def parse_http(
    text: str, source: str = "cell", directory: str | None = None, *, confined: bool = False
) -> HttpFile:
    """Parse ``.http`` text; ``InvalidRequest`` naming ``source`` and the line on
    a syntax error. Nothing is read or expanded yet. ``confined``: its body files
    must be inside ``directory`` (text someone else wrote; ``read_http_file``)."""
    return _Parser(text, source, directory, confined).parse()


def read_http_file(path: str | os.PathLike) -> HttpFile:
    """Parse the UTF-8 file ``path``; relative paths in it resolve from its folder."""
    file = Path(path).expanduser()
    text = read_text_file(file, MAX_HTTP_FILE, "a .http file")
    folder = str(file.resolve().parent)
    return parse_http(text, source=str(path), directory=folder, confined=True)


# -- ?? assertions -------------------------------------------------------------------
#: Operators that take no expected value.
UNARY_OPERATORS = frozenset(
    {"exists", "!exists", "isNumber", "isString", "isBoolean", "isArray", "isTrue", "isFalse"}
)
#: Operators that compare with an expected value.
BINARY_OPERATORS = frozenset(
    {"==", "!=", "<", "<=", ">", ">=", "contains", "!contains", "startsWith", "endsWith", "matches"}
)
# httpyac's other spellings of the same operators (src/plugins/assert/predicates:
# IncludesPredicate is "contains"/"includes", EqualsPredicate "=="/"==="/"equals").
_ALIASES = {"includes": "contains", "!includes": "!contains", "===": "==", "equals": "=="}
_ALIASES |= {"!==": "!="}
_OPERATORS = {op.lower(): op for op in UNARY_OPERATORS | BINARY_OPERATORS} | _ALIASES
_SUBJECTS = ("status", "header", "body", "duration", "py")
GRAMMAR = (
    "?? status == 200 | ?? header NAME OP [VALUE] | ?? body [$.json.path] OP [VALUE]"
    " | ?? duration < 500ms | ?? py EXPRESSION"
)


_SYMBOL_OPERATOR = re.compile(r"===|!==|==|!=|<=|>=|<|>")


def _split_operator(text: str) -> tuple[str, str]:
    """The operator at the start of ``text`` and what follows it (``==200`` too)."""
    m = _SYMBOL_OPERATOR.match(text)
    if m:
        return m.group(), text[m.end() :]
    word, tail = _first_word(text)
    return word, tail


def _first_word(text: str) -> tuple[str, str]:
    """The first whitespace-separated word of ``text`` (spaces or tabs) and the rest."""
    word, *rest = text.split(None, 1) or [""]
    return word, rest[0] if rest else ""


def _jsonpath_token(text: str) -> int:
    """The length of the JSONPath at the start of ``text``: up to the first space
    outside brackets and quotes (``$['a b'].c``)."""
    depth, quote = 0, None
    for i, c in enumerate(text):
        if quote:
            quote = None if c == quote else quote
        elif c in "'\"":
            quote = c
        elif c == "[":
            depth += 1
        elif c == "]":
            depth -= 1
        elif c.isspace() and depth <= 0:
            return i
    return len(text)


def _short(word: str) -> str:
    """A word for a message, quoted when too short to be a secret (one the
    scrubber would mask is at least MIN_SECRET_LENGTH long)."""
    return repr(word) if len(word) < MIN_SECRET_LENGTH else f"the word of {len(word)} characters"


def parse_assertion(text: str, line: int, source: str = "cell") -> Assertion:
    """One assertion, ``text`` being what follows ``??``; ``InvalidRequest``
    naming the line and the grammar when it is not one."""
    whole = f"?? {text.strip()}".rstrip()
    m = re.match(r"(\w*)\s*(.*)", text.strip())
    subject, rest = m.group(1).lower(), m.group(2)
    # Messages quote the subject only: the rest may be a secret the check compares.
    quoted = f"?? {m.group(1)}" + ("…" if rest else "")

    def bad(reason: str) -> InvalidRequest:
        return InvalidRequest(f"{source} line {line}: {quoted!r}: {reason}", hint=GRAMMAR)

    if subject == "js":
        raise bad("?? js is httpyac's JavaScript; nbfetch runs Python: ?? py EXPRESSION")
    if subject not in _SUBJECTS:
        raise bad(f"the subject must be one of {', '.join(_SUBJECTS)}")
    if subject == "py":
        if not rest:
            raise bad("?? py needs a Python expression")
        try:
            compile(rest, f"{source} line {line}", "eval")
        except SyntaxError as exc:
            raise bad(f"not a Python expression ({exc.msg})") from None
        return Assertion("py", rest, None, None, whole, line)
    argument = None
    if subject == "header":
        argument, rest = _first_word(rest)
        if not argument or _SYMBOL_OPERATOR.match(argument):
            raise bad("?? header needs a header name")
    elif subject == "body" and _split_operator(rest)[0].lower() not in _OPERATORS:
        # A JSONPath; httpyac also takes a bare property path ("?? body foo == bar").
        end = _jsonpath_token(rest)
        argument, rest = rest[:end], rest[end:]
        if not argument.startswith("$"):
            argument = "$." + argument
        try:
            parse_path(argument)  # its syntax checked now rather than when it runs
        except InvalidRequest as exc:
            raise bad(exc.message) from None
    word, expected = _split_operator(rest.strip())
    operator = _OPERATORS.get(word.lower())
    if operator is None:
        raise bad(f"{_short(word)} is not an operator" if word else "no operator")
    expected = expected.strip()
    if operator in UNARY_OPERATORS:
        if expected:
            raise bad(f"{operator} takes no value")
        return Assertion(subject, argument, operator, None, whole, line)
    if not expected:
        raise bad(f"{operator} needs a value to compare with")
    if subject == "duration" and re.fullmatch(r"\d+(?:\.\d+)?\s*(ms|s)?", expected) is None:
        raise bad("a duration is a number of ms or s (500ms, 1.5s)")
    return Assertion(subject, argument, operator, expected, whole, line)
