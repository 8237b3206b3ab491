"""Pause, resume and a download-rate limit for one fetch's body.

    async with client.stream("GET", url, rate_limit=100_000) as r:   # 100 KB/s
        async for data in r.aiter_bytes():
            if enough_for_now(data):
                r.pause()          # from any task of the loop: a widget, a timer
    ...
    r.resume(); r.rate_limit = None

**Pause** stops the reading at the socket: the driver reads nothing more
(asyncio's ``transport.pause_reading()``; trio calls no ``receive``), the
kernel's receive buffer fills, the TCP window closes and the server's send
blocks (RFC 9293 section 3.8.6). Nothing is handed to the reader either, in
any phase of the body (a piece h11 or a decoder still holds waits too).

While the user paused, the read timeout does not run: it guards against a
*server* gone silent, and a paused server is silent because we asked. It
restarts, full, on resume. ``request_timeout`` still runs: it bounds the whole
fetch, and a paused fetch keeps its connection and its ``max_clients`` slot, so
a pause forgotten in a notebook must not hold them for ever (servers drop an
idle connection after a while anyway). For a long pause, fetch with
``request_timeout=None``.

**rate_limit** (bytes per second; ``None``: no limit) paces the reads: each
read from the socket takes at most ``rate * PACE_INTERVAL`` bytes (at least
``MIN_READ``) and the next one waits until the last one's bytes are paid for
at the rate. Nothing is read ahead, so the rest stays in the kernel and the
server sees a slow reader. Over any stretch of time the body arrives at most at
the rate, plus one read (0.1 s of it). A new limit applies from the next read.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..core.errors import InvalidRequest
from ..drivers.base import IOTimeout

if TYPE_CHECKING:
    from ..drivers.base import Signal, Stream
    from .context import FetchContext

#: Seconds of the rate one paced read may take: its size bound, and so the
#: granularity of the pacing (and how late a paced read may start).
PACE_INTERVAL = 0.1
#: The smallest paced read (a 1 KB/s limit reads 1 KiB a second, not 100 B
#: ten times a second).
MIN_READ = 1024


def checked_rate(value) -> float | None:
    """``rate_limit`` as bytes per second: a positive number, or None."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise InvalidRequest(
            f"rate_limit must be a positive number of bytes per second or None, not {value!r}"
        )
    return float(value)


class Flow:
    """The pause state and rate limit of one fetch (``FetchContext.flow``),
    acting on the connection its body is read from."""

    __slots__ = ("ctx", "paused", "rate", "ended", "_stream", "_resumed", "_paused_at", "_next")

    def __init__(self, ctx: FetchContext, rate: float | None = None):
        self.ctx = ctx
        self.paused = False
        self.rate = rate
        self.ended = False
        self._stream: Stream | None = None
        self._resumed: Signal | None = None
        self._paused_at = 0.0
        self._next = 0.0  # when the next paced read may start (driver clock)

    @property
    def read_size(self) -> int:
        return max(MIN_READ, int(self.rate * PACE_INTERVAL))

    # -- the connection ------------------------------------------------------------
    def attach(self, stream: Stream) -> None:
        """Read the body from ``stream`` (each hop's exchange attaches its own:
        an attempt after a failed one starts again)."""
        self._stream = stream
        self.ended = False
        if self.rate is not None:
            stream.limit_reads(self.read_size)
        if self.paused:
            stream.pause_reading()

    def detach(self, stream: Stream, reusable: bool, ended: bool) -> None:
        """The exchange on ``stream`` is over: a connection going back to the
        pool reads as any other again (never paused, never paced). ``ended``:
        the fetch's last body is over, pause and resume do nothing from now on."""
        if self._stream is stream:
            self._stream = None
        if reusable:
            stream.resume_reading()
            stream.limit_reads(None)
        if ended:
            self.ended = True
            self.paused = False
            if self._resumed is not None:
                self._resumed.set()  # a reader still waiting goes on (and finds the end)

    # -- the user's side -------------------------------------------------------------
    def pause(self) -> None:
        if self.paused or self.ended:
            return
        self.paused = True
        self._paused_at = self.ctx.driver.monotonic()
        self.ctx.recorder.emit("response.paused", {"wire_bytes": self._wire_bytes()})
        if self._stream is not None:
            self._stream.pause_reading()

    def resume(self) -> None:
        if not self.paused:
            return
        self.paused = False
        seconds = self.ctx.driver.monotonic() - self._paused_at
        self.ctx.recorder.emit("response.resumed", {"paused": seconds})
        if self._stream is not None:
            self._stream.resume_reading()
        if self._resumed is not None:
            self._resumed.set()

    def set_rate(self, value) -> None:
        self.rate = rate = checked_rate(value)
        self._next = 0.0  # no debt carried over from another rate
        if self._stream is not None:
            self._stream.limit_reads(None if rate is None else self.read_size)

    def _wire_bytes(self) -> int:
        final = self.ctx.final
        response = getattr(final, "response", None)
        return response.wire_bytes if response is not None else 0

    # -- the reader's side (the exchange) ---------------------------------------------
    async def wait(self, phase: str) -> None:
        """Return once resumed. The read timeout does not run meanwhile;
        request_timeout does (see the module's docstring)."""
        ctx = self.ctx
        while self.paused:
            signal = self._resumed
            if signal is None or signal.is_set():
                # Made here, in the reader's task: pause() may come from code
                # with no running loop of the driver's kind at hand.
                signal = self._resumed = ctx.driver.signal()
            timeout = ctx.step_timeout(None, "request_timeout")
            try:
                if timeout == 0.0:
                    raise IOTimeout()
                await signal.wait(timeout)
            except IOTimeout:
                raise ctx.timeout_error(phase).with_hint(
                    "it ran out while the response was paused:"
                    " fetch with request_timeout=None to pause for longer"
                ) from None

    async def pace(self) -> None:
        """Wait for the next paced read's turn; in steps of at most
        PACE_INTERVAL, so that a new rate (or none, or a pause) applies at once."""
        driver = self.ctx.driver
        while self.rate is not None and not self.paused:
            left = self._next - driver.monotonic()
            if left <= 0:
                return
            await driver.sleep(min(left, PACE_INTERVAL))

    def took(self, nbytes: int) -> None:
        """A read of ``nbytes`` ended: the next one waits until they are paid for."""
        if self.rate is not None:
            # At most one paced read's worth: a read that began under a higher
            # rate (or none) is not charged in full at a lower one (a stall of
            # seconds right after the user slowed it down). Drivers bound their
            # reads to ``read_size`` (``Stream.limit_reads``), so no other
            # read is larger.
            self._next = self.ctx.driver.monotonic() + min(nbytes, self.read_size) / self.rate
