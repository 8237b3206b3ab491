"""TLS against the demo server with certificates made by trustme."""

import asyncio
import socket
import ssl
import threading
import time
from pathlib import Path

import pytest
import trustme
from conftest import (
    RawServer,
    assert_timer_fired,
    assert_timing_sane,
    cancel_as_step_finishes,
    client_sockets_to,
    wait_until,
)

import nbfetch
from nbfetch import AsyncClient
from nbfetch.core.events import PHASES
from nbfetch.demo import DemoServer

pytestmark = [pytest.mark.anyio, pytest.mark.loop_watchdog]


@pytest.fixture(scope="module")
def ca():
    return trustme.CA()


@pytest.fixture(scope="module")
def tls_server(ca):
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost", "127.0.0.1", "demo.test").configure_cert(ctx)
    server = DemoServer(ssl_context=ctx).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def client_context(ca):
    # Built outside the test bodies: loading CA certificates blocks the loop, and
    # it is not what a timed handshake measures.
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    return ctx


@pytest.fixture
def ca_file(ca, tmp_path):
    path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


async def test_verified_fetch_with_a_ca_bundle_and_keep_alive(tls_server, ca_file):
    tls_server.reset_stats()
    async with AsyncClient(verify=ca_file) as c:
        r = await c.fetch(tls_server.url + "/get")
        r2 = await c.fetch(tls_server.url + "/get")
    assert r.status_code == 200 and r.url.scheme == "https"
    done = next(e for e in r.events if e.name == "tls.done")
    assert done["version"] in ("TLSv1.2", "TLSv1.3") and done["cipher"]
    assert r.timing.tls is not None and r.timing.tls > 0
    assert "connection.reused" in [e.name for e in r2.events] and r2.timing.tls is None
    assert tls_server.stats["connections"] == 1


async def test_sni_and_hostname_check_use_the_url_host(tls_server, ca_file):
    async with AsyncClient(verify=ca_file, hostname_mapping={"demo.test": "127.0.0.1"}) as c:
        r = await c.fetch(f"https://demo.test:{tls_server.port}/headers")
        assert r.json()["headers"]["Host"] == f"demo.test:{tls_server.port}"
        start = next(e for e in r.events if e.name == "tls.start")
        assert start["server_hostname"] == "demo.test"
    # A name the certificate does not cover, mapped to the same server.
    async with AsyncClient(verify=ca_file, hostname_mapping={"wrong.test": "127.0.0.1"}) as c:
        with pytest.raises(nbfetch.TLSError, match=r"match|mismatch") as exc:
            await c.fetch(f"https://wrong.test:{tls_server.port}/get")
    assert exc.value.phase == "tls"


async def test_untrusted_certificate_is_a_tls_error(tls_server):
    async with AsyncClient() as c:
        with pytest.raises(nbfetch.TLSError) as exc:
            await c.fetch(tls_server.url + "/get")
    assert "certificate verify failed" in str(exc.value) or "unable to get local issuer" in str(
        exc.value
    )
    assert exc.value.phase == "tls" and tls_server.url in str(exc.value)
    assert isinstance(exc.value, nbfetch.ConnectError)


async def test_custom_ssl_context_and_verify_false(tls_server, client_context):
    async with AsyncClient(verify=client_context) as c:
        assert (await c.fetch(tls_server.url + "/get")).status_code == 200
    async with AsyncClient(verify=False) as c:
        assert (await c.fetch(tls_server.url + "/get")).status_code == 200


async def test_client_certificate(ca, ca_file, tmp_path):
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_ctx)
    server_ctx.verify_mode = ssl.CERT_REQUIRED
    ca.configure_trust(server_ctx)
    client_cert = ca.issue_cert("client@example.test")
    pem = tmp_path / "client.pem"
    client_cert.private_key_and_cert_chain_pem.write_to_path(str(pem))
    with DemoServer(ssl_context=server_ctx).start() as server:
        async with AsyncClient(verify=ca_file, cert=str(pem)) as c:
            assert (await c.fetch(server.url + "/get")).status_code == 200
        async with AsyncClient(verify=ca_file) as c:
            # TLS 1.3: the server checks the client certificate after the
            # handshake, so the refusal may surface on the first read.
            with pytest.raises((nbfetch.TLSError, nbfetch.NetworkError, nbfetch.ProtocolError)):
                await c.fetch(server.url + "/get")


def _stalls_the_handshake(conn, server):
    """Accepts TCP, reads the ClientHello, never answers; ends when the client gives up."""
    while conn.recv(65536):
        pass


async def test_tls_handshake_timeout(raw_server):
    srv = raw_server(_stalls_the_handshake)
    async with AsyncClient() as c:
        start = time.monotonic()
        with pytest.raises(nbfetch.FetchTimeout) as exc:
            await c.fetch(f"https://127.0.0.1:{srv.port}/", connect_timeout=0.3)
    assert_timer_fired(exc.value, time.monotonic() - start, "connect_timeout", "tls", 0.3)


async def test_connect_timeout_is_one_budget_for_dns_tcp_and_tls(raw_server):
    """curl's --connect-timeout: resolving, connecting and the handshake share one
    deadline, so a slow resolver leaves the handshake only what is left of it."""
    srv = raw_server(_stalls_the_handshake)
    budget, dns = 2.0, 1.2

    async def slow_resolver(host, port):
        await asyncio.sleep(dns)
        return [(socket.AF_INET, ("127.0.0.1", srv.port))]

    events = []
    async with AsyncClient(resolver=slow_resolver) as c:
        start = time.monotonic()
        with pytest.raises(nbfetch.FetchTimeout) as exc:
            await c.fetch(
                f"https://stalls.test:{srv.port}/", connect_timeout=budget, trace=events.append
            )
    # A timer restarted per step fires at dns + budget = 3.2 s, past this bound.
    assert_timer_fired(
        exc.value, time.monotonic() - start, "connect_timeout", "tls", budget, before=1.5 * budget
    )
    assert [e.name for e in events][-2:] == ["tls.start", "error"]


async def test_the_ca_bundle_is_not_loaded_on_the_loop(tls_server, monkeypatch):
    """Building the default context (system CAs + certifi, 55-75 ms of CPU here) runs
    in a worker thread. The loop thread's CPU time between two of its turns stays
    small: CPU time, not wall time, so that a loaded machine preempting the loop
    does not count; and no garbage collection in the middle (not nbfetch's doing)."""
    import gc

    import nbfetch.client.tls

    monkeypatch.setattr(nbfetch.client.tls, "_shared", {})  # cold
    longest, running = 0.0, True

    async def ticker():
        nonlocal longest
        while running:
            before = time.thread_time()
            await asyncio.sleep(0)
            longest = max(longest, time.thread_time() - before)

    gc.disable()
    try:
        task = asyncio.ensure_future(ticker())
        await asyncio.sleep(0)
        async with AsyncClient() as c:  # the trustme CA is not trusted: a TLSError, after the build
            with pytest.raises(nbfetch.TLSError):
                await c.fetch(tls_server.url + "/get")
        running = False
        await task
    finally:
        gc.enable()
    assert longest < 0.04, f"the loop thread ran {longest * 1000:.0f} ms of CPU without a turn"
    # Built once per process: every client with the defaults shares it.
    assert c.ssl_context() is AsyncClient().ssl_context()
    assert c.ssl_context().cert_store_stats()["x509_ca"] > 0


async def test_concurrent_first_fetches_build_the_context_once(tls_server, ca_file, monkeypatch):
    import nbfetch.client.connect

    builds, release = [], threading.Event()
    build = nbfetch.client.connect.ssl_context_for

    def slow_build(trust):
        builds.append(trust.verify)
        release.wait(10)  # until both fetches are in their handshake phase
        return build(trust)

    monkeypatch.setattr(nbfetch.client.connect, "ssl_context_for", slow_build)
    events = []
    async with AsyncClient(verify=ca_file) as c:
        both = asyncio.gather(
            *[c.fetch(tls_server.url + f"/get?i={i}", trace=events.append) for i in range(2)]
        )
        try:
            await wait_until(
                lambda: sum(e.name == "tls.start" for e in events) == 2, what="two handshakes"
            )
        finally:
            release.set()
        rs = await both
    assert [r.status_code for r in rs] == [200, 200] and builds == [ca_file]


@pytest.mark.parametrize("after_handshake_started", [False, True])
async def test_cancel_during_tls_set_up_leaves_no_socket(raw_server, after_handshake_started):
    """Cancelled while the SSL context is built off the loop, or mid-handshake:
    the TCP connection is closed at once, not left to the garbage collector."""
    srv = raw_server(_stalls_the_handshake)
    events = []
    async with AsyncClient(verify=False) as c:  # its own context: built on first use
        task = asyncio.ensure_future(
            c.fetch(srv.url.replace("http:", "https:") + "/", trace=events.append)
        )
        await wait_until(lambda: any(e.name == "tls.start" for e in events), what="tls.start")
        if after_handshake_started:
            await wait_until(
                lambda: c._connector._ssl_context is not None, what="the context built"
            )
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert "cancelled" in [e.name for e in events]
        await wait_until(lambda: client_sockets_to(srv.port) == 0, what="the socket closed")
        assert c._queue.active == 0 and not c._pool.idle


async def test_cancelled_as_the_handshake_completes(tls_server):
    """Cancelled in the loop pass after the TLS handshake finished but before the
    fetch took the TLS transport: the connection is closed, not left open."""
    before = client_sockets_to(tls_server.port)
    async with AsyncClient(verify=False) as c:
        task = asyncio.ensure_future(c.fetch(tls_server.url.replace("http:", "https:") + "/get"))
        await cancel_as_step_finishes(task, "start_tls")
        with pytest.raises(asyncio.CancelledError):
            await task
        await wait_until(
            lambda: client_sockets_to(tls_server.port) == before, what="the socket to close"
        )


async def test_loading_a_large_ca_bundle_does_not_block_the_loop(tls_server, ca, tmp_path):
    # A corporate bundle of several hundred CAs: parsing it costs this process
    # 200 ms of CPU or more, which must not be spent on the loop (the watchdog checks).
    import certifi

    bundle = tmp_path / "bundle.pem"
    bundle.write_text(Path(certifi.where()).read_text() * 8 + ca.cert_pem.bytes().decode())
    async with AsyncClient(verify=str(bundle)) as c:
        assert (await c.fetch(tls_server.url + "/get")).status_code == 200


async def test_every_phase_is_measured_and_none_is_negative(tls_server, ca_file):
    # One fetch through all eight phases: queued behind another (queue), a
    # mapped name (dns), TCP (connect), TLS, a redirect, send, wait, download.
    async with AsyncClient(
        verify=ca_file, max_clients=1, hostname_mapping={"demo.test": "127.0.0.1"}
    ) as c:
        url = f"https://demo.test:{tls_server.port}/redirect/1"
        first, second = await asyncio.gather(c.fetch(url), c.fetch(url))
    seen = set()
    for r in (first, second, *first.history, *second.history):
        assert_timing_sane(r.timing)
        seen |= {name for name, value in r.timing.phases().items() if value is not None}
    assert seen == set(PHASES) - {"tunnel"}  # the proxy's: tests/test_proxies.py
    assert second.history[0].timing.queue > 0 and first.history[0].timing.tls > 0


@pytest.fixture(scope="module")
def both_schemes(ca):
    """A server speaking TLS or plain HTTP on one port, whichever the client
    starts with: an https URL that redirects to http on the same host and port
    changes nothing but the scheme."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(ctx)
    plain_requests = []

    def handler(conn, server):
        if conn.recv(1, socket.MSG_PEEK) == b"\x16":  # a TLS handshake record
            conn = ctx.wrap_socket(conn, server_side=True)
            server.read_request(conn)
            conn.sendall(
                b"HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:%d/landing\r\n"
                b"Content-Length: 0\r\n\r\n" % server.port
            )
        else:
            plain_requests.append(server.read_request(conn))
            conn.sendall(b"HTTP/1.1 204 No Content\r\n\r\n")

    server = RawServer(handler)
    server.plain_requests = plain_requests
    yield server
    server.close()


async def test_an_https_to_http_redirect_drops_credentials(both_schemes, ca_file):
    async with AsyncClient(verify=ca_file) as c:
        r = await c.fetch(
            f"https://127.0.0.1:{both_schemes.port}/start",
            headers={"Cookie": "session=1", "Proxy-Authorization": "Basic eA==", "X-Keep": "1"},
            auth=("user", "secret"),
        )
    assert r.status_code == 204 and r.url.scheme == "http" and r.history[0].url.scheme == "https"
    sent = both_schemes.plain_requests[-1].lower()
    # RFC 9110 15.4: a redirect to another origin (the scheme is part of it,
    # section 4.3.1) must not carry them, and over plain HTTP anyone could read them.
    assert b"authorization" not in sent and b"cookie" not in sent and b"secret" not in sent
    assert b"x-keep: 1" in sent and b"host: 127.0.0.1:%d" % both_schemes.port in sent
