"""The wire view of a chunked body: each chunk's size line as the server sent it.

h11 is the only parser of HTTP framing: it decides where each chunk starts and
ends and hands us the data (``Data.chunk_end``). What it drops
are the chunk extensions (RFC 9112 section 7.1.1). ``ChunkTap`` reads the same raw
bytes h11 is fed only to recover each chunk-size line, and it is *stricter* than
h11, never looser:

* a size line must match ``1*HEXDIG`` of at most 20 digits (h11's bound), then
  extensions in the RFC's grammar (token names, token or quoted-string values),
  then optional whitespace and CRLF; a sign, an underscore, a space before the
  size or a bare LF is refused (``int(x, 16)`` would accept several of these);
* chunk data must be followed by exactly CRLF;
* every step consumes at least one byte or stops, so no input can make it loop.

Anything it refuses is a ``ProtocolError`` (h11 would refuse it too, or it is
outside the RFC's grammar). It never steers framing: the client takes each
chunk's size from h11's ``Data`` events and checks it against the size line.

>>> tap = ChunkTap()
>>> tap.feed(b"5;name=val\\r\\nhello\\r\\n0\\r\\n\\r\\n")
>>> tap.next_header()
(5, (('name', 'val'),))
"""

from __future__ import annotations

import re
from collections import deque

from .errors import ProtocolError

#: A size line (extensions included) longer than this is refused. h11 bounds it
#: only by its whole receive buffer; 4 KiB is far beyond any real extension.
MAX_SIZE_LINE = 4096

# RFC 9110 5.6.2 token and 5.6.4 quoted-string.
_TOKEN = rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_QUOTED = rb'"(?:[\t !#-\[\]-~\x80-\xff]|\\[\t -~\x80-\xff])*"'
# RFC 9112 7.1.1: chunk-ext = *( BWS ";" BWS name [ BWS "=" BWS value ] ).
# h11 allows no whitespace between the size and the first ";": neither do we.
_EXT = rb"[ \t]*;[ \t]*(" + _TOKEN + rb")(?:[ \t]*=[ \t]*(" + _TOKEN + rb"|" + _QUOTED + rb"))?"
_SIZE_LINE = re.compile(
    rb"([0-9A-Fa-f]{1,20})((?:;[ \t]*" + _TOKEN + rb"(?:[ \t]*=[ \t]*(?:" + _TOKEN + rb"|"
    rb"" + _QUOTED + rb"))?)(?:" + _EXT + rb")*)?[ \t]*"
)
_EXT_ITEM = re.compile(_EXT)
_QUOTED_PAIR = re.compile(rb"\\(.)", re.DOTALL)


def parse_extensions(text: bytes) -> tuple[tuple[str, str | None], ...]:
    """Extensions of a *validated* size line: ``;a=1;b;c="x y"`` ->
    (("a", "1"), ("b", None), ("c", "x y")). Quoted values are unescaped."""
    out = []
    for match in _EXT_ITEM.finditer(text):
        name, value = match.group(1), match.group(2)
        if value is not None and value[:1] == b'"':
            value = _QUOTED_PAIR.sub(rb"\1", value[1:-1])
        out.append((name.decode("ascii"), None if value is None else value.decode("latin-1")))
    return tuple(out)


class ChunkTap:
    """Follows chunk-size lines through raw body bytes; yields (size, extensions).

    ``feed`` only queues bytes (and passes over chunk data, which costs nothing);
    a size line is parsed when its chunk is claimed with ``next_header``, as h11
    hands out that chunk's first ``Data``. So the work per call is one size line,
    however many tiny chunks a single read holds, and nothing queued here
    outlives the bytes h11 itself still buffers.
    """

    __slots__ = ("_state", "_line", "_skip", "_buf", "_pos", "_queue", "_headers")

    _SIZE, _DATA, _CRLF, _DONE = 0, 1, 2, 3

    def __init__(self) -> None:
        self._state = self._SIZE
        self._line = bytearray()
        self._skip = 0  # data bytes (then the CRLF) still to pass over
        self._buf = b""  # the bytes being read, from _pos on
        self._pos = 0
        self._queue: deque[bytes] = deque()  # bytes fed after _buf
        self._headers: deque[tuple[int, tuple]] = deque()

    def feed(self, data: bytes) -> None:
        """Queue ``data``; chunk data in it is passed over at once."""
        if data and self._state != self._DONE:
            if self._pos < len(self._buf):
                self._queue.append(data)
            else:
                self._buf, self._pos = data, 0
            self._run(lines=0)

    def next_header(self) -> tuple[int, tuple]:
        """(size, extensions) of the next chunk: parses its size line (a
        ``ProtocolError`` if malformed)."""
        if not self._headers:
            self._run(lines=1)
            if not self._headers:
                raise ProtocolError("chunked body out of step with its size lines")
        return self._headers.popleft()

    def _run(self, lines: int) -> None:
        """Follow the queued bytes, parsing at most ``lines`` size lines; every
        step consumes bytes or stops, so no input can make it loop."""
        while True:
            buf, pos = self._buf, self._pos
            end = len(buf)
            if pos >= end:
                if not self._queue:
                    return
                self._buf, self._pos = self._queue.popleft(), 0
                continue
            state = self._state
            if state == self._DATA:
                take = min(self._skip, end - pos)
                self._pos = pos + take
                self._skip -= take
                if self._skip == 0:
                    self._state, self._skip = self._CRLF, 2
            elif state == self._CRLF:
                # RFC 9112 7.1: chunk data is followed by exactly CRLF.
                want = b"\r\n"[2 - self._skip :]
                take = min(self._skip, end - pos)
                if buf[pos : pos + take] != want[:take]:
                    raise ProtocolError("malformed chunked body: chunk data not followed by CRLF")
                self._pos = pos + take
                self._skip -= take
                if self._skip == 0:
                    self._state = self._SIZE
            elif state == self._SIZE:
                if lines <= 0:
                    return
                nl = buf.find(b"\n", pos)
                stop = end if nl == -1 else nl
                if len(self._line) + (stop - pos) > MAX_SIZE_LINE:
                    raise ProtocolError(f"chunk-size line longer than {MAX_SIZE_LINE} bytes")
                if nl == -1:
                    self._line += buf[pos:stop]
                    self._pos = end
                    continue
                if self._line:  # the line began in an earlier read
                    self._line += buf[pos:nl]
                    line = bytes(self._line)
                    self._line.clear()
                else:
                    line = buf[pos:nl]
                self._pos = nl + 1
                # h11 ends a size line at CRLF only (a bare LF is not a line end).
                if line[-1:] != b"\r":
                    raise ProtocolError("malformed chunk-size line: bare LF (RFC 9112 7.1)")
                self._size_line(line[:-1])
                lines -= 1
                if self._state == self._DATA:
                    # The common case, the chunk's data and its CRLF in this
                    # read too: passed over in one step.
                    after = nl + 1 + self._skip
                    if after + 2 <= end:
                        if buf[after : after + 2] != b"\r\n":
                            raise ProtocolError(
                                "malformed chunked body: chunk data not followed by CRLF"
                            )
                        self._pos = after + 2
                        self._state, self._skip = self._SIZE, 0
                        if lines <= 0:
                            return
            else:
                # The trailer section: h11 parses it (RFC 9112 7.1.2).
                self._buf, self._pos = b"", 0
                self._queue.clear()
                return

    def _size_line(self, line: bytes) -> None:
        match = _SIZE_LINE.fullmatch(line)
        if match is None:
            shown = line[:60].decode("latin-1")
            raise ProtocolError(f"malformed chunk-size line {shown!r} (RFC 9112 7.1)")
        size = int(match.group(1), 16)
        extensions = parse_extensions(match.group(2)) if match.group(2) else ()
        self._headers.append((size, extensions))
        if size == 0:
            self._state = self._DONE
        else:
            self._state, self._skip = self._DATA, size
