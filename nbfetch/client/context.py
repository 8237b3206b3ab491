"""The state one fetch carries through every hop: its settings, its events, and
the read, connect, queue and request timeouts (the one place a wait is computed)."""

from __future__ import annotations

from typing import Protocol

from ..core.errors import FetchTimeout
from ..core.limits import Limits
from ..core.urls import URL
from ..drivers.base import Driver
from .recorder import Recorder


class FinalHop(Protocol):
    """What the context needs of the last hop's exchange: ending it on an error."""

    def fail(self, exc: BaseException, phase: str) -> None: ...


class FetchContext:
    """The per-fetch settings and state shared by every hop of one fetch."""

    __slots__ = (
        "recorder",
        "driver",
        "url",
        "deadline",
        "connect_timeout",
        "continue_timeout",
        "expect_100_continue",
        "read_timeout",
        "request_timeout",
        "queue_timeout",
        "decompress",
        "on_chunk",
        "limits",
        "follow_redirects",
        "max_redirects",
        "cookies",
        "use_jar",
        "proxies",
        "final",
        "slot_held",
        "failed",
        "retry",
        "digest",
        "flow",
        "opener",
        "wire_taps",
        "body_taps",
        "_chosen",
    )

    def __init__(self, driver: Driver, recorder: Recorder, url: URL, limits: Limits):
        self.driver = driver
        self.recorder = recorder
        self.url = url
        self.limits = limits
        self.deadline: float | None = None
        self.cookies: dict[str, str] = {}  # the fetch's own cookies=
        self.use_jar = True  # False: cookies=False, this fetch neither reads nor fills the jar
        self.proxies = None  # url -> Proxy | None (the client's choice, or this fetch's)
        self.final: FinalHop | None = None  # the exchange of the hop not redirected
        self.slot_held = False
        self.failed = False
        self.retry = None  # the core.retry.Retry policy, or None: no retries
        self.digest = None  # the core.auth.DigestAuth answering a 401, or None
        # Pause and rate_limit (client.flow.Flow): made by rate_limit= or by
        # the first pause() or rate_limit of a Response; None costs nothing.
        self.flow = None
        # client/observe.py: what may answer a hop instead of the network, and
        # the observers' taps on the raw bytes read and the decoded body.
        self.opener = None
        self.wire_taps: list | None = None
        self.body_taps: list | None = None
        self._chosen: tuple[str, float | None] = ("", None)

    def step_timeout(
        self, seconds: float | None, name: str, until: float | None = None
    ) -> float | None:
        """The time to wait for one step: the phase's own timeout (or, for a budget
        several steps share, what is left ``until`` its deadline) or what is left of
        request_timeout, whichever is shorter. Remembers which one it was."""
        wait = seconds
        if until is not None:
            wait = max(until - self.driver.monotonic(), 0.0)
        deadline = self.deadline
        if deadline is not None:
            left = deadline - self.driver.monotonic()
            if wait is None or left < wait:
                self._chosen = ("request_timeout", self.request_timeout)
                return left if left > 0 else 0.0
        self._chosen = (name, seconds)
        return wait

    def deadline_in(self, seconds: float | None) -> float | None:
        """The deadline of a budget of ``seconds`` starting now (None: no bound)."""
        return None if seconds is None else self.driver.monotonic() + seconds

    def timeout_error(self, phase: str) -> FetchTimeout:
        name, seconds = self._chosen
        return FetchTimeout(
            f"{name}={seconds}s expired", url=self.url, phase=phase, timeout=name, seconds=seconds
        )

    def note_failure(self, exc: BaseException, phase: str) -> None:
        """Record the ``error`` (or ``cancelled``) event, once per fetch."""
        if self.failed:
            return
        self.failed = True
        if isinstance(exc, Exception):
            self.recorder.emit(
                "error",
                {
                    "phase": getattr(exc, "phase", phase),
                    "type": type(exc).__name__,
                    "message": str(exc),
                },
            )
        else:  # CancelledError (asyncio), Cancelled (trio), KeyboardInterrupt
            self.recorder.emit("cancelled", {"phase": phase, "type": type(exc).__name__})
