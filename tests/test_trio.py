"""The same client on trio: the driver interface is honest."""

import gc
import ssl
import subprocess
import sys
import time

import pytest
import trustme
from conftest import assert_timer_fired, assert_timing_sane, client_sockets_to, socket_held
from loopwatch import run_trio

import nbfetch
from nbfetch import AsyncClient
from nbfetch.demo import DemoServer

trio = pytest.importorskip("trio")


def run(fn, *args):
    """trio.run under the loop watchdog: fails if the loop was blocked > 100 ms."""
    return run_trio(fn, *args)


def test_trio_driver_is_picked_inside_trio_and_records_the_same_events(demo):
    async def main():
        async with AsyncClient() as c:
            r = await c.fetch(demo.url + "/chunked?sizes=10,2000,7&ext=1&trailers=1")
            return c.driver.name, r

    driver, r = run(main)
    assert driver == "trio"
    chunks = [(e["size"], e["extensions"]) for e in r.events if e.name == "response.chunk"]
    assert chunks == [
        (10, (("index", "0"), ("name", "chunk 0"))),
        (2000, (("index", "1"), ("name", "chunk 1"))),
        (7, (("index", "2"), ("name", "chunk 2"))),
    ]
    assert r.trailers["x-chunks"] == "3" and len(r.body) == 2017
    t = r.timing
    assert_timing_sane(t)


def test_stream_redirects_and_keep_alive(demo):
    async def main():
        async with AsyncClient() as c:
            r = await c.fetch(demo.url + "/redirect/3")
            async with c.stream("GET", demo.url + "/stream/4") as s:
                sizes = [ch.size async for ch in s.aiter_chunks()]
            for _ in range(20):
                await c.fetch(demo.url + "/get")
            return r, sizes

    r, sizes = run(main)
    assert r.url == demo.url + "/get" and [h.status_code for h in r.history] == [302, 302, 302]
    assert len(sizes) == 4
    assert demo.stats["connections"] == 1


def test_max_clients_queue(demo):
    async def main():
        results = []
        async with AsyncClient(max_clients=2) as c:

            async def one():
                results.append(await c.fetch(demo.url + "/delay/0.05"))

            async with trio.open_nursery() as nursery:
                for _ in range(10):
                    nursery.start_soon(one)
        return results

    results = run(main)
    assert demo.stats["max_in_flight"] == 2 and len(results) == 10
    assert sum(1 for r in results if r.timing.queue > 0.03) >= 6


def _silent(conn, server):
    server.read_request(conn)
    time.sleep(3)


def test_read_timeout_and_no_socket_left(raw_server):
    srv = raw_server(_silent)

    async def main():
        async with AsyncClient() as c:
            start = time.monotonic()
            with pytest.raises(nbfetch.FetchTimeout) as exc:
                await c.fetch(srv.url, read_timeout=0.3)
            return time.monotonic() - start, exc.value

    elapsed, exc = run(main)
    assert_timer_fired(exc, elapsed, "read_timeout", "wait", 0.3, 3)  # 3 s: the server closes
    assert client_sockets_to(srv.port) == 0


def test_cancel_scope_cancels_a_fetch_and_closes_its_socket():
    with DemoServer().start() as demo:

        async def main():
            async with AsyncClient() as c:
                with trio.move_on_after(0.3):
                    await c.fetch(demo.url + "/drip?numbytes=10&duration=3&chunks=10")
                return c._queue.active, c._pool.open

        active, open_ = run(main)
        assert active == 0 and open_ == {}
        assert client_sockets_to(demo.port) == 0


def test_tls_on_trio(tmp_path):
    ca = trustme.CA()
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(ctx)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    with DemoServer(ssl_context=ctx).start() as server:

        async def main():
            async with AsyncClient(verify=str(ca_file)) as c:
                r = await c.fetch(server.url + "/get")
                again = await c.fetch(server.url + "/get")
            async with AsyncClient() as c:
                # The issuer comes from a second handshake in trio's worker thread.
                with pytest.raises(nbfetch.TLSError, match="issued by 'O=trustme"):
                    await c.fetch(server.url + "/get")
            return r, again

        r, again = run(main)
    done = next(e for e in r.events if e.name == "tls.done")
    assert done["version"].startswith("TLS") and r.json()["url"] == server.url + "/get"
    assert "connection.reused" in [e.name for e in again.events]


def test_the_client_layer_never_imports_asyncio(raw_server):
    def handler(conn, server):
        server.read_request(conn)
        conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n")

    srv = raw_server(handler)
    code = (
        "import sys, trio, nbfetch\n"
        "async def main():\n"
        "    async with nbfetch.AsyncClient() as c:\n"
        f"        r = await c.fetch({srv.url!r})\n"
        "    return r.body\n"
        "body = trio.run(main)\n"
        "print(body, 'asyncio' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert out.stdout.strip() == "b'abc' False", out.stderr


def test_download_on_trio(demo, tmp_path):
    target = tmp_path / "bytes.bin"

    async def main():
        async with AsyncClient() as c:
            return await c.download(demo.url + "/bytes/300000", target)

    r = run(main)
    assert r.path == target and target.stat().st_size == 300_000
    assert [p.name for p in tmp_path.iterdir()] == ["bytes.bin"]


@pytest.mark.parametrize("runner", ["trio", "asyncio"])
def test_the_module_api_runs_on_both_loops(demo, tmp_path, runner):
    """nbfetch.fetch, download and fetch_many share one default client per loop
    (per trio.run under trio), with that loop's driver."""
    import asyncio

    async def main():
        r = await nbfetch.fetch(demo.url + "/get")
        saved = await nbfetch.download(demo.url + "/bytes/3000", tmp_path / "body.bin")
        urls = [demo.url + f"/get?i={i}" for i in range(5)] + ["http://127.0.0.1:1/"]
        many = await nbfetch.fetch_many(urls, max_clients=2, show=False)
        shared = nbfetch.default_client()
        again = await nbfetch.fetch(demo.url + "/get")
        return r, saved, many, shared, again, shared is nbfetch.default_client()

    r, saved, many, shared, again, same = (
        trio.run(main) if runner == "trio" else asyncio.run(main())
    )
    assert shared.driver.name == runner and same
    assert r.status_code == 200 and r.json()["url"] == demo.url + "/get"
    assert saved.path.read_bytes() == (tmp_path / "body.bin").read_bytes()
    assert len(saved.path.read_bytes()) == 3000
    assert [m.status_code for m in many[:5]] == [200] * 5
    assert [m.request.url.query for m in many[:5]] == [f"i={i}" for i in range(5)]
    assert isinstance(many[5], nbfetch.ConnectError)
    assert "connection.reused" in [e.name for e in again.events]  # the shared client's pool


@pytest.mark.parametrize("runner", ["trio", "asyncio"])
def test_the_default_client_is_closed_when_its_loop_ends(runner):
    """Each asyncio.run / trio.run has its own default client; its keep-alive
    socket must not outlive the run. (It did: the dict entry's value referenced
    its own weak key, the loop, so nothing was ever collected or closed.)"""
    import asyncio

    from nbfetch.client import api

    server = DemoServer().start()  # its own: no other test's sockets to count
    try:

        async def main():
            r = await nbfetch.fetch(server.url + "/get")
            client = nbfetch.default_client()
            (origin,) = client.inspect().origins
            local_port = int(origin.idle[0].local.rsplit(":", 1)[1])
            assert socket_held(local_port, server.port)  # kept alive while the loop runs
            return r.status_code, client, local_port

        # asyncio's own run: an earlier test's sync fetch inside a running loop
        # applied nest-asyncio2, whose asyncio.run reuses one loop and never ends it.
        run_asyncio = asyncio.runners.run
        clients = []
        for _ in range(3):
            status, client, local_port = trio.run(main) if runner == "trio" else run_asyncio(main())
            assert status == 200 and client.closed
            assert not socket_held(local_port, server.port)
            clients.append(client)
        gc.collect()
        # Forgotten with its loop, too: many runs do not pile up entries.
        kept = [entry[0] for entry in api._default_clients.values()]
        assert not any(c in kept for c in clients)
    finally:
        server.stop()


def test_each_trio_run_has_its_own_default_client(demo):
    async def main():
        await nbfetch.fetch(demo.url + "/get")
        return nbfetch.default_client()

    first, second = run(main), run(main)
    assert first is not second and first.driver.name == second.driver.name == "trio"


def test_fetch_sync_inside_trio_is_a_clear_error(demo):
    async def main():
        with pytest.raises(nbfetch.InvalidRequest, match=r"inside trio\.run") as exc:
            nbfetch.fetch_sync(demo.url + "/get")
        return exc.value

    assert run(main).url == demo.url + "/get"
