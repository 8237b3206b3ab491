"""One request/response exchange (one redirect hop) on one connection.

This is the hot path: send the request, read the head (Tornado's
``read_until_regex``), then pump the body — each h11 ``Data`` becomes raw bytes
counted on the wire, decoded bytes, and, for chunked bodies, a ``response.chunk``
event when the wire chunk it belongs to is complete (Tornado's chunk-size
``read_until`` and ``read_bytes``).
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

from ..core.decoders import make_decoder, parse_content_encoding
from ..core.errors import FetchError, NetworkError, ProtocolError, TooLargeError
from ..core.multipart import FileSource, MultipartBody
from ..core.protocol import NEED_DATA, Data, EndOfMessage, InformationalResponse, head_headers
from ..core.protocol import Response as H11Response
from ..core.redact import request_secrets
from ..drivers.base import IOTimeout, ReadPaused
from .flow import Flow
from .response import Chunk, Piece, Response

if TYPE_CHECKING:
    from .context import FetchContext
    from .pool import Connection


#: Seconds of body work after which the exchange lets other tasks run (the
#: loop must never be blocked for long, whatever the server's framing).
YIELD_EVERY = 0.02

#: The most raw (or decoded) bytes one ``Chunk`` holds: a larger wire chunk
#: reaches ``on_chunk`` / ``aiter_chunks()`` as several pieces.
PIECE_BYTES = 1024 * 1024

#: Small wire chunks h11 already holds are handed out together, up to this many
#: bytes and events: a body of 100-byte chunks costs one piece (one decoding
#: step, one ``response.data``) per 16 KiB rather than per chunk. Not when
#: chunks are collected one by one (``aiter_chunks()``, ``on_chunk``).
COALESCE_BYTES = 16 * 1024
COALESCE_EVENTS = 256

#: request.body_progress comes after at least this many more bytes are sent,
#: and at least 1/PROGRESS_STEPS of a known total: at most about 256 events per
#: upload (body events, capped in r.events like response.data), yet every
#: 64 KiB (one file read) of a slow upload moves the bar.
PROGRESS_BYTES = 64 * 1024
PROGRESS_STEPS = 256


def _tap(taps: list, data) -> None:
    """Hand ``data`` to an observer's taps (client/observe.py); one that
    raises is logged and dropped, never breaking the fetch."""
    for tap in tuple(taps):
        try:
            tap(data)
        except Exception:
            import logging

            logging.getLogger("nbfetch").exception("nbfetch tap %r failed; removed", tap)
            taps.remove(tap)


class StaleConnection(Exception):
    """A reused connection failed before any byte of the response: safe to retry
    an idempotent request on a new connection (RFC 9110 section 9.2.2)."""


class UploadPieces:
    """A ``files=`` body as an async iterator of bytes: in-memory segments as they
    are, each file in ``READ_BYTES`` reads done in a worker thread (disk I/O stays
    off the loop; at most one read is held per file)."""

    __slots__ = ("_segments", "_file", "_read")

    def __init__(self, body: MultipartBody, read):
        self._segments = body.segments()
        self._file: FileSource | None = None
        self._read = read

    def __aiter__(self):
        return self

    async def __anext__(self) -> bytes:
        while True:
            if self._file is not None:
                data = await self._read(self._file)
                if self._file.finished:
                    self._file = None
                if data:
                    return data
                continue
            segment = next(self._segments, None)
            if segment is None:
                raise StopAsyncIteration
            if not isinstance(segment, FileSource):
                return segment
            self._file = segment


async def measure_upload(request, ctx: FetchContext) -> None:
    """Frame a ``files=`` body by its files' sizes now (each attempt measures
    again: a file rewritten before a retry is framed as it is then). In a worker
    thread (a stat on a hung share, a zip member seeked to its end) and before a
    connection is opened: a missing file or a FIFO fails in phase "request",
    with nothing opened or sent."""
    body = request.body
    if not isinstance(body, MultipartBody):
        return
    try:
        length = await ctx.driver.run_sync(body.measure, ctx.step_timeout(None, "request_timeout"))
    except IOTimeout:
        raise ctx.timeout_error("request") from None
    request.framed(length)


class Exchange:
    __slots__ = (
        "conn",
        "request",
        "ctx",
        "reused",
        "response",
        "decoder",
        "want_chunks",
        "redirected",
        "ready_chunks",
        "_piece_raw",
        "_piece_data",
        "_piece_bytes",
        "_piece_decoded",
        "_piece_position",
        "_piece_chunk",
        "_piece_wire_end",
        "_wire_seen",
        "_early",
        "_held",
        "_chunk_index",
        "_last_chunk_time",
        "_yield_at",
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
        #: Set before a redirect's body is read: its response.done ends a hop,
        #: not the fetch, and says so (a view must not finish there).
        self.redirected = False
        self.ready_chunks: list[Chunk] = []  # few at a time: a list, not a deque
        # The wire chunk being read, and the Chunk piece being gathered from it.
        self._piece_raw: list = []
        self._piece_data: list = []
        self._piece_bytes = 0  # raw bytes in the piece
        self._piece_decoded = 0  # decoded bytes in the piece
        self._piece_position = 0  # where the piece starts in its wire chunk
        self._piece_chunk: tuple[int, tuple] = (0, ())  # (declared size, extensions)
        self._piece_wire_end = False  # the wire chunk's last raw byte is in the piece
        self._wire_seen = -1  # bytes of the current wire chunk; -1 between chunks
        self._chunk_index = 0
        self._yield_at = ctx.driver.monotonic() + YIELD_EVERY
        self._last_chunk_time = 0.0
        self._early = None  # a final response that came before the body was sent
        self._held = None  # an event (or error) that came after a coalesced piece
        self._done = False
        self._released = False
        self._got_bytes = False
        self._received = 0
        self._informational_count = 0
        self._on_release = on_release
        if ctx.flow is not None:
            ctx.flow.attach(conn.stream)

    # -- I/O helpers -----------------------------------------------------------
    async def _receive(self, phase: str) -> bytes:
        ctx = self.ctx
        flow = ctx.flow
        while True:
            if flow is not None:
                # Paused: wait here, with no read (and no read timeout) running.
                if flow.paused:
                    await flow.wait(phase)
                if flow.rate is not None:
                    await flow.pace()
                    if flow.paused:
                        continue
            timeout = ctx.step_timeout(ctx.read_timeout, "read_timeout")
            if timeout == 0.0:
                # request_timeout has passed. A receive() of bytes already buffered
                # would not wait at all, so its timer could never fire: a consumer
                # slower than the server would never time out.
                raise ctx.timeout_error(phase)
            try:
                data = await self.conn.stream.receive(timeout)
                break
            except ReadPaused:
                # pause() while this read waited: nothing was taken; its read
                # timeout starts again, full, on resume.
                flow = ctx.flow
            except IOTimeout:
                raise ctx.timeout_error(phase) from None
            except OSError as exc:
                if self.reused and not self._got_bytes:
                    raise StaleConnection(str(exc)) from None
                raise NetworkError(f"connection broken: {exc}", phase=phase) from None
        if flow is not None:
            flow.took(len(data))
        if data:
            self._got_bytes = True
            self._received += len(data)
            if ctx.wire_taps:
                _tap(ctx.wire_taps, data)
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
        try:
            if self.request.body is None:
                self._send_head()  # nothing to wait for: no coroutine below
            else:
                await self._send_request_and_body()
        except NetworkError:
            # The server may have answered and closed before it read the body
            # (a 413, a 307, a 503): that answer is the response (RFC 9112
            # section 9.6: a server closes so that the client can still read
            # it), and retries and redirects apply to it. The connection is not
            # reused: the request was not sent in full, so h11 never marks it
            # reusable.
            if not await self._answer_before_failure():
                raise

    async def _answer_before_failure(self) -> bool:
        """Whether a final response head is in what the server sent before the
        send failed (kept in self._early for read_head)."""
        proto = self.conn.proto
        while True:
            try:
                event = proto.next_event()
                if event is NEED_DATA:
                    data = await self.conn.stream.receive(
                        self.ctx.step_timeout(self.ctx.read_timeout, "read_timeout")
                    )
                    if not data:
                        return False
                    proto.receive_data(data)
                    continue
            except (OSError, IOTimeout, FetchError):
                return False  # nothing usable came: the send error stands
            if type(event) is InformationalResponse:
                self._informational(event)
                continue
            if type(event) is not H11Response:
                return False
            self._early = event
            return True

    async def _send_request_and_body(self) -> None:
        # A files= body was measured and framed by measure_upload(); each path
        # is opened when its part is sent (UploadPieces).
        body = self.request.body
        try:
            await self._send_request(body)
        finally:
            if isinstance(body, MultipartBody):
                # The files nbfetch opened, on every path (cancel too); one being
                # read is closed by its read's thread (FileSource.close).
                body.close()

    async def _send_request(self, body) -> None:
        ctx, proto, request = self.ctx, self.conn.proto, self.request
        rec = ctx.recorder
        if body is None:
            self._send_head()
            return
        head = proto.send_request(request.h11_request())
        self.conn.requests += 1
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

    def _send_head(self) -> None:
        """A request without a body: its head and end in one write."""
        proto = self.conn.proto
        head = proto.send_request(self.request.h11_request())
        self.conn.requests += 1
        self._send_bytes(head + proto.send_end())
        self._headers_sent()
        self.ctx.recorder.emit("request.body_sent", {"bytes": 0})

    def _headers_sent(self) -> None:
        request = self.request
        self.ctx.recorder.emit(
            "request.headers_sent",
            # The Headers as sent (Host included); every text form of events
            # redacts them (Headers repr, HAR, events_frame).
            {"method": request.method, "url": request.url, "headers": request.headers},
        )

    async def _send_body(self, body) -> None:
        """The body after the head: bytes in 1 MiB slices (each written and drained
        before the next, so a large body never holds the loop while it is copied),
        or an async iterable piece by piece (a ``files=`` body is one: its files
        read in a worker thread). ``request.body_progress`` says how far it got."""
        proto = self.conn.proto
        length = self.request.headers.get("content-length")
        total = int(length) if length is not None and length.isdigit() else None
        step = max(PROGRESS_BYTES, (total or 0) // PROGRESS_STEPS)
        reported = 0

        def progress(sent: int, last: bool = False) -> None:
            nonlocal reported
            # The last event (when there were others) says it all went: the bar's end.
            if sent - reported >= step or (last and reported and sent != reported):
                reported = sent
                self.ctx.recorder.emit(
                    "request.body_progress", {"bytes": sent, "total": total}, True
                )

        if isinstance(body, bytes):
            view = memoryview(body)
            for start in range(0, len(body), PIECE_BYTES):
                self._send_bytes(proto.send_data(view[start : start + PIECE_BYTES]))
                await self._drain()
                progress(min(start + PIECE_BYTES, len(body)))
            progress(len(body), last=True)
            self._send_bytes(proto.send_end())
            self.ctx.recorder.emit("request.body_sent", {"bytes": len(body)})
            return
        sent = 0
        ours = isinstance(body, MultipartBody)
        pieces = UploadPieces(body, self._read_file) if ours else body.__aiter__()
        while True:
            try:
                # Each of our file reads has its own timer (_read_file).
                next_piece = pieces.__anext__()
                piece = await (next_piece if ours else self._bounded(next_piece, "send"))
            except StopAsyncIteration:
                break
            if isinstance(piece, str):
                piece = piece.encode("utf-8")
            if not piece:
                continue
            sent += len(piece)
            self._send_bytes(proto.send_data(piece))
            await self._drain()
            progress(sent)
        progress(sent, last=True)
        self._send_bytes(proto.send_end())
        self.ctx.recorder.emit("request.body_sent", {"bytes": sent})

    async def _read_file(self, source: FileSource) -> bytes:
        """One read of an upload's file in a worker thread, within what is left
        of request_timeout (a stuck network file system must not hang the fetch)."""
        ctx = self.ctx
        try:
            return await ctx.driver.run_sync(source.read, ctx.step_timeout(None, "request_timeout"))
        except IOTimeout:
            raise ctx.timeout_error("send") from None

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
                read_wait = ctx.step_timeout(ctx.read_timeout, "read_timeout")
                if read_wait is None or left < read_wait:
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
            await self.conn.stream.drain(ctx.step_timeout(ctx.read_timeout, "read_timeout"))
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

        headers = proto.head  # this event's, built once by the protocol
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
        # The fields the body needs, read as the protocol built the Headers
        # (h11 checked Content-Length).
        lengths, encodings = proto.content_lengths, proto.content_encodings
        response = Response(
            self.request,
            event.status_code,
            event.reason.decode("latin-1"),
            "HTTP/" + event.http_version.decode("ascii"),
            headers,
            rec,
            len(rec.hop_starts) - 1,
            history,
            content_length=int(lengths[0]) if len(lengths) == 1 and lengths[0].isdigit() else None,
            source=self,
        )
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
    def skip_decoding(self) -> None:
        """Hand out the body as received: Content-Encoding is not removed."""
        self.decoder = None

    def flow_control(self, create: bool) -> Flow | None:
        """The fetch's pause and rate-limit state (made on first use when
        ``create``), acting on this exchange's connection; None once the
        exchange is over."""
        if self._released:
            return None
        ctx = self.ctx
        if ctx.flow is None and create:
            ctx.flow = Flow(ctx)
            ctx.flow.attach(self.conn.stream)
        return ctx.flow

    def collect_chunks(self) -> list[Chunk]:
        """Gather ``Chunk`` pieces from now on; returns the list they are appended
        to (the reader pops them from its front)."""
        self.want_chunks = True
        return self.ready_chunks

    async def next_piece(self) -> Piece | None:
        """The next piece of the body, or None at its end."""
        if self._done:
            return None
        decoder = self.decoder
        proto = self.conn.proto
        driver = self.ctx.driver
        try:
            flow = self.ctx.flow
            if flow is not None and flow.paused:
                # Nothing is handed out while paused either: not a piece that
                # h11 already holds, not a decoder's pending output.
                await flow.wait("download")
            # A read can hold thousands of tiny chunks, each an h11 event, and a
            # receive() of buffered bytes does not suspend: let other tasks run
            # at least every YIELD_EVERY seconds of body work.
            if driver.monotonic() >= self._yield_at:
                await driver.sleep(0)
                self._yield_at = driver.monotonic() + YIELD_EVERY
            if decoder is not None and decoder.more:
                # Output still pending from the last piece (a bomb, or simply
                # very compressible data): hand it out one bounded step at a
                # time before reading anything more from the socket, and let
                # other tasks run between steps (a bomb decodes for seconds).
                await self.ctx.driver.sleep(0)
                piece = self._more_decoded()
            else:
                while True:
                    if self._held is not None:
                        event, self._held = self._held, None
                        if isinstance(event, BaseException):
                            raise event
                    else:
                        event = proto.next_event()
                    kind = type(event)
                    if kind is Data:
                        if proto.chunked and not self.want_chunks:
                            piece = self._on_chunked_data(event)
                        else:
                            piece = self._on_data(event)
                        break
                    if kind is EndOfMessage:
                        piece = self._on_end(event)
                        break
                    if event is NEED_DATA:
                        data = await self._receive("download")
                        proto.receive_data(data)
                        continue
                    raise ProtocolError(f"unexpected event while reading the body: {event!r}")
            if self.ready_chunks and self.ctx.on_chunk is not None:
                await self._deliver_chunks()
            if self._done:
                self.release()
            return piece
        except BaseException as exc:
            self.fail(exc, "download")
            raise

    def _more_decoded(self):
        data = self.decoder.decode(b"")
        if self.want_chunks:
            self._collect(b"", data)
        return self._handed_out(b"", data)

    def _handed_out(self, raw, data) -> Piece:
        """The piece of the body given to the reader: counted, and its
        ``response.data`` event (the wire bytes were counted as they came)."""
        response = self.response
        response.decoded_bytes += len(data)
        if self.ctx.body_taps and data:
            _tap(self.ctx.body_taps, data)
        self.ctx.recorder.emit(
            "response.data", {"bytes": len(data), "wire_bytes": response.wire_bytes}, True
        )
        return Piece(raw, data)

    def _on_data(self, event):
        raw = event.data
        n = len(raw)
        self.response.wire_bytes += n
        decoder = self.decoder
        # One bounded decoding step; what is left is handed out by next_piece()
        # before anything more is read (decoder.more).
        data = raw if decoder is None else decoder.decode(raw)
        if self.conn.proto.chunked:
            self._follow_wire_chunk(event, n)
        elif self.want_chunks:
            # Not chunked: one "chunk" per read from the socket, as sized by it.
            self._piece_chunk = (n, ())
            self._piece_wire_end = True
        if self.want_chunks:
            self._collect(raw, data)
        return self._handed_out(raw, data)

    def _on_chunked_data(self, event) -> Piece:
        """``event`` and the small chunks after it that h11 already holds, as one
        piece (see COALESCE_BYTES). Each chunk is decoded and checked as it is
        taken, as one piece per chunk would be; what ends the run (the body's
        end, an error in a later chunk, its framing or its decoding) is held for
        the next call: the bytes before it are handed out first."""
        proto, decoder = self.conn.proto, self.decoder
        raw = event.data
        data = raw if decoder is None else decoder.decode(raw)
        self._follow_wire_chunk(event, len(raw))
        size = len(raw)
        raws = datas = None
        while size < COALESCE_BYTES and (raws is None or len(raws) < COALESCE_EVENTS):
            if decoder is not None and decoder.more:
                break  # output pending: handed out step by step by next_piece()
            try:
                more = proto.next_event()
                if type(more) is not Data:
                    if more is not NEED_DATA:
                        self._held = more
                    break
                more_data = more.data if decoder is None else decoder.decode(more.data)
                self._follow_wire_chunk(more, len(more.data))
            except FetchError as exc:
                self._held = exc
                break
            if raws is None:
                raws, datas = [raw], [data]
            raws.append(more.data)
            datas.append(more_data)
            size += len(more.data)
        if raws is not None:
            raw = b"".join(raws)
            data = raw if decoder is None else b"".join(datas)
        self.response.wire_bytes += size
        return self._handed_out(raw, data)

    def _follow_wire_chunk(self, event, n: int) -> None:
        """Chunk boundaries come from h11; the size line (read by the protocol's
        tap) gives the declared size and extensions, and the two must agree.
        A chunk starts with the first ``Data`` after the previous ``chunk_end``:
        h11's ``chunk_start`` is False when a size line arrived without data."""
        if self._wire_seen < 0:
            self._piece_chunk = self.conn.proto.chunk_header()
            self._wire_seen = 0
        self._wire_seen += n
        if event.chunk_end:
            size, extensions = self._piece_chunk
            if self._wire_seen != size:
                raise ProtocolError(
                    f"chunk #{self._chunk_index} carried {self._wire_seen} bytes,"
                    f" its size line said {size}"
                )
            self._wire_seen = -1
            self._piece_wire_end = True
            self.ctx.recorder.emit(
                "response.chunk",
                {"index": self._chunk_index, "size": size, "extensions": extensions},
                True,  # a body event: capped in r.events, always seen live
            )
            if not self.want_chunks:
                self._chunk_index += 1
                self._piece_wire_end = False

    def _collect(self, raw, data) -> None:
        """Gather the current wire chunk into ``Chunk`` pieces of at most
        ``PIECE_BYTES`` (raw or decoded): one 300 MiB wire chunk must not be held
        whole. The last piece of a wire chunk is the one after its last raw byte
        and after the decoder has handed out everything that byte decoded to."""
        room = PIECE_BYTES - self._piece_bytes
        if len(raw) > room:  # fill this piece, then whole pieces (views, no copies)
            view, at = memoryview(raw), room
            self._piece_raw.append(view[:at])
            self._piece_bytes = PIECE_BYTES
            self._emit_piece(False)
            while len(raw) - at > PIECE_BYTES:
                self._piece_raw.append(view[at : at + PIECE_BYTES])
                self._piece_bytes = PIECE_BYTES
                self._emit_piece(False)
                at += PIECE_BYTES
            raw = view[at:]
        if raw:
            self._piece_raw.append(raw)
            self._piece_bytes += len(raw)
        if data and self.decoder is not None:  # without one, data *is* raw
            if self._piece_decoded and self._piece_decoded + len(data) > PIECE_BYTES:
                self._emit_piece(False)
            self._piece_data.append(data)
            self._piece_decoded += len(data)
        if self._piece_wire_end and not (self.decoder is not None and self.decoder.more):
            self._emit_piece(True)
        elif self._piece_bytes == PIECE_BYTES or self._piece_decoded >= PIECE_BYTES:
            self._emit_piece(False)

    def _emit_piece(self, last: bool) -> None:
        rec = self.ctx.recorder
        size, extensions = self._piece_chunk
        raw_parts, data_parts = self._piece_raw, self._piece_data
        raw = bytes(raw_parts[0]) if len(raw_parts) == 1 else b"".join(raw_parts)
        if self.decoder is None:
            data = raw
        else:
            data = data_parts[0] if len(data_parts) == 1 else b"".join(data_parts)
        offset = rec.offset_now()  # one clock for every piece: gaps never negative
        index = self._chunk_index
        chunk = Chunk(
            index,
            size,
            extensions,
            raw,
            data,
            offset,
            offset - self._last_chunk_time if index or self._piece_position else offset,
            self.conn.proto.chunked,
            self._piece_position,
            last,
        )
        self._last_chunk_time = offset
        self.ready_chunks.append(chunk)
        raw_parts.clear()
        data_parts.clear()
        self._piece_decoded = 0
        if last:
            self._chunk_index += 1
            self._piece_position = 0
            self._piece_wire_end = False
        else:
            self._piece_position += self._piece_bytes
        self._piece_bytes = 0

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
                "redirected": self.redirected,
            },
        )
        return Piece(b"", tail)

    async def _deliver_chunks(self) -> None:
        on_chunk = self.ctx.on_chunk
        while self.ready_chunks:
            result = on_chunk(self.ready_chunks.pop(0))
            if hasattr(result, "__await__"):
                # A coroutine callback applies backpressure: nothing more is read
                # until it returns (Tornado 6.6 streaming_callback semantics).
                await self._bounded(result, "download")

    async def _bounded(self, awaitable, phase: str):
        """Await the caller's own code (a body iterator, a coroutine on_chunk)
        within what is left of request_timeout: it bounds the whole fetch."""
        ctx = self.ctx
        timeout = ctx.step_timeout(None, "request_timeout")
        if timeout is None:
            return await awaitable

        async def wait():  # any awaitable (a Future too) as a coroutine
            return await awaitable

        try:
            return await ctx.driver.wait_for(wait(), timeout)
        except IOTimeout:
            raise ctx.timeout_error(phase) from None

    async def read_all(self) -> bytes:
        """Read the whole body into memory, bounded by ``max_body_size``.

        Pieces are written into one growing buffer and handed out without a
        final copy (``BytesIO.getvalue()`` shares its buffer), so a buffered
        body costs about its own size in memory, not twice that."""
        limit = self.ctx.limits.max_body_size
        declared = self.response.content_length
        if limit is not None and declared is not None and declared > limit:
            self._too_large(f"Content-Length {declared:,} exceeds max_body_size={limit}")
        first = None
        buffer = None
        size = 0
        while True:
            piece = await self.next_piece()
            if piece is None:
                break
            data = piece.data
            if data:
                size += len(data)
                if limit is not None and size > limit:
                    self._too_large(f"body exceeds max_body_size={limit} bytes")
                if first is None:
                    first = data  # most bodies are one piece: no buffer at all
                elif buffer is None:
                    buffer = io.BytesIO()
                    buffer.write(first)
                    buffer.write(data)
                else:
                    buffer.write(data)
        if buffer is not None:
            return buffer.getvalue()
        return b"" if first is None else bytes(first)

    async def read_redirect_body(self, limit: int) -> bytes | None:
        """A redirect's body, read to reuse its connection and never decoded (a
        bomb in a 3xx costs nothing); None when it is larger than ``limit``
        bytes: then the connection is dropped instead."""
        self.decoder = None
        parts, size = [], 0
        while (piece := await self.next_piece()) is not None:
            size += len(piece.raw)
            if size > limit:
                self.release(f"redirect body larger than max_redirect_body={limit}")
                return None
            parts.append(piece.raw)
        return b"".join(parts)

    def _too_large(self, message: str):
        exc = TooLargeError(
            message + ": stream it (client.stream() and aiter_bytes()), save it to a file"
            " (await client.download(url, path), %fetch -o FILE), or raise the limit"
            " (AsyncClient(limits=Limits(max_body_size=...)))",
            phase="download",
        )
        self.fail(exc, "download")  # never reuse a connection with a body left in it
        raise exc

    # -- ending ------------------------------------------------------------------
    def fail(self, exc: BaseException, phase: str) -> None:
        """Close the connection after an error or a cancellation: never reused."""
        if self._released:
            return
        if isinstance(exc, FetchError):
            exc.with_context(self.request.url, phase).scrub(request_secrets(self.request))
        self.ctx.note_failure(exc, phase)
        self._released = True
        # The type and phase only: an exception's message may name a secret.
        self.conn.abort(f"{type(exc).__name__} in {phase}")
        if self.ctx.flow is not None:
            self.ctx.flow.detach(self.conn.stream, False, True)
        self._on_release(self, False)
        self._detach()

    def release(self, reason: str = "closed before the body was read") -> None:
        """Give the connection back (to the pool when the exchange ended cleanly).
        With the body unread, the connection is closed: a ``connection.dropped``
        event says why (the fetch itself was not cancelled)."""
        if self._released:
            return
        self._released = True
        proto = self.conn.proto
        # A server may close (or send more) right after a complete response: the
        # pool would find out at the next checkout; it is not worth keeping.
        reusable = self._done and proto.reusable() and not self.conn.stream.is_stale()
        if self.ctx.flow is not None:
            # Before the pool gets it: a pooled connection is never paused or paced.
            self.ctx.flow.detach(self.conn.stream, reusable, not self.redirected)
        if reusable:
            proto.start_next_cycle()
            self._on_release(self, True)
        else:
            if not self._done and self.response is not None:
                self.ctx.recorder.emit("connection.dropped", {"reason": reason})
            elif self._done:  # a complete response on a connection not kept
                reason = "not reusable (Connection: close, or closed by the server)"
            self.conn.abort(reason)
            self._on_release(self, False)
        self._detach()

    def _detach(self) -> None:
        """A finished Response keeps its events and body, not the connection
        machinery: 10,000 finished fetches must not hold 10,000 exchanges."""
        if self.response is not None:
            self.response.detach_body()
        ctx = self.ctx
        if ctx.final is self and ctx.flow is None:
            # ctx.final and self.ctx make a cycle that only the cycle collector
            # would free (with the connection, the response and the events of
            # every fetch): once released, nothing needs ctx.final but a Flow
            # (its wire byte count), kept when there is one.
            ctx.final = None
