"""Exact wire cases against raw-socket servers: what the server sends, byte for byte."""

import hashlib
import time

import pytest
from conftest import client_unread_bytes, idle_connections, reply, wait_until

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
    assert c._queue.active == 0 and idle_connections(c) == 0


@pytest.mark.timeout(20)  # the old chunk view spun forever here, timers never fired
@pytest.mark.parametrize("size_line", [b"-4", b"-4\r\nXXXX\r\n-4", b"+4", b"4_0", b" 4", b"0x4"])
async def test_hostile_chunk_size_fails_fast_and_never_spins(raw_server, size_line):
    body = b"4\r\nabcd\r\n" + size_line + b"\r\nXXXX\r\n0\r\n\r\n"
    srv = raw_server(
        serve_once(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + body, close=False)
    )
    seen = []
    async with AsyncClient(request_timeout=3) as c:
        start = time.monotonic()
        with pytest.raises(nbfetch.ProtocolError, match="chunk") as exc:
            await c.fetch(srv.url + "/", on_chunk=seen.append)
        # The error comes from reading the bytes, not from request_timeout.
        assert time.monotonic() - start < 2.5
        assert exc.value.phase == "download"
        assert not c._pool.idle
    assert [ch.size for ch in seen] in ([], [4])  # nothing after the bad line


def _one_huge_chunk(size: int, piece: int = 256 * 1024):
    def handler(conn, server):
        server.read_request(conn)
        conn.sendall(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            + f"{size:x};big=1\r\n".encode()
        )
        block = b"z" * piece
        for _ in range(size // piece):
            conn.sendall(block)
        conn.sendall(b"z" * (size % piece) + b"\r\n3\r\nend\r\n0\r\n\r\n")

    return handler


@pytest.fixture(scope="module")
def response_32_mib():
    # Made outside the test body (it would block the loop): the bytes of a
    # response with a 32 MiB body, 8x the 4 MiB mark, and the body's digest.
    body = bytes(range(256)) * (32 * 2**20 // 256)
    head = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body)
    return head + body, hashlib.sha256(body).digest()


async def test_a_slow_consumer_pauses_reading_above_the_high_water_mark(
    raw_server, response_32_mib
):
    from nbfetch.drivers.asyncio_driver import HIGH_WATER

    response, digest = response_32_mib
    srv = raw_server(serve_once(response))
    async with AsyncClient() as c, c.stream("GET", srv.url) as s:
        pieces = s.aiter_raw()
        got = hashlib.sha256(await pieces.__anext__())
        proto = s._source.conn.stream.proto
        # The consumer stops: the transport buffers up to the mark, then stops
        # reading, and the rest waits in the kernel (TCP flow control).
        await wait_until(lambda: proto.reading_paused, what="reading to pause")
        await wait_until(
            lambda: client_unread_bytes(srv.port) >= 65536,
            what="the kernel to hold what the client no longer reads",
        )
        assert HIGH_WATER < proto.buffered <= HIGH_WATER + 2**20  # one read past the mark
        async for piece in pieces:
            got.update(piece)
    assert got.digest() == digest and not proto.reading_paused


def serve_in_turn(*responses: bytes):
    """One response per request, in order, on as many requests as the client
    sends on one connection; a later connection continues the list."""
    queue = list(responses)

    def handler(conn, server):
        while queue:
            head = server.read_request(conn)
            if not head:
                return
            reply(conn, queue.pop(0))

    return handler


async def test_one_huge_wire_chunk_arrives_as_bounded_pieces(raw_server):
    size = 40 * 1024 * 1024 + 123
    srv = raw_server(_one_huge_chunk(size))
    pieces, events, gaps = [], [], []
    async with AsyncClient() as c, c.stream("GET", srv.url + "/", trace=events.append) as r:
        async for ch in r.aiter_chunks():
            pieces.append((ch.index, ch.size, ch.position, len(ch.raw), ch.last, ch.extensions))
            gaps.append(ch.gap)
            assert ch.data is ch.raw  # no Content-Encoding: the same object
    assert max(n for *_, n, _, _ in pieces) <= 1024 * 1024
    assert min(n for *_, n, _, _ in pieces) > 0  # never an empty (last) piece
    assert min(gaps) >= 0
    first = [p for p in pieces if p[0] == 0]
    assert {p[1] for p in first} == {size} and {p[5] for p in first} == {(("big", "1"),)}
    # The pieces tile the wire chunk exactly, and only the final one is "last".
    assert [p[2] for p in first] == list(
        __import__("itertools").accumulate([0] + [p[3] for p in first[:-1]])
    )
    assert sum(p[3] for p in first) == size
    assert [p[4] for p in first] == [False] * (len(first) - 1) + [True]
    assert pieces[-1] == (1, 3, 0, 3, True, ())
    # The events (and so the live view) still show one event per wire chunk.
    chunk_events = [e.details["size"] for e in events if e.name == "response.chunk"]
    assert chunk_events == [size, 3]


async def test_huge_wire_chunk_memory_is_bounded(raw_server):
    """300 MiB in one wire chunk through on_chunk and aiter_chunks: the chunk is
    never held whole (it was: a 644 MiB peak)."""
    import tracemalloc

    size = 300 * 1024 * 1024
    srv = raw_server(_one_huge_chunk(size, piece=1024 * 1024))
    seen = []
    tracemalloc.start()
    try:
        async with AsyncClient() as c:
            async with c.stream(
                "GET", srv.url + "/", on_chunk=lambda ch: seen.append(len(ch.raw))
            ) as r:
                async for _ in r.aiter_bytes():
                    pass
            async with c.stream("GET", srv.url + "/") as r:
                async for ch in r.aiter_chunks():
                    seen.append(len(ch.raw))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert sum(seen) == 2 * (size + 3)
    assert max(seen) <= 1024 * 1024
    assert peak < 32 * 1024 * 1024, f"peak {peak / 2**20:.1f} MiB"


NEXT = b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nnext"


@pytest.mark.parametrize(
    "status,body,framing",
    [
        (b"404 Not Found", b"no such page" * 100, b"Content-Length: 1200"),
        (b"401 Unauthorized", b"", b"Content-Length: 0"),
        (b"429 Too Many Requests", b"5\r\nslow!\r\n0\r\n\r\n", b"Transfer-Encoding: chunked"),
    ],
)
async def test_a_4xx_with_a_body_read_to_its_end_keeps_the_connection(
    raw_server, status, body, framing
):
    srv = raw_server(serve_in_turn(b"HTTP/1.1 %s\r\n%s\r\n\r\n%s" % (status, framing, body), NEXT))
    async with AsyncClient() as c:
        r = await c.fetch(srv.url + "/missing")
        again = await c.fetch(srv.url + "/next")
    assert r.status_code == int(status[:3]) and not r.ok
    assert again.body == b"next" and "connection.reused" in [e.name for e in again.events]
    assert srv.connections == 1


async def test_a_4xx_is_not_reused_when_its_body_was_not_read_or_it_says_close(raw_server):
    big = b"HTTP/1.1 403 Forbidden\r\nContent-Length: 100000\r\n\r\n" + b"x" * 100_000
    closing = b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 3\r\n\r\nbad"
    srv = raw_server(serve_in_turn(big, NEXT, closing, NEXT))
    async with AsyncClient() as c:
        async with c.stream("GET", srv.url + "/forbidden") as s:
            assert s.status_code == 403  # left without reading its body
        r = await c.fetch(srv.url + "/next")
        assert r.body == b"next" and "connection.reused" not in [e.name for e in r.events]
        r = await c.fetch(srv.url + "/bad")
        assert r.body == b"bad" and "connection.reused" in [e.name for e in r.events]
        r = await c.fetch(srv.url + "/next")
        assert r.body == b"next" and "connection.reused" not in [e.name for e in r.events]
    assert srv.connections == 3


@pytest.mark.parametrize(
    "method,head",
    [
        # RFC 9110 9.3.2 and 8.6: a HEAD response's Content-Length describes a GET's body.
        ("HEAD", b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n"),
        ("HEAD", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"),
        # RFC 9110 15.3.5 and 15.4.5: 204 and 304 never have a body (RFC 9112 6.3).
        ("GET", b"HTTP/1.1 204 No Content\r\n"),
        ("GET", b'HTTP/1.1 304 Not Modified\r\nContent-Length: 1000\r\nETag: "x"\r\n'),
    ],
)
async def test_head_204_and_304_have_no_body_and_keep_the_connection(raw_server, method, head):
    srv = raw_server(serve_in_turn(head + b"\r\n", NEXT))
    async with AsyncClient() as c:
        r = await c.fetch(srv.url + "/resource", method)
        again = await c.fetch(srv.url + "/next")
    assert r.body == b"" and r.wire_bytes == 0
    assert again.body == b"next" and "connection.reused" in [e.name for e in again.events]
    assert srv.connections == 1


async def test_bytes_after_a_204_are_never_read_as_the_next_response(raw_server):
    # A server that sends a body after 204 anyway: the stray bytes must not
    # become the next request's response (RFC 9112 6.3: the 204 ends at its head).
    stray = b"HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nevil"
    srv = raw_server(serve_in_turn(stray, NEXT))
    async with AsyncClient() as c:
        r = await c.fetch(srv.url + "/empty")
        again = await c.fetch(srv.url + "/next")
    assert r.status_code == 204 and r.body == b""
    assert again.body == b"next" and srv.connections == 2


async def test_a_256_mib_buffered_body_does_not_block_the_loop(raw_server):
    # fetch() returns the body as one bytes object. Joining 256 MiB of pieces is
    # ~250 ms of CPU here: done on the loop, it blocks it (the watchdog checks);
    # the pieces are written into one buffer as they come instead. The limit is
    # raised: 256 MiB is past the 100 MiB default for a buffered body.
    size, piece = 256 * 2**20, b"\0" * 2**20

    def handler(conn, server):
        server.read_request(conn)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size)
        for _ in range(size // len(piece)):
            conn.sendall(piece)

    srv = raw_server(handler)
    async with AsyncClient(limits=nbfetch.Limits(max_body_size=None)) as c:
        r = await c.fetch(srv.url)
    assert len(r.body) == size


@pytest.fixture(scope="module")
def body_128_mib():
    return bytes(128 * 2**20)  # made outside the test body: it would block the loop


async def test_a_128_mib_upload_does_not_block_the_loop(raw_server, body_128_mib):
    # Handing the whole body to h11 and the transport at once copies it twice
    # on the loop (~180 ms here); sent in pieces, the loop runs between them.
    received = []

    def handler(conn, server):
        data = b""
        while b"\r\n\r\n" not in data:
            data += conn.recv(65536)
        count = len(data.partition(b"\r\n\r\n")[2])
        while count < len(body_128_mib):
            piece = conn.recv(2**20)
            if not piece:
                break
            count += len(piece)
        received.append(count)
        conn.sendall(b"HTTP/1.1 204 No Content\r\n\r\n")

    srv = raw_server(handler)
    async with AsyncClient() as c:
        r = await c.fetch(srv.url, "PUT", body=body_128_mib)
    assert r.status_code == 204 and received == [len(body_128_mib)]


@pytest.mark.parametrize(
    ("bad", "partial"),
    [(b"zz\r\n", b""), (b"5\r\nabcdeXX", b""), (b"3\r\nab", b"ab")],
)
async def test_small_chunks_read_together_keep_their_bytes_before_an_error(
    raw_server, bad, partial
):
    # 50 good chunks of 10 bytes and then a malformed one, in one write: h11
    # holds them all, and they go out as one piece. The error in the last one
    # comes after the good bytes, as it did when each chunk was its own piece.
    good = b"".join(b"a\r\n%s\r\n" % (b"%010d" % i) for i in range(50))
    head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    srv = raw_server(serve_once(head + good + bad))
    events, got = [], []
    async with AsyncClient() as c, c.stream("GET", srv.url + "/", trace=events.append) as r:
        with pytest.raises((nbfetch.ProtocolError, nbfetch.NetworkError)):
            async for data in r.aiter_bytes():
                got.append(bytes(data))
    # (h11 hands out a chunk's data as it arrives: a cut chunk's first bytes too)
    assert b"".join(got) == b"".join(b"%010d" % i for i in range(50)) + partial
    sizes = [e["size"] for e in events if e.name == "response.chunk"]
    assert sizes == [10] * 50
    assert len([e for e in events if e.name == "response.data"]) < 50  # read together


async def test_small_gzip_chunks_read_together_keep_their_decoded_bytes_before_an_error(
    raw_server,
):
    # A gzip body in 100-byte wire chunks whose CRC is wrong, all in one write:
    # what the good chunks decode to is handed out before the DecodeError, and
    # the failing chunk has no response.chunk event (as chunk by chunk).
    import gzip
    import zlib

    payload = bytes(range(256)) * 52
    gz = bytearray(gzip.compress(payload))
    gz[-5] ^= 0xFF
    parts = [bytes(gz[i : i + 100]) for i in range(0, len(gz), 100)]
    body = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\n\r\n"
    head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Encoding: gzip\r\n\r\n"
    expected, d = b"", zlib.decompressobj(wbits=31)
    for part in parts:  # what decoding one chunk at a time gives before the error
        try:
            expected += d.decompress(part)
        except zlib.error:
            break
    srv = raw_server(serve_once(head + body))
    events, got = [], []
    async with AsyncClient() as c, c.stream("GET", srv.url + "/", trace=events.append) as r:
        with pytest.raises(nbfetch.DecodeError):
            async for data in r.aiter_bytes():
                got.append(bytes(data))
    assert b"".join(got) == expected and expected
    chunk_events = [e for e in events if e.name == "response.chunk"]
    assert len(chunk_events) == len(parts) - 1
