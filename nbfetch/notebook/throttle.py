"""Coalescing widget updates: the fetch never waits for the view."""

from __future__ import annotations

import asyncio
from collections.abc import Callable


class Throttle:
    """Calls ``render`` at most once per ``interval`` seconds on the running loop.

    ``request()`` asks for a render soon (many requests, one render);
    ``now()`` renders at once and drops the pending one (the exact final state).
    Outside a running loop every request renders at once.
    """

    __slots__ = ("_timer", "interval", "render")

    def __init__(self, render: Callable[[], None], interval: float):
        self.render = render
        self.interval = interval
        self._timer: asyncio.TimerHandle | None = None

    def request(self) -> None:
        if self._timer is not None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.render()
            return
        self._timer = loop.call_later(self.interval, self._fire)

    def _fire(self) -> None:
        self._timer = None
        self.render()

    def cancel(self) -> None:
        """Drop the pending render, if any (a view closing)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def now(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.render()
