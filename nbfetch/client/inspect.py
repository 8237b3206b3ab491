"""``client.inspect()``: the keep-alive pool and the ``max_clients`` queue, now.

An ``Inspection`` is a plain snapshot: per origin (and proxy) the idle and
active connections (age, idle for, requests served), the connections being
opened, the fetches waiting for a connection of that host
(``max_connections_per_host``); the client-wide queue (active, limit, each
waiter and how long it has waited); the recent pool events; and ``advice``,
sentences that answer "why is my pool queueing?" from those numbers.

The pool and the queue keep the state (a few attributes per connection and
per wait); events are built only once a ``Monitor`` is attached, which the
first ``inspect()`` does: a client nobody inspects pays one ``is None`` test
per pool operation. The monitor keeps the last ``events`` events (a ring) and
per-origin counts for at most ``MAX_ORIGINS`` origins, so its memory is bounded.

URLs are shown through ``redact_url`` (no userinfo, no secret-named query
values), proxies by their ``display`` form (no credentials).

>>> snap = client.inspect()                                       # doctest: +SKIP
>>> snap.origin("http://127.0.0.1:8000").idle[0].requests          # doctest: +SKIP
3
"""

from __future__ import annotations

import time
import weakref
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

from ..core.redact import redact_url

if TYPE_CHECKING:
    from .pool import Connection, Pool
    from .queue import MaxClientsQueue

#: The pool events, in the order a connection meets them.
EVENT_KINDS = ("opened", "reused", "went idle", "expired", "dropped as stale", "closed")
#: Origins whose event counts a monitor keeps (a crawler meets thousands).
MAX_ORIGINS = 256
#: The recent events ``str()`` of an Inspection lists (``events`` has them all).
EVENT_LINES = 10


def origin_text(key: tuple) -> str:
    """``scheme://host:port`` of a pool key (its host as the URL has it:
    an IPv6 literal in brackets)."""
    scheme, host, port = key[:3]
    return f"{scheme}://{host}:{port}"


def proxy_text(key: tuple) -> str | None:
    """The proxy of a pool key by its display form (never its credentials)."""
    return key[3].display if len(key) > 3 else None


def _address(pair) -> str:
    if not pair:
        return ""
    host, port = pair[0], pair[1]
    return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"


def _what(request) -> str:
    """``METHOD url`` of a Request (or a URL alone), redacted."""
    if request is None:
        return ""
    method = getattr(request, "method", None)
    url = redact_url(getattr(request, "url", request))
    return f"{method} {url}" if method else url


class Monitor:
    """Attached to a pool and a queue while the client is inspected: records
    pool events in a ring and tells listeners (live views) that something
    changed. A listener is a callable of no arguments, held weakly when it is a
    bound method (a view nobody holds any more is not kept alive by the pool it
    watches); ``client_closed`` calls each a last time and forgets them all."""

    def __init__(self, clock: Callable[[], float], size: int):
        self.clock = clock
        self.events: deque[tuple] = deque(maxlen=size)  # (t, kind, key, number, detail)
        self.counts: dict[tuple, dict[str, int]] = {}
        self._listeners: list[Callable[[], Callable | None]] = []
        self.since = clock()

    def subscribe(self, listener: Callable[[], None]) -> None:
        if hasattr(listener, "__self__"):
            self._listeners.append(weakref.WeakMethod(listener))
        else:
            self._listeners.append(lambda: listener)

    def unsubscribe(self, listener: Callable[[], None]) -> None:
        self._listeners = [ref for ref in self._listeners if ref() not in (None, listener)]

    @property
    def listeners(self) -> list[Callable[[], None]]:
        """The listeners still alive, oldest first."""
        alive = [(ref, ref()) for ref in self._listeners]
        self._listeners = [ref for ref, fn in alive if fn is not None]
        return [fn for _, fn in alive if fn is not None]

    def event(self, kind: str, conn: Connection, detail: str) -> None:
        key = conn.key
        self.events.append((self.clock(), kind, key, conn.number, detail))
        counts = self.counts.get(key)
        if counts is None:
            if len(self.counts) >= MAX_ORIGINS:
                del self.counts[next(iter(self.counts))]  # the origin met first
            counts = self.counts[key] = dict.fromkeys(EVENT_KINDS, 0)
        counts[kind] += 1
        self.changed()

    def changed(self) -> None:
        for listener in self.listeners:
            listener()

    def client_closed(self) -> None:
        listeners, self._listeners = self.listeners, []
        for listener in listeners:
            listener()


@dataclass(frozen=True)
class ConnectionInfo:
    """One open connection. ``requests`` counts the requests it has carried
    (its reuse count is ``requests - 1``); times are seconds."""

    number: int  # the pool's order of opening: #1 is the first connection
    state: str  # "idle", "active", or "stale" (idle, closed by the server: dropped at next use)
    local: str
    remote: str
    age: float
    requests: int
    idle_for: float | None = None
    expires_in: float | None = None  # keepalive_expiry left while idle
    request: str | None = None  # what an active connection serves (redacted)
    busy_for: float | None = None
    tls: str | None = None  # the TLS version, for https


@dataclass(frozen=True)
class Waiter:
    """A fetch waiting (for a ``max_clients`` slot, a connection of its host,
    or a connection being opened) and for how long so far."""

    request: str
    waited: float


@dataclass(frozen=True)
class OriginInfo:
    """The pool of one origin (through one proxy, when ``proxy`` is set)."""

    origin: str
    proxy: str | None
    idle: list[ConnectionInfo]
    active: list[ConnectionInfo]
    connecting: list[Waiter]
    waiting: list[Waiter]  # for a connection of this host (max_connections_per_host)
    max_connections: int | None
    counts: dict[str, int] | None  # events per kind since inspection began

    @property
    def open(self) -> int:
        """Connections counted against ``max_connections_per_host``."""
        return len(self.idle) + len(self.active) + len(self.connecting)


@dataclass(frozen=True)
class QueueInfo:
    """The client-wide ``max_clients`` queue; ``waiting`` first in first out."""

    active: int
    limit: int
    waiting: list[Waiter]


@dataclass(frozen=True)
class PoolEvent:
    kind: str
    origin: str
    proxy: str | None
    connection: int
    detail: str
    time: float  # wall clock (time.time())
    ago: float  # seconds before the snapshot


@dataclass(frozen=True, repr=False)
class Inspection:
    """What ``client.inspect()`` returns: the pool and the queue at ``time``.

    In a Jupyter kernel it displays as a live view of the same client (the
    notebook layer registers that display); anywhere it is data: attributes,
    ``as_dict()``, ``origin(url)``, and ``str()`` for a script's log."""

    time: float
    closed: bool
    queue: QueueInfo
    origins: list[OriginInfo]
    events: list[PoolEvent]  # newest last; empty until inspection began
    recording_since: float  # wall clock of the first inspect()
    keepalive_expiry: float | None
    max_idle_per_host: int
    max_connections_per_host: int | None
    advice: list[str] = field(default_factory=list)
    client: object = field(default=None, repr=False, compare=False)

    def origin(self, url: str) -> OriginInfo:
        """The entry of ``url``'s origin (``http://host:port``, a whole URL, or
        an ``OriginInfo.origin``); direct before proxied. KeyError if none."""
        from ..core.urls import URL

        wanted = origin_text(URL.parse(url).origin)
        for info in self.origins:
            if info.origin == wanted:
                return info
        raise KeyError(f"no connection or waiter for {wanted} in the pool")

    def as_dict(self) -> dict:
        """Plain dicts, lists, numbers and strings (JSON-ready)."""
        data = {
            name: getattr(self, name)
            for name in self.__dataclass_fields__
            if name not in ("client", "origins", "queue", "events")
        }
        data["queue"] = asdict(self.queue)
        data["origins"] = [{**asdict(o), "open": o.open} for o in self.origins]
        data["events"] = [asdict(e) for e in self.events]
        return data

    def __str__(self) -> str:
        return "\n".join(text_lines(self))

    __repr__ = __str__


def text_lines(snap: Inspection) -> list[str]:
    q = snap.queue
    lines = [
        f"max_clients: {q.active}/{q.limit} active, {len(q.waiting)} waiting"
        + ("  (client closed)" if snap.closed else "")
    ]
    lines += [f"  waiting {w.waited:.3f} s: {w.request}" for w in q.waiting]
    for o in snap.origins:
        via = f" via {o.proxy}" if o.proxy else ""
        limit = "" if o.max_connections is None else f" of {o.max_connections}"
        lines.append(
            f"{o.origin}{via}: {o.open}{limit} open ({len(o.idle)} idle, {len(o.active)} active,"
            f" {len(o.connecting)} connecting), {len(o.waiting)} waiting for a connection"
        )
        for c in o.active:
            lines.append(
                f"  #{c.number} active {c.busy_for:.3f} s: {c.request}"
                f" (age {c.age:.3f} s, request {c.requests})"
            )
        for c in o.idle:
            lines.append(
                f"  #{c.number} {c.state} for {c.idle_for:.3f} s"
                f" (age {c.age:.3f} s, served {c.requests})"
            )
        lines += [f"  connecting {w.waited:.3f} s: {w.request}" for w in o.connecting]
        lines += [f"  waiting {w.waited:.3f} s: {w.request}" for w in o.waiting]
    lines += [f"advice: {a}" for a in snap.advice]
    for e in snap.events[-EVENT_LINES:]:
        detail = f" ({e.detail})" if e.detail else ""
        lines.append(f"{e.ago:9.3f} s ago  #{e.connection} {e.kind}{detail}  {e.origin}")
    return lines


def inspect_client(client, events: int = 200) -> Inspection:
    """The snapshot of ``client``; attaches its monitor on the first call."""
    pool, queue = client._pool, client._queue
    if pool.monitor is None and not client.closed:
        monitor = Monitor(client.driver.monotonic, max(1, events))
        pool.monitor = queue.monitor = monitor
    return snapshot(client)


def snapshot(client) -> Inspection:
    pool: Pool = client._pool
    queue: MaxClientsQueue = client._queue
    monitor: Monitor | None = pool.monitor
    now = client.driver.monotonic()
    wall = time.time()
    expiry = pool.keepalive_expiry

    def conn_info(conn: Connection, idle: bool) -> ConnectionInfo:
        tls = conn.tls.get("version") if conn.tls else None
        common = dict(
            number=conn.number,
            local=_address(conn.local),
            remote=_address(conn.remote),
            age=now - conn.opened_at,
            requests=conn.requests,
            tls=tls,
        )
        if idle:
            idle_for = now - conn.idle_since
            return ConnectionInfo(
                state="stale" if conn.stream.is_stale() else "idle",
                idle_for=idle_for,
                expires_in=None if expiry is None else expiry - idle_for,
                **common,
            )
        return ConnectionInfo(
            state="active",
            request=_what(conn.request),
            busy_for=now - conn.busy_since,
            **common,
        )

    keys = list(dict.fromkeys([*pool.conns, *pool.connecting, *pool.waiting]))
    origins = []
    for key in keys:
        idle_set = set(pool.idle.get(key, ()))
        conns = list(pool.conns.get(key, ()))
        origins.append(
            OriginInfo(
                origin=origin_text(key),
                proxy=proxy_text(key),
                # Most recently used first: the one the next fetch takes.
                idle=sorted(
                    (conn_info(c, True) for c in conns if c in idle_set),
                    key=lambda c: c.idle_for,
                ),
                active=[conn_info(c, False) for c in conns if c not in idle_set],
                connecting=[Waiter(_what(u), now - t) for u, t in pool.connecting.get(key, ())],
                waiting=[
                    Waiter(_what(pool.waiters[s][0]), now - pool.waiters[s][1])
                    for s in pool.waiting.get(key, ())
                    if s in pool.waiters
                ],
                max_connections=pool.max_per_host,
                counts=None if monitor is None else dict(monitor.counts.get(key) or {}),
            )
        )
    q = QueueInfo(
        active=queue.active,
        limit=queue.limit,
        waiting=[
            Waiter(_what(queue.waiters[s][0]), now - queue.waiters[s][1])
            for s in queue.waiting
            if s in queue.waiters
        ],
    )
    recorded = []
    if monitor is not None:
        recorded = [
            PoolEvent(
                kind, origin_text(key), proxy_text(key), number, detail, wall - (now - t), now - t
            )
            for t, kind, key, number, detail in monitor.events
        ]
    snap = Inspection(
        time=wall,
        closed=client.closed,
        queue=q,
        origins=origins,
        events=recorded,
        recording_since=wall - (now - monitor.since) if monitor is not None else wall,
        keepalive_expiry=expiry,
        max_idle_per_host=pool.max_idle_per_host,
        max_connections_per_host=pool.max_per_host,
        client=client,
    )
    snap.advice.extend(advice(snap))
    return snap


def advice(snap: Inspection) -> list[str]:
    """Why fetches wait, or why connections are not reused, from the numbers."""
    out = []
    q = snap.queue
    if q.waiting:
        on_conns = sum(len(o.active) + len(o.connecting) + len(o.waiting) for o in snap.origins)
        out.append(
            f"{len(q.waiting)} fetch(es) wait for a max_clients slot (all {q.limit} in use,"
            f" the longest for {q.waiting[0].waited:.3g} s): raise max_clients, or see what"
            f" the {q.active} active fetches do"
            + (
                f" ({q.active - on_conns} hold a slot without a busy connection: a retry's"
                " wait, or a streamed response nobody reads or closes)"
                if q.active > on_conns
                else ""
            )
        )
    for o in snap.origins:
        if o.waiting:
            out.append(
                f"{len(o.waiting)} fetch(es) wait for a connection to {o.origin}:"
                f" max_connections_per_host={o.max_connections}, {o.open} open"
                f" (the longest wait {o.waiting[0].waited:.3g} s)"
            )
        counts = o.counts or {}
        if counts.get("dropped as stale"):
            out.append(
                f"{counts['dropped as stale']} connection(s) to {o.origin} were dropped as stale:"
                " the server closes idle connections sooner than keepalive_expiry="
                f"{snap.keepalive_expiry}: set it below the server's keep-alive timeout"
            )
        if counts.get("expired") and counts.get("opened", 0) > counts.get("reused", 0):
            out.append(
                f"{counts['expired']} connection(s) to {o.origin} expired while idle"
                f" (keepalive_expiry={snap.keepalive_expiry}) and new ones were opened:"
                " a longer keepalive_expiry would reuse them"
            )
    return out


__all__ = [
    "ConnectionInfo",
    "Inspection",
    "Monitor",
    "OriginInfo",
    "PoolEvent",
    "QueueInfo",
    "Waiter",
    "inspect_client",
]
