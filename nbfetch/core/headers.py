"""HTTP header fields: case-insensitive, multi-valued, order-preserving.

Header values are kept as the raw bytes that were sent or received; the ``str``
views decode them as ISO-8859-1, which maps every byte to one character and so
never fails on a hostile or non-UTF-8 value (RFC 9110 section 5.5: field values
are historically ISO-8859-1; anything else is opaque data).

>>> h = Headers([("Set-Cookie", "a=1"), ("set-cookie", "b=2"), ("Content-Type", "text/html")])
>>> h["content-type"]
'text/html'
>>> h.get_list("SET-COOKIE")
['a=1', 'b=2']
>>> h["set-cookie"]                     # several fields: joined with ", " (RFC 9110 5.3)
'a=1, b=2'
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Union

from .redact import SENSITIVE_HEADERS, redact_headers

HeaderSource = Union[
    "Headers",
    Mapping[str, str],
    Mapping[bytes, bytes],
    Iterable[tuple[str, str]],
    Iterable[tuple[bytes, bytes]],
    None,
]


def _encode_name(name: str | bytes) -> bytes:
    if isinstance(name, bytes):
        return name
    return name.encode("ascii", "surrogateescape") if name.isascii() else name.encode("utf-8")


def _encode_value(value: str | bytes | int) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, int):
        return str(value).encode("ascii")
    try:
        return value.encode("latin-1")
    except UnicodeEncodeError:
        # Not representable in ISO-8859-1: send UTF-8, as browsers and httpx do.
        return value.encode("utf-8")


class Headers:
    """An ordered multi-map of header fields. ``raw`` keeps the exact bytes."""

    __slots__ = ("_items",)

    def __init__(self, headers: HeaderSource = None):
        # Each item: (name as given, lowercased name, value), all bytes.
        self._items: list[tuple[bytes, bytes, bytes]] = []
        if headers is None:
            return
        if isinstance(headers, Headers):
            self._items = list(headers._items)
            return
        pairs = headers.items() if isinstance(headers, Mapping) else headers
        for name, value in pairs:
            raw = _encode_name(name)
            self._items.append((raw, raw.lower(), _encode_value(value)))

    @classmethod
    def _from_full_items(cls, items: list[tuple[bytes, bytes, bytes]]) -> Headers:
        """Wrap (raw name, lower name, value) triples without copying (h11's layout)."""
        h = cls.__new__(cls)
        h._items = items
        return h

    # -- reading -------------------------------------------------------------
    def get_list(self, name: str | bytes) -> list[str]:
        """Every value of ``name``, in order, as str."""
        key = _encode_name(name).lower()
        return [v.decode("latin-1") for _, k, v in self._items if k == key]

    def get_raw(self, name: str | bytes) -> list[bytes]:
        """Every value of ``name``, in order, as the bytes on the wire."""
        key = _encode_name(name).lower()
        return [v for _, k, v in self._items if k == key]

    def get(self, name: str | bytes, default: str | None = None) -> str | None:
        values = self.get_list(name)
        return ", ".join(values) if values else default

    def __getitem__(self, name: str | bytes) -> str:
        values = self.get_list(name)
        if not values:
            raise KeyError(name)
        return ", ".join(values)

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, (str, bytes)):
            return False
        key = _encode_name(name).lower()
        return any(k == key for _, k, _ in self._items)

    def __iter__(self) -> Iterator[str]:
        """Distinct names (lowercase), in first-seen order."""
        seen: dict[bytes, None] = {}
        for _, k, _ in self._items:
            seen.setdefault(k, None)
        return (k.decode("latin-1") for k in seen)

    def __len__(self) -> int:
        return len(self._items)

    def keys(self) -> list[str]:
        return list(self)

    def items(self) -> list[tuple[str, str]]:
        """Every field as (name as sent, value), duplicates included."""
        return [(n.decode("latin-1"), v.decode("latin-1")) for n, _, v in self._items]

    @property
    def raw(self) -> list[tuple[bytes, bytes]]:
        """Every field as (name, value) bytes, exactly as sent or received."""
        return [(n, v) for n, _, v in self._items]

    def to_dict(self) -> dict[str, str]:
        """One entry per distinct lowercase name, values joined with ", "."""
        return {k: self[k] for k in self}

    # -- writing (request headers) -------------------------------------------
    def add(self, name: str | bytes, value: str | bytes | int) -> None:
        """Append a field, keeping existing ones of the same name."""
        raw = _encode_name(name)
        self._items.append((raw, raw.lower(), _encode_value(value)))

    def __setitem__(self, name: str | bytes, value: str | bytes | int) -> None:
        """Replace every field of this name by one (at the first one's position)."""
        raw = _encode_name(name)
        key = raw.lower()
        new = (raw, key, _encode_value(value))
        out, placed = [], False
        for item in self._items:
            if item[1] == key:
                if not placed:
                    out.append(new)
                    placed = True
            else:
                out.append(item)
        if not placed:
            out.append(new)
        self._items = out

    def setdefault(self, name: str | bytes, value: str | bytes | int) -> str:
        if name not in self:
            self[name] = value
        return self[name]

    def __delitem__(self, name: str | bytes) -> None:
        key = _encode_name(name).lower()
        kept = [item for item in self._items if item[1] != key]
        if len(kept) == len(self._items):
            raise KeyError(name)
        self._items = kept

    def pop(self, name: str | bytes, default: str | None = None) -> str | None:
        value = self.get(name, default)
        if name in self:
            del self[name]
        return value

    def update(self, other: HeaderSource) -> None:
        """Set every name of ``other`` (replacing), keeping its duplicates."""
        incoming = Headers(other)
        for key in set(k for _, k, _ in incoming._items):
            if key in self:
                del self[key]
        self._items.extend(incoming._items)

    def copy(self) -> Headers:
        return Headers(self)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Headers):
            try:
                other = Headers(other)  # type: ignore[arg-type]
            except (TypeError, ValueError):
                return NotImplemented
        return [(k, v) for _, k, v in self._items] == [(k, v) for _, k, v in other._items]

    def __repr__(self) -> str:
        """Credentials hidden (``core.redact``): a repr ends up in logs and notebooks."""
        return self.describe()

    def describe(self, hidden: frozenset[str] = SENSITIVE_HEADERS) -> str:
        """The repr, with the values of the fields in ``hidden`` replaced and the
        userinfo of URL-valued fields (Location) redacted; ``hidden=frozenset()``
        keeps the credentials."""
        return f"Headers({redact_headers(self.items(), hidden)!r})"
