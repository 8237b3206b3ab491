"""Driving h11 for one client connection: bytes in, response events out.

No sockets, no loop, no clock. ``ClientProtocol`` wraps one ``h11.Connection``
(one per TCP connection, reused across keep-alive cycles) and adds what h11 leaves
to its user:

* translating h11's errors into nbfetch's (``ProtocolError`` for what the server
  sent, ``InvalidRequest`` for what we were asked to send);
* the wire view of chunked bodies (``ChunkTap``: the size lines and their
  extensions, read more strictly than h11 reads them);
* the rule that a connection is reusable only when both sides are DONE and no
  byte is left over (leftover bytes after a complete response mean the framing
  was not what it claimed: reusing would desync, cf. h11 CVE-2025-43859).

>>> p = ClientProtocol()
>>> wire = p.send_request(build_request("GET", "/", [(b"Host", b"x")]))
>>> p.receive_data(b"HTTP/1.1 200 OK\\r\\nContent-Length: 2\\r\\n\\r\\nhi")
>>> head = p.next_event(); head.status_code, bytes(p.next_event().data)
(200, b'hi')
"""

from __future__ import annotations

import re

import h11

from .chunk_view import ChunkTap
from .errors import InvalidRequest, ProtocolError
from .headers import Headers

NEED_DATA = h11.NEED_DATA
PAUSED = h11.PAUSED
Data = h11.Data
EndOfMessage = h11.EndOfMessage
ConnectionClosed = h11.ConnectionClosed
InformationalResponse = h11.InformationalResponse
Response = h11.Response

#: Default bound on the response header block (status line + headers), bytes.
DEFAULT_MAX_HEADER_BYTES = 64 * 1024


def build_request(method: str | bytes, target: str | bytes, headers: list) -> h11.Request:
    """An ``h11.Request``; h11 validates the method, target and every header here,
    before anything is sent (CR/LF/NUL in any of them is refused)."""
    try:
        return h11.Request(method=method, target=target, headers=headers)
    except h11.LocalProtocolError as exc:
        raise InvalidRequest(f"invalid request: {exc}", phase="request") from None


def head_headers(event: h11.Response | h11.InformationalResponse) -> Headers:
    """The response headers as ``Headers``: h11's public ``raw_items()`` (the
    names as sent), each name lowercased as h11 does (ASCII ``bytes.lower``)."""
    return Headers._from_full_items([(n, n.lower(), v) for n, v in event.headers.raw_items()])


class ClientProtocol:
    """The client side of one HTTP/1.1 connection, as a sans-IO state machine."""

    __slots__ = (
        "_chunked",
        "_conflict",
        "_final_head",
        "_head_request",
        "content_encodings",
        "content_lengths",
        "h11",
        "head",
        "tap",
    )

    def __init__(self, max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES):
        # h11 bounds the incomplete header block by max_incomplete_event_size.
        self.h11 = h11.Connection(h11.CLIENT, max_incomplete_event_size=max_header_bytes)
        self.tap: ChunkTap | None = None
        #: The fields of the last final response head, as ``Headers`` (built once).
        self.head: Headers | None = None
        #: Its Content-Length and Content-Encoding values, in order (read in
        #: the same pass that builds ``head``).
        self.content_lengths: list[bytes] = []
        self.content_encodings: list[bytes] = []
        self._chunked = False
        self._conflict = False
        self._head_request = False
        self._final_head = False  # the final (non-1xx) response head has arrived

    # -- sending ---------------------------------------------------------------
    def send_request(self, request: h11.Request) -> bytes:
        self._head_request = request.method == b"HEAD"
        try:
            return self.h11.send(request) or b""
        except h11.LocalProtocolError as exc:
            raise InvalidRequest(f"cannot send request: {exc}") from None

    def send_data(self, data: bytes) -> bytes:
        return self.h11.send(h11.Data(data=data)) or b""

    def send_end(self) -> bytes:
        return self.h11.send(h11.EndOfMessage()) or b""

    # -- receiving -------------------------------------------------------------
    def receive_data(self, data: bytes) -> None:
        """Feed bytes from the server; ``b""`` means the server closed. A view
        is copied before this returns (h11 copies it into its buffer; the tap,
        which may hold bytes for a while, gets its own copy)."""
        if self.tap is not None:
            self.tap.feed(data if type(data) is bytes else bytes(data))
        self.h11.receive_data(data)

    def next_event(self):
        """The next event: an h11 ``InformationalResponse``, ``Response``, ``Data``,
        ``EndOfMessage`` or ``ConnectionClosed``, or ``NEED_DATA``."""
        try:
            event = self.h11.next_event()
        except h11.RemoteProtocolError as exc:
            status = getattr(exc, "error_status_hint", 400)
            reason = _without_quoted_bytes(str(exc)) or "malformed response"
            if status == 431:
                from .errors import TooLargeError

                raise TooLargeError(f"response header block too large: {reason}") from None
            # Told apart by state, not by h11's wording: no final head yet, and
            # the server closed with nothing left unparsed.
            if not self._final_head and self.h11.trailing_data == (b"", True):
                raise ProtocolError(
                    "server closed the connection without sending a response"
                ) from None
            raise ProtocolError(f"malformed response: {reason}") from None
        kind = type(event)
        if kind is h11.Response or kind is h11.InformationalResponse:
            if event.http_version[:2] != b"1.":
                # RFC 9112 2.3: this client speaks HTTP/1.x only.
                raise ProtocolError(
                    f"unsupported HTTP version {event.http_version.decode('ascii')} in the response"
                )
            if kind is h11.Response:
                self._start_body(event)
        return event

    def _start_body(self, head: h11.Response) -> None:
        self._final_head = True
        # One pass over the fields: the Headers (as head_headers builds them)
        # and the ones that frame and encode the body.
        items: list[tuple[bytes, bytes, bytes]] = []
        append = items.append
        lengths: list[bytes] = []
        encodings: list[bytes] = []
        transfer_encoding = False
        for name, value in head.headers.raw_items():
            key = name.lower()
            append((name, key, value))
            if key in _BODY_FIELDS:
                if key == b"content-length":
                    lengths.append(value)
                elif key == b"content-encoding":
                    encodings.append(value)
                else:
                    transfer_encoding = True
        self.head = Headers._from_full_items(items)
        self.content_lengths = lengths
        self.content_encodings = encodings
        # h11 already rejected any Transfer-Encoding other than "chunked" (RFC 9112 6.1)
        # RFC 9112 6.3: a response to HEAD, and a 204 or 304, has no body
        # whatever its Transfer-Encoding says (h11 frames it so too).
        chunked = (
            transfer_encoding and not self._head_request and head.status_code not in (204, 304)
        )
        # RFC 9112 6.3: with both, chunked wins, but the message "ought to be
        # handled as an error" (smuggling): read it, never reuse the connection.
        self._conflict = chunked and bool(lengths)
        self._chunked = chunked
        if chunked:
            self.tap = ChunkTap()
            # Bytes h11 already holds past the header block are the body's start
            # (queued only: their size lines are read as the body is read).
            self.tap.feed(self.h11.trailing_data[0])
        else:
            self.tap = None

    @property
    def chunked(self) -> bool:
        """Whether the current response body uses chunked framing."""
        return self._chunked

    def chunk_header(self) -> tuple[int, tuple]:
        """(declared size, extensions) of the next wire chunk, from its size line
        (which h11 accepted too); claimed by the chunk's first ``Data``."""
        return self.tap.next_header()

    # -- reuse -----------------------------------------------------------------
    def reusable(self) -> bool:
        """Both sides DONE, keep-alive agreed, nothing left over."""
        h = self.h11
        if h.our_state is not h11.DONE or h.their_state is not h11.DONE:
            return False
        if self._conflict:
            return False
        leftover, closed = h.trailing_data
        return not leftover and not closed

    def start_next_cycle(self) -> None:
        self.h11.start_next_cycle()
        self.tap = self.head = None
        self._chunked = self._conflict = self._final_head = False


_BODY_FIELDS = frozenset({b"content-length", b"content-encoding", b"transfer-encoding"})

#: Where h11's error text starts quoting the bytes it refused: ``bytearray(b'...``.
_QUOTED_BYTES = re.compile(r"""(?:bytearray\()?b['"]""")
_FIELD_NAME = re.compile(r"""(?:bytearray\()?b['"]([!#$%&*+\-.^_`|~0-9A-Za-z]+)[ \t]*:""")


def _without_quoted_bytes(text: str) -> str:
    """h11's error text without the line it quotes: a malformed header line
    (``Set-Cookie : sid=...``, no colon, a control character) may hold a
    cookie or a token. A header line's field name is kept when it has one."""
    quoted = _QUOTED_BYTES.search(text)
    if quoted is None:
        return text
    name = _FIELD_NAME.match(text, quoted.start())
    text = text[: quoted.start()].rstrip(": ")
    # Only a whole line starts with its name (a quoted value may hold "a: b").
    if name and text == "illegal header line":
        return f"{text} (field {name.group(1)})"
    return text
