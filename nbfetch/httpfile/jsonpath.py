"""The JSONPath subset ``.http`` files use: ``$``, ``.name``, ``['name']``,
``[n]``, ``[-n]``, ``[*]`` / ``.*``, ``..name`` (any depth) and ``.length``.

That is what VS Code REST Client's request variables
(``{{login.response.body.$.token}}``) and httpyac's ``?? body $.items.length > 0``
are written with in practice. Filters (``[?(@.x > 1)]``), slices and unions
are refused with a clear error rather than half-supported.

>>> doc = {"items": [{"id": 1}, {"id": 2}], "a b": True}
>>> jsonpath(doc, "$.items[*].id"), jsonpath(doc, "$.items.length"), jsonpath(doc, "$['a b']")
([1, 2], [2], [True])
>>> jsonpath_one(doc, "$..id")
1
>>> selects_several("$.items[*].id"), selects_several("$..id"), selects_several("$.items[0]")
(True, True, False)
"""

from __future__ import annotations

import re

from ..core.errors import InvalidRequest

#: The largest JSON body parsed to evaluate a JSONPath (a check, a reference).
#: ``json.loads`` holds the GIL (a worker thread would stall the loop as much):
#: 512 KiB took 12-24 ms here, 4 MiB 160-380 ms, past the 100 ms the loop may
#: be held.
MAX_JSON_DOCUMENT = 512 * 1024

#: A path longer than this is refused: a path is written by hand.
MAX_PATH_LENGTH = 1000

_NAME = re.compile(r"[A-Za-z_$@\u00a0-\uffff][\w$@\-\u00a0-\uffff]*")
_INDEX = re.compile(r"\[\s*(-?\d{1,18})\s*\]")
_QUOTED = re.compile(r"""\[\s*(?:'((?:[^'\\]|\\.)*)'|"((?:[^"\\]|\\.)*)")\s*\]""")
_WILD = re.compile(r"\[\s*\*\s*\]")
_UNESCAPE = re.compile(r"\\(.)")


def parse_path(path: str) -> list[tuple[str, object]]:
    """``path`` as (kind, argument) steps: ("key", name), ("index", n),
    ("wild", None), each with a "deep-" variant for ``..``; ``InvalidRequest``
    saying what is not supported."""
    if len(path) > MAX_PATH_LENGTH:
        raise InvalidRequest(f"JSONPath of {len(path)} characters (at most {MAX_PATH_LENGTH})")
    text = path.strip()
    if not text.startswith("$"):
        raise InvalidRequest(f"JSONPath {path!r} must start with '$' (the document)")
    steps: list[tuple[str, object]] = []
    i = 1
    while i < len(text):
        deep = text.startswith("..", i)
        if deep or text[i] == ".":
            i += 2 if deep else 1
            if text.startswith("*", i):
                steps.append(("deep-wild" if deep else "wild", None))
                i += 1
                continue
            m = _NAME.match(text, i)
            if m is None:
                if deep and text.startswith("[", i):
                    kind, arg, i = _bracket(path, text, i)
                    steps.append(("deep-" + kind, arg))
                    continue
                raise InvalidRequest(f"JSONPath {path!r}: expected a name at character {i + 1}")
            steps.append(("deep-key" if deep else "key", m.group()))
            i = m.end()
        elif text[i] == "[":
            kind, arg, i = _bracket(path, text, i)
            steps.append((kind, arg))
        else:
            raise InvalidRequest(
                f"JSONPath {path!r}: unexpected {text[i]!r} at character {i + 1}"
                " (supported: $, .name, ['name'], [n], [-n], [*], .., .length)"
            )
    return steps


def _bracket(path: str, text: str, i: int) -> tuple[str, object, int]:
    for pattern, kind in ((_INDEX, "index"), (_QUOTED, "key"), (_WILD, "wild")):
        m = pattern.match(text, i)
        if m is None:
            continue
        if kind == "index":
            return kind, int(m.group(1)), m.end()
        if kind == "key":
            raw = m.group(1) if m.group(1) is not None else m.group(2)
            return kind, _UNESCAPE.sub(r"\1", raw), m.end()
        return kind, None, m.end()
    raise InvalidRequest(
        f"JSONPath {path!r}: unsupported bracket at character {i + 1}"
        " (supported: ['name'], [n], [-n], [*]; no filters or slices)"
    )


def _children(node) -> list:
    if isinstance(node, dict):
        return list(node.values())
    if isinstance(node, list):
        return list(node)
    return []


def _descendants(node) -> list:
    """``node`` and everything below it, in document order (iterative: a deep
    document cannot exhaust the stack)."""
    out, stack = [], [node]
    while stack:
        current = stack.pop()
        out.append(current)
        stack.extend(reversed(_children(current)))
    return out


def _apply(kind: str, arg, node) -> list:
    if kind == "key":
        if isinstance(node, dict) and arg in node:
            return [node[arg]]
        # ".length" (httpyac, JSONPath-Plus): the size of an array, string or object,
        # unless the object has a member of that name.
        if arg == "length" and isinstance(node, (list, str, dict)):
            return [len(node)]
        return []
    if kind == "index":
        if isinstance(node, list) and -len(node) <= arg < len(node):
            return [node[arg]]
        return []
    return _children(node)  # wild


def jsonpath(document, path: str) -> list:
    """Every value ``path`` selects in ``document`` (parsed JSON), in document order."""
    nodes = [document]
    for kind, arg in parse_path(path):
        if kind.startswith("deep-"):
            kind = kind[5:]
            if kind == "wild":  # "..*": every descendant, not the start itself
                nodes = [d for n in nodes for d in _descendants(n)[1:]]
                continue
            nodes = [d for n in nodes for d in _descendants(n)]
            if kind == "key":  # "..length" is a member named so, not a made-up size
                nodes = [n[arg] for n in nodes if isinstance(n, dict) and arg in n]
                continue
        nodes = [value for n in nodes for value in _apply(kind, arg, n)]
    return nodes


def selects_several(path: str) -> bool:
    """Whether ``path`` may select more than one value (``[*]``, ``.*``, ``..``):
    a check compares the list of them all, not the first alone."""
    return any(kind == "wild" or kind.startswith("deep-") for kind, _ in parse_path(path))


def jsonpath_one(document, path: str):
    """The first value ``path`` selects; ``LookupError`` naming the path when none."""
    found = jsonpath(document, path)
    if not found:
        raise LookupError(f"JSONPath {path} matched nothing")
    return found[0]
