"""Expect: 100-continue, and the limits on what a server can make us hold."""

import time

import pytest
from conftest import CLOCK_EPSILON, idle_connections, reply

import nbfetch
from nbfetch import AsyncClient, Limits

pytestmark = [pytest.mark.anyio, pytest.mark.loop_watchdog]


async def test_expect_100_continue_with_the_demo_server(demo):
    async with AsyncClient(continue_timeout=30) as c:
        r = await c.fetch(demo.url + "/post", "POST", body=b"x" * 5000, expect_100_continue=True)
    assert r.json()["headers"]["Expect"] == "100-continue"
    assert r.json()["data"] == "x" * 5000
    names = [e.name for e in r.events]
    assert (
        names.index("request.headers_sent")
        < names.index("response.informational")
        < names.index("request.body_sent")
    )
    # the body went out on 100 Continue, not when continue_timeout ran out
    assert r.timing.send < 30


async def test_early_final_response_means_the_body_is_never_sent(raw_server):
    def refuses(conn, server):
        head = b""
        while b"\r\n\r\n" not in head:  # the head only: the client holds the body
            head += conn.recv(65536)
        server.received.append(head)
        conn.sendall(b"HTTP/1.1 413 Content Too Large\r\nContent-Length: 0\r\n\r\n")
        conn.settimeout(0.5)
        try:
            server.received.append(conn.recv(65536))
        except TimeoutError:
            server.received.append(b"")

    srv = raw_server(refuses)
    async with AsyncClient() as c:
        r = await c.fetch(srv.url, "POST", body=b"secret" * 1000, expect_100_continue=True)
    assert r.status_code == 413
    assert b"secret" not in b"".join(srv.received)
    sent = next(e for e in r.events if e.name == "request.body_sent")
    assert sent["skipped"] is True and sent["bytes"] == 0


async def test_server_ignoring_expect_gets_the_body_after_continue_timeout(raw_server):
    def ignores(conn, server):
        head = b""
        while b"\r\n\r\n" not in head:
            head += conn.recv(65536)
        body = head.partition(b"\r\n\r\n")[2]
        while len(body) < 4:
            body += conn.recv(65536)
        server.received.append(body)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")

    srv = raw_server(ignores)
    async with AsyncClient(continue_timeout=0.2) as c:
        start = time.monotonic()
        r = await c.fetch(srv.url, "PUT", body=b"data", expect_100_continue=True)
    assert r.body == b"ok" and srv.received == [b"data"]
    # the body waited for continue_timeout, and went out when it ran out
    assert 0.2 - CLOCK_EPSILON <= time.monotonic() - start < 0.2 + 2


def _send(data):
    def handler(conn, server):
        server.read_request(conn)
        reply(conn, data)

    return handler


async def test_too_many_headers(raw_server):
    head = (
        b"HTTP/1.1 200 OK\r\n"
        + b"".join(b"X-%d: v\r\n" % i for i in range(300))
        + b"Content-Length: 0\r\n\r\n"
    )
    srv = raw_server(_send(head))
    async with AsyncClient() as c:
        with pytest.raises(nbfetch.TooLargeError, match="301 header fields") as exc:
            await c.fetch(srv.url)
    assert exc.value.phase == "wait"


async def test_header_block_too_large(raw_server):
    srv = raw_server(_send(b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * 100_000 + b"\r\n\r\n"))
    async with AsyncClient(limits=Limits(max_header_bytes=16 * 1024)) as c:
        with pytest.raises(nbfetch.TooLargeError, match="header block"):
            await c.fetch(srv.url)


async def test_flood_of_informational_responses(raw_server):
    srv = raw_server(
        _send(
            b"HTTP/1.1 102 Processing\r\n\r\n" * 50
            + b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
        )
    )
    async with AsyncClient() as c:
        with pytest.raises(nbfetch.TooLargeError, match="informational"):
            await c.fetch(srv.url)


async def test_decoded_size_limit_on_streams(demo):
    async with AsyncClient(limits=Limits(max_decoded_size=5000)) as c:
        with pytest.raises(nbfetch.TooLargeError, match="max_decoded_size=5000") as exc:
            async with c.stream("GET", demo.url + "/gzip-stream/1000") as s:
                async for _ in s.aiter_bytes():
                    pass
    assert exc.value.phase == "decode" and demo.url in str(exc.value)


@pytest.fixture(scope="module")
def gzip_bomb():
    # Made outside the test body: compressing 50 MB would block the test's loop.
    import gzip

    return gzip.compress(b"\0" * 50_000_000)


async def test_gzip_bomb_in_a_redirect_costs_nothing(raw_server, gzip_bomb):
    bomb = gzip_bomb
    srv = raw_server(
        _send(
            b"HTTP/1.1 302 Found\r\nLocation: /next\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n"
            % len(bomb)
            + bomb
        )
    )
    async with AsyncClient(follow_redirects=True, max_redirects=0) as c:
        with pytest.raises(nbfetch.TooManyRedirects):
            await c.fetch(srv.url)


async def test_informational_flood_while_waiting_for_continue(raw_server):
    def floods(conn, server):
        head = b""
        while b"\r\n\r\n" not in head:
            head += conn.recv(65536)
        reply(conn, b"HTTP/1.1 102 Processing\r\n\r\n" * 100)

    srv = raw_server(floods)
    async with AsyncClient() as c:
        with pytest.raises(nbfetch.TooLargeError, match="informational") as exc:
            await c.fetch(srv.url, "POST", body=b"x", expect_100_continue=True)
    assert exc.value.phase == "wait" and srv.url in str(exc.value)
    assert idle_connections(c) == 0


@pytest.fixture
def live_view():
    # Built outside the watched test body: importing ipywidgets and making the
    # first widgets is the test's own set-up, not nbfetch blocking the loop.
    from nbfetch.notebook.live import ResponseView

    return ResponseView("GET", "")


async def test_a_large_redirect_body_drops_the_connection_without_a_false_cancel(
    raw_server, live_view
):
    """Dropping a connection is not cancelling the fetch: its own event, and the
    live view ends in the true state of the fetch (200, done)."""
    view = live_view
    big = b"r" * (2 * 1024 * 1024)

    def handler(conn, server):
        head = server.read_request(conn)
        if b"GET /start" in head:
            reply(
                conn,
                b"HTTP/1.1 302 Found\r\nLocation: /final\r\nContent-Length: %d\r\n\r\n" % len(big)
                + big,
            )
        else:
            reply(conn, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")

    srv = raw_server(handler)
    async with AsyncClient(limits=Limits(max_redirect_body=1024 * 1024)) as c:
        r = await c.fetch(srv.url + "/start", trace=view.trace)
    view.attach_response(r)
    names = [e.name for e in r.events]
    assert r.status_code == 200 and r.body == b"ok"
    assert "cancelled" not in names and "error" not in names
    dropped = [e for e in r.events if e.name == "connection.dropped"]
    assert len(dropped) == 1 and "max_redirect_body" in dropped[0].details["reason"]
    assert names.index("connection.dropped") < names.index("redirect")
    assert view.error is None and view.finished
    assert view.cancel_button not in view._top.children  # no Cancel once finished
    assert srv.connections == 2  # the dropped connection was not reused
