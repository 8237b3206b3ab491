"""The keep-alive pool: idle connections per origin, and the per-host limit.

``Pool`` keeps idle connections per origin; a lookup is one dict access and one
pop (the most recently used connection first: the least likely to have been
closed by the server meanwhile).
"""

from __future__ import annotations

from collections import deque

from ..core.protocol import ClientProtocol
from ..drivers.base import Driver, Signal


class Connection:
    """One TCP (or TLS) connection and the h11 state machine that runs on it."""

    __slots__ = (
        "closed",
        "idle_since",
        "key",
        "local",
        "pool",
        "proto",
        "remote",
        "requests",
        "stream",
        "synthetic",
        "tls",
    )

    def __init__(self, stream, key: tuple, max_header_bytes: int):
        self.stream = stream
        self.proto = ClientProtocol(max_header_bytes)
        self.key = key
        self.pool: Pool | None = None  # set once connected: then the pool counts its closing
        self.idle_since = 0.0
        self.requests = 0
        self.closed = False
        self.tls: dict | None = None
        self.synthetic = False  # answered by an opener (client/observe.py): never pooled
        self.local, self.remote = stream.addresses()

    def close(self) -> None:
        """Close (flushing what was written); the pool learns it is gone."""
        self._gone()
        self.stream.close()

    def abort(self) -> None:
        """Close at once, dropping unsent bytes (after an error or a cancel)."""
        self._gone()
        abort = getattr(self.stream, "abort", None)
        (abort or self.stream.close)()

    def _gone(self) -> None:
        if not self.closed:
            self.closed = True
            if self.pool is not None:
                self.pool.connection_closed(self)


class Pool:
    """Keep-alive connections per origin, and the optional per-host limit.

    ``idle`` holds connections waiting for a request; ``open`` counts every open
    connection of an origin (idle or busy), which ``max_connections_per_host``
    bounds. A fetch that finds its origin at the limit waits for a connection
    to come back idle or to close.
    """

    def __init__(
        self,
        driver: Driver,
        keepalive_expiry: float | None,
        max_connections_per_host: int | None = None,
        max_idle_per_host: int = 32,
    ):
        if max_connections_per_host is not None and max_connections_per_host < 1:
            raise ValueError("max_connections_per_host must be at least 1 (or None)")
        self.driver = driver
        self.keepalive_expiry = keepalive_expiry
        self.max_per_host = max_connections_per_host
        self.max_idle_per_host = max_idle_per_host
        self.idle: dict[tuple, list[Connection]] = {}
        self.open: dict[tuple, int] = {}
        self.waiting: dict[tuple, deque[Signal]] = {}

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

    def may_open(self, key: tuple) -> bool:
        return self.max_per_host is None or self.open.get(key, 0) < self.max_per_host

    def opening(self, key: tuple) -> None:
        """Count a connection about to be opened (undone by ``connection_closed``)."""
        self.open[key] = self.open.get(key, 0) + 1

    def open_failed(self, key: tuple) -> None:
        self._forget(key)

    async def wait_for_host(self, key: tuple, timeout: float | None) -> None:
        """Wait until a connection of ``key`` is idle again or closed."""
        signal = self.driver.signal()
        queue = self.waiting.setdefault(key, deque())
        queue.append(signal)
        try:
            await signal.wait(timeout)
        except BaseException:
            if signal in queue:
                queue.remove(signal)
            elif signal.is_set():
                self._wake(key)  # our turn came as we left: pass it on
            raise

    def put(self, conn: Connection) -> None:
        conns = self.idle.setdefault(conn.key, [])
        if len(conns) >= self.max_idle_per_host:
            conns.pop(0).close()
        conn.idle_since = self.driver.monotonic()
        conn.stream.idle()
        conns.append(conn)
        self._wake(conn.key)

    def connection_closed(self, conn: Connection) -> None:
        conns = self.idle.get(conn.key)
        if conns and conn in conns:
            conns.remove(conn)
        self._forget(conn.key)

    def _forget(self, key: tuple) -> None:
        n = self.open.get(key, 0) - 1
        if n > 0:
            self.open[key] = n
        else:
            self.open.pop(key, None)
        self._wake(key)

    def _wake(self, key: tuple) -> None:
        queue = self.waiting.get(key)
        if queue:
            queue.popleft().set()
            if not queue:
                del self.waiting[key]

    def close_all(self) -> None:
        for conns in list(self.idle.values()):
            for conn in list(conns):
                conn.close()
        self.idle.clear()


__all__ = ["Connection", "Pool"]
