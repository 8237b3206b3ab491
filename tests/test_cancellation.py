"""A fetch cancelled in each phase leaves nothing behind.

For each phase a server (or resolver) holds the fetch there; the test cancels it
once the fetch's own events, and the server, show it is in that phase. Then: the
task ended with CancelledError, a ``cancelled`` event was recorded, the kernel's
socket table has no client socket to the server left, every max_clients slot is
free, the pool holds nothing, and no task the fetch started is still alive.
"""

import asyncio
import socket
import threading

import pytest
from conftest import (
    assert_timing_sane,
    cancel_as_step_finishes,
    client_sockets_to,
    idle_connections,
    wait_until,
)
from loopwatch import run_trio

from nbfetch import AsyncClient
from nbfetch.core.events import Timing

pytestmark = [pytest.mark.anyio, pytest.mark.loop_watchdog]

OK_HEAD = b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"
#: More than the socket buffers hold: the client waits to send the rest.
BIG_BODY = b"x" * (16 * 2**20)


@pytest.fixture
def holding_server(raw_server):
    """``holding_server(until, reply)``: a server that reads until ``until`` is in
    what it received (None: any first bytes), sends ``reply``, sets
    ``server.holding``, then neither reads nor writes until the test ends."""
    release = threading.Event()

    def start(until: bytes | None = b"\r\n\r\n", reply: bytes = b""):
        def handler(conn, server):
            data = b""
            while not data or (until is not None and until not in data):
                piece = conn.recv(65536)
                if not piece:
                    return
                data += piece
            conn.sendall(reply)
            server.holding.set()
            release.wait(30)

        server = raw_server(handler)
        server.holding = threading.Event()
        return server

    yield start
    release.set()


def _ready(server) -> bool:
    return server is None or server.holding.is_set()


async def cancel_when(client, url, event_name, server=None, port=None, **options):
    """Start ``client.fetch(url)``, cancel it once ``event_name`` was recorded
    (and ``server`` holds the connection), and check nothing is left behind."""
    port = port or server.port
    before_sockets = client_sockets_to(port)
    before_tasks = asyncio.all_tasks()
    events = []
    task = asyncio.ensure_future(client.fetch(url, trace=events.append, **options))
    await wait_until(
        lambda: event_name in [e.name for e in events] and _ready(server),
        what=f"the fetch to reach {event_name}",
    )
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    cancelled = [e for e in events if e.name == "cancelled"]
    assert len(cancelled) == 1 and events[-1] is cancelled[0], [e.name for e in events]
    assert_timing_sane(Timing(events, events[0].time))
    # Closed transports give their sockets back on the next loop passes.
    await wait_until(
        lambda: client_sockets_to(port) == before_sockets, what="the client socket to close"
    )
    assert client._queue.active == 0 and not client._queue.waiting
    assert idle_connections(client) == 0 and client._pool.open == {} and not client._pool.waiting
    await wait_until(
        lambda: not (asyncio.all_tasks() - before_tasks), what="the fetch's tasks to end"
    )
    return cancelled[0]


async def test_cancelled_while_queued(holding_server):
    srv = holding_server()
    async with AsyncClient(max_clients=1) as c:
        ahead = asyncio.ensure_future(c.fetch(srv.url + "/ahead"))
        await wait_until(srv.holding.is_set, what="the first fetch to hold the only slot")
        events = []
        queued = asyncio.ensure_future(c.fetch(srv.url + "/queued", trace=events.append))
        await wait_until(lambda: len(c._queue.waiting) == 1, what="the second fetch to queue")
        queued.cancel()
        with pytest.raises(asyncio.CancelledError):
            await queued
        assert events[-1].name == "cancelled" and events[-1]["phase"] == "queue"
        assert "dequeued" not in [e.name for e in events]
        assert c._queue.active == 1 and not c._queue.waiting  # the first one still has it
        assert srv.connections == 1  # the queued fetch never connected
        ahead.cancel()
        with pytest.raises(asyncio.CancelledError):
            await ahead
        await wait_until(lambda: client_sockets_to(srv.port) == 0, what="the socket to close")
        assert c._queue.active == 0 and c._pool.open == {}


async def test_cancelled_while_resolving():
    never = asyncio.Event()

    async def resolver(host, port):
        await never.wait()  # a DNS server that never answers

    # The port of an address nothing listens on: no socket may ever point there.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    async with AsyncClient(resolver=resolver) as c:
        cancelled = await cancel_when(
            c, f"http://slow-dns.test:{port}/", "resolve.start", port=port
        )
    assert cancelled["phase"] == "resolve"


async def test_cancelled_while_connecting(stalled_connect):
    async with AsyncClient() as c:
        cancelled = await cancel_when(
            c, stalled_connect, "connect.start", port=_port(stalled_connect)
        )
    assert cancelled["phase"] == "connect"


async def test_cancelled_as_the_connection_completes(holding_server):
    """Cancelled in the loop pass after the TCP connection was made but before
    the fetch took it: the new connection is closed, not left open with no owner
    (each such cancel leaked one socket)."""
    srv = holding_server(until=None)
    async with AsyncClient() as c:
        task = asyncio.ensure_future(c.fetch(srv.url))
        await cancel_as_step_finishes(task, "create_connection")
        with pytest.raises(asyncio.CancelledError):
            await task
        await wait_until(lambda: client_sockets_to(srv.port) == 0, what="the socket to close")
        assert c._queue.active == 0 and c._pool.open == {}


async def test_cancelled_during_the_tls_handshake(holding_server):
    srv = holding_server(until=None)  # takes the ClientHello, never answers it
    async with AsyncClient() as c:
        cancelled = await cancel_when(c, f"https://127.0.0.1:{srv.port}/", "tls.start", srv)
    assert cancelled["phase"] == "tls"


async def test_cancelled_while_sending_a_body(holding_server):
    srv = holding_server()  # reads the head, never the body
    async with AsyncClient() as c:
        cancelled = await cancel_when(
            c, srv.url + "/upload", "request.headers_sent", srv, method="PUT", body=BIG_BODY
        )
    assert cancelled["phase"] == "send"


async def test_cancelled_while_waiting_for_100_continue(holding_server):
    srv = holding_server()  # never sends 100 Continue
    async with AsyncClient(continue_timeout=30) as c:
        cancelled = await cancel_when(
            c,
            srv.url + "/upload",
            "request.headers_sent",
            srv,
            method="POST",
            body=b"x" * 1000,
            expect_100_continue=True,
        )
    assert cancelled["phase"] == "send"


async def test_cancelled_while_waiting_for_the_head(holding_server):
    srv = holding_server()  # reads the request, never answers
    async with AsyncClient() as c:
        cancelled = await cancel_when(c, srv.url, "request.body_sent", srv)
    assert cancelled["phase"] == "wait"


async def test_cancelled_while_reading_the_body(holding_server):
    srv = holding_server(reply=OK_HEAD + b"x" * 10)  # 10 of 1000 bytes, then silence
    async with AsyncClient() as c:
        cancelled = await cancel_when(c, srv.url, "response.data", srv)
    assert cancelled["phase"] == "download"


# -- trio: the same guarantees under a cancel scope ---------------------------------------------
def trio_cancel_when(url, event_name, port, server=None):
    """On trio: cancel the fetch's scope once ``event_name`` was recorded (and
    ``server`` holds the connection); check nothing is left behind."""
    import trio

    before = client_sockets_to(port)

    async def main():
        events = []
        seen = trio.Event()

        def trace(event):
            events.append(event)
            if event.name == event_name:
                seen.set()

        async with AsyncClient() as c:
            with trio.CancelScope() as scope:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(lambda: c.fetch(url, trace=trace))
                    await seen.wait()
                    while server is not None and not server.holding.is_set():
                        await trio.sleep(0.005)
                    scope.cancel()
            assert scope.cancelled_caught
            return events, c._queue.active, c._queue.waiting, c._pool.open

    events, active, waiting, open_ = run_trio(main)
    assert events[-1].name == "cancelled", [e.name for e in events]
    # trio closes a socket as the fetch unwinds: the kernel's table shows it at once
    assert client_sockets_to(port) == before
    assert (active, len(waiting), open_) == (0, 0, {})
    return events[-1]


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1].strip("/"))


@pytest.mark.parametrize(
    "event_name,reply,phase",
    [("request.body_sent", b"", "wait"), ("response.headers", OK_HEAD + b"x", "download")],
)
def test_trio_cancelled_while_waiting_or_reading(holding_server, event_name, reply, phase):
    srv = holding_server(reply=reply)
    assert trio_cancel_when(srv.url, event_name, srv.port, srv)["phase"] == phase


def test_trio_cancelled_during_the_tls_handshake(holding_server):
    srv = holding_server(until=None)
    url = f"https://127.0.0.1:{srv.port}/"
    assert trio_cancel_when(url, "tls.start", srv.port, srv)["phase"] == "tls"


def test_trio_cancelled_while_connecting(stalled_connect):
    cancelled = trio_cancel_when(stalled_connect, "connect.start", _port(stalled_connect))
    assert cancelled["phase"] == "connect"


@pytest.mark.parametrize("loop", ["asyncio", "trio"])
def test_gather_cancels_the_rest_when_one_raises(loop):
    # A load run's workers and fetch_many's fetches run under driver.gather: one
    # that raises must not leave the others running (asyncio.gather does).
    from nbfetch.drivers.auto import current_driver

    ended = []

    async def fails():
        raise ValueError("boom")

    async def waits():
        try:
            await driver.sleep(30)
        finally:
            ended.append("cancelled")

    async def main():
        nonlocal driver
        driver = current_driver()
        before = asyncio.all_tasks() if loop == "asyncio" else None
        with pytest.raises(ValueError, match="boom"):
            await driver.gather([waits(), fails(), waits()])
        assert ended == ["cancelled", "cancelled"]  # both ended before the error went on
        if before is not None:
            assert asyncio.all_tasks() == before

    driver = None
    if loop == "trio":
        run_trio(main)
    else:
        asyncio.run(asyncio.wait_for(main(), 10))
