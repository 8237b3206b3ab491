"""The keep-alive pool: idle connections per origin, and the per-host limit.

``Pool`` keeps idle connections per origin; a lookup is one dict access and one
pop (the most recently used connection first: the least likely to have been
closed by the server meanwhile).

What ``client.inspect()`` shows is read from here: every open connection per
origin (``conns``), its ages and request count, who waits for a host. A fetch
pays for that with a few attribute writes; pool *events* (``client/inspect.py``)
are built only while a ``monitor`` is attached, and cost one ``is None`` test
otherwise.
"""

from __future__ import annotations

from collections import deque

from ..core.protocol import ClientProtocol
from ..drivers.base import Driver, Signal


class Connection:
    """One TCP (or TLS) connection and the h11 state machine that runs on it."""

    __slots__ = (
        "busy_since",
        "closed",
        "idle_since",
        "key",
        "local",
        "number",
        "opened_at",
        "pool",
        "proto",
        "remote",
        "request",
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
        self.opened_at = 0.0
        self.busy_since = 0.0  # when its current request took it
        self.request = None  # the Request it serves now (None while idle)
        self.number = 0  # the pool's count of connections opened: #1, #2, ...
        self.requests = 0
        self.closed = False
        self.tls: dict | None = None
        self.synthetic = False  # answered by an opener (client/observe.py): never pooled
        self.local, self.remote = stream.addresses()

    def close(self, reason: str = "closed") -> None:
        """Close (flushing what was written); the pool learns it is gone and
        why (``reason``: what an inspector's "closed" event says)."""
        self._gone(reason)
        self.stream.close()

    def abort(self, reason: str = "aborted") -> None:
        """Close at once, dropping unsent bytes (after an error or a cancel)."""
        self._gone(reason)
        abort = getattr(self.stream, "abort", None)
        (abort or self.stream.close)()

    def _gone(self, reason: str) -> None:
        if not self.closed:
            self.closed = True
            if self.pool is not None:
                self.pool.connection_closed(self, reason)


class Pool:
    """Keep-alive connections per origin, and the optional per-host limit.

    ``idle`` holds connections waiting for a request; ``open`` counts every open
    connection of an origin (idle or busy), which ``max_connections_per_host``
    bounds. A fetch that finds its origin at the limit waits for a connection
    to come back idle or to close.

    ``conns`` holds every connected connection per origin (idle or busy; one
    still connecting is only counted in ``open``, and listed in ``connecting``);
    ``waiters`` and ``connecting`` say since when, and for which request. They
    change per connection or per wait, never on a fetch's fast path.
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
        self.waiters: dict[Signal, tuple] = {}  # signal -> (request, since)
        self.conns: dict[tuple, dict[Connection, None]] = {}  # insertion-ordered sets
        self.connecting: dict[tuple, list[list]] = {}  # key -> [[request, since], ...]
        self.opened = 0
        #: ``client/inspect.py``'s Monitor while someone inspects, else None.
        self.monitor = None

    def take(self, key: tuple) -> Connection | None:
        """An idle connection for ``key`` that is still usable, or None."""
        conns = self.idle.get(key)
        if not conns:
            return None
        now = self.driver.monotonic()
        expiry = self.keepalive_expiry
        while conns:
            conn = conns.pop()
            if conn.stream.is_stale():
                # The server closed it while it was idle (its keep-alive timeout
                # was shorter than ours): RFC 9112 section 9.3 lets it.
                conn.close("dropped as stale")
                continue
            if expiry is not None and now - conn.idle_since > expiry:
                conn.close("expired")
                continue
            conn.busy_since = now
            if self.monitor is not None:
                self.monitor.event("reused", conn, f"request {conn.requests + 1}")
            return conn
        return None

    def may_open(self, key: tuple) -> bool:
        return self.max_per_host is None or self.open.get(key, 0) < self.max_per_host

    def opening(self, key: tuple, request) -> list:
        """Count a connection about to be opened for ``request`` (undone by
        ``connection_closed``); the entry returned goes to ``connected`` or
        ``open_failed``."""
        self.open[key] = self.open.get(key, 0) + 1
        entry = [request, self.driver.monotonic()]
        self.connecting.setdefault(key, []).append(entry)
        return entry

    def connected(self, conn: Connection, entry: list) -> None:
        """``conn`` (of ``opening``'s ``entry``) is open and about to serve its
        first request."""
        self._connected(conn.key, entry)
        conn.opened_at = conn.busy_since = self.driver.monotonic()
        self.opened += 1
        conn.number = self.opened
        self.conns.setdefault(conn.key, {})[conn] = None
        if self.monitor is not None:
            self.monitor.event("opened", conn, "")

    def open_failed(self, key: tuple, entry: list) -> None:
        self._connected(key, entry)
        self._forget(key)

    def _connected(self, key: tuple, entry: list) -> None:
        entries = self.connecting.get(key)
        if entries is not None:
            entries.remove(entry)
            if not entries:
                del self.connecting[key]

    async def wait_for_host(self, key: tuple, timeout: float | None, request=None) -> None:
        """Wait until a connection of ``key`` is idle again or closed."""
        signal = self.driver.signal()
        queue = self.waiting.setdefault(key, deque())
        queue.append(signal)
        self.waiters[signal] = (request, self.driver.monotonic())
        if self.monitor is not None:
            self.monitor.changed()
        try:
            await signal.wait(timeout)
        except BaseException:
            if signal in queue:
                queue.remove(signal)
                if not queue:
                    del self.waiting[key]
            elif signal.is_set():
                self._wake(key)  # our turn came as we left: pass it on
            raise
        finally:
            del self.waiters[signal]

    def put(self, conn: Connection) -> None:
        conns = self.idle.setdefault(conn.key, [])
        if len(conns) >= self.max_idle_per_host:
            conns.pop(0).close("over max_idle_per_host")
        conn.idle_since = self.driver.monotonic()
        conn.request = None  # an idle connection keeps no request (nor its body) alive
        conn.stream.idle()
        conns.append(conn)
        if self.monitor is not None:
            self.monitor.event("went idle", conn, f"served {conn.requests}")
        self._wake(conn.key)

    def connection_closed(self, conn: Connection, reason: str = "closed") -> None:
        key = conn.key
        conns = self.idle.get(key)
        if conns and conn in conns:
            conns.remove(conn)
        live = self.conns.get(key)
        if live is not None:
            live.pop(conn, None)
            if not live:
                del self.conns[key]
        if self.monitor is not None:
            kind = reason if reason in ("expired", "dropped as stale") else "closed"
            self.monitor.event(kind, conn, "" if kind == reason else reason)
        self._forget(key)

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
                conn.close("client closed")
        self.idle.clear()
        if self.monitor is not None:
            # The inspectors' last update; the pool keeps no reference to them.
            self.monitor.client_closed()


__all__ = ["Connection", "Pool"]
