"""The ``max_clients`` queue: Tornado's ``self.queue`` made visible. A fetch
beyond the limit waits, first in first out, and its wait shows up as
``timing.queue`` (the ``queued`` and ``dequeued`` events), and in
``client.inspect()`` with how long each waiter has waited so far."""

from __future__ import annotations

from collections import deque

from ..drivers.base import Driver, Signal


class MaxClientsQueue:
    """At most ``limit`` fetches in flight; the others wait in FIFO order.

    ``waiters`` says, per waiting signal, for which request and since when:
    written when a fetch starts to wait (the slow path), never by
    ``try_acquire``; ``monitor`` (an inspector's, else None) hears of changes.
    """

    def __init__(self, driver: Driver, limit: int):
        if limit < 1:
            raise ValueError("max_clients must be at least 1")
        self.driver = driver
        self.limit = limit
        self.active = 0
        self.waiting: deque[Signal] = deque()
        self.waiters: dict[Signal, tuple] = {}  # signal -> (request, since)
        self.monitor = None

    def try_acquire(self) -> bool:
        if self.active < self.limit and not self.waiting:
            self.active += 1
            if self.monitor is not None:
                self.monitor.changed()
            return True
        return False

    async def acquire(self, timeout: float | None, request=None) -> None:
        """Wait for a slot. On timeout or cancellation the fetch leaves the queue."""
        signal = self.driver.signal()
        self.waiting.append(signal)
        self.waiters[signal] = (request, self.driver.monotonic())
        if self.monitor is not None:
            self.monitor.changed()
        try:
            await signal.wait(timeout)
        except BaseException:
            if signal.is_set():
                self.release()  # granted at the same moment: hand it on
            else:
                self.waiting.remove(signal)
            raise
        finally:
            del self.waiters[signal]

    def release(self) -> None:
        # Hand the slot straight to the next waiter: ``active`` stays the same.
        if self.waiting:
            self.waiting.popleft().set()
        else:
            self.active -= 1
        if self.monitor is not None:
            self.monitor.changed()
