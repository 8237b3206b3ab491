"""One request/response exchange (one redirect hop) on one connection.

This is the hot path: send the request, read the head (Tornado's
``read_until_regex``), then pump the body — each h11 ``Data`` becomes raw bytes
counted on the wire, decoded bytes, and, for chunked bodies, a ``response.chunk``
event when the wire chunk it belongs to is complete (Tornado's chunk-size
``read_until`` and ``read_bytes``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .core.decoders import drain, make_decoder, parse_content_encoding
from .core.protocol import NEED_DATA, Data, EndOfMessage, InformationalResponse, head_headers
from .core.protocol import Response as H11Response
from .drivers.base import IOTimeout
from .errors import FetchError, NetworkError, ProtocolError, TooLargeError
from .response import Chunk, Response

if TYPE_CHECKING:
    from .client import FetchContext
    from .pool import Connection


class StaleConnection(Exception):
    """A reused connection failed before any byte of the response: safe to retry
    an idempotent request on a new connection (RFC 9110 section 9.2.2)."""


class Exchange:
    __slots__ = (
        "conn",
        "request",
        "ctx",
        "reused",
        "response",
        "decoder",
        "want_chunks",
        "ready_chunks",
        "_chunk_raw",
        "_chunk_data",
        "_early",
        "_chunk_index",
        "_last_chunk_time",
        "_done",
        "_released",
        "_got_bytes",
        "_received",
        "_informational_count",
        "_on_release",
    )

    def __init__(self, conn: Connection, request, ctx: FetchContext, reused: bool, on_release):
        self.conn = conn
        self.request = request
        self.ctx = ctx
        self.reused = reused
        self.response: Response | None = None
        self.decoder = None
        self.want_chunks = ctx.on_chunk is not None
        self.ready_chunks: list[Chunk] = []  # few at a time: a list, not a deque
        self._chunk_raw: list = []
        self._chunk_data: list = []
        self._chunk_index = 0
        self._last_chunk_time = 0.0
        self._early = None  # a final response that came before the body was sent
        self._done = False
        self._released = False
        self._got_bytes = False
        self._received = 0
        self._informational_count = 0
        self._on_release = on_release

    # -- I/O helpers -----------------------------------------------------------
    async def _receive(self, phase: str) -> bytes:
        ctx = self.ctx
        timeout = ctx.arm(ctx.read_timeout, "read_timeout")
        try:
            data = await self.conn.stream.receive(timeout)
        except IOTimeout:
            raise ctx.timeout_error(phase) from None
        except OSError as exc:
            if self.reused and not self._got_bytes:
                raise StaleConnection(str(exc)) from None
            raise NetworkError(f"connection broken: {exc}", phase=phase) from None
        if data:
            self._got_bytes = True
            self._received += len(data)
        elif self.reused and not self._got_bytes:
            raise StaleConnection("closed before any response byte")
        return data

    def _send_bytes(self, data: bytes) -> None:
        try:
            self.conn.stream.write(data)
        except OSError as exc:
            if self.reused:
                raise StaleConnection(str(exc)) from None
            raise NetworkError(f"connection broken while sending: {exc}", phase="send") from None

    # -- request ---------------------------------------------------------------
    async def send_request(self) -> None:
        ctx, proto, request = self.ctx, self.conn.proto, self.request
        rec = ctx.recorder
        head = proto.send_request(request.h11_request())
        body = request.body
        self.conn.requests += 1
        if body is None:
            self._send_bytes(head + proto.send_end())
            self._headers_sent()
            rec.emit("request.body_sent", {"bytes": 0})
            return
        if ctx.expect_100_continue:
            await self._send_expecting_continue(head)
            return
        if isinstance(body, bytes) and len(body) <= 65536:
            # Headers and a small body in one write: one segment on the wire.
            self._send_bytes(head + proto.send_data(body) + proto.send_end())
            self._headers_sent()
            rec.emit("request.body_sent", {"bytes": len(body)})
            return
        self._send_bytes(head)
        self._headers_sent()
        await self._send_body(body)

    def _headers_sent(self) -> None:
        request = self.request
        self.ctx.recorder.emit(
            "request.headers_sent", {"method": request.method, "url": request.url}
        )

    async def _send_body(self, body) -> None:
        """The body after the head: bytes at once, or an async iterable piece by piece."""
        proto = self.conn.proto
        if isinstance(body, bytes):
            self._send_bytes(proto.send_data(body))
            await self._drain()
            self._send_bytes(proto.send_end())
            self.ctx.recorder.emit("request.body_sent", {"bytes": len(body)})
            return
        sent = 0
        async for piece in body:
            if isinstance(piece, str):
                piece = piece.encode("utf-8")
            if not piece:
                continue
            sent += len(piece)
            self._send_bytes(proto.send_data(piece))
            await self._drain()
        self._send_bytes(proto.send_end())
        self.ctx.recorder.emit("request.body_sent", {"bytes": sent})

    async def _send_expecting_continue(self, head: bytes) -> None:
        """RFC 9110 10.1.1: send the head, wait for 100 Continue (or at most
        ``continue_timeout``), then the body; a final response that comes first
        means the body is never sent (and the connection is not reused)."""
        ctx, proto = self.ctx, self.conn.proto
        self._send_bytes(head)
        self._headers_sent()
        give_up = ctx.driver.monotonic() + ctx.continue_timeout
        while True:
            event = proto.next_event()
            if event is NEED_DATA:
                left = give_up - ctx.driver.monotonic()
                if left <= 0:
                    break
                armed = ctx.arm(ctx.read_timeout, "read_timeout")
                if armed is None or left < armed:
                    try:
                        data = await self.conn.stream.receive(left)
                    except IOTimeout:
                        break  # no answer: send the body anyway, as curl does
                    except OSError as exc:
                        raise NetworkError(f"connection broken: {exc}", phase="send") from None
                else:
                    data = await self._receive("send")
                proto.receive_data(data)
                continue
            if type(event) is InformationalResponse:
                self._informational(event)
                if event.status_code == 100:
                    break
                continue
            self._early = event  # a final response (417, 401, ...): keep the body
            ctx.recorder.emit("request.body_sent", {"bytes": 0, "skipped": True})
            return
        await self._send_body(self.request.body)

    def _informational(self, event) -> None:
        """A 1xx response: recorded, and counted against ``max_informational``
        wherever it arrives (before the body too, with Expect: 100-continue)."""
        self._informational_count += 1
        limit = self.ctx.limits.max_informational
        if self._informational_count > limit:
            raise TooLargeError(f"more than {limit} informational (1xx) responses", phase="wait")
        self.ctx.recorder.emit(
            "response.informational", {"status": event.status_code, "headers": head_headers(event)}
        )

    async def _drain(self) -> None:
        ctx = self.ctx
        try:
            await self.conn.stream.drain(ctx.arm(ctx.read_timeout, "read_timeout"))
        except IOTimeout:
            raise ctx.timeout_error("send") from None
        except OSError as exc:
            raise NetworkError(f"connection broken while sending: {exc}", phase="send") from None

    # -- response head -----------------------------------------------------------
    async def read_head(self, history: list) -> Response:
        ctx, proto = self.ctx, self.conn.proto
        rec = ctx.recorder
        while True:
            event, self._early = (self._early or proto.next_event()), None
            if event is NEED_DATA:
                proto.receive_data(await self._receive("wait"))
                continue
            kind = type(event)
            if kind is H11Response:
                break
            if kind is InformationalResponse:
                self._informational(event)
                continue
            raise ProtocolError(f"server closed the connection before the response ({event!r})")

        headers = head_headers(event)
        limits = ctx.limits
        # h11 bounds only an *incomplete* head; a complete one that arrived in
        # one large read is measured here (name + value + ": " + CRLF per field).
        if (
            self._received > limits.max_header_bytes
            and (
                size := sum(len(n) + len(v) + 4 for n, _, v in headers._items)
                + len(event.reason)
                + 15
            )
            > limits.max_header_bytes
        ):
            raise TooLargeError(
                f"response header block too large: {size} bytes"
                f" (limit max_header_bytes={limits.max_header_bytes})",
                phase="wait",
            )
        if len(headers) > limits.max_headers:
            raise TooLargeError(
                f"response has {len(headers)} header fields (limit {limits.max_headers})",
                phase="wait",
            )
        response = Response(
            self.request,
            event.status_code,
            event.reason.decode("latin-1"),
            "HTTP/" + event.http_version.decode("ascii"),
            headers,
            rec,
            len(rec.hop_starts) - 1,
            history,
        )
        # One pass for the fields the body needs (h11 checked Content-Length).
        lengths, encodings = [], []
        for _, name, value in headers._items:
            if name == b"content-length":
                lengths.append(value)
            elif name == b"content-encoding":
                encodings.append(value)
        response._content_length = (
            int(lengths[0]) if len(lengths) == 1 and lengths[0].isdigit() else None
        )
        response._exchange = self
        self.response = response
        rec.emit(
            "response.headers",
            {
                "status": response.status_code,
                "reason": response.reason,
                "http_version": response.http_version,
                "headers": headers,
                "content_length": response.content_length,
                "chunked": proto.chunked,
            },
        )
        if ctx.decompress and self.request.method != "HEAD":
            codings = parse_content_encoding(encodings) if encodings else None
            if codings:
                self.decoder = make_decoder(
                    codings,
                    max_size=ctx.limits.max_decoded_size,
                    max_codings=ctx.limits.max_encodings,
                )
        return response

    # -- response body -----------------------------------------------------------
    async def next_piece(self):
        """The next (raw, decoded) piece of the body, or None at its end."""
        if self._done:
            return None
        decoder = self.decoder
        proto = self.conn.proto
        try:
            if decoder is not None and decoder.more:
                # Output still pending from the last piece (a bomb, or simply
                # very compressible data): hand it out one bounded step at a
                # time before reading anything more from the socket, and let
                # other tasks run between steps (a bomb decodes for seconds).
                await self.ctx.driver.sleep(0)
                return self._more_decoded()
            while True:
                event = proto.next_event()
                kind = type(event)
                if kind is Data:
                    piece = self._on_data(event)
                    if self.ctx.on_chunk is not None and self.ready_chunks:
                        await self._deliver_chunks()
                    return piece
                if kind is EndOfMessage:
                    piece = self._on_end(event)
                    if self.ctx.on_chunk is not None and self.ready_chunks:
                        await self._deliver_chunks()
                    self.release()
                    return piece
                if event is NEED_DATA:
                    data = await self._receive("download")
                    proto.receive_data(data)
                    continue
                raise ProtocolError(f"unexpected event while reading the body: {event!r}")
        except BaseException as exc:
            self.fail(exc, "download")
            raise

    def _more_decoded(self):
        data = self.decoder.decode(b"")
        response = self.response
        response.decoded_bytes += len(data)
        self.ctx.recorder.emit(
            "response.data", {"bytes": len(data), "wire_bytes": response.wire_bytes}, True
        )
        return b"", data

    def _on_data(self, event):
        raw = event.data
        n = len(raw)
        response = self.response
        response.wire_bytes += n
        decoder = self.decoder
        if decoder is None:
            data = raw
        elif self.want_chunks:
            data = drain(decoder, raw)  # a Chunk carries everything it decoded to
        else:
            data = decoder.decode(raw)
        response.decoded_bytes += len(data)
        rec = self.ctx.recorder
        proto = self.conn.proto
        if self.want_chunks:
            self._chunk_raw.append(raw)
            self._chunk_data.append(data)
        if proto.chunked:
            if event.chunk_end:
                size, extensions = proto.end_of_chunk()
                self._chunk_done(size, extensions, True)
        elif self.want_chunks:
            self._chunk_done(n, (), False)
        rec.emit("response.data", {"bytes": len(data), "wire_bytes": response.wire_bytes}, True)
        return raw, data

    def _chunk_done(self, size: int, extensions: tuple, framed: bool) -> None:
        rec = self.ctx.recorder
        event = (
            rec.emit(
                "response.chunk",
                {"index": self._chunk_index, "size": size, "extensions": extensions},
                True,  # a body event: capped in r.events, always seen live
            )
            if framed
            else None
        )
        if self.want_chunks:
            offset = event.offset if event is not None else rec.offset_now()
            raw = b"".join(self._chunk_raw)
            data = raw if self.decoder is None else b"".join(self._chunk_data)
            self._chunk_raw.clear()
            self._chunk_data.clear()
            chunk = Chunk(
                self._chunk_index,
                size,
                extensions,
                raw,
                data,
                offset,
                offset - self._last_chunk_time if self._chunk_index else offset,
                framed,
            )
            self._last_chunk_time = offset
            self.ready_chunks.append(chunk)
        self._chunk_index += 1

    def _on_end(self, event):
        response = self.response
        if event.headers:
            response.trailers = head_headers(event)
        tail = b""
        if self.decoder is not None:
            tail = self.decoder.flush()
            response.decoded_bytes += len(tail)
        self._done = True
        self.ctx.recorder.emit(
            "response.done",
            {
                "wire_bytes": response.wire_bytes,
                "decoded_bytes": response.decoded_bytes,
                "trailers": response.trailers if event.headers else None,
                "events_dropped": self.ctx.recorder.dropped,
            },
        )
        return (b"", tail)

    async def _deliver_chunks(self) -> None:
        on_chunk = self.ctx.on_chunk
        while self.ready_chunks:
            result = on_chunk(self.ready_chunks.pop(0))
            if hasattr(result, "__await__"):
                # A coroutine callback applies backpressure: nothing more is read
                # until it returns (Tornado 6.6 streaming_callback semantics).
                await result

    async def read_all(self) -> bytes:
        """Read the whole body into memory, bounded by ``max_body_size``."""
        limit = self.ctx.limits.max_body_size
        declared = self.response.content_length
        if limit is not None and declared is not None and declared > limit:
            self._too_large(f"Content-Length {declared} exceeds max_body_size={limit}")
        parts = []
        size = 0
        while True:
            piece = await self.next_piece()
            if piece is None:
                break
            data = piece[1]
            if data:
                size += len(data)
                if limit is not None and size > limit:
                    self._too_large(f"body exceeds max_body_size={limit}")
                parts.append(data)
        if not parts:
            return b""
        return bytes(parts[0]) if len(parts) == 1 else b"".join(parts)

    def _too_large(self, message: str):
        exc = TooLargeError(message, phase="download")
        self.fail(exc, "download")  # never reuse a connection with a body left in it
        raise exc

    # -- ending ------------------------------------------------------------------
    def fail(self, exc: BaseException, phase: str) -> None:
        """Close the connection after an error or a cancellation: never reused."""
        if self._released:
            return
        if isinstance(exc, FetchError):
            exc.with_context(self.request.url, phase)
        self.ctx.note_failure(exc, phase)
        self._released = True
        self.conn.abort()
        self._on_release(self, False)
        self._detach()

    def release(self) -> None:
        """Give the connection back (to the pool when the exchange ended cleanly)."""
        if self._released:
            return
        self._released = True
        proto = self.conn.proto
        if self._done and proto.reusable():
            proto.start_next_cycle()
            self._on_release(self, True)
        else:
            if not self._done and self.response is not None:
                self.ctx.recorder.emit("cancelled", {"reason": "closed before the body was read"})
            self.conn.abort()
            self._on_release(self, False)
        self._detach()

    def _detach(self) -> None:
        """A finished Response keeps its events and body, not the connection
        machinery: 10,000 finished fetches must not hold 10,000 exchanges."""
        if self.response is not None and self.response._exchange is self:
            self.response._exchange = None
