"""A connection whose peer is Python code: replay answers from a recording and
the browser's fetch (under Pyodide) answer through it.

The client writes its request as it would to a socket; ``SyntheticStream``
parses those bytes with h11 in the server role and, once a request is complete,
asks its *answerer* for the response as wire bytes. Those bytes go back through
the client's own h11 state machine, chunk view, decoders, limits and events, so
a replayed or browser-made response is observed exactly as one from a socket:
there is one code path above the driver, and what it checks it checks here too
(a recording with a malformed chunk fails as the server would have).

An answerer is ``answer(request: SyntheticRequest) -> AsyncIterator[bytes]``.
It either yields recorded bytes verbatim or builds them with the h11 server
connection it is handed (``request.respond``/``data``/``end``), which frames
the body (Content-Length or chunked, RFC 9112 sections 6 and 7) so the answerer
never writes framing by hand. It may raise a ``FetchError`` (the fetch fails
with it, as with a refused connection) or ``OSError`` (a broken connection).
When the stream is closed before the answer ends, the iterator's ``cancel()``
is called if it has one (the browser's AbortController), and it is dropped.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import h11

from .base import Driver

#: The largest request (head and body) a synthetic peer buffers: it holds the
#: request whole before answering it, as a recorded exchange or ``fetch()`` needs.
MAX_REQUEST_BYTES = 64 * 1024**2
#: A request head may be larger than h11's 16 KiB default (long cookies); the
#: client bounds what it sends itself, this only keeps the parse bounded.
MAX_REQUEST_HEAD = 1024**2


class SyntheticRequest:
    """One request as the synthetic peer parsed it, and the means to answer it."""

    __slots__ = ("method", "target", "headers", "body", "http_version", "_server")

    def __init__(self, event: h11.Request, body: bytes, server: h11.Connection):
        self.method = event.method.decode("ascii")
        self.target = event.target.decode("ascii")
        #: As sent, names in their sent case (h11 keeps it with ``raw_items``).
        self.headers: list[tuple[str, str]] = [
            (name.decode("latin-1"), value.decode("latin-1"))
            for name, value in event.headers.raw_items()
        ]
        self.body = body
        self.http_version = event.http_version.decode("ascii")
        self._server = server

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (case-insensitive), or None."""
        name = name.lower()
        for key, value in self.headers:
            if key.lower() == name:
                return value
        return None

    # Building an answer with h11 (server role): it frames the body.
    def respond(
        self, status: int, headers: list[tuple[str | bytes, str | bytes]], reason: str | bytes = ""
    ) -> bytes:
        """The status line and header block; a body without Content-Length
        is sent chunked (h11 adds ``Transfer-Encoding: chunked``). Names,
        values and reason are bytes, or latin-1 text, one character per byte,
        as a browser's ByteStrings hold them (h11 would take str as ASCII only:
        a UTF-8 filename in Content-Disposition is valid on the wire);
        UnicodeEncodeError for a character above U+00FF."""
        head = [(_latin1(name), _latin1(value)) for name, value in headers]
        event = h11.Response(status_code=status, headers=head, reason=_latin1(reason))
        return self._server.send(event)

    def data(self, data: bytes) -> bytes:
        """One piece of the body as framed on the wire (one chunk when chunked)."""
        return self._server.send(h11.Data(data=data)) if data else b""

    def end(self, trailers: list[tuple[str, str]] | None = None) -> bytes:
        return self._server.send(h11.EndOfMessage(headers=trailers or []))


Answerer = Callable[[SyntheticRequest], AsyncIterator[bytes]]


class SyntheticStream:
    """A ``Stream`` (drivers/base.py) answered by ``answer``; see the module."""

    def __init__(
        self,
        driver: Driver,
        answer: Answerer,
        *,
        local: tuple[Any, Any] = ("synthetic", 0),
        remote: tuple[Any, Any] = ("synthetic", 0),
        max_request_bytes: int = MAX_REQUEST_BYTES,
    ):
        self._driver = driver
        self._answer = answer
        self._local, self._remote = local, remote
        self._max_request_bytes = max_request_bytes
        self._server = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_REQUEST_HEAD)
        self._head: h11.Request | None = None
        self._body: list[bytes] = []
        self._size = 0
        self._ready: SyntheticRequest | None = None  # complete, not answered yet
        self._pieces: AsyncIterator[bytes] | None = None  # the answer under way
        self._continued = False
        self._peer_closed = False  # the last answer ended: EOF, as a closing server
        self._closed = False
        self._written = None  # a driver Signal while receive() waits for a request
        self._limit: int | None = None  # limit_reads(): the most one receive() returns
        self._rest = b""  # what a limited receive() left of the answer's last piece

    # -- what the client writes --------------------------------------------------
    def write(self, data: bytes) -> None:
        if self._closed:
            raise OSError("synthetic connection is closed")
        if self._pieces is not None:
            # A new request after the client read its answer to the end (it
            # stops reading at the response's end, so the answer's iterator
            # never saw it): that answer is over; the next cycle starts.
            self._drop_answer()
        self._size += len(data)
        if self._size > self._max_request_bytes:
            # No answer can come: the peer "closes", so that the client does
            # not wait read_timeout for an early response before failing.
            self._peer_closed = True
            raise OSError(
                f"request over {self._max_request_bytes // 1024**2} MiB: a synthetic peer"
                " (a recording, the browser's fetch()) holds the request whole before answering"
            )
        try:
            self._server.receive_data(bytes(data))
            self._parse()
        except h11.RemoteProtocolError as exc:
            raise OSError(f"synthetic peer could not parse the request: {exc}") from None
        if self._written is not None:
            self._written.set()

    def _parse(self) -> None:
        server = self._server
        while True:
            event = server.next_event()
            if event is h11.NEED_DATA or event is h11.PAUSED:
                return
            kind = type(event)
            if kind is h11.Request:
                self._head, self._body = event, []
            elif kind is h11.Data:
                self._body.append(bytes(event.data))
            elif kind is h11.EndOfMessage:
                self._ready = SyntheticRequest(self._head, b"".join(self._body), server)
                self._head, self._body, self._size = None, [], 0
                return
            elif kind is h11.ConnectionClosed:
                return

    def _drop_answer(self) -> None:
        pieces, self._pieces = self._pieces, None
        cancel = getattr(pieces, "cancel", None)
        if cancel is not None:
            cancel()
        server = self._server
        if server.our_state is h11.DONE and server.their_state is h11.DONE:
            server.start_next_cycle()  # answered with respond()/data()/end()
        else:
            # Answered with bytes it did not frame through this h11 (a
            # recording): a fresh parser for the next request, with what the
            # old one had received and not parsed yet.
            leftover, _ = server.trailing_data
            self._server = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_REQUEST_HEAD)
            if leftover:
                self._server.receive_data(leftover)
                self._parse()

    # -- what the client reads ---------------------------------------------------
    async def receive(self, timeout: float | None) -> bytes:
        if self._rest and not self._closed:
            return self._limited(self._rest)
        while True:
            if self._closed:
                raise OSError("synthetic connection is closed")
            if self._pieces is None:
                if self._ready is not None:
                    request, self._ready = self._ready, None
                    self._continued = False
                    self._pieces = self._answer(request).__aiter__()
                elif (
                    self._head is not None and not self._continued and _expects_continue(self._head)
                ):
                    # RFC 9110 section 10.1.1: the client waits for 100 before the body.
                    self._continued = True
                    return b"HTTP/1.1 100 Continue\r\n\r\n"
                elif self._peer_closed:
                    return b""
                else:
                    # Nothing asked (the request is not written in full): a
                    # server would stay silent; wait for the client's bytes.
                    self._written = self._driver.signal()
                    await self._written.wait(timeout)
                    continue
            piece = await self._driver.wait_for(_next(self._pieces), timeout)
            if piece is None:
                # The answer ended without the client seeing its end in the
                # framing: a close-delimited body (RFC 9112 section 6.3), or a
                # truncated one. Either way the peer has closed.
                self._pieces = None
                self._peer_closed = True
                return b""
            if piece:
                return self._limited(piece)

    def _limited(self, piece: bytes) -> bytes:
        """At most ``limit_reads()`` bytes; the rest waits for the next receive()."""
        limit = self._limit
        if limit is None or len(piece) <= limit:
            self._rest = b""
            return bytes(piece) if isinstance(piece, memoryview) else piece
        # A view of the rest, not a copy: slicing a copy on every read made a
        # large piece read in small steps cost its size squared.
        view = piece if isinstance(piece, memoryview) else memoryview(piece)
        self._rest = view[limit:]
        return bytes(view[:limit])

    # Pausing needs nothing here: the answer is pulled by receive(), so a
    # paused reader (client/flow.py) pulls nothing. A rate limit needs reads
    # no larger than the limit's step, as a socket's would be.
    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def limit_reads(self, max_bytes: int | None) -> None:
        self._limit = max_bytes

    async def drain(self, timeout: float | None) -> None:
        if self._closed:
            raise OSError("synthetic connection is closed")

    async def start_tls(self, context, server_hostname, timeout):
        raise OSError("a synthetic connection has no TLS layer")

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            if self._pieces is not None:
                cancel = getattr(self._pieces, "cancel", None)
                if cancel is not None:
                    cancel()
                self._pieces = None
            if self._written is not None:
                self._written.set()

    def abort(self) -> None:
        self.close()

    def idle(self) -> None:
        pass

    def is_stale(self) -> bool:
        return self._closed or self._peer_closed

    def addresses(self) -> tuple[Any, Any]:
        return self._local, self._remote


def _expects_continue(head: h11.Request) -> bool:
    return any(
        name == b"expect" and value.lower() == b"100-continue" for name, value in head.headers
    )


async def _next(pieces: AsyncIterator[bytes]) -> bytes | None:
    """The next piece, or None at the end (a coroutine for ``wait_for``)."""
    try:
        return await pieces.__anext__()
    except StopAsyncIteration:
        return None


def _latin1(text: str | bytes) -> bytes:
    return text if isinstance(text, bytes) else text.encode("latin-1")


__all__ = ["Answerer", "SyntheticRequest", "SyntheticStream"]
