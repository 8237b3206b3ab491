"""The asyncio driver reads into buffers it reuses and lends a view of the
bytes to the waiting reader until its next receive(): bulk bodies must arrive
byte for byte, over TCP and TLS (where asyncio's TLS layer reads into the next
buffer before the reader has run), whether the reader keeps up or falls behind
(the bytes are then copied, queued, and reading pauses above a high-water mark)."""

from __future__ import annotations

import asyncio
import hashlib
import os
import socket
import ssl

import pytest
import trustme

from nbfetch import AsyncClient

pytestmark = [pytest.mark.anyio, pytest.mark.loop_watchdog]

SIZE = 24 * 1024 * 1024


@pytest.fixture(scope="module")
def payload():
    return os.urandom(SIZE)  # no repeating block: a stale byte shows in the hash


@pytest.fixture(scope="module")
def ca():
    return trustme.CA()


def _serve(payload: bytes, context: ssl.SSLContext | None):
    def handler(conn: socket.socket, server) -> None:
        if context is not None:
            conn = context.wrap_socket(conn, server_side=True)
        server.read_request(conn)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(payload))
        view = memoryview(payload)
        for start in range(0, len(view), 1 << 20):  # in sizes that vary the reads
            conn.sendall(view[start : start + (1 << 20)])
        conn.recv(1)  # until the client closes

    return handler


@pytest.mark.parametrize("scheme", ["http", "https"])
@pytest.mark.parametrize("reader", ["fast", "slow"])
async def test_a_bulk_body_arrives_intact(raw_server, payload, ca, tmp_path, scheme, reader):
    context = None
    verify: object = True
    if scheme == "https":
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert("127.0.0.1").configure_cert(context)
        ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
        verify = str(tmp_path / "ca.pem")
    server = raw_server(_serve(payload, context))
    url = f"{scheme}://127.0.0.1:{server.port}/"
    digest, got, pieces = hashlib.sha256(), 0, 0
    async with AsyncClient(verify=verify) as c, c.stream("GET", url) as r:
        async for data in r.aiter_bytes():
            digest.update(data)
            got += len(data)
            pieces += 1
            if reader == "slow" and pieces % 4 == 0:
                # Falls behind: what arrives meanwhile is queued (and reading
                # pauses past the high-water mark), not read over.
                await asyncio.sleep(0.005)
    assert got == SIZE
    assert digest.hexdigest() == hashlib.sha256(payload).hexdigest()


async def test_idle_connections_keep_no_bulk_read_buffers(raw_server, payload):
    # After bulk reads on 20 connections, the 20 wait in the pool holding no
    # bulk read buffer; what they read into is kept, bounded, for the next bulk
    # read. (A connection that only read small answers keeps its two 16 KiB
    # buffers while idle: making them anew cost each request an allocation.)
    from nbfetch.drivers import asyncio_driver

    server = raw_server(_serve(payload[: 4 << 20], None))
    names = {f"h{i}.test": "127.0.0.1" for i in range(20)}
    async with AsyncClient(hostname_mapping=names, max_clients=20) as c:
        responses = await asyncio.gather(
            *(c.fetch(f"http://{name}:{server.port}/") for name in names)
        )
        assert all(len(r.body) == 4 << 20 for r in responses)
        idle = [conn for conns in c._pool.idle.values() for conn in conns]
        assert len(idle) == 20
        held = [
            v
            for conn in idle
            for v in (conn.stream.proto.read_view, conn.stream.proto.spare, conn.stream.proto.lent)
            if v is not None
        ]
        assert held == []
        assert asyncio_driver._FREE.size <= asyncio_driver.FREE_BYTES
