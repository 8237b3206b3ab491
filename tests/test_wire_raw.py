"""Exact wire cases against raw-socket servers: what the server sends, byte for byte."""

import time

import pytest
from conftest import reply

import nbfetch
from nbfetch import AsyncClient

pytestmark = [pytest.mark.anyio, pytest.mark.loop_watchdog]

CHUNKED = (
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n"
    b"0000A;name=first\r\n0123456789\r\n"
    b"7d0\r\n" + b"x" * 2000 + b"\r\n"
    b"1;a=1;b\r\nZ\r\n"
    b"0\r\nX-Sum: 42\r\n\r\n"
)


def serve_once(data: bytes, per_byte=False, close=True):
    def handler(conn, server):
        server.read_request(conn)
        reply(conn, data, per_byte=per_byte)
        if not close:
            time.sleep(1)

    return handler


@pytest.mark.parametrize("per_byte", [False, True])
async def test_chunk_sizes_extensions_trailers_exactly(raw_server, per_byte):
    srv = raw_server(serve_once(CHUNKED, per_byte=per_byte))
    seen = []
    async with AsyncClient() as c:
        r = await c.fetch(srv.url + "/", on_chunk=seen.append)
    assert [(ch.size, ch.extensions) for ch in seen] == [
        (10, (("name", "first"),)),
        (2000, ()),
        (1, (("a", "1"), ("b", None))),
    ]
    assert r.body == b"0123456789" + b"x" * 2000 + b"Z"
    assert r.trailers["x-sum"] == "42"
    assert r.wire_bytes == 2011


async def test_request_bytes_on_the_wire(raw_server):
    srv = raw_server(serve_once(b"HTTP/1.1 204 No Content\r\n\r\n"))
    async with AsyncClient() as c:
        await c.fetch(srv.url + "/p%20q?x=ü", "POST", body=b"hello", headers={"X-A": "1"})
    head, _, body = srv.received[0].partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert lines[0] == b"POST /p%20q?x=%C3%BC HTTP/1.1"
    assert lines[1] == f"Host: 127.0.0.1:{srv.port}".encode()  # Host first (RFC 9110 7.2)
    assert b"X-A: 1" in lines and b"Content-Length: 5" in lines
    assert body == b"hello"


async def test_body_split_across_reads_with_pauses(raw_server):
    def handler(conn, server):
        server.read_request(conn)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n01")
        time.sleep(0.05)
        conn.sendall(b"2345")
        time.sleep(0.05)
        conn.sendall(b"6789")

    srv = raw_server(handler)
    async with AsyncClient() as c, c.stream("GET", srv.url) as s:
        pieces = [d async for d in s.aiter_bytes()]
    assert b"".join(pieces) == b"0123456789" and len(pieces) == 3


async def test_body_ending_at_close_is_read_and_not_reused(raw_server):
    srv = raw_server(serve_once(b"HTTP/1.1 200 OK\r\n\r\nall of it until close"))
    async with AsyncClient() as c:
        r = await c.fetch(srv.url)
        assert r.body == b"all of it until close"
        await c.fetch(srv.url)
    assert srv.connections == 2


async def test_close_mid_body_is_an_error_not_a_short_body(raw_server):
    srv = raw_server(serve_once(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this"))
    async with AsyncClient() as c:
        with pytest.raises(nbfetch.ProtocolError) as exc:
            await c.fetch(srv.url)
    assert exc.value.phase == "download" and srv.url in str(exc.value)


async def test_truncated_chunked_body_is_an_error(raw_server):
    srv = raw_server(serve_once(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nabc"))
    async with AsyncClient() as c:
        with pytest.raises(nbfetch.ProtocolError, match="download"):
            await c.fetch(srv.url)


async def test_informational_responses_are_events(raw_server):
    srv = raw_server(
        serve_once(
            b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n"
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
        )
    )
    async with AsyncClient() as c:
        r = await c.fetch(srv.url)
    info = [e for e in r.events if e.name == "response.informational"]
    assert [e["status"] for e in info] == [103]
    assert info[0]["headers"]["link"] == "</style.css>; rel=preload"
    assert r.body == b"ok"


async def test_extra_bytes_after_a_response_are_never_reused(raw_server):
    def handler(conn, server):
        server.read_request(conn)
        conn.sendall(
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nevil"
        )
        time.sleep(1)

    srv = raw_server(handler)
    async with AsyncClient() as c:
        r1 = await c.fetch(srv.url)
        r2 = await c.fetch(srv.url)
    assert r1.body == b"ok" and r2.body == b"ok"
    assert srv.connections == 2
    assert "connection.reused" not in [e.name for e in r2.events]


async def test_garbage_instead_of_http_is_a_protocol_error(raw_server):
    srv = raw_server(serve_once(b"SSH-2.0-OpenSSH_9.6\r\n"))
    async with AsyncClient() as c:
        with pytest.raises(nbfetch.ProtocolError) as exc:
            await c.fetch(srv.url)
    assert exc.value.phase == "wait"


async def test_error_event_is_recorded_once(raw_server):
    srv = raw_server(serve_once(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort"))
    events = []
    async with AsyncClient() as c:
        with pytest.raises(nbfetch.ProtocolError):
            await c.fetch(srv.url, trace=events.append)
    errors = [e for e in events if e.name == "error"]
    assert len(errors) == 1 and errors[0]["phase"] == "download"
    assert c._slots.active == 0 and c._pool.count() == 0
