"""The keep-alive pool and the max_clients queue.

``Slots`` is Tornado's ``max_clients`` queue made visible: a fetch beyond the
limit waits, first in first out, and its wait shows up as ``timing.queue``.
``Pool`` keeps idle connections per origin; a lookup is one dict access and one
pop (the most recently used connection first: the least likely to have been
closed by the server meanwhile).
"""

from __future__ import annotations

from collections import deque

from .core.protocol import ClientProtocol
from .drivers.base import Driver, IOTimeout, Signal


class Connection:
    """One TCP (or TLS) connection and the h11 state machine that runs on it."""

    __slots__ = ("stream", "proto", "key", "idle_since", "requests", "tls", "local", "remote")

    def __init__(self, stream, key: tuple, max_header_bytes: int):
        self.stream = stream
        self.proto = ClientProtocol(max_header_bytes)
        self.key = key
        self.idle_since = 0.0
        self.requests = 0
        self.tls: dict | None = None
        self.local, self.remote = stream.addresses()

    def close(self) -> None:
        self.stream.close()

    def abort(self) -> None:
        abort = getattr(self.stream, "abort", None)
        (abort or self.stream.close)()


class Pool:
    """Idle keep-alive connections, keyed by (scheme, host, port, tls settings)."""

    def __init__(self, driver: Driver, keepalive_expiry: float | None, max_idle_per_host: int = 32):
        self.driver = driver
        self.keepalive_expiry = keepalive_expiry
        self.max_idle_per_host = max_idle_per_host
        self.idle: dict[tuple, list[Connection]] = {}

    def take(self, key: tuple) -> Connection | None:
        """An idle connection for ``key`` that is still usable, or None."""
        conns = self.idle.get(key)
        if not conns:
            return None
        now = self.driver.monotonic()
        expiry = self.keepalive_expiry
        while conns:
            conn = conns.pop()
            if conn.stream.is_stale() or (expiry is not None and now - conn.idle_since > expiry):
                conn.close()
                continue
            return conn
        return None

    def put(self, conn: Connection) -> None:
        conns = self.idle.setdefault(conn.key, [])
        if len(conns) >= self.max_idle_per_host:
            conns.pop(0).close()
        conn.idle_since = self.driver.monotonic()
        conns.append(conn)

    def count(self) -> int:
        return sum(len(c) for c in self.idle.values())

    def close_all(self) -> None:
        for conns in self.idle.values():
            for conn in conns:
                conn.close()
        self.idle.clear()


class Slots:
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
        while self.waiting:
            signal = self.waiting.popleft()
            signal.set()
            return
        self.active -= 1


__all__ = ["Connection", "Pool", "Slots", "IOTimeout"]
