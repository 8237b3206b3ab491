"""``{{name}}`` templates: what they look up, in which order, and what they mean.

A name is looked up in the request block's ``@vars``, the file's ``@vars``, the
environment, then the notebook's variables (a dotted ``{{obj.attr}}`` path, or
``{{cfg.key}}`` in a dict). ``{{login.response.body.$.token}}`` is a request
reference (VS Code REST Client's "request variables", README "Request
Variables"): the result named ``login`` by ``# @name login``, from this run's
``results`` first, then from a notebook variable with a ``.response``.
``{{$uuid}}`` and the other ``$`` names are REST Client's system variables
(``src/utils/httpVariableProviders/systemVariableProvider.ts``).

Every value that came from a secret place (the private environment file, a
``.env``, the process environment) or under a secret name (``@password``,
``$.access_token``) is added to ``scope.secrets``, so every display scrubs it.
"""

from __future__ import annotations

import calendar
import json
import os
import random
import re
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ..client.response import Response
from ..core.errors import InvalidRequest
from ..core.redact import Secrets, is_secret_name
from .environments import DOTENV_FILE, Environment
from .jsonpath import MAX_JSON_DOCUMENT, jsonpath_one
from .model import HttpRequestBlock

# REST Client's variable reference: "{{name}}", spaces inside allowed (stripped
# in Python). No brace or newline inside: each "{{" then fails at the next brace,
# so a line of thousands of "{{" without "}}" is linear work, not quadratic (a
# lazy ".+?" rescanned the rest of the line from each "{{").
# httpyac's escape (src/plugins/core/replacer/escapeVariableReplacer.ts):
# "\{\{name\}\}" is sent as the text "{{name}}", never expanded.
TEMPLATE = re.compile(r"\{\{(?P<name>[^{}\n]*)\}\}|\\\{\\\{(?P<escaped>[^{}\n]*)\\\}\\\}")
#: A value may name another variable ("@url = {{host}}/api"); this deep at most.
MAX_DEPTH = 16
#: Values longer than this are not put into a request (a runaway expansion).
MAX_VALUE = 1024 * 1024

_MISSING = object()
# The kernel's own names, never a template's value: a .http file someone else
# wrote must not post your input history ({{In}}, {{_ih}}, {{_i3}}), outputs
# ({{Out}}, {{_}}, {{__}}, {{_oh}}) or reach the interpreter ({{__builtins__}},
# {{get_ipython}}). A notebook lookup takes names the user bound, and never one
# starting with "_" (as for the attributes after it).
_KERNEL_NAMES = frozenset({"In", "Out", "exit", "quit", "get_ipython"})
_HINT = (
    "define it with '@{name} = value' in the file or cell, in the environment"
    " (http-client.env.json), or as a notebook variable"
)
_REFERENCE = re.compile(
    r"^(?P<name>[A-Za-z_][\w-]*)\.(?P<part>request|response)\.(?P<kind>body|headers)"
    r"(?:\.(?P<rest>.+))?$"
)


class Scope:
    """Where ``{{templates}}`` find their values, for one file or cell run.

    ``secrets`` collects every secret value expanded so far (shared with the
    scopes ``for_request`` makes); ``results`` maps request names to results
    (objects with ``.response`` and ``.error``), filled by the runner.
    """

    def __init__(
        self,
        *,
        file_variables: dict[str, str] | None = None,
        environment: Environment | None = None,
        namespace: dict[str, Any] | None = None,
        results: dict[str, object] | None = None,
        directory: str | None = None,
    ):
        self.file_variables = dict(file_variables or {})
        self.block_variables: dict[str, str] = {}
        self.prompts: set[str] = set()  # REST Client's "# @prompt NAME" of the request
        self.environment = environment if environment is not None else Environment()
        self.namespace = namespace if namespace is not None else {}
        self.results = results if results is not None else {}
        self.directory = directory
        self.secrets = Secrets()
        # Variables already expanded for one request (for_request): "@id =
        # {{$uuid}}" is one id in its URL and body, as REST Client expands a
        # request's text once. None here: each expand() starts afresh.
        self._memo: dict | None = None
        self.block: HttpRequestBlock | None = None  # the request of a for_request scope
        for name in self.environment.secret_names:
            for values in (self.environment.values, self.environment.shared):
                self._secret(values.get(name, ""))

    def __repr__(self) -> str:  # names, never values
        names = sorted({*self.block_variables, *self.file_variables, *self.environment.values})
        return f"Scope(variables={names}, results={sorted(self.results)})"

    def for_request(self, block: HttpRequestBlock) -> Scope:
        """This scope with ``block``'s own ``@vars`` on top (secrets, results,
        environment and namespace shared). Use one for all of a request: its
        options (``to_options``) and its checks see the same values."""
        child = object.__new__(Scope)
        child.__dict__.update(self.__dict__)
        child.block_variables = {**self.block_variables, **block.variables}
        child.block, child._memo = block, {}
        prompts = block.settings.get("prompt", "").splitlines()
        child.prompts = {line.split()[0] for line in prompts if line.strip()}
        return child

    def _secret(self, value: str) -> None:
        self.secrets.add(value)

    # -- expansion -------------------------------------------------------------
    def expand(
        self, text: str, where: str | Callable[[int], str], *, limit: int = MAX_VALUE
    ) -> str:
        """``text`` with every ``{{template}}`` replaced; ``InvalidRequest``
        naming the template and ``where`` ("api.http line 12 (URL)") when one
        cannot be, or when the result would pass ``limit`` characters. Nothing
        is sent before every template is expanded. ``where`` may be a function
        of the template's line in ``text`` (0 for the first): a body's error
        names the line the template is on."""
        memo = {} if self._memo is None else self._memo
        return self._expand(text, where, (), memo, limit)

    def _expand(self, text: str, where, chain: tuple, memo: dict, limit=MAX_VALUE) -> str:
        """``chain``: the (name, level) pairs being expanded, outermost first;
        ``memo``: the variables already expanded, (name, level) -> value, and
        the templates of the request (name -> value, not ``$`` ones, which differ
        each time), so that each is expanded once."""
        if "{{" not in text and "\\{\\{" not in text:
            return text
        parts, size, last, line, counted = [], 0, 0, 0, 0
        here = where
        for m in TEMPLATE.finditer(text):
            expression = (m["name"] or "").strip()
            if m["escaped"] is not None:
                value = "{{" + m["escaped"] + "}}"
            elif not expression:  # "{{}}" is text, as it was for REST Client's pattern
                continue
            else:
                if callable(where):  # counted on from the last template: linear in all
                    line, counted = line + text.count("\n", counted, m.start()), m.start()
                    here = where(line)
                value = self._template(expression, here, chain, memo)
            parts += (text[last : m.start()], value)
            size += m.start() - last + len(value)
            last = m.end()
            if size > limit:
                raise InvalidRequest(f"{here}: expands to over {limit:,} characters")
        parts.append(text[last:])
        return "".join(parts)

    def _template(self, expression: str, where: str, chain: tuple, memo: dict) -> str:
        if not chain and not expression.startswith("$") and expression in memo:
            return memo[expression]  # a name used again in the request (not $uuid)
        value = self._value(expression, where, chain, memo)
        if not chain and not expression.startswith("$"):
            memo[expression] = value
        return value

    def _value(self, expression: str, where: str, chain: tuple, memo: dict) -> str:
        if len(chain) >= MAX_DEPTH:
            raise InvalidRequest(
                f"{{{{{expression}}}}}: variables nest deeper than {MAX_DEPTH}, in {where}"
            )
        if expression.startswith("$"):
            return self._dynamic(expression, where, chain, memo)
        if expression.startswith("%"):
            # REST Client: "{{%name}}" percent-encodes the value (encodeURIComponent).
            value = self._value(expression[1:], where, chain, memo)
            encoded = quote(value, safe="-_.!~*'()")
            if encoded != value and self.secrets.scrub(value) != value:
                self._secret(encoded)  # a secret's encoded form is what is sent and shown
            return encoded
        # A value may name the variable it defines, which is then looked up below
        # its own level: "@baseUrl = {{baseUrl}}/v2" over the environment's.
        below = 1 + max((level for name, level in chain if name == expression), default=-1)
        levels = (self.block_variables, self.file_variables, self.environment.values)
        for level in range(below, len(levels)):
            if expression in levels[level]:
                key = (expression, level)
                if key not in memo:
                    memo[key] = self._expand(levels[level][expression], where, (*chain, key), memo)
                    if is_secret_name(expression) or expression in self.environment.secret_names:
                        self._secret(memo[key])
                return memo[key]
        reference = _REFERENCE.match(expression)
        if reference:
            return self._reference(expression, reference, where)
        first, *path = expression.split(".")
        value = self._notebook(first)
        if value is not _MISSING:
            return self._attributes(expression, value, path, where)
        if first in self.results:
            return self._attributes(expression, self.results[first], path, where)
        if below:
            # Each name once (a name may be defined at two levels, each expanded
            # in turn): "a -> b -> a", not "a -> b -> a -> b -> a".
            loop = " -> ".join([*dict.fromkeys(name for name, _ in chain), expression])
            raise InvalidRequest(f"{{{{{expression}}}}} refers to itself ({loop}), in {where}")
        if first in self.environment.objects:
            raise InvalidRequest(
                f"{{{{{expression}}}}}: {first} is an object or array in"
                f" {self.environment.objects[first]} (not a variable) (in {where})"
            )
        hint = _HINT.format(name=first)
        if first in self.namespace:
            hint = f"{first} is the kernel's own, not a notebook variable; {hint}"
        if first in self.prompts:
            hint = f"# @prompt {first}: nbfetch does not ask; {hint}"
        raise InvalidRequest(f"{{{{{expression}}}}} is not defined (in {where})", hint=hint)

    def _notebook(self, name: str) -> Any:
        """The notebook variable ``name``, or ``_MISSING`` (for the kernel's own)."""
        if name.startswith("_") or name in _KERNEL_NAMES:
            return _MISSING
        return self.namespace.get(name, _MISSING)

    def _attributes(self, expression: str, value: Any, path: list[str], where: str) -> str:
        """A notebook value down a dotted path: attributes, or keys of a mapping."""
        walked = [expression.split(".")[0]]
        for part in path:
            if isinstance(value, dict) and part in value:
                value = value[part]
            else:
                # No private or dunder attributes: a template is not a way into internals.
                try:
                    value = _MISSING if part.startswith("_") else getattr(value, part, _MISSING)
                except Exception as exc:  # a property that raises: the notebook's bug, one row
                    raise _raised(expression, f"{'.'.join(walked)}.{part}", exc, where) from None
                if value is _MISSING:
                    raise InvalidRequest(
                        f"{{{{{expression}}}}}: {'.'.join(walked)} has no {part!r} (in {where})"
                    )
            walked.append(part)
        try:
            text = value if isinstance(value, str) else _text(value)
        except Exception as exc:  # a __str__ that raises
            raise _raised(expression, f"str({'.'.join(walked)})", exc, where) from None
        if is_secret_name(walked[-1]):
            self._secret(text)
        return text

    # -- request references ----------------------------------------------------
    def _reference(self, expression: str, m: re.Match, where: str) -> str:
        """``{{login.response.body.$.token}}`` and its kin (REST Client's README,
        "Request Variables": ``{{requestName.(response|request).(body|headers)
        .(*|JSONPath|Header Name)}}``)."""
        name, part, kind, rest = m.group("name", "part", "kind", "rest")
        result = self.results.get(name)
        if result is None:
            result = self._notebook(name)
        try:  # a notebook value: its "response" may be a property that raises
            response = _MISSING if result is None else getattr(result, "response", _MISSING)
        except Exception as exc:
            raise _raised(expression, f"{name}.response", exc, where) from None
        if response is not None and not isinstance(response, Response):
            hint = "requests run in file order; a named request must run before one that uses it"
            raise InvalidRequest(
                f"{{{{{expression}}}}}: no request named {name!r} has run (in {where})", hint=hint
            )
        if response is None:
            error = getattr(result, "error", None)
            why = f": {self.secrets.scrub(str(error))}" if error is not None else ""
            raise InvalidRequest(
                f"{{{{{expression}}}}}: the request {name!r} failed{why} (in {where})"
            )
        message = response if part == "response" else response.request
        # A login that got a 401 has no token: say so rather than only "matched nothing".
        status = response.status_code
        got = f" (it got status {status})" if part == "response" and status >= 400 else ""
        if rest is None:
            raise InvalidRequest(
                f"{{{{{expression}}}}}: say which part: {name}.{part}.{kind}."
                + ("* or a JSONPath ($.x)" if kind == "body" else "Header-Name")
                + f" (in {where})"
            )
        if kind == "headers":
            value = message.headers.get(rest)
            if value is None:
                raise InvalidRequest(
                    f"{{{{{expression}}}}}: the {part} of {name!r} has no header {rest!r}{got}"
                    f" (in {where})"
                )
            self.secrets.add_headers([(rest, value)])
            return value
        body = message.body if part == "request" else response.body
        if not isinstance(body, bytes):
            raise InvalidRequest(
                f"{{{{{expression}}}}}: the {part} body of {name!r} was not kept (in {where})"
            )
        if rest == "*":
            return body.decode("utf-8", errors="replace")
        if not rest.startswith("$"):
            raise InvalidRequest(
                f"{{{{{expression}}}}}: {rest!r} is neither * nor a JSONPath ($.x)"
                f" (XPath is not supported) (in {where})"
            )
        if len(body) > MAX_JSON_DOCUMENT:
            raise InvalidRequest(
                f"{{{{{expression}}}}}: the {part} body of {name!r} is {len(body):,} bytes,"
                f" more than the {MAX_JSON_DOCUMENT // 1024} KiB read for a JSONPath (in {where})",
                hint="parsing it would hold the event loop; read it in Python instead",
            )
        try:
            document = json.loads(body)
        except (ValueError, RecursionError):  # not JSON; nested deeper than Python recurses
            raise InvalidRequest(
                f"{{{{{expression}}}}}: the {part} body of {name!r} is not JSON{got} (in {where})"
            ) from None
        try:
            value = jsonpath_one(document, rest)
        except LookupError:
            raise InvalidRequest(
                f"{{{{{expression}}}}}: {rest} matched nothing in the {part} body of {name!r}"
                f"{got} (in {where})"
            ) from None
        except InvalidRequest as exc:  # the path's syntax
            raise InvalidRequest(f"{{{{{expression}}}}}: {exc.message} (in {where})") from None
        text = _text(value)
        last = re.findall(r"[\w-]+", rest)
        if last and is_secret_name(last[-1]):  # "$.access_token"
            self._secret(text)
        return text

    # -- dynamic variables -----------------------------------------------------
    def _dynamic(self, expression: str, where: str, chain: tuple, memo: dict) -> str:
        word, _, args = expression.partition(" ")
        args = args.strip()
        handler = _DYNAMIC.get(word)
        if handler is None:
            raise InvalidRequest(
                f"{{{{{expression}}}}} is not a dynamic variable nbfetch knows (in {where})",
                hint="known: " + ", ".join(sorted(_DYNAMIC)),
            )
        return handler(self, expression, args, where, (chain, memo))

    def _indirect(self, name: str, where: str, context: tuple) -> str:
        """``%NAME`` (REST Client): the value of the variable NAME is the name."""
        if name.startswith("%"):
            return self._value(name[1:], where, *context)
        return name

    def _shared(self, expression, args, where, context) -> str:
        """``{{$shared NAME}}`` (REST Client): NAME of the ``$shared`` environment,
        for an environment that overrides it."""
        shared = self.environment.shared
        if args not in shared:
            raise InvalidRequest(
                f"{{{{{expression}}}}}: {args!r} is not in the $shared environment (in {where})"
            )
        chain, memo = context
        value = self._expand(shared[args], where, (*chain, (expression, -1)), memo)
        if args in self.environment.secret_names:
            self._secret(value)
        return value

    def _process_env(self, expression, args, where, context) -> str:
        m = re.fullmatch(r"(%?[\w.-]+)", args)
        if m is None:
            raise InvalidRequest(
                f"{{{{{expression}}}}}: write {{{{$processEnv NAME}}}} (in {where})"
            )
        name = self._indirect(m.group(1), where, context)
        value = os.environ.get(name)
        if value is None:
            raise InvalidRequest(
                f"{{{{{expression}}}}}: the environment variable {name!r} is not set (in {where})"
            )
        self._secret(value)
        return value

    def _dotenv(self, expression, args, where, context) -> str:
        m = re.fullmatch(r"(%?[\w.-]+)", args)
        if m is None:
            raise InvalidRequest(f"{{{{{expression}}}}}: write {{{{$dotenv NAME}}}} (in {where})")
        name = self._indirect(m.group(1), where, context)
        env = self.environment
        if env.dotenv_path is None:
            beside = Path(self.directory or ".", DOTENV_FILE)
            # load_environment skips a .env that is no regular file (a FIFO would
            # block the read): "there is no .env" would send the user looking.
            raise InvalidRequest(
                f"{{{{{expression}}}}}: {beside.absolute()} is not a regular file"
                f" (a FIFO or a device?) (in {where})"
                if beside.exists() and not beside.is_file()
                else f"{{{{{expression}}}}}: there is no .env file beside the .http file (in {where})"
            )
        if name not in env.dotenv:
            raise InvalidRequest(
                f"{{{{{expression}}}}}: {name!r} is not in {env.dotenv_path} (in {where})"
            )
        value = env.dotenv[name]
        self._secret(value)
        return value


def _raised(expression: str, what: str, exc: Exception, where: str) -> InvalidRequest:
    """A notebook value that raised as a template read it: an error of this
    request (a failed row), not a traceback out of the run."""
    why = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    if len(why) > 200:
        why = why[:200] + "…"
    return InvalidRequest(f"{{{{{expression}}}}}: {what} raised {why} (in {where})")


def _text(value: Any) -> str:
    """A value as a template puts it in: strings as they are, the rest as JSON
    (REST Client stringifies a JSONPath result that is an object), else ``str``."""
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        return str(value)


# -- REST Client's system variables ------------------------------------------------
_UNITS = "y|Q|M|w|d|h|m|s|ms"  # moment.js's duration keys, as REST Client takes them
_OFFSET = rf"(?:\s+(-?\d{{1,18}})\s+({_UNITS}))?"


def _add_months(moment: datetime, months: int) -> datetime:
    """Calendar months, the day clamped to the month's last (moment.js's ``add``)."""
    total = moment.month - 1 + months
    year, month = moment.year + total // 12, total % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def _shifted(moment: datetime, amount: str | None, unit: str | None, expression, where):
    if amount is None:
        return moment
    n = int(amount)
    try:
        if unit in ("y", "Q", "M"):
            return _add_months(moment, n * {"y": 12, "Q": 3, "M": 1}[unit])
        seconds = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1, "ms": 0.001}[unit]
        return moment + timedelta(seconds=n * seconds)
    except (OverflowError, ValueError):  # beyond the years 1 to 9999
        raise InvalidRequest(
            f"{{{{{expression}}}}}: the offset {amount} {unit} is out of range (in {where})"
        ) from None


def _timestamp(scope, expression, args, where, context) -> str:
    m = re.fullmatch(rf"(?:(-?\d{{1,18}})\s+({_UNITS}))?", args)
    if m is None:
        raise InvalidRequest(
            f"{{{{{expression}}}}}: write {{{{$timestamp}}}} or {{{{$timestamp -1 d}}}}"
            f" (units {_UNITS.replace('|', ' ')}) (in {where})"
        )
    moment = _shifted(datetime.now(timezone.utc), *m.groups(), expression, where)
    return str(int(moment.timestamp()))


_MOMENT_TOKENS = re.compile(
    r"\[[^\]]*\]|YYYY|YY|Q|MMMM|MMM|MM|M|DDDD|DDD|Do|DD|D|dddd|ddd|d|HH|H|hh|h|mm|m|ss|s"
    r"|SSS|SS|S|A|a|ZZ|Z|X|x"
)


def _moment_format(moment: datetime, fmt: str) -> str:
    """moment.js's ``format`` for its common tokens (REST Client formats
    ``{{$datetime "DD-MM-YYYY"}}`` with moment.js)."""

    def token(m: re.Match) -> str:
        t = m.group()
        if t.startswith("["):
            return t[1:-1]
        offset = moment.utcoffset() or timedelta(0)
        minutes = int(offset.total_seconds() // 60)
        sign, minutes = ("-" if minutes < 0 else "+"), abs(minutes)
        hour12 = moment.hour % 12 or 12
        values = {
            "YYYY": f"{moment.year:04d}",
            "YY": f"{moment.year % 100:02d}",
            "Q": str((moment.month - 1) // 3 + 1),
            "MMMM": calendar.month_name[moment.month],
            "MMM": calendar.month_abbr[moment.month],
            "MM": f"{moment.month:02d}",
            "M": str(moment.month),
            "DDDD": f"{moment.timetuple().tm_yday:03d}",
            "DDD": str(moment.timetuple().tm_yday),
            "Do": _ordinal(moment.day),
            "DD": f"{moment.day:02d}",
            "D": str(moment.day),
            "dddd": calendar.day_name[moment.weekday()],
            "ddd": calendar.day_abbr[moment.weekday()],
            "d": str((moment.weekday() + 1) % 7),  # moment: Sunday is 0
            "HH": f"{moment.hour:02d}",
            "H": str(moment.hour),
            "hh": f"{hour12:02d}",
            "h": str(hour12),
            "mm": f"{moment.minute:02d}",
            "m": str(moment.minute),
            "ss": f"{moment.second:02d}",
            "s": str(moment.second),
            "SSS": f"{moment.microsecond // 1000:03d}",
            "SS": f"{moment.microsecond // 10000:02d}",
            "S": str(moment.microsecond // 100000),
            "A": "AM" if moment.hour < 12 else "PM",
            "a": "am" if moment.hour < 12 else "pm",
            "ZZ": f"{sign}{minutes // 60:02d}{minutes % 60:02d}",
            "Z": f"{sign}{minutes // 60:02d}:{minutes % 60:02d}",
            "X": str(int(moment.timestamp())),
            "x": str(int(moment.timestamp() * 1000)),
        }
        return values[t]

    return _MOMENT_TOKENS.sub(token, fmt)


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _datetime(scope, expression, args, where, context, local: bool = False) -> str:
    m = re.fullmatch(r"""(rfc1123|iso8601|'[^']+'|"[^"]+")""" + _OFFSET, args)
    if m is None:
        word = expression.split()[0]
        raise InvalidRequest(
            f'{{{{{expression}}}}}: write {{{{{word} rfc1123|iso8601|"FORMAT" [offset unit]}}}}'
            f" (in {where})"
        )
    kind, amount, unit = m.groups()
    moment = datetime.now(timezone.utc)
    if local:
        moment = moment.astimezone()
    moment = _shifted(moment, amount, unit, expression, where)
    if kind == "rfc1123":
        # JavaScript's toUTCString (RFC 7231 IMF-fixdate) for UTC; for local time
        # REST Client formats "ddd, DD MMM YYYY HH:mm:ss ZZ".
        return _moment_format(moment, "ddd, DD MMM YYYY HH:mm:ss " + ("ZZ" if local else "[GMT]"))
    if kind == "iso8601":
        # toISOString(): milliseconds, "Z" in UTC; toISOString(true): the local offset.
        return _moment_format(moment, "YYYY-MM-DD[T]HH:mm:ss.SSS" + ("Z" if local else "[Z]"))
    return _moment_format(moment, kind[1:-1])


def _random_int(scope, expression, args, where, context) -> str:
    if not args:  # JetBrains' {{$randomInt}}: 0 to 1000
        return str(random.randrange(0, 1000))
    m = re.fullmatch(r"(-?\d{1,18})\s+(-?\d{1,18})", args)  # int() refuses 4,300 digits
    if m is None or int(m.group(1)) >= int(m.group(2)):
        raise InvalidRequest(
            f"{{{{{expression}}}}}: write {{{{$randomInt MIN MAX}}}} with MIN < MAX"
            f" (MAX excluded, as REST Client) (in {where})"
        )
    return str(random.randrange(int(m.group(1)), int(m.group(2))))


def _guid(scope, expression, args, where, context) -> str:
    return str(uuid.uuid4())


def _iso_timestamp(scope, expression, args, where, context) -> str:  # JetBrains
    return _moment_format(datetime.now(timezone.utc), "YYYY-MM-DD[T]HH:mm:ss.SSS[Z]")


_DYNAMIC = {
    "$guid": _guid,
    "$uuid": _guid,  # httpyac and JetBrains
    "$random.uuid": _guid,  # JetBrains
    "$timestamp": _timestamp,
    "$isoTimestamp": _iso_timestamp,  # JetBrains
    "$datetime": _datetime,
    "$localDatetime": lambda *a: _datetime(*a, local=True),
    "$randomInt": _random_int,
    "$shared": Scope._shared,
    "$processEnv": Scope._process_env,
    "$dotenv": Scope._dotenv,
}
