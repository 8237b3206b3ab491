"""TLS against the demo server with certificates made by trustme."""

import asyncio
import socket
import ssl
from pathlib import Path

import pytest
import trustme
from conftest import RawServer, assert_timing_sane

import nbfetch
from nbfetch import AsyncClient
from nbfetch.demo import DemoServer
from nbfetch.events import PHASES

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


async def test_tls_handshake_timeout(raw_server, client_context):
    import time

    def silent(conn, server):
        time.sleep(2)  # accepts TCP, never speaks TLS

    srv = raw_server(silent)
    async with AsyncClient(verify=client_context) as c:
        start = time.monotonic()
        with pytest.raises(nbfetch.FetchTimeout) as exc:
            await c.fetch(f"https://127.0.0.1:{srv.port}/", connect_timeout=0.3)
    assert exc.value.phase == "tls" and 0.3 <= time.monotonic() - start < 0.3 * 1.1 + 0.05


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
    assert seen == set(PHASES)
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
