"""Buffered-body bounds and download(): a large body never costs more than itself,
and a download is bounded in memory, atomic, and leaves nothing behind."""

import asyncio
import hashlib
import os
import tracemalloc

import pytest
from conftest import client_sockets_to, wait_until

import nbfetch
from nbfetch import AsyncClient, Limits
from nbfetch.cli import run_cli
from nbfetch.notebook.display import response_mimebundle
from nbfetch.text.options import parse_options

pytestmark = pytest.mark.anyio

MiB = 1024 * 1024


def body_server(size: int, *, chunked: bool = False, cut_at: int | None = None, status=200):
    """A handler sending ``size`` deterministic bytes (Content-Length or chunked);
    with ``cut_at``, the connection is closed after that many body bytes."""

    def handler(conn, server):
        server.read_request(conn)
        head = f"HTTP/1.1 {status} X\r\n".encode()
        head += (
            b"Transfer-Encoding: chunked\r\n\r\n"
            if chunked
            else b"Content-Length: %d\r\n\r\n" % size
        )
        conn.sendall(head)
        sent = 0
        block = bytes(range(256)) * 4096  # 1 MiB
        while sent < size:
            n = min(len(block), size - sent)
            if cut_at is not None and sent + n > cut_at:
                conn.sendall(block[: cut_at - sent])
                return
            conn.sendall((b"%x\r\n" % n + block[:n] + b"\r\n") if chunked else block[:n])
            sent += n
        if chunked:
            conn.sendall(b"0\r\n\r\n")

    return handler


def expected_sha256(size: int) -> str:
    block = bytes(range(256)) * 4096
    h = hashlib.sha256()
    for _ in range(size // len(block)):
        h.update(block)
    h.update(block[: size % len(block)])
    return h.hexdigest()


def file_sha256(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(MiB), b""):
            h.update(block)
    return h.hexdigest()


def leftovers(directory) -> list[str]:
    return [name for name in os.listdir(directory) if name.endswith(".part")]


async def test_default_max_body_size_is_100_mib_and_says_how_to_go_on(raw_server):
    assert Limits().max_body_size == 100 * MiB
    declared = raw_server(body_server(150 * MiB))
    unknown = raw_server(body_server(101 * MiB, chunked=True))
    async with AsyncClient() as c:
        with pytest.raises(nbfetch.TooLargeError) as exc:
            await c.fetch(declared.url + "/")
        message = str(exc.value)
        assert "max_body_size=104857600" in message
        assert "stream" in message and "download" in message and "Limits(" in message
        with pytest.raises(nbfetch.TooLargeError, match="body exceeds max_body_size"):
            await c.fetch(unknown.url + "/")  # no Content-Length: stopped while reading
        assert not c._pool.idle


@pytest.mark.parametrize("chunked", [False, True])
async def test_buffered_body_is_held_once(raw_server, chunked):
    """Pieces are not joined into a second copy: peak ~ body size, not 2x."""
    size = 64 * MiB
    srv = raw_server(body_server(size, chunked=chunked))
    tracemalloc.start()
    try:
        async with AsyncClient() as c:
            r = await c.fetch(srv.url + "/")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(r.body) == size
    assert hashlib.sha256(r.body).hexdigest() == expected_sha256(size)
    assert peak < size * 1.25 + 8 * MiB, (
        f"peak {peak / MiB:.0f} MiB for a {size / MiB:.0f} MiB body"
    )


@pytest.mark.parametrize("chunked", [False, True])
async def test_download_streams_to_disk_in_bounded_memory(raw_server, tmp_path, chunked):
    size = 150 * MiB  # over max_body_size: download() is not bound by it
    srv = raw_server(body_server(size, chunked=chunked))
    target = tmp_path / "data.bin"
    tracemalloc.start()
    try:
        async with AsyncClient() as c:
            r = await c.download(srv.url + "/data", target)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert r.status_code == 200 and r.path == target
    assert target.stat().st_size == size and file_sha256(target) == expected_sha256(size)
    assert leftovers(tmp_path) == []
    assert peak < 32 * MiB, f"peak {peak / MiB:.1f} MiB"
    assert "saved" in response_mimebundle(r)["text/plain"]


async def test_download_error_mid_body_removes_the_partial_file(raw_server, tmp_path):
    srv = raw_server(body_server(8 * MiB, cut_at=3 * MiB))
    target = tmp_path / "data.bin"
    target.write_bytes(b"the previous version")
    async with AsyncClient() as c:
        with pytest.raises(nbfetch.FetchError) as exc:
            await c.download(srv.url + "/", target)
    assert exc.value.phase == "download"
    assert target.read_bytes() == b"the previous version"  # untouched
    assert leftovers(tmp_path) == []


async def test_download_cancelled_mid_body_leaves_nothing(raw_server, tmp_path):
    import threading

    release = threading.Event()

    def slow(conn, server):
        server.read_request(conn)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 10000000\r\n\r\n" + b"x" * 100_000)
        release.wait(10)

    srv = raw_server(slow)
    target = tmp_path / "data.bin"
    got = []
    async with AsyncClient() as c:
        task = asyncio.ensure_future(
            c.download(srv.url + "/", target, trace=lambda e: got.append(e.name))
        )
        await wait_until(lambda: "response.data" in got, what="some body bytes")
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        release.set()
        assert not target.exists() and leftovers(tmp_path) == []
        assert "cancelled" in got
        await wait_until(lambda: client_sockets_to(srv.port) == 0, what="the socket closed")
        assert c._queue.active == 0


async def test_download_of_an_error_status_writes_nothing(raw_server, tmp_path):
    srv = raw_server(body_server(1000, status=404))
    async with AsyncClient() as c:
        with pytest.raises(nbfetch.HTTPStatusError, match="404"):
            await c.download(srv.url + "/", tmp_path / "x")
    assert os.listdir(tmp_path) == []


async def test_download_to_an_unwritable_place_fails_before_sending(raw_server, tmp_path):
    srv = raw_server(body_server(10))
    async with AsyncClient() as c:
        with pytest.raises(nbfetch.InvalidRequest, match="cannot write to"):
            await c.download(srv.url + "/", tmp_path / "no" / "such" / "dir" / "x")
    assert srv.connections == 0


def test_cli_output_file_is_a_download(raw_server, tmp_path):
    import io

    size = 3 * MiB
    srv = raw_server(body_server(size))
    target = tmp_path / "out.bin"
    out = io.StringIO()
    opts = parse_options(["-o", str(target), srv.url + "/"], prog="nbfetch")
    assert asyncio.run(run_cli(opts, out=out)) == 0
    assert file_sha256(target) == expected_sha256(size)
    assert f"saved {size:,} bytes to {target}" in out.getvalue()


@pytest.mark.parametrize("path", ["", "/", "."])
async def test_download_to_a_directory_or_no_name_fails_before_sending(raw_server, tmp_path, path):
    srv = raw_server(body_server(10))
    async with AsyncClient() as c:
        for target in (path, tmp_path):
            with pytest.raises(nbfetch.InvalidRequest, match="not a file name"):
                await c.download(srv.url + "/", target)
    assert srv.connections == 0


DISK_FULL = r"""
import asyncio, os, resource, signal, sys
import nbfetch
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, resource.RLIM_INFINITY))

async def main(url, target):
    async with nbfetch.AsyncClient() as c:
        try:
            await c.download(url, target)
        except nbfetch.FetchError as exc:
            print(type(exc).__name__, exc.phase, c._queue.active, len(c._pool.idle))

asyncio.run(main(sys.argv[1], sys.argv[2]))
"""


def test_download_with_a_full_disk_is_a_fetch_error_and_leaves_nothing(raw_server, tmp_path):
    """EFBIG from a file-size limit stands in for a full disk (ENOSPC)."""
    import subprocess
    import sys

    srv = raw_server(body_server(3 * MiB))
    target = tmp_path / "big.bin"
    out = subprocess.run(
        [sys.executable, "-c", DISK_FULL, srv.url + "/", str(target)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.stdout.split() == ["FetchError", "download", "0", "0"], out.stderr
    assert os.listdir(tmp_path) == []
