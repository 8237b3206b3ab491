"""The client under real conditions: pool, queue, timeouts, redirects, resolver."""

import asyncio
import socket
import threading
import time

import pytest
from conftest import (
    assert_timer_fired,
    assert_timing_sane,
    client_sockets_to,
    idle_connections,
    wait_until,
)

import nbfetch
from nbfetch import AsyncClient
from nbfetch.core.events import Timing
from nbfetch.demo import DemoServer

pytestmark = [pytest.mark.anyio, pytest.mark.loop_watchdog]


def names(r):
    return [e.name for e in r.events]


# -- keep-alive pool -------------------------------------------------------------


async def test_idle_connection_closed_by_the_server_is_not_used(raw_server):
    closed = threading.Event()

    def handler(conn, server):
        server.read_request(conn)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        conn.close()  # closes while the client holds it idle
        closed.set()

    srv = raw_server(handler)
    async with AsyncClient() as c:
        await c.fetch(srv.url)
        await asyncio.get_running_loop().run_in_executor(None, closed.wait, 5)
        for _ in range(100):  # until the FIN has reached the client's socket
            idle = c._pool.idle.get(("http", "127.0.0.1", srv.port), [])
            if not idle or idle[0].stream.is_stale():
                break
            await asyncio.sleep(0.01)
        r = await c.fetch(srv.url)
    assert r.body == b"ok" and srv.connections == 2
    assert "retry" not in names(r) and "connection.reused" not in names(r)


def _answers_once_then_drops_the_next_request(conn, server):
    server.read_request(conn)
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    if server.connections == 1:
        server.read_request(conn)  # the reused connection: read it, answer nothing
        return
    time.sleep(0.5)


async def test_stale_pooled_connection_is_retried_once_for_idempotent_requests(raw_server):
    srv = raw_server(_answers_once_then_drops_the_next_request)
    async with AsyncClient() as c:
        await c.fetch(srv.url)
        r = await c.fetch(srv.url)
    assert r.body == b"ok" and srv.connections == 2
    assert names(r).count("retry") == 1
    assert_timing_sane(r.timing)  # the failed attempt's time goes to connect, not below 0
    assert (
        names(r).index("connection.reused")
        < names(r).index("retry")
        < names(r).index("connect.start")
    )


async def test_post_on_a_stale_connection_is_not_retried(raw_server):
    srv = raw_server(_answers_once_then_drops_the_next_request)
    async with AsyncClient() as c:
        await c.fetch(srv.url)
        with pytest.raises(nbfetch.NetworkError, match="keep-alive"):
            await c.fetch(srv.url, "POST", body=b"once only")
    assert srv.connections == 1


async def test_max_connections_per_host(demo):
    async with AsyncClient(max_clients=10, max_connections_per_host=2) as c:
        rs = await asyncio.gather(*[c.fetch(demo.url + "/delay/0.05") for _ in range(10)])
        assert c._pool.open == {("http", "127.0.0.1", demo.port): 2}
    assert all(r.status_code == 200 for r in rs)
    assert demo.stats["connections"] == 2 and demo.stats["max_in_flight"] == 2
    assert c._pool.open == {}


async def test_idle_expiry(demo):
    async with AsyncClient(keepalive_expiry=0.05) as c:
        await c.fetch(demo.url + "/get")
        await asyncio.sleep(0.1)  # longer than the expiry: that is the behaviour under test
        r = await c.fetch(demo.url + "/get")
    assert "connection.reused" not in names(r) and demo.stats["connections"] == 2


async def test_aclose_closes_idle_connections_and_refuses_new_fetches(demo):
    c = AsyncClient()
    await c.fetch(demo.url + "/get")
    conn = c._pool.idle[("http", "127.0.0.1", demo.port)][0]
    await c.aclose()
    assert conn.closed and idle_connections(c) == 0 and c._pool.open == {}
    with pytest.raises(nbfetch.InvalidRequest, match="closed"):
        await c.fetch(demo.url + "/get")


# -- the max_clients queue ---------------------------------------------------------


async def test_queue_timeout(demo):
    async with AsyncClient(max_clients=1) as c:
        first = asyncio.ensure_future(c.fetch(demo.url + "/delay/1"))
        await wait_until(lambda: c._queue.active == 1, what="the first fetch to hold the slot")
        start = time.monotonic()
        with pytest.raises(nbfetch.FetchTimeout) as exc:
            await c.fetch(demo.url + "/get", queue_timeout=0.2)
        # before 1 s: the first fetch would free the slot and this one succeed
        assert_timer_fired(exc.value, time.monotonic() - start, "queue_timeout", "queue", 0.2, 1)
        assert len(c._queue.waiting) == 0
        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await first


async def test_cancelled_while_queued_leaves_the_queue(demo):
    async with AsyncClient(max_clients=1) as c:
        order = []

        async def fetch(tag, path):
            r = await c.fetch(demo.url + path)
            order.append(tag)
            return r

        a = asyncio.ensure_future(fetch("a", "/delay/0.2"))
        b = asyncio.ensure_future(fetch("b", "/get"))
        d = asyncio.ensure_future(fetch("d", "/get"))
        await wait_until(lambda: len(c._queue.waiting) == 2, what="two queued fetches")
        b.cancel()
        await asyncio.gather(a, d)
        assert order == ["a", "d"] and b.cancelled()
        assert c._queue.active == 0 and not c._queue.waiting


async def test_cancel_mid_body_closes_the_socket_and_frees_the_slot():
    with DemoServer().start() as demo:
        async with AsyncClient(max_clients=1) as c:
            url = demo.url + "/drip?numbytes=20&duration=2&chunks=20"
            events = []
            task = asyncio.ensure_future(c.fetch(url, trace=events.append))
            await wait_until(
                lambda: any(e.name == "response.chunk" for e in events), what="the first chunk"
            )
            assert client_sockets_to(demo.port) == 1
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            # the transport closes its socket on the next loop pass
            await wait_until(lambda: client_sockets_to(demo.port) == 0, what="the socket to close")
            assert events[-1].name == "cancelled" and events[-1]["phase"] == "download"
            assert c._queue.active == 0 and c._pool.open == {}
            assert (await c.fetch(demo.url + "/get")).status_code == 200


# -- timeouts --------------------------------------------------------------------------


async def test_connect_timeout(stalled_connect):
    port = int(stalled_connect.rsplit(":", 1)[1].strip("/"))
    async with AsyncClient() as c:
        before = client_sockets_to(port)
        start = time.monotonic()
        with pytest.raises(nbfetch.FetchTimeout) as exc:
            await c.fetch(stalled_connect, connect_timeout=0.3)
        assert_timer_fired(exc.value, time.monotonic() - start, "connect_timeout", "connect", 0.3)
        assert "connect_timeout=0.3s" in str(exc.value) and stalled_connect in str(exc.value)
        await asyncio.sleep(0)
        assert client_sockets_to(port) == before


def _headers_then_silence(conn, server):
    server.read_request(conn)
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n01234")
    time.sleep(3)


def _never_answers(conn, server):
    server.read_request(conn)
    time.sleep(3)


@pytest.mark.parametrize(
    "handler,phase", [(_never_answers, "wait"), (_headers_then_silence, "download")]
)
async def test_read_timeout(raw_server, handler, phase):
    srv = raw_server(handler)
    async with AsyncClient() as c:
        start = time.monotonic()
        with pytest.raises(nbfetch.FetchTimeout) as exc:
            await c.fetch(srv.url, read_timeout=0.3)
        # before 3 s: the server would close the connection
        assert_timer_fired(exc.value, time.monotonic() - start, "read_timeout", phase, 0.3, 3)
        await asyncio.sleep(0)
        assert client_sockets_to(srv.port) == 0 and c._pool.open == {}


def _drips_forever(conn, server):
    server.read_request(conn)
    conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
    for _ in range(60):
        conn.sendall(b"1\r\n*\r\n")
        time.sleep(0.05)


async def test_request_timeout_bounds_a_dripping_server(raw_server):
    srv = raw_server(_drips_forever)
    async with AsyncClient() as c:
        start = time.monotonic()
        with pytest.raises(nbfetch.FetchTimeout) as exc:
            await c.fetch(srv.url, read_timeout=1, request_timeout=0.5)
        # before 3 s: the server would end the body
        assert_timer_fired(
            exc.value, time.monotonic() - start, "request_timeout", "download", 0.5, 3
        )


def test_timeouts_work_on_a_loop_patched_by_nest_asyncio2(raw_server):
    import nest_asyncio2

    srv = raw_server(_never_answers)
    loop = asyncio.new_event_loop()
    try:
        nest_asyncio2.apply(loop)

        async def outer():
            # A sync call inside a running loop: the nested run_until_complete.
            client = AsyncClient()
            start = time.monotonic()
            with pytest.raises(nbfetch.FetchTimeout) as exc:
                loop.run_until_complete(client.fetch(srv.url, read_timeout=0.3))
            await client.aclose()
            return time.monotonic() - start, exc.value

        elapsed, exc = loop.run_until_complete(outer())
        assert_timer_fired(exc, elapsed, "read_timeout", "wait", 0.3, 3)
    finally:
        loop.close()


# -- redirects across origins -----------------------------------------------------------


async def test_cross_origin_redirect_drops_credentials(demo):
    with DemoServer().start() as other:  # another port: another origin
        target = other.url + "/headers"
        async with AsyncClient() as c:
            r = await c.fetch(
                f"{demo.url}/redirect-to?url={target}",
                headers={
                    "Authorization": "Bearer secret",
                    "Cookie": "s=1",
                    "Proxy-Authorization": "x",
                    "X-Keep": "1",
                },
            )
            got = r.json()["headers"]
            assert (
                "Authorization" not in got
                and "Cookie" not in got
                and "Proxy-Authorization" not in got
            )
            assert got["X-Keep"] == "1" and got["Host"] == other.url.removeprefix("http://")
            r = await c.fetch(f"{demo.url}/redirect-to?url=/headers", auth=("u", "p"))
            assert r.json()["headers"]["Authorization"].startswith("Basic ")  # same origin: kept


async def test_redirect_body_is_dropped_with_its_headers_on_303(demo):
    async with AsyncClient() as c:
        r = await c.fetch(
            f"{demo.url}/redirect-to?url=/anything&status_code=303", "POST", json={"a": 1}
        )
    echo = r.json()
    assert echo["method"] == "GET" and echo["data"] == ""
    assert "Content-Type" not in echo["headers"] and "Content-Length" not in echo["headers"]


async def test_streamed_body_cannot_be_replayed_on_307(demo):
    async def body():
        yield b"once"

    async with AsyncClient() as c:
        with pytest.raises(nbfetch.RedirectError, match="stream"):
            await c.fetch(
                f"{demo.url}/redirect-to?url=/anything&status_code=307", "POST", body=body()
            )
        assert c._queue.active == 0


# -- resolver ---------------------------------------------------------------------------


async def test_next_address_is_tried_when_a_connect_fails(demo):
    dead = socket.socket()
    dead.bind(("127.0.0.1", 0))
    dead_port = dead.getsockname()[1]
    dead.close()

    async def resolver(host, port):
        return [
            (socket.AF_INET, ("127.0.0.1", dead_port)),
            (socket.AF_INET, ("127.0.0.1", demo.port)),
        ]

    async with AsyncClient(resolver=resolver) as c:
        r = await c.fetch(f"http://service.test:{demo.port}/get")
    starts = [e["port"] for e in r.events if e.name == "connect.start"]
    assert starts == [dead_port, demo.port] and r.status_code == 200


async def test_hostname_mapping_host_port_pairs(demo):
    mapping = {("api.test", 443): ("127.0.0.1", demo.port)}
    async with AsyncClient(hostname_mapping=mapping) as c:
        r = await c.fetch("http://api.test:443/headers")
    assert r.json()["headers"]["Host"] == "api.test:443"


async def test_unresolvable_host_is_a_connect_error_and_its_time_is_dns():
    # The resolver hook answers as getaddrinfo does for an unknown name (EAI_NONAME),
    # without a query leaving the machine.
    async def resolver(host, port):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    events = []
    async with AsyncClient(resolver=resolver) as c:
        with pytest.raises(nbfetch.ConnectError) as exc:
            await c.fetch("http://does-not-exist.invalid/", trace=events.append)
    assert exc.value.phase == "resolve"
    timing = Timing(events, events[0].time)
    # the time after resolve.start is the dns phase's, not the queue's
    assert timing.dns is not None and timing.dns > 0 and timing.connect is None


def _ipv6_available() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _ipv6_available(), reason="no IPv6 loopback on this machine")
async def test_ipv6_literal():
    with DemoServer(host="::1").start() as v6:
        async with AsyncClient() as c:
            r = await c.fetch(v6.url + "/headers")
    assert r.json()["headers"]["Host"] == f"[::1]:{v6.port}"


def _endless_body(conn, server):
    """A body that never ends: a Content-Length far larger than what is sent,
    with bytes always available, so a reader never waits for the socket."""
    server.read_request(conn)
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000000000\r\n\r\n")
    block = b"x" * 65536
    conn.settimeout(0.5)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            conn.sendall(block)
        except TimeoutError:
            continue  # the client reads slowly: keep its buffer full
        except OSError:
            return


async def test_request_timeout_bounds_a_reader_slower_than_the_server(raw_server):
    """Bytes already buffered never wait, so no read timer can fire; the total
    deadline must still end the fetch (it did not: a download ran on forever)."""
    srv = raw_server(_endless_body)
    async with AsyncClient() as c:
        start = time.monotonic()
        with pytest.raises(nbfetch.FetchTimeout) as exc:
            async with c.stream("GET", srv.url + "/", request_timeout=1) as r:
                async for _ in r.aiter_bytes():
                    await asyncio.sleep(0.002)  # a consumer slower than the server
        assert_timer_fired(exc.value, time.monotonic() - start, "request_timeout", "download", 1)


async def test_request_timeout_bounds_a_stalled_request_body_and_on_chunk(raw_server, demo):
    async def stalls():
        yield b"first"
        await asyncio.sleep(30)
        yield b"never"

    async with AsyncClient() as c:
        start = time.monotonic()
        with pytest.raises(nbfetch.FetchTimeout) as exc:
            await c.fetch(demo.url + "/post", "POST", body=stalls(), request_timeout=1)
        assert_timer_fired(exc.value, time.monotonic() - start, "request_timeout", "send", 1)

        async def slow_callback(chunk):
            await asyncio.sleep(30)

        start = time.monotonic()
        with pytest.raises(nbfetch.FetchTimeout) as exc:
            await c.fetch(demo.url + "/stream/3", on_chunk=slow_callback, request_timeout=1)
        assert_timer_fired(exc.value, time.monotonic() - start, "request_timeout", "download", 1)


async def test_connect_timeout_leaves_time_for_the_next_address(raw_server):
    """A first address that never answers (a loopback listener whose accept queue
    is full drops new SYNs) gets a share of connect_timeout, not all of it."""
    hole = socket.socket()
    hole.bind(("127.0.0.2", 0))
    hole.listen(0)
    fillers = []
    try:
        for _ in range(3):
            filler = socket.socket()
            filler.setblocking(False)
            try:
                filler.connect(hole.getsockname())
            except BlockingIOError:
                pass
            fillers.append(filler)
        srv = raw_server(
            lambda conn, server: (
                server.read_request(conn),
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"),
            )
        )

        async def resolver(host, port):
            return [(socket.AF_INET, hole.getsockname()), (socket.AF_INET, ("127.0.0.1", srv.port))]

        events = []
        async with AsyncClient(resolver=resolver) as c:
            r = await c.fetch("http://two.test/", connect_timeout=3, trace=events.append)
        assert r.body == b"ok"
        tried = [e.details["address"] for e in events if e.name == "connect.start"]
        assert tried == ["127.0.0.2", "127.0.0.1"]
    finally:
        for filler in fillers:
            filler.close()
        hole.close()
