"""Pause, resume and rate_limit (issue 19, part 4), proven at the server: while
the client is paused its send blocks (the TCP window closed) and no read
timeout fires; rate_limit paces the reads at the socket (the rest waits in the
kernel). Each test runs on asyncio and on trio; the live view's controls run in
a real kernel."""

from __future__ import annotations

import gzip
import hashlib
import socket
import ssl
import threading
import time

import anyio
import pytest
import trustme
from conftest import (
    answer_each,
    assert_timer_fired,
    assert_timing_sane,
    client_sockets_to,
    client_unread_bytes,
    idle_connections,
)

from nbfetch import AsyncClient
from nbfetch.core.errors import FetchTimeout, InvalidRequest

pytestmark = pytest.mark.anyio

FRAME = 16 * 1024  # one chunk of the Sender's body


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request):
    return request.param


async def until(predicate, what: str, timeout: float = 15.0) -> None:
    """Poll ``predicate`` on either loop until true; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await anyio.sleep(0.005)


class Sender:
    """A raw-server handler: a chunked body of FRAME-byte chunks, sent through a
    small send buffer for as long as ``stop`` is not set (at most ``limit``
    chunks), then its end. ``stall``: stop sending and hold the connection.
    ``blocks`` counts sends that found no room for 0.2 s (the client's window
    closed); ``frames`` the chunks sent in full; ``digest`` their payload."""

    def __init__(self, limit: int = 8192, context: ssl.SSLContext | None = None):
        self.limit, self.context = limit, context
        self.frames = self.blocks = 0
        self.stop, self.stall, self.finished = (
            threading.Event(),
            threading.Event(),
            threading.Event(),
        )
        self.digest = hashlib.sha256()

    def __call__(self, conn: socket.socket, server) -> None:
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 32 * 1024)
        if self.context is not None:
            conn = self.context.wrap_socket(conn, server_side=True)
        server.read_request(conn)
        conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        conn.settimeout(0.2)
        while not self.stop.is_set() and self.frames < self.limit:
            if self.stall.is_set():
                while not server._stop.is_set():  # until the client hangs up
                    try:
                        if not conn.recv(1):
                            return
                    except TimeoutError:
                        pass
                return
            payload = bytes([self.frames % 251]) * FRAME
            self._send(conn, b"%x\r\n" % FRAME + payload + b"\r\n", server)
            self.digest.update(payload)
            self.frames += 1
        self._send(conn, b"0\r\n\r\n", server)
        self.finished.set()

    def _send(self, conn, data: bytes, server) -> None:
        view = memoryview(data)
        while view:
            if server._stop.is_set():
                raise OSError("the test is over")
            try:
                view = view[conn.send(view) :]
            except TimeoutError:
                self.blocks += 1


async def read_rest(r, digest=None) -> int:
    n = 0
    async for data in r.aiter_bytes():
        n += len(data)
        if digest is not None:
            digest.update(data)
    return n


@pytest.mark.parametrize("scheme", ["http", "https"])
async def test_pause_closes_the_window_the_servers_send_blocks_until_resume(
    raw_server, scheme, tmp_path
):
    """Over TLS too (asyncio's SSL layer reads up to its 256 KiB buffer, then
    stops the socket)."""
    context, verify = None, True
    if scheme == "https":
        ca = trustme.CA()
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert("127.0.0.1").configure_cert(context)
        ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
        verify = str(tmp_path / "ca.pem")
    sender = Sender(context=context)
    server = raw_server(sender)
    url = f"{scheme}://127.0.0.1:{server.port}/"
    async with (
        AsyncClient(verify=verify) as client,
        client.stream("GET", url, read_timeout=30) as r,
    ):
        r.pause()  # before the first byte of the body
        assert r.paused
        await until(lambda: sender.blocks > 0, "the server's send to block")
        frames, blocks = sender.frames, sender.blocks
        await until(lambda: sender.blocks >= blocks + 3, "the send to block on")
        # Blocked again and again for 0.6 s: the window stayed closed (the
        # kernel may open it by a few segments as it packs its buffer),
        # and nothing was read.
        assert sender.frames <= frames + 4 and not sender.finished.is_set()
        assert r.wire_bytes == 0
        assert client_unread_bytes(server.port) > 0  # the bytes wait in our kernel
        r.resume()
        assert not r.paused
        sender.stop.set()  # the body ends after the chunk under way
        digest = hashlib.sha256()
        size = await read_rest(r, digest)
    assert sender.finished.is_set()
    assert size == sender.frames * FRAME and digest.digest() == sender.digest.digest()
    names = [e.name for e in r.events]
    assert names.count("response.paused") == names.count("response.resumed") == 1
    (resumed,) = [e for e in r.events if e.name == "response.resumed"]
    timing = r.timing
    assert_timing_sane(timing)  # paused time is part of download: the phases add up
    assert timing.paused == pytest.approx(resumed["paused"], abs=0.05)
    assert 0.6 <= timing.paused <= timing.download


async def test_no_read_timeout_while_paused_and_the_timeout_works_after_resume(raw_server):
    sender = Sender()
    server = raw_server(sender)
    async with (
        AsyncClient() as client,
        client.stream("GET", server.url + "/", read_timeout=0.5) as r,
    ):
        pieces = r.aiter_bytes()
        await pieces.__anext__()  # mid-body, the server sending all along
        r.pause()
        await anyio.sleep(2.5)  # five read timeouts
        assert sender.blocks > 0  # it kept sending until the window closed
        r.resume()
        await pieces.__anext__()
        sender.stall.set()  # silence from now on: the read timeout must fire
        start = time.monotonic()
        with pytest.raises(FetchTimeout) as info:
            async for _ in pieces:
                start = time.monotonic()  # counted from the last byte
    assert_timer_fired(info.value, time.monotonic() - start, "read_timeout", "download", 0.5)
    await until(lambda: client_sockets_to(server.port) == 0, "the connection to close")


def _two_part_server(first: bytes, rest: bytes, go: threading.Event, headers: bytes = b""):
    def handler(conn: socket.socket, server) -> None:
        server.read_request(conn)
        conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n" + headers + b"\r\n")
        conn.sendall(first)
        go.wait(10)
        conn.sendall(rest)

    return handler


def _chunks(payload: bytes, size: int) -> bytes:
    return b"".join(
        b"%x\r\n" % len(payload[i : i + size]) + payload[i : i + size] + b"\r\n"
        for i in range(0, len(payload), size)
    )


@pytest.mark.parametrize("where", ["mid-chunk", "between-chunks"])
async def test_pause_while_a_read_waits_takes_nothing_more(raw_server, where):
    """Paused while the reader waits for the socket (inside a chunk, or
    between two): the rest arrives at our kernel and stays there."""
    body = bytes(range(256)) * 16384  # 4 MiB
    go = threading.Event()
    if where == "mid-chunk":  # half of a 32 KiB chunk, then the rest of it
        first = b"8000\r\n" + body[:16384]
        rest = body[16384:32768] + b"\r\n" + _chunks(body[32768:], 65536) + b"0\r\n\r\n"
    else:
        first = _chunks(body[:16384], 16384)
        rest = _chunks(body[16384:], 65536) + b"0\r\n\r\n"
    server = raw_server(_two_part_server(first, rest, go))
    pieces: list[bytes] = []
    async with (
        AsyncClient() as client,
        client.stream("GET", server.url + "/", read_timeout=0.5) as r,
    ):

        async def reader():
            async for data in r.aiter_bytes():
                pieces.append(data)

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(reader)
            await until(lambda: pieces, "the first part")
            r.pause()
            go.set()
            await until(lambda: client_unread_bytes(server.port) > 0, "the rest")
            seen, wire = len(pieces), r.wire_bytes
            await anyio.sleep(1.5)  # three read timeouts
            assert (len(pieces), r.wire_bytes) == (seen, wire)
            assert wire == 16384  # the first part, nothing of the rest
            r.resume()
    assert b"".join(pieces) == body


async def test_pause_with_a_decoder_holding_pending_output(raw_server):
    """A gzip body that decodes to 64 MiB: paused after the first 1 MiB step,
    the decoder's pending output is not handed out either."""
    size = 64 * 1024 * 1024
    compressed = gzip.compress(b"\0" * size)
    go = threading.Event()
    go.set()
    server = raw_server(
        _two_part_server(
            _chunks(compressed, 65536) + b"0\r\n\r\n", b"", go, b"Content-Encoding: gzip\r\n"
        )
    )
    lengths: list[int] = []
    pending = []
    async with (
        AsyncClient() as client,
        client.stream("GET", server.url + "/", read_timeout=0.5) as r,
    ):

        async def reader():
            async for data in r.aiter_bytes():
                lengths.append(len(data))
                if len(lengths) == 1:
                    pending.append(r._source.decoder.more)  # what this test is about
                    r.pause()

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(reader)
            await until(lambda: r.paused, "the pause")
            await anyio.sleep(1.0)
            assert len(lengths) == 1 and pending == [True]
            r.resume()
    assert sum(lengths) == size


async def test_rate_limit_paces_the_reads_at_the_socket(raw_server):
    """200 KB/s over 1 MB: at least ~4 s (5 s minus one paced read), and the
    rest of the body waits in the kernel, not in our buffers."""
    body = b"r" * 1_000_000
    server = raw_server(
        answer_each(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
    )
    unread = []
    async with AsyncClient() as client:
        start = time.monotonic()
        async with client.stream("GET", server.url + "/", rate_limit=200_000) as r:
            assert r.rate_limit == 200_000
            n = 0
            async for data in r.aiter_bytes():
                n += len(data)
                if 300_000 < n < 700_000 and not unread:
                    unread.append(client_unread_bytes(server.port))
        elapsed = time.monotonic() - start
    assert n == len(body)
    assert elapsed >= 4.0, elapsed
    assert unread and unread[0] > 0, unread  # not read ahead of the pace: it waits in the kernel


async def test_rate_limit_changes_on_a_live_response(raw_server):
    body = b"c" * 2_000_000
    server = raw_server(
        answer_each(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
    )
    async with AsyncClient() as client:
        start = time.monotonic()
        async with client.stream("GET", server.url + "/", rate_limit=50_000) as r:
            n = 0
            async for data in r.aiter_bytes():
                n += len(data)
                if n >= 100_000 and r.rate_limit is not None:
                    slow = time.monotonic() - start
                    r.rate_limit = None  # the rest at full speed
        elapsed = time.monotonic() - start
    assert n == len(body) and r.rate_limit is None
    assert slow >= 1.0, slow  # 100 KB at 50 KB/s
    assert elapsed < 20, elapsed  # the 2 MB at 50 KB/s would take 40 s


async def test_closing_a_paused_response_leaks_nothing(raw_server):
    sender = Sender()
    server = raw_server(sender)
    async with AsyncClient() as client:
        async with client.stream("GET", server.url + "/") as r:
            r.pause()
            await until(lambda: sender.blocks > 0, "the server's send to block")
        assert not r.paused  # over: pause() and resume() do nothing now
        r.pause()
        assert not r.paused
        assert "connection.dropped" in [e.name for e in r.events]
        await until(lambda: client_sockets_to(server.port) == 0, "the connection to close")
        assert idle_connections(client) == 0 and client._queue.active == 0


async def test_cancelling_a_paused_reader_leaks_nothing(raw_server):
    sender = Sender()
    server = raw_server(sender)
    async with AsyncClient() as client:
        with anyio.move_on_after(1.0):
            async with client.stream("GET", server.url + "/", read_timeout=0.3) as r:
                pieces = r.aiter_bytes()
                await pieces.__anext__()
                r.pause()
                async for _ in pieces:  # waits for the resume that never comes
                    pass
        assert r.events[-1].name == "cancelled" and r.events[-1]["phase"] == "download"
        assert not r.paused and r.timing.paused > 0
        await until(lambda: client_sockets_to(server.port) == 0, "the connection to close")
        assert idle_connections(client) == 0 and client._queue.active == 0


async def test_request_timeout_still_bounds_a_paused_fetch(raw_server):
    sender = Sender()
    server = raw_server(sender)
    async with AsyncClient() as client:
        start = time.monotonic()
        with pytest.raises(FetchTimeout) as info:
            async with client.stream("GET", server.url + "/", request_timeout=1.5) as r:
                r.pause()
                await read_rest(r)
        assert_timer_fired(info.value, time.monotonic() - start, "request_timeout", "download", 1.5)
        assert "paused" in info.value.hint
        await until(lambda: client_sockets_to(server.port) == 0, "the connection to close")
        assert client._queue.active == 0


def _reads_freely(stream) -> bool:
    """The driver's own state: not paused, reads not bounded by a rate."""
    if hasattr(stream, "proto"):  # asyncio
        p = stream.proto
        return not (p.user_paused or p.transport_paused) and p.read_max is None
    from nbfetch.drivers.trio_driver import RECEIVE_SIZE

    return not stream._paused and stream._size == RECEIVE_SIZE


async def test_the_pool_never_gets_a_paused_or_paced_connection(raw_server):
    body = b"k" * 300_000
    server = raw_server(
        answer_each(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
    )
    async with AsyncClient() as client:
        async with client.stream("GET", server.url + "/", rate_limit=1_000_000) as r:
            r.pause()
            conn = r._source.conn
            r.resume()
            assert await read_rest(r) == len(body)
        assert idle_connections(client) == 1 and _reads_freely(conn.stream)
        again = await client.fetch(server.url + "/", read_timeout=5)
        assert "connection.reused" in [e.name for e in again.events]
        assert len(again.body) == len(body) and server.connections == 1


async def test_rate_limit_must_be_a_positive_number(demo):
    async with AsyncClient() as client:
        for bad in (0, -5, "fast", True):
            with pytest.raises(InvalidRequest, match="rate_limit"):
                await client.fetch(demo.url + "/get", rate_limit=bad)
        r = await client.fetch(demo.url + "/get", rate_limit=1e9)
        assert r.status_code == 200 and r.timing.paused is None
        with pytest.raises(InvalidRequest, match="rate_limit"):
            r.rate_limit = 0


# -- the live view's controls, in a real kernel -------------------------------------


@pytest.fixture(scope="module")
def kernel(server, tmp_path_factory):
    from kernel import Kernel

    k = Kernel(cwd=str(tmp_path_factory.mktemp("kernel")))
    k.run(f"%load_ext nbfetch\nimport nbfetch\nbase = {server.url!r}")
    yield k
    k.shutdown()


def _model(kernel, name: str, **state) -> str:
    """The comm_id of the last widget model ``name`` opened with ``state``."""

    def matches(m):
        if m["msg_type"] != "comm_open":
            return False
        opened = m["content"]["data"].get("state", {})
        return opened.get("_model_name") == name and all(
            opened.get(k) == v for k, v in state.items()
        )

    kernel.wait_for(matches, timeout=20)
    return [m for m in kernel.iopub if matches(m)][-1]["content"]["comm_id"]


def _wait_for_update(kernel, comm_id: str, key: str, value) -> None:
    kernel.wait_for(
        lambda m: (
            m["msg_type"] == "comm_msg"
            and m["content"]["comm_id"] == comm_id
            and m["content"]["data"].get("state", {}).get(key) == value
        ),
        timeout=20,
    )


@pytest.mark.timeout(120)
def test_the_live_views_pause_resume_and_rate_control_in_a_kernel(kernel):
    kernel.run("h = %fetch --bg --stream {base}/drip?numbytes=4000&duration=4&chunks=40")
    pause = _model(kernel, "ButtonModel", description="Pause")
    rate = _model(kernel, "DropdownModel")
    kernel.click(pause)
    _wait_for_update(kernel, pause, "description", "Resume")
    kernel.wait_for(  # the status line says so
        lambda m: (
            m["msg_type"] == "comm_msg"
            and "nbfetch-paused" in str(m["content"]["data"].get("state", {}).get("value", ""))
        ),
        timeout=20,
    )
    assert kernel.value("h.view._stream.paused") == "True"
    # what a front end sends when "100 KB/s" is picked
    msg = kernel.kc.session.msg(
        "comm_msg", {"comm_id": rate, "data": {"method": "update", "state": {"index": 2}}}
    )
    kernel.kc.shell_channel.send(msg)
    deadline = time.monotonic() + 20
    while kernel.value("h.view._stream.rate_limit") != "100000.0":
        assert time.monotonic() < deadline, "the rate control did not reach the response"
        kernel.pump_for(0.1)
    kernel.click(pause)
    _wait_for_update(kernel, pause, "description", "Pause")
    kernel.run("r = await h")
    names = kernel.value("[e.name for e in r.events if e.name.endswith(('paused', 'resumed'))]")
    assert names == "['response.paused', 'response.resumed']"
    assert kernel.value("r.timing.paused > 0 and len(r.body) == 4000") == "True"
    assert kernel.value("r.rate_limit") == "100000.0"
