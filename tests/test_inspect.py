"""client.inspect(): the pool and the max_clients queue at known moments.

Responses are held open by servers that wait for the test's signal (a
``threading.Event``), never by sleeping; times are asserted as lower bounds and
orderings only. The live view runs here without a kernel (ipywidgets needs
none); tests/test_inspect_kernel.py shows it in a real one.
"""

from __future__ import annotations

import asyncio
import gc
import json
import threading
import weakref

import pytest
from conftest import wait_until

from nbfetch import AsyncClient
from nbfetch.client.inspect import EVENT_KINDS, Inspection
from nbfetch.notebook.inspect_view import (
    MAX_LIVE,
    InspectView,
    body_html,
    origin_html,
    summary_html,
)

pytestmark = [pytest.mark.anyio, pytest.mark.loop_watchdog]

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


def gated(gate: threading.Event):
    """A keep-alive server whose every answer waits for ``gate``."""

    def handler(conn, server):
        while server.read_request(conn).startswith(b"GET"):
            if not gate.wait(20):
                return
            conn.sendall(OK)

    return handler


def kinds(snap: Inspection, number: int | None = None) -> list[str]:
    return [e.kind for e in snap.events if number is None or e.connection == number]


async def test_reuse_counts_ages_and_the_event_order(demo):
    async with AsyncClient() as c:
        assert c._pool.monitor is None
        c.inspect()  # from here on, events are recorded
        for _ in range(5):
            await c.fetch(demo.url + "/get")
        snap = c.inspect()
    o = snap.origin(demo.url)
    assert snap.origins == [o] and o.origin == demo.url and o.proxy is None
    assert (len(o.idle), o.active, o.waiting, o.connecting) == (1, [], [], [])
    (conn,) = o.idle
    assert (conn.number, conn.state, conn.requests) == (1, "idle", 5)
    assert conn.age >= conn.idle_for >= 0 and conn.expires_in <= snap.keepalive_expiry
    assert conn.remote == f"127.0.0.1:{demo.port}"
    assert kinds(snap) == ["opened", "went idle"] + ["reused", "went idle"] * 4
    assert [e.detail for e in snap.events][-2:] == ["request 5", "served 5"]
    assert o.counts == {**dict.fromkeys(EVENT_KINDS, 0), "opened": 1, "reused": 4, "went idle": 5}
    times = [e.time for e in snap.events]
    assert times == sorted(times) and all(e.ago >= 0 for e in snap.events)
    assert snap.queue.active == 0 and snap.queue.limit == 10 and snap.advice == []
    json.dumps(snap.as_dict())  # plain data
    assert snap.as_dict()["origins"][0]["idle"][0]["requests"] == 5
    assert "1 idle, 0 active" in str(snap)


async def test_no_events_are_built_until_someone_inspects(demo):
    async with AsyncClient() as c:
        await c.fetch(demo.url + "/get")
        assert c._pool.monitor is None and c._queue.monitor is None
        snap = c.inspect()
        # The state is there all the same; the events start now.
        assert snap.origin(demo.url).idle[0].requests == 1 and snap.events == []
        assert c._pool.monitor is c._queue.monitor is not None


async def test_the_event_ring_is_bounded(demo):
    async with AsyncClient() as c:
        c.inspect(events=5)
        for _ in range(10):
            await c.fetch(demo.url + "/get")
        snap = c.inspect(events=1000)  # the ring's size was set once
    assert len(snap.events) == 5 and snap.events[-1].detail == "served 10"
    # The counts are not the ring's: every event counted.
    assert snap.origin(demo.url).counts["went idle"] == 10


async def test_active_idle_and_waiting_for_a_host_at_known_moments(raw_server):
    gate = threading.Event()
    srv = raw_server(gated(gate))
    async with AsyncClient(max_connections_per_host=2) as c:
        c.inspect()
        tasks = [asyncio.ensure_future(c.fetch(f"{srv.url}/{n}")) for n in "abc"]
        await wait_until(lambda: len(srv.received) == 2, what="two requests at the server")
        await wait_until(lambda: c._pool.waiting, what="the third fetch to wait for the host")
        snap = c.inspect()
        after_first = c.driver.monotonic()
        o = snap.origin(srv.url)
        assert (len(o.active), len(o.idle), len(o.waiting), o.open) == (2, 0, 1, 2)
        served = {a.request for a in o.active}
        (waiter,) = o.waiting
        assert served | {waiter.request} == {f"GET {srv.url}/{n}" for n in "abc"}
        assert all(a.state == "active" and a.requests == 1 and a.busy_for >= 0 for a in o.active)
        assert waiter.waited >= 0 and o.max_connections == 2
        assert snap.queue.active == 3 and snap.queue.waiting == []  # slots held, not queued
        assert any("max_connections_per_host=2" in a for a in snap.advice)
        assert "2 of 2 open" in str(snap)
        before_later = c.driver.monotonic()
        later = c.inspect().origin(srv.url)
        assert later.waiting[0].waited - waiter.waited >= before_later - after_first
        gate.set()
        await asyncio.gather(*tasks)
        snap = c.inspect()
    o = snap.origin(srv.url)
    assert (len(o.active), len(o.idle), len(o.waiting)) == (0, 2, 0)
    assert sorted(i.requests for i in o.idle) == [1, 2]  # the waiter reused one
    assert kinds(snap).count("opened") == 2 and kinds(snap).count("reused") == 1
    assert srv.connections == 2


async def test_max_clients_waiters_in_order_with_their_waits(raw_server):
    gate = threading.Event()
    srv = raw_server(gated(gate))
    async with AsyncClient(max_clients=2) as c:
        held = [asyncio.ensure_future(c.fetch(f"{srv.url}/held{n}")) for n in range(2)]
        await wait_until(lambda: len(srv.received) == 2, what="two held requests")
        queued, seen_waiting = [], []
        for n in range(3):
            queued.append(asyncio.ensure_future(c.fetch(f"{srv.url}/q{n}")))
            await wait_until(lambda n=n: len(c._queue.waiting) == n + 1, what=f"waiter {n}")
            seen_waiting.append(c.driver.monotonic())  # waiter n waits since before this
        after = c.driver.monotonic()
        snap = c.inspect()
        q = snap.queue
        assert (q.active, q.limit) == (2, 2)
        assert [w.request for w in q.waiting] == [f"GET {srv.url}/q{n}" for n in range(3)]
        waits = [w.waited for w in q.waiting]
        assert waits[0] >= waits[1] >= waits[2] >= 0  # first in, first out: the first waited most
        for w, seen in zip(q.waiting, seen_waiting, strict=True):
            assert w.waited >= after - seen
        (advice,) = [a for a in snap.advice if "max_clients" in a]
        assert "3 fetch(es) wait for a max_clients slot (all 2 in use" in advice
        active = snap.origin(srv.url).active
        assert sorted(a.request for a in active) == [f"GET {srv.url}/held{n}" for n in range(2)]
        gate.set()
        await asyncio.gather(*held, *queued)
        assert c.inspect().queue.waiting == [] and c.inspect().queue.active == 0


def _closes_idle_connections_on_signal(close_now: threading.Event):
    """Answers one request per connection, keeps it open, then closes it when
    told (as a server's keep-alive timeout would)."""

    def handler(conn, server):
        server.read_request(conn)
        conn.sendall(OK)
        close_now.wait(20)

    return handler


async def test_an_idle_connection_the_server_closed_shows_stale_then_is_dropped(raw_server):
    close_now = threading.Event()
    srv = raw_server(_closes_idle_connections_on_signal(close_now))
    async with AsyncClient() as c:
        c.inspect()
        await c.fetch(srv.url)
        assert c.inspect().origin(srv.url).idle[0].state == "idle"
        close_now.set()  # the server closes its side
        await wait_until(
            lambda: c.inspect().origin(srv.url).idle[0].state == "stale",
            what="the client to see the FIN",
        )
        assert "dropped at next use" in origin_html(c.inspect().origin(srv.url))
        close_now.clear()
        r = await c.fetch(srv.url)
        snap = c.inspect()
    assert r.body == b"ok" and srv.connections == 2
    assert kinds(snap, 1) == ["opened", "went idle", "dropped as stale"]
    assert kinds(snap, 2) == ["opened", "went idle"]
    assert snap.origin(srv.url).counts["dropped as stale"] == 1
    assert any("dropped as stale" in a and "keepalive_expiry" in a for a in snap.advice)
    close_now.set()


async def test_a_connection_closed_at_reuse_is_dropped_as_stale(raw_server):
    def handler(conn, server):
        server.read_request(conn)
        conn.sendall(OK)
        if server.connections == 1:
            server.read_request(conn)  # the reused connection: read, answer nothing

    srv = raw_server(handler)
    async with AsyncClient() as c:
        c.inspect()
        await c.fetch(srv.url)
        r = await c.fetch(srv.url)  # retried once on a new connection
        snap = c.inspect()
    assert r.body == b"ok" and "retry" in [e.name for e in r.events]
    assert kinds(snap, 1) == ["opened", "went idle", "reused", "dropped as stale"]
    assert kinds(snap, 2) == ["opened", "went idle"]


async def test_keepalive_expiry_expires_an_idle_connection(demo):
    async with AsyncClient(keepalive_expiry=0.2) as c:
        c.inspect()
        await c.fetch(demo.url + "/get")
        first = c.inspect().origin(demo.url).idle[0]
        assert 0 < first.expires_in <= 0.2
        await wait_until(lambda: c.inspect().origin(demo.url).idle[0].expires_in < 0, what="expiry")
        await c.fetch(demo.url + "/get")
        snap = c.inspect()
    assert kinds(snap, 1) == ["opened", "went idle", "expired"]
    assert kinds(snap, 2) == ["opened", "went idle"]
    assert snap.origin(demo.url).idle[0].number == 2
    assert any("expired while idle (keepalive_expiry=0.2)" in a for a in snap.advice)


async def test_closed_connections_say_why(demo):
    async with AsyncClient(max_clients=1) as c:
        c.inspect()
        async with c.stream("GET", demo.url + "/bytes/100"):
            pass  # the body left unread: the connection cannot be reused
        await c.fetch(demo.url + "/get")
    snap = c.inspect()
    closed = [e for e in snap.events if e.kind == "closed"]
    assert [(e.connection, e.detail) for e in closed] == [
        (1, "closed before the body was read"),
        (2, "client closed"),
    ]
    assert snap.closed and snap.origins == []


async def test_secrets_are_never_shown(raw_server):
    gate = threading.Event()

    def proxy(conn, server):  # answers as an HTTP proxy would, after the gate
        server.read_request(conn)
        gate.wait(20)
        conn.sendall(OK)

    srv = raw_server(proxy)
    target = "http://alice:hunter2@127.0.0.2:9/path?token=s3cr3t&x=1"
    proxy_url = f"http://puser:ppass@127.0.0.1:{srv.port}"
    async with AsyncClient(proxy=proxy_url) as c:
        c.inspect()
        task = asyncio.ensure_future(c.fetch(target))
        await wait_until(lambda: srv.received, what="the request at the proxy")
        snap = c.inspect()
        gate.set()
        await task
        done = c.inspect()
    (o,) = snap.origins
    assert (o.origin, o.proxy) == ("http://127.0.0.2:9", f"http://127.0.0.1:{srv.port}")
    assert o.active[0].request == "GET http://***@127.0.0.2:9/path?token=***&x=1"
    for shown in (snap, done):
        for text in (
            str(shown),
            json.dumps(shown.as_dict()),
            summary_html(shown) + body_html(shown),
        ):
            for secret in ("hunter2", "alice", "s3cr3t", "puser", "ppass"):
                assert secret not in text


async def test_the_view_follows_the_pool_and_lets_go_when_closed(demo):
    async with AsyncClient() as c:
        view = InspectView(c, throttle=0.01)
        monitor = c._pool.monitor
        assert monitor.listeners == [view._changed]
        await c.fetch(demo.url + "/get")
        body = view.body
        await wait_until(lambda: "went idle" in body.value, what="the view's update")
        assert "#1" in view.body.value and view.snap.origins[0].idle[0].requests == 1
        view.close()
        assert monitor.listeners == [] and view._tick_handle is None
        drawn = view.body.value
        await c.fetch(demo.url + "/get")
        await asyncio.sleep(0)  # a throttled render, had one been asked, would be due later
        assert view.snap.origins[0].idle[0].requests == 1 and view.body.value == drawn
        ref = weakref.ref(view)
        del view
        gc.collect()
        assert ref() is None  # nothing (pool, monitor, loop timers) holds it


async def test_views_a_cell_rerun_drops_are_let_go_and_stop_redrawing(demo):
    # Re-running the cell `client.inspect()` makes a new view each time and
    # never closes the old one (ipywidgets keeps every open model alive): each
    # stayed subscribed and its tick redrew it for as long as the client lived
    # (200 re-runs: 581 renders in 3 idle seconds). At most MAX_LIVE stay live.
    async with AsyncClient() as c:
        await c.fetch(demo.url + "/get")  # an idle connection: its age keeps the tick going
        views = [InspectView(c, tick=0.01) for _ in range(MAX_LIVE + 3)]
        monitor = c._pool.monitor
        assert [fn.__self__ for fn in monitor.listeners] == views[-MAX_LIVE:]
        settled, live = views[:-MAX_LIVE], views[-MAX_LIVE:]
        assert all(v.closed and v._tick_handle is None for v in settled)
        assert not any(v.closed for v in live)
        drawn = [v.summary.value for v in settled]
        await c.fetch(demo.url + "/get")  # a pool event reaches only the live views

        def served(view):
            return [conn.requests for o in view.snap.origins for conn in o.idle + o.active]

        await wait_until(lambda: all(served(v) == [2] for v in live), what="redraws")
        assert [v.summary.value for v in settled] == drawn
        assert all(served(v) == [1] for v in settled)
        for view in live:
            view.close()
        assert monitor.listeners == []


async def test_the_view_stops_when_the_client_closes(demo):
    c = AsyncClient()
    view = InspectView(c, throttle=0.01)
    await c.fetch(demo.url + "/get")
    await c.aclose()
    assert view.closed and c._pool.monitor.listeners == []
    assert "client closed" in view.summary.value
    assert view.snap.closed and view.snap.origins == []
    assert "client closed" in view.body.value  # the last events: the idle one closed
    ref = weakref.ref(view)
    view.close()
    del view
    gc.collect()
    assert ref() is None


async def test_a_view_of_a_closed_client_is_its_last_state(demo):
    c = AsyncClient()
    await c.fetch(demo.url + "/get")
    await c.aclose()
    view = InspectView(c)
    assert view.closed and c._pool.monitor is None
    assert "client closed" in view.summary.value
    view.close()


# -- in a real kernel --------------------------------------------------------------

WIDGET = "application/vnd.jupyter.widget-view+json"


@pytest.mark.timeout(120)
def test_the_live_view_in_a_real_kernel(demo_server, tmp_path):
    """``client.inspect()`` as a cell's value shows the live widget (not a
    repr); it follows the pool as fetches run in later cells, and when the
    client closes its output becomes the static snapshot and the pool lets
    the view go."""
    from kernel import Kernel

    k = Kernel(cwd=str(tmp_path))
    try:
        k.run(f"import nbfetch\nbase = {demo_server.url!r}\nclient = nbfetch.AsyncClient()")
        shown = k.submit("client.inspect()")
        assert k.wait(shown)["status"] == "ok"
        assert k.messages(shown, "execute_result") == []
        (view,) = [m for m in k.messages(shown, "display_data") if WIDGET in m["content"]["data"]]
        display_id = view["content"]["transient"]["display_id"]
        html = [
            w["comm_id"]
            for w in k.widget_models("HTMLModel")
            if w["msg"]["parent_header"]["msg_id"] == shown
        ]
        assert len(html) == 2  # the summary and the body

        def drawn(text):
            def shows(m):
                return (
                    m["msg_type"] == "comm_msg"
                    and m["content"]["comm_id"] in html
                    and text in m["content"]["data"].get("state", {}).get("value", "")
                )

            return shows

        # A streamed response whose body is not read yet: its connection is active.
        k.run("cm = client.stream('GET', base + '/bytes/10')\nr = await cm.__aenter__()")
        update = k.wait_for(drawn(f"GET {demo_server.url}/bytes/10"), timeout=20)
        assert "active" in update["content"]["data"]["state"]["value"]
        k.run("await cm.__aexit__(None, None, None)\nawait client.fetch(base + '/get')")
        k.wait_for(drawn("closed before the body was read"), timeout=20)
        k.wait_for(drawn("went idle"), timeout=20)
        k.run("await client.aclose()")
        static = k.wait_for(
            lambda m: (
                m["msg_type"] == "update_display_data"
                and m["content"]["transient"]["display_id"] == display_id
            ),
            timeout=20,
        )
        data = static["content"]["data"]
        assert 'class="nbfetch-inspect"' in data["text/html"]
        assert "client closed" in data["text/html"] and "(client closed)" in data["text/plain"]
        assert k.value("len(client._pool.monitor.listeners)") == "0"
        closed = {m["content"]["comm_id"] for m in k.iopub if m["msg_type"] == "comm_close"}
        assert set(html) <= closed
    finally:
        k.shutdown()
