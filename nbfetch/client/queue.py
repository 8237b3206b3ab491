"""The ``max_clients`` queue: Tornado's ``self.queue`` made visible. A fetch
beyond the limit waits, first in first out, and its wait shows up as
``timing.queue`` (the ``queued`` and ``dequeued`` events)."""

from __future__ import annotations

from collections import deque

from ..drivers.base import Driver, Signal


class MaxClientsQueue:
    """At most ``limit`` fetches in flight; the others wait in FIFO order."""

    def __init__(self, driver: Driver, limit: int):
        if limit < 1:
            raise ValueError("max_clients must be at least 1")
        self.driver = driver
        self.limit = limit
        self.active = 0
        self.waiting: deque[Signal] = deque()

    def try_acquire(self) -> bool:
        if self.active < self.limit and not self.waiting:
            self.active += 1
            return True
        return False

    async def acquire(self, timeout: float | None) -> None:
        """Wait for a slot. On timeout or cancellation the fetch leaves the queue."""
        signal = self.driver.signal()
        self.waiting.append(signal)
        try:
            await signal.wait(timeout)
        except BaseException:
            if signal.is_set():
                self.release()  # granted at the same moment: hand it on
            else:
                self.waiting.remove(signal)
            raise

    def release(self) -> None:
        # Hand the slot straight to the next waiter: ``active`` stays the same.
        if self.waiting:
            self.waiting.popleft().set()
        else:
            self.active -= 1
