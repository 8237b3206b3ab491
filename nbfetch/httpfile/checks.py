"""Evaluating the ``??`` assertions of a ``.http`` request against its response.

The grammar (parsed by ``parse.parse_assertion``)::

    ?? status == 200
    ?? header content-type contains json
    ?? header x-request-id exists
    ?? body contains "ok"                  # the body as text
    ?? body $.items.length > 0             # a JSONPath into the JSON body
    ?? body $.items[*].id contains 3       # [*], .* or ..: one of the matches is 3
    ?? body $.items[*].id > 0              # [*], .* or ..: every match is above 0
    ?? duration < 500ms                    # ms or s (a bare number is ms); the fetch's total
    ?? py response.json()["count"] >= 2    # Python: true passes

``expected`` is read as a JSON literal when it is one (``200``, ``"ok"``,
``true``, ``null``), else as text; numbers compare as numbers, whichever side is
text (a header's ``"5"`` equals ``5``), integers exactly (a 64-bit id is not
rounded to a float). A check never raises: a JSONPath with no
match, a body that is not JSON, a bad regular expression or an exception in a
``py`` expression is a failed assertion saying so.
"""

from __future__ import annotations

import builtins
import json as jsonlib
import math
import re
import weakref
from dataclasses import dataclass
from typing import Any

from ..core.errors import FetchError
from .jsonpath import MAX_JSON_DOCUMENT, jsonpath, selects_several
from .model import Assertion

#: ``actual`` (and the "got ..." of a message) is cut to this many characters:
#: a table row, not a dump of the body.
MAX_ACTUAL = 200
#: A body larger than this is not parsed as JSON for a check.
MAX_JSON_CHECKED = MAX_JSON_DOCUMENT
#: A body larger than this is not decoded as text for a check (8 MiB: about
#: 25 ms to decode and search here).
MAX_TEXT_CHECKED = 8 * 1024 * 1024
_MISSING = object()  # no such header, no JSONPath match
_NUMBER = re.compile(r"\s*-?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?\s*")
_INTEGER = re.compile(r"\s*-?\d+\s*")
_DURATION = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*(ms|s)?\s*", re.IGNORECASE)
# Parsed once per response, however many assertions read it.
_parsed: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


@dataclass
class AssertionResult:
    """What one ``??`` line found."""

    assertion: Assertion
    passed: bool
    actual: str  # a short, scrubbed repr of what was compared
    message: str  # "status == 200: got 404"


class _Failed(Exception):
    """A check that could not compare: the message says why."""


def parsed_json(response) -> Any:
    """The response's body as JSON, or None when it is not JSON (or too large to
    parse here: ``MAX_JSON_CHECKED``)."""
    try:
        return _parsed[response]
    except (KeyError, TypeError):
        pass
    value = None
    body = _body(response)
    if body is not None and len(body) <= MAX_JSON_CHECKED:
        try:
            value = response.json()
        except (ValueError, RecursionError):  # not JSON; nested deeper than Python recurses
            value = None
    try:
        _parsed[response] = value
    except TypeError:  # not weak-referenceable: parsed again next time
        pass
    return value


def check(
    assertion: Assertion,
    response,
    scope,
    namespace=None,
    *,
    show_secrets: bool = False,
    source: str = "cell",
) -> AssertionResult:
    """Evaluate ``assertion`` against ``response``. ``scope`` (a
    ``variables.Scope``) expands templates in ``expected`` and scrubs its
    ``secrets`` from ``actual`` and the message unless ``show_secrets``;
    ``namespace`` (the kernel's variables) is visible to ``py`` expressions with
    ``response``, ``json`` (the parsed body or None) and the named results;
    ``source`` (the file) names where an undefined ``{{name}}`` was used."""
    text = assertion.text.strip()
    if text.startswith("??"):
        text = text[2:].strip()
    try:
        passed, actual = _evaluate(assertion, response, scope, namespace, source)
        shown = _short(actual)
        message = text if passed else f"{text}: got {shown}"
    except _Failed as exc:
        passed, shown, message = False, "", f"{text}: {exc}"
    if not show_secrets:
        shown, message = scope.secrets.scrub(shown), scope.secrets.scrub(message)
    return AssertionResult(assertion, passed, shown, _cut(message, len(text) + MAX_ACTUAL + 40))


def _evaluate(assertion: Assertion, response, scope, namespace, source) -> tuple[bool, Any]:
    subject, op = assertion.subject, assertion.operator
    if subject == "py":
        return _python(assertion, response, scope, namespace)
    if subject == "status":
        actual: Any = response.status_code
    elif subject == "header":
        actual = response.headers.get(assertion.argument or "", _MISSING)
    elif subject == "body" and assertion.argument:
        document = parsed_json(response)
        if document is None:
            raise _Failed(_not_json(response))
        try:
            matches = jsonpath(document, assertion.argument)
        except (LookupError, ValueError) as exc:  # a path it refuses
            raise _Failed(getattr(exc, "message", None) or str(exc)) from None
        if selects_several(assertion.argument):
            return _several(assertion, matches, scope, source)
        actual = matches[0] if matches else _MISSING
    elif subject == "body":
        body = _body(response)
        if body is None:
            raise _Failed("the body was not read")
        if len(body) > MAX_TEXT_CHECKED:
            raise _Failed(_too_large(body, MAX_TEXT_CHECKED, "text"))
        actual = response.text
    elif subject == "duration":
        total = response.timing.total
        if total is None:
            raise _Failed("the fetch has no total time")
        actual = _Duration(total)
    else:
        raise _Failed(f"unknown subject {subject!r}")
    if op in ("exists", "!exists"):
        return (actual is not _MISSING) == (op == "exists"), actual
    if actual is _MISSING:
        raise _Failed("no match" if subject == "body" else f"no {assertion.argument} header")
    expected = _expected(assertion, scope, source)
    typed = subject in ("status", "duration") or (subject == "body" and assertion.argument)
    return _compare(op, actual, expected, bool(typed)), actual


def _several(assertion: Assertion, matches: list, scope, source) -> tuple[bool, Any]:
    """A path that can select several values ([*], .* or ..): ``exists`` is at
    least one match, ``!exists`` none; an expected list compares with the list
    of matches and ``contains`` looks for a value among them; any other check
    must hold for every match (and there must be one). Comparing the list itself
    with a scalar would pass "$.items[*].id != 1" although an id is 1."""
    op = assertion.operator
    if op in ("exists", "!exists"):
        return bool(matches) == (op == "exists"), matches
    expected = _expected(assertion, scope, source)
    if isinstance(expected, list) or op in ("contains", "!contains"):
        return _compare(op, matches, expected, True), matches
    if not matches:
        raise _Failed("no match")
    return all(_compare(op, match, expected, True) for match in matches), matches


def _expected(assertion: Assertion, scope, source) -> Any:
    if assertion.expected is None:
        return None
    try:
        expanded = scope.expand(assertion.expected, f"{source} line {assertion.line} (??)")
    except FetchError as exc:  # an undefined {{name}}: this check fails, not the run
        raise _Failed(exc.message) from None
    return _literal(expanded)


class _Duration(float):
    """A time in seconds, shown in ms; compared with "500ms", "2s" or 500 (ms)."""

    def __repr__(self) -> str:
        return f"{self * 1000:.0f} ms"


def _duration(expected: Any) -> float:
    if isinstance(expected, (int, float)) and not isinstance(expected, bool):
        return expected / 1000  # a bare number is milliseconds, as httpyac's
    m = _DURATION.fullmatch(str(expected))
    if not m:
        raise _Failed(f"{expected!r} is not a duration (500ms, 2s)")
    value = float(m.group(1))
    return value if (m.group(2) or "ms").lower() == "s" else value / 1000


def _compare(op: str | None, actual: Any, expected: Any, typed: bool) -> bool:
    if isinstance(actual, _Duration):
        if op not in ("==", "!=", "<", "<=", ">", ">="):
            raise _Failed(f"duration takes a comparison, not {op}")
        expected = _duration(expected)
    if op in ("==", "!="):
        return _equal(actual, expected) == (op == "==")
    if op in ("<", "<=", ">", ">="):
        a, e = _number(actual), _number(expected)
        if a is None or e is None:
            raise _Failed(f"{_short(actual)} and {_short(expected)} are not both numbers")
        return {"<": a < e, "<=": a <= e, ">": a > e, ">=": a >= e}[op]
    if op in ("contains", "!contains"):
        if isinstance(actual, list):
            found = any(_equal(item, expected) for item in actual)
        elif isinstance(actual, dict):
            found = _text(expected) in actual
        else:
            found = _text(expected) in _text(actual)
        return found == (op == "contains")
    if op == "startsWith":
        return _text(actual).startswith(_text(expected))
    if op == "endsWith":
        return _text(actual).endswith(_text(expected))
    if op == "matches":
        try:
            return re.search(_text(expected), _text(actual)) is not None
        except re.error as exc:
            raise _Failed(f"bad regular expression: {exc}") from None
    if op == "isNumber":
        if typed:
            return isinstance(actual, (int, float)) and not isinstance(actual, bool)
        return _number(actual) is not None
    if op == "isString":
        return isinstance(actual, str)
    if op == "isBoolean":
        return isinstance(actual, bool) or (not typed and actual in ("true", "false"))
    if op == "isArray":
        return isinstance(actual, list)
    if op in ("isTrue", "isFalse"):
        want = op == "isTrue"
        return actual is want or (not typed and actual == jsonlib.dumps(want))
    raise _Failed(f"unknown operator {op!r}")


def _literal(text: str) -> Any:
    """``expected`` as written: a JSON literal (``200``, ``"ok"``, ``true``,
    ``null``, ``[1]``) when it is one, else the text itself."""
    try:
        return jsonlib.loads(text)
    except ValueError:
        return text


def _number(value: Any) -> int | float | None:
    """``value`` as a number: an integer stays an int, so a 64-bit id compares
    exactly (as floats, 1234567890123456789 == 1234567890123456788); Python
    compares an int with a float exactly too."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, str) and _NUMBER.fullmatch(value):
        if _INTEGER.fullmatch(value):
            try:
                return int(value)
            except ValueError:  # more digits than int() converts (sys.get_int_max_str_digits)
                pass
        number = float(value)
        return number if math.isfinite(number) else None
    return None


def _equal(actual: Any, expected: Any) -> bool:
    a, e = _number(actual), _number(expected)
    if a is not None and e is not None:
        return a == e
    if isinstance(actual, str) or isinstance(expected, str):
        return _text(actual) == _text(expected)
    # JSON's true is not 1 (Python's True == 1 is), inside arrays and objects too.
    if isinstance(actual, bool) or isinstance(expected, bool):
        return actual is expected
    if isinstance(actual, list) and isinstance(expected, list):
        return len(actual) == len(expected) and all(map(_equal, actual, expected))
    if isinstance(actual, dict) and isinstance(expected, dict):
        return actual.keys() == expected.keys() and all(
            _equal(value, expected[key]) for key, value in actual.items()
        )
    return actual == expected


def _text(value: Any) -> str:
    return value if isinstance(value, str) else jsonlib.dumps(value, ensure_ascii=False)


def _short(value: Any) -> str:
    if value is _MISSING:
        return "nothing"
    if isinstance(value, _Duration):
        return repr(value)
    if isinstance(value, str):
        value = value[: MAX_ACTUAL + 1]  # a whole body is not quoted to show 200 characters
    try:
        text = jsonlib.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return _cut(text, MAX_ACTUAL)


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _too_large(body: bytes, limit: int, kind: str) -> str:
    return (
        f"the body ({len(body):,} bytes) is too large to check as {kind} here"
        f" (at most {limit:,}); ?? py can read response.body itself"
    )


def _body(response) -> bytes | None:
    try:
        return response.body
    except FetchError:  # a stream()ed response whose body was not read
        return None


def _not_json(response) -> str:
    body = _body(response)
    if body is not None and len(body) > MAX_JSON_CHECKED:
        return _too_large(body, MAX_JSON_CHECKED, "JSON")
    ctype = response.headers.get("content-type") or "no content-type"
    return f"the body is not JSON ({ctype})"


def _python(assertion: Assertion, response, scope, namespace) -> tuple[bool, Any]:
    """``?? py EXPR``: true passes. The kernel's variables, then the named
    results, then ``response`` and ``json`` are its globals (a dict: a
    generator expression in it sees them too)."""
    names: dict[str, Any] = {"__builtins__": builtins}
    names.update(namespace or {})
    names.update(getattr(scope, "results", None) or {})
    names.update(response=response, json=parsed_json(response))
    try:
        # The file's own code, as a notebook cell is: run only files you trust.
        value = eval(assertion.argument or "", names)
    except Exception as exc:  # the user's expression: any error is a failed check
        raise _Failed(f"{type(exc).__name__}: {exc}") from None
    return bool(value), value
