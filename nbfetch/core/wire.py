"""The wire view of a chunked body: each chunk as the server framed it.

h11 parses and validates the chunked framing and hands us the data, but it drops
chunk extensions (RFC 9112 section 7.1.1) and does not say how large each chunk
was. ``ChunkTap`` watches the same raw bytes h11 is fed and notes, for every
chunk-size line, the size and the extensions. It does not decide anything about
framing: h11 stays the only parser that accepts or rejects a body, and if the two
ever disagree h11's error wins (the tap just stops recording).

>>> tap = ChunkTap()
>>> tap.feed(b"5;name=val\\r\\nhello\\r\\n0\\r\\n\\r\\n")
>>> tap.pop()
(5, (('name', 'val'),))
"""

from __future__ import annotations

from collections import deque

# A chunk-size line longer than this is garbage; h11 rejects it too.
MAX_SIZE_LINE = 4096


def parse_extensions(text: str) -> tuple[tuple[str, str | None], ...]:
    """``;a=1;b;c="x y"`` -> (("a", "1"), ("b", None), ("c", "x y"))  (RFC 9112 7.1.1)."""
    out = []
    for part in text.split(";")[1:]:
        name, eq, value = part.partition("=")
        name = name.strip()
        if not name:
            continue
        value = value.strip()
        if eq and len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1]
        out.append((name, value if eq else None))
    return tuple(out)


class ChunkTap:
    """Follows chunk-size lines through raw body bytes; records (size, extensions)."""

    __slots__ = ("_state", "_line", "_skip", "_records", "broken")

    _SIZE, _DATA, _DONE = 0, 1, 2

    def __init__(self) -> None:
        self._state = self._SIZE
        self._line = bytearray()
        self._skip = 0  # data bytes plus CRLF still to pass over
        self._records: deque[tuple[int, tuple]] = deque()
        self.broken = False

    def feed(self, data: bytes) -> None:
        pos, end = 0, len(data)
        while pos < end and not self.broken:
            if self._state == self._DATA:
                take = min(self._skip, end - pos)
                pos += take
                self._skip -= take
                if self._skip == 0:
                    self._state = self._SIZE
            elif self._state == self._SIZE:
                nl = data.find(b"\n", pos)
                if nl == -1:
                    self._line += data[pos:]
                    if len(self._line) > MAX_SIZE_LINE:
                        self.broken = True
                    return
                self._line += data[pos:nl]
                pos = nl + 1
                line = bytes(self._line).rstrip(b"\r")
                self._line.clear()
                if not line:
                    continue  # the CRLF that ends the previous chunk's data
                self._size_line(line)
            else:
                return  # trailers: h11 reports them

    def _size_line(self, line: bytes) -> None:
        text = line.decode("latin-1")
        size_text, _, _ = text.partition(";")
        try:
            size = int(size_text.strip(" \t"), 16)
        except ValueError:
            self.broken = True
            return
        self._records.append((size, parse_extensions(text) if ";" in text else ()))
        if size == 0:
            self._state = self._DONE
        else:
            self._state = self._DATA
            self._skip = size  # the CRLF after the data is skipped as an empty line

    def pop(self) -> tuple[int, tuple]:
        """The oldest chunk not yet claimed: (size, extensions)."""
        if self._records:
            return self._records.popleft()
        return (-1, ())
