"""Responses, and the wire chunks of their bodies.

>>> r = await client.fetch("http://127.0.0.1:8000/get")        # doctest: +SKIP
>>> r.status_code, r.headers["content-type"], r.json()["url"]   # doctest: +SKIP
(200, 'application/json', 'http://127.0.0.1:8000/get')
"""

from __future__ import annotations

import json as jsonlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from ..core.errors import FetchError, HTTPStatusError
from ..core.events import Event, Timing
from ..core.headers import Headers
from ..core.redact import redact_url, request_secrets
from ..core.request import Request
from ..core.urls import URL
from .recorder import Recorder

if TYPE_CHECKING:
    from .flow import Flow


class Chunk:
    """One piece of a body as it came off the wire.

    For a chunked body, each chunk as the server framed it: ``index`` counts the
    wire chunks, ``size`` is the chunk-size its size line declared,
    ``extensions`` its chunk extensions (RFC 9112 7.1.1). For other framings, one
    per read from the socket (``framed`` is False, ``size`` is that read's length).
    A wire chunk larger than 1 MiB arrives as several pieces, so memory stays
    bounded whatever the server's framing: ``position`` is where this piece
    starts inside its wire chunk (bytes), ``last`` whether it ends the chunk;
    a chunk of up to 1 MiB is one piece (``position`` 0, ``last`` True).
    ``raw`` is the piece's payload as sent, ``data`` the bytes it decoded to (the
    same object when there is no Content-Encoding), ``offset`` seconds since the
    fetch started when its last byte arrived, ``gap`` seconds since the previous
    piece.
    """

    __slots__ = (
        "index",
        "size",
        "extensions",
        "raw",
        "data",
        "offset",
        "gap",
        "framed",
        "position",
        "last",
    )

    def __init__(
        self, index, size, extensions, raw, data, offset, gap, framed, position=0, last=True
    ):
        self.index = index
        self.size = size
        self.extensions = extensions
        self.raw = raw
        self.data = data
        self.offset = offset
        self.gap = gap
        self.framed = framed
        self.position = position
        self.last = last

    def __repr__(self) -> str:
        ext = f" ext={self.extensions!r}" if self.extensions else ""
        piece = (
            ""
            if self.position == 0 and self.last
            else (f" piece@{self.position}{' last' if self.last else ''}")
        )
        return f"<Chunk #{self.index} size={self.size}{ext}{piece} +{self.offset * 1000:.1f}ms>"


class Piece(NamedTuple):
    """One step of a body: ``raw`` as received (chunk framing removed), ``data``
    what it decoded to (the same object when nothing is decoded)."""

    raw: bytes
    data: bytes


class BodySource(Protocol):
    """What a Response reads its body from: the exchange of its hop
    (``nbfetch.client.exchange.Exchange``)."""

    async def next_piece(self) -> Piece | None: ...
    async def read_all(self) -> bytes: ...
    async def read_redirect_body(self, limit: int) -> bytes | None: ...
    def skip_decoding(self) -> None: ...
    def collect_chunks(self) -> list[Chunk]: ...
    def release(self) -> None: ...
    def fail(self, exc: BaseException, phase: str) -> None: ...
    def flow_control(self, create: bool) -> Flow | None: ...


def _charset(content_type: str | None) -> str | None:
    if not content_type:
        return None
    for param in content_type.split(";")[1:]:
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset":
            return value.strip().strip('"') or None
    return None


class Response:
    """An HTTP response. ``body`` is available after a buffered ``fetch()`` or
    ``await r.aread()``; a ``stream()`` response is read with ``aiter_bytes()``,
    ``aiter_raw()`` or ``aiter_chunks()``."""

    def __init__(
        self,
        request: Request,
        status_code: int,
        reason: str,
        http_version: str,
        headers: Headers,
        recorder: Recorder,
        hop: int,
        history: list[Response],
        *,
        content_length: int | None = None,
        source: BodySource | None = None,
    ):
        self.request = request
        self.url: URL = request.url
        self.status_code = status_code
        self.reason = reason
        self.http_version = http_version
        self.headers = headers
        self.history = history
        self.trailers = Headers()
        self.wire_bytes = 0  # body bytes as received (before decoding)
        self.decoded_bytes = 0  # body bytes after decoding
        self.error: BaseException | None = None
        self.path = None  # where download() saved the body
        self._recorder = recorder
        self._hop = hop
        self._body: bytes | None = None
        self._source = source  # None once the body was read or its connection released
        self._consumed = False
        self._content_length = content_length
        self._flow_state: Flow | None = None  # kept after the body ended

    # -- status ----------------------------------------------------------------
    @property
    def ok(self) -> bool:
        return self.status_code < 400

    def raise_for_status(self) -> Response:
        """Raise ``HTTPStatusError`` for 4xx/5xx; returns the response otherwise."""
        if self.status_code >= 400:
            kind = "client error" if self.status_code < 500 else "server error"
            raise HTTPStatusError(
                f"{self.status_code} {self.reason} ({kind})", url=self.url, response=self
            ).scrub(request_secrets(self.request))
        return self

    @property
    def content_length(self) -> int | None:
        """The declared body length (None for chunked or close-delimited bodies)."""
        return self._content_length

    # -- events and timing -----------------------------------------------------
    @property
    def events(self) -> list[Event]:
        """Every event of this fetch up to the end of this response's hop."""
        rec = self._recorder
        if self._hop + 1 < len(rec.hop_starts):
            return rec.events[: rec.hop_starts[self._hop + 1]]
        return rec.events

    @property
    def timing(self) -> Timing:
        rec = self._recorder
        start = rec.hop_starts[self._hop]
        end = rec.hop_starts[self._hop + 1] if self._hop + 1 < len(rec.hop_starts) else None
        return Timing(rec.events[start:end], rec.events[0].time if rec.events else rec.start)

    # -- pause, resume, rate limit (client/flow.py) --------------------------------
    def pause(self) -> None:
        """Stop reading the body: nothing more is read from the socket (the
        server's send blocks once the TCP window closes) or handed out, and the
        read timeout does not run (request_timeout does). A
        ``response.paused`` event. Does nothing once the body is over."""
        flow = self._flow()
        if flow is not None:
            flow.pause()

    def resume(self) -> None:
        """Read again after ``pause()`` (a ``response.resumed`` event, with the
        seconds paused); the read timeout starts again, full."""
        flow = self._flow()
        if flow is not None:
            flow.resume()

    @property
    def paused(self) -> bool:
        """Whether the body's reading is paused now (False once it is over)."""
        flow = self._flow(create=False)
        return flow is not None and flow.paused and not flow.ended

    @property
    def rate_limit(self) -> float | None:
        """The download-rate limit in bytes per second (None: none); set it to
        change the rate of the rest of the body."""
        flow = self._flow(create=False)
        return None if flow is None else flow.rate

    @rate_limit.setter
    def rate_limit(self, value: float | None) -> None:
        from .flow import checked_rate

        try:
            rate = checked_rate(value)
        except FetchError as exc:
            raise exc.with_context(self.url, "download") from None
        flow = self._flow()
        if flow is not None:
            flow.set_rate(rate)

    def _flow(self, create: bool = True) -> Flow | None:
        source = self._source
        if source is not None:
            self._flow_state = source.flow_control(create) or self._flow_state
        return self._flow_state

    # -- the body --------------------------------------------------------------
    @property
    def body(self) -> bytes:
        if self._body is None:
            raise FetchError(
                "the body has not been read: use await r.aread() or iterate a stream()",
                url=self.url,
                phase="download",
            )
        return self._body

    @property
    def encoding(self) -> str:
        declared = _charset(self.headers.get("content-type"))
        return declared or "utf-8"

    @property
    def text(self) -> str:
        """The body decoded with the declared charset (UTF-8 when none);
        undecodable bytes become U+FFFD rather than raising."""
        try:
            return self.body.decode(self.encoding, errors="replace")
        except LookupError:  # a charset Python does not know
            return self.body.decode("utf-8", errors="replace")

    def json(self, **kwargs: Any) -> Any:
        return jsonlib.loads(self.body, **kwargs)

    async def aread(self) -> bytes:
        """Read the rest of the body (bounded by ``max_body_size``) and return it."""
        if self._body is None:
            if self._source is None or self._consumed:
                raise FetchError(
                    "the body stream was already consumed", url=self.url, phase="download"
                )
            self._consumed = True
            self._body = await self._source.read_all()
        return self._body

    def _take_stream(self) -> BodySource:
        if self._consumed or self._source is None:
            raise FetchError("the body stream was already consumed", url=self.url, phase="download")
        self._consumed = True
        return self._source

    async def aiter_bytes(self) -> AsyncIterator[bytes]:
        """The body, decoded (Content-Encoding removed), as it arrives."""
        if self._body is not None:
            yield self._body
            return
        exchange = self._take_stream()
        while True:
            piece = await exchange.next_piece()
            if piece is None:
                return
            if piece.data:
                yield piece.data

    async def aiter_raw(self) -> AsyncIterator[bytes]:
        """The body exactly as received (still compressed, chunk framing removed).
        Nothing is decoded, so ``decoded_bytes`` counts the same bytes as ``wire_bytes``."""
        exchange = self._take_stream()
        exchange.skip_decoding()
        while True:
            piece = await exchange.next_piece()
            if piece is None:
                return
            if piece.raw:
                yield bytes(piece.raw)

    async def aiter_chunks(self) -> AsyncIterator[Chunk]:
        """One ``Chunk`` per wire chunk (chunked bodies) or per read (others)."""
        exchange = self._take_stream()
        chunks = exchange.collect_chunks()
        while True:
            piece = await exchange.next_piece()
            if piece is None:
                return
            while chunks:
                yield chunks.pop(0)

    async def aclose(self) -> None:
        """Release the connection (back to the pool if the body was read in full)."""
        if self._source is not None:
            self._source.release()

    async def read_redirect_body(self, limit: int) -> None:
        """For the client, on a redirect hop: read the body to reuse the
        connection, undecoded; a body over ``limit`` bytes is not kept (its
        connection is dropped instead)."""
        body = await self._take_stream().read_redirect_body(limit)
        if body is not None:
            self._body = body

    def detach_body(self) -> None:
        """For the exchange, once it ended: forget it (the body, if read, stays)."""
        self._source = None

    def _interrupted(self, exc: BaseException) -> None:
        """The reader was cancelled mid-body: close the connection, record it."""
        if self._source is not None:
            self._source.fail(exc, "download")

    # -- export ----------------------------------------------------------------
    def to_har(self, *, redact: bool = True) -> dict:
        """HAR 1.2 (one entry per redirect hop), timings from the events. Credential
        headers are redacted unless ``redact=False``; URL userinfo always is."""
        from .export import to_har

        return to_har(self, redact=redact)

    def events_frame(self, *, redact: bool = True):
        """The events as a pandas DataFrame (needs pandas); redacted as ``to_har``."""
        from .export import events_frame

        return events_frame(self, redact=redact)

    # -- display ---------------------------------------------------------------
    # Rich display (text/html in a notebook) is the notebook layer's: it registers
    # its formatter with IPython (nbfetch.notebook.display.register).
    def __repr__(self) -> str:
        # The reason phrase is the server's text: it may echo a credential the
        # request sent ("401 invalid token sk_live_..."), as an error may.
        status = request_secrets(self.request).scrub(f"{self.status_code} {self.reason}")
        return f"<Response [{status}] {redact_url(self.url)}>"


class StreamContext:
    """``async with client.stream(...) as r``: the response, released on exit."""

    __slots__ = ("_opener", "_response")

    def __init__(self, opener):
        self._opener = opener
        self._response: Response | None = None

    async def __aenter__(self) -> Response:
        self._response = await self._opener()
        return self._response

    async def __aexit__(self, exc_type, exc, tb) -> None:
        if self._response is None:
            return
        if exc is not None and not isinstance(exc, (Exception, GeneratorExit)):
            # The caller was cancelled (or interrupted) while reading the body:
            # the fetch was cancelled, not merely closed early. (GeneratorExit is
            # an async generator around the stream being closed: closed early.)
            self._response._interrupted(exc)
        await self._response.aclose()
