"""Proxies: NO_PROXY and the environment as pure logic, then a real squid
(conftest's ``squid`` / ``squid_auth``) in front of demo servers.

Which path a request took is proven twice: squid's access log (method, URL,
status, user) and the origin's view (squid adds ``Via`` to what it forwards;
``origin.test`` resolves only in squid's own hosts file, so a fetch of it that
works went through squid).
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import threading

import pytest
import trustme
from conftest import assert_timing_sane

from nbfetch import AsyncClient, FetchTimeout, InvalidRequest, ProxyError, TLSError
from nbfetch.core.proxies import EnvProxies, NoProxy, Proxy, is_loopback
from nbfetch.core.urls import URL
from nbfetch.demo import DemoServer
from nbfetch.drivers.asyncio_driver import AsyncioDriver
from nbfetch.notebook.snapshot import FetchState, waterfall_html

pytestmark = [pytest.mark.anyio, pytest.mark.loop_watchdog]


# -- pure logic --------------------------------------------------------------------
@pytest.mark.parametrize(
    ("entry", "url", "direct"),
    [
        ("example.com", "http://example.com/", True),
        ("example.com", "http://api.example.com/", True),
        ("example.com", "http://notexample.com/", False),
        (".example.com", "http://example.com/", True),
        ("*.example.com", "http://a.b.example.com/", True),
        ("EXAMPLE.com", "http://Example.COM./", True),
        ("10.1.2.3", "http://10.1.2.3/", True),
        ("10.1.2.3", "http://10.1.2.4/", False),
        ("10.0.0.0/8", "http://10.200.0.1/", True),
        ("10.0.0.0/8", "http://11.0.0.1/", False),
        ("fd00::/8", "http://[fd12::1]/", True),
        ("::1", "http://[::1]:8080/", True),
        ("example.com:8080", "http://example.com:8080/", True),
        ("example.com:8080", "http://example.com/", False),
        ("[fd00::1]:443", "https://[fd00::1]/", True),
        ("[fd00::1]:443", "http://[fd00::1]/", False),
        ("*", "http://anything/", True),
        ("a.org,, b.org c.org", "http://b.org/", True),
        ("", "http://example.com/", False),
    ],
)
def test_no_proxy_entries(entry, url, direct):
    assert NoProxy(entry).matches(URL.parse(url)) is direct


def test_loopback_targets():
    for host in ("localhost", "LOCALHOST.", "app.localhost", "127.0.0.1", "127.9.9.9", "::1"):
        assert is_loopback(host), host
    for host in ("10.0.0.1", "localhost.example.com", "::2", "example.com"):
        assert not is_loopback(host), host


def test_environment_proxies():
    env = EnvProxies.from_environ(
        {
            "http_proxy": "http://lower:3128",
            "HTTP_PROXY": "http://upper:3128",
            "ALL_PROXY": "proxy.corp:8080",  # no scheme: http://, as curl
            "no_proxy": "intranet.corp",
        }
    )
    assert env.proxy_for(URL.parse("http://example.org/")).display == "http://lower:3128"
    assert env.proxy_for(URL.parse("https://example.org/")).display == "http://proxy.corp:8080"
    assert env.proxy_for(URL.parse("https://wiki.intranet.corp/")) is None
    # Loopback goes direct whatever the environment says (see core/proxies.py).
    assert env.proxy_for(URL.parse("http://127.0.0.1:8000/")) is None
    assert env.proxy_for(URL.parse("http://localhost/")) is None
    everything = EnvProxies.from_environ({"HTTP_PROXY": "http://p:1", "NO_PROXY": "*"})
    assert everything.proxy_for(URL.parse("http://example.org/")) is None
    only_https = EnvProxies.from_environ({"HTTPS_PROXY": "http://p:1"})
    assert only_https.proxy_for(URL.parse("http://example.org/")) is None


def test_httpoxy_cgi_http_proxy_is_ignored():
    # CVE-2016-5385: under CGI, HTTP_PROXY is the client's "Proxy:" header.
    env = EnvProxies.from_environ({"HTTP_PROXY": "http://evil:1", "REQUEST_METHOD": "GET"})
    assert env.proxy_for(URL.parse("http://example.org/")) is None


def test_an_unusable_environment_proxy_is_an_error_naming_the_variable():
    env = EnvProxies.from_environ({"ALL_PROXY": "socks5://127.0.0.1:1080"})
    with pytest.raises(InvalidRequest, match=r"ALL_PROXY is a socks5:// proxy"):
        env.proxy_for(URL.parse("https://example.org/"))


def test_a_proxy_never_shows_its_password():
    p = Proxy("http://alice:s3cret@127.0.0.1:3128")
    assert p.display == "http://127.0.0.1:3128" and "s3cret" not in repr(p)
    assert p.authorization == b"Basic YWxpY2U6czNjcmV0"
    with pytest.raises(InvalidRequest, match="without a path"):
        Proxy("http://127.0.0.1:3128/some/path")


# -- through squid -------------------------------------------------------------------
@pytest.fixture(scope="module")
def ca():
    return trustme.CA()


@pytest.fixture(scope="module")
def origin():
    server = DemoServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def tls_origin(ca):
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("origin.test").configure_cert(ctx)  # only the name: SNI and the check use it
    server = DemoServer(ssl_context=ctx).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def trust(ca):
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    return ctx


def requests_of(squid, method: str) -> list[tuple]:
    return [e for e in squid.entries() if e[0] == method]


async def test_http_through_squid_in_absolute_form(squid, origin):
    before = len(squid.entries())
    async with AsyncClient(proxy=squid.url) as c:
        r = await c.fetch(f"http://origin.test:{origin.port}/headers?x=1")
    assert r.status_code == 200
    assert "nbfetch-squid" in r.json()["headers"]["Via"]  # squid forwarded it
    # squid logs the absolute-form target it was sent (RFC 9112 section 3.2.2).
    assert await squid.logged(before, 1) == [
        ("GET", f"http://origin.test:{origin.port}/headers?x=1", "200", "-")
    ]
    start = next(e for e in r.events if e.name == "connect.start")
    assert start["port"] == squid.port and start["proxy"] == squid.url


async def test_https_through_a_connect_tunnel_checks_the_origin_certificate(
    squid_auth, tls_origin, trust
):
    before = len(squid_auth.entries())
    target = f"https://origin.test:{tls_origin.port}/headers"
    async with AsyncClient(proxy=squid_auth.url, verify=trust) as c:
        r = await c.fetch(target)
        again = await c.fetch(target)
    assert r.status_code == 200
    seen = r.json()["headers"]
    assert "Proxy-Authorization" not in seen and "Via" not in seen  # an opaque tunnel
    names = [e.name for e in r.events]
    assert names.index("tunnel.start") < names.index("tunnel.done") < names.index("tls.start")
    assert next(e for e in r.events if e.name == "tls.start")["server_hostname"] == "origin.test"
    assert r.timing.tunnel > 0 and r.timing.tls > 0
    assert_timing_sane(r.timing)
    # The second fetch reused the tunnel: one CONNECT, as alice.
    assert "connection.reused" in [e.name for e in again.events]
    assert await squid_auth.logged(before, 1) == [
        ("CONNECT", f"origin.test:{tls_origin.port}", "200", "alice")
    ]
    for e in r.events:
        assert "s3cret" not in repr(e) and "s3cret" not in e.describe()


async def test_the_origin_never_sees_proxy_authorization(squid_auth, origin):
    before = len(squid_auth.entries())
    async with AsyncClient(proxy=squid_auth.url) as c:
        r = await c.fetch(f"http://origin.test:{origin.port}/headers")
    seen = r.json()["headers"]
    assert "Via" in seen and "Proxy-Authorization" not in seen and "Authorization" not in seen
    assert await squid_auth.logged(before, 1) == [
        ("GET", f"http://origin.test:{origin.port}/headers", "200", "alice")
    ]
    sent = next(e for e in r.events if e.name == "request.headers_sent")["headers"]
    assert "proxy-authorization" not in sent  # the request (and its events) never hold it


async def test_an_upload_through_the_proxy_keeps_absolute_form_and_credentials(squid_auth, origin):
    # files= is framed when sent: the proxy's hop is built from the framed request.
    before = len(squid_auth.entries())
    async with AsyncClient(proxy=squid_auth.url) as c:
        r = await c.fetch(
            f"http://origin.test:{origin.port}/post", "POST", files={"f": ("a.txt", b"hi")}
        )
    assert (
        r.status_code == 200 and '"a.txt"\r\nContent-Type: text/plain\r\n\r\nhi' in r.json()["data"]
    )
    assert await squid_auth.logged(before, 1) == [
        ("POST", f"http://origin.test:{origin.port}/post", "200", "alice")
    ]


async def test_a_redirect_to_a_direct_host_carries_no_proxy_credentials(
    squid_auth, origin, monkeypatch
):
    for name in ("NO_PROXY", "no_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", squid_auth.url)
    monkeypatch.setenv("http_proxy", squid_auth.url)
    before = len(squid_auth.entries())
    final = f"http://127.0.0.1:{origin.port}/headers"  # loopback: direct
    async with AsyncClient() as c:
        r = await c.fetch(f"http://origin.test:{origin.port}/redirect-to?url={final}")
    assert r.status_code == 200 and len(r.history) == 1
    seen = r.json()["headers"]
    assert "Proxy-Authorization" not in seen and "Via" not in seen
    assert [e[:2] for e in await squid_auth.logged(before, 1)] == [
        ("GET", f"http://origin.test:{origin.port}/redirect-to?url={final}")
    ]


@pytest.mark.parametrize("scheme", ["http", "https"])
async def test_407_is_a_proxy_error_naming_the_proxy_and_status(
    squid_auth, origin, tls_origin, trust, scheme
):
    port = origin.port if scheme == "http" else tls_origin.port
    wrong = squid_auth.url.replace("s3cret", "wr0ngpass")
    before = len(squid_auth.entries())
    for proxy, needs in ((f"http://127.0.0.1:{squid_auth.port}", "wants"), (wrong, "refused")):
        async with AsyncClient(proxy=proxy, verify=trust) as c:
            with pytest.raises(ProxyError) as info:
                await c.fetch(f"{scheme}://origin.test:{port}/get")
        exc = info.value
        assert f"proxy http://127.0.0.1:{squid_auth.port} refused" in str(exc)
        assert "407" in str(exc) and needs in exc.hint
        assert "wr0ngpass" not in str(exc) and "wr0ngpass" not in repr(exc)
        assert exc.phase == ("wait" if scheme == "http" else "tunnel")
    assert [e[2] for e in await squid_auth.logged(before, 2)] == ["407", "407"]


async def test_a_refused_connect_is_a_proxy_error(squid, trust):
    # Nothing listens on port 9: squid answers CONNECT with an error status.
    before = len(squid.entries())
    async with AsyncClient(proxy=squid.url, verify=trust) as c:
        with pytest.raises(ProxyError, match=r"refused CONNECT origin.test:9: 5\d\d") as info:
            await c.fetch("https://origin.test:9/")
    assert info.value.phase == "tunnel"
    assert (await squid.logged(before, 1))[0][:2] == ("CONNECT", "origin.test:9")


async def test_an_unreachable_proxy_is_a_proxy_error():
    async with AsyncClient(proxy="http://bob:hunter22@127.0.0.1:9") as c:
        with pytest.raises(ProxyError, match=r"proxy http://127.0.0.1:9: cannot connect") as info:
            await c.fetch("http://origin.test/")
    assert "hunter22" not in str(info.value)


async def test_environment_proxies_and_no_proxy(squid, origin, monkeypatch):
    for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy", "http_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", squid.url)
    # origin.test resolves in squid's hosts file only: fetched, it went through squid.
    named = f"http://origin.test:{origin.port}/headers"
    before = len(squid.entries())

    async with AsyncClient() as c:
        via_env = await c.fetch(named)
        loopback = await c.fetch(f"http://127.0.0.1:{origin.port}/headers")
        localhost = await c.fetch(f"http://localhost:{origin.port}/headers")
    assert "Via" in via_env.json()["headers"]
    # 127.0.0.0/8 and localhost go direct (core/proxies.py says why).
    assert "Via" not in loopback.json()["headers"] and "Via" not in localhost.json()["headers"]

    # The client's own name for the origin: direct when NO_PROXY, the mapping
    # itself, trust_env=False or proxy=None says so. (A resolver of our own: no
    # DNS query leaves the machine.)
    resolved = []

    async def resolver(host, port):
        resolved.append(host)
        return [(socket.AF_INET, ("127.0.0.1", port))]

    monkeypatch.setenv("NO_PROXY", f"example.org, origin.test:{origin.port}")
    async with AsyncClient(resolver=resolver) as c:
        excluded = await c.fetch(named)
    monkeypatch.delenv("NO_PROXY")
    async with AsyncClient(hostname_mapping={"origin.test": "127.0.0.1"}) as c:
        mapped = await c.fetch(named)
    async with AsyncClient(resolver=resolver, trust_env=False) as c:
        untrusted = await c.fetch(named)
    async with AsyncClient(resolver=resolver) as c:
        per_fetch_direct = await c.fetch(named, proxy=None)
    for r in (excluded, mapped, untrusted, per_fetch_direct):
        assert "Via" not in r.json()["headers"]
    assert resolved == ["origin.test"] * 3
    assert [e[1] for e in await squid.logged(before, 1)] == [named]  # only the first went through


async def test_the_pool_keys_connections_by_proxy_and_origin(squid, origin):
    url = f"http://127.0.0.1:{origin.port}/get"
    before = len(squid.entries())
    async with AsyncClient() as c:
        direct = await c.fetch(url)
        proxied = await c.fetch(url, proxy=squid.url)
        proxied_again = await c.fetch(url, proxy=squid.url)
        direct_again = await c.fetch(url)
        keys = set(c._pool.idle)
    assert "Via" in proxied.json()["headers"] and "Via" not in direct.json()["headers"]
    assert "connection.reused" in [e.name for e in proxied_again.events]
    assert "connection.reused" in [e.name for e in direct_again.events]
    assert [e[1] for e in await squid.logged(before, 2)] == [url, url]
    origin_key = ("http", "127.0.0.1", origin.port)
    assert keys == {origin_key, (*origin_key, Proxy(squid.url))}


# -- an https:// proxy: TLS to the proxy, TLS to the origin inside it ------------------
class TLSFront:
    """TLS in front of squid (squid's Debian build has no https_port we can rely
    on): accepts TLS on 127.0.0.1 and pipes the plain bytes to squid."""

    def __init__(self, ca, upstream_port: int):
        self.ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert("127.0.0.1").configure_cert(self.ctx)
        self.upstream = upstream_port
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        asyncio.set_event_loop(self.loop)
        self.server = self.loop.run_until_complete(
            asyncio.start_server(self._handle, "127.0.0.1", 0, ssl=self.ctx)
        )
        self.port = self.server.sockets[0].getsockname()[1]
        self.ready.set()
        self.loop.run_forever()

    async def _handle(self, reader, writer):
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream)

        async def pipe(src, dst):
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, ssl.SSLError):
                pass
            finally:
                dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    def __enter__(self):
        self.thread.start()
        self.ready.wait(10)
        return self

    def __exit__(self, *exc):
        async def shut():
            self.server.close()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(shut(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


async def test_an_https_proxy_carries_tls_inside_tls(squid_auth, origin, tls_origin, ca, trust):
    with TLSFront(ca, squid_auth.port) as front:
        proxy = f"https://alice:s3cret@127.0.0.1:{front.port}"
        before = len(squid_auth.entries())
        async with AsyncClient(proxy=proxy, verify=trust) as c:
            secure = await c.fetch(f"https://origin.test:{tls_origin.port}/headers")
            plain = await c.fetch(f"http://origin.test:{origin.port}/headers")
        # squid logs a tunnel when it closes: while the front still pipes.
        logged = await squid_auth.logged(before, 2)
    assert sorted(e[0] for e in logged) == ["CONNECT", "GET"]
    assert secure.status_code == plain.status_code == 200
    starts = [e for e in secure.events if e.name == "tls.start"]
    assert [e.details.get("proxy") for e in starts] == [f"https://127.0.0.1:{front.port}", None]
    assert starts[1]["server_hostname"] == "origin.test"
    assert "Via" in plain.json()["headers"]


class NoTLSInTLS(AsyncioDriver):
    tls_in_tls = False  # as asyncio before Python 3.11


async def test_tls_in_tls_where_unsupported_is_a_clear_error(squid, tls_origin, ca, trust):
    with TLSFront(ca, squid.port) as front:
        async with AsyncClient(
            proxy=f"https://127.0.0.1:{front.port}", verify=trust, driver=NoTLSInTLS()
        ) as c:
            with pytest.raises(ProxyError, match=r"TLS inside TLS needs Python 3.11\+"):
                await c.fetch(f"https://origin.test:{tls_origin.port}/")


# -- the live view ---------------------------------------------------------------------
async def test_the_waterfall_shows_the_tunnel(squid, tls_origin, trust):
    before = len(squid.entries())
    async with AsyncClient(proxy=squid.url, verify=trust) as c:
        r = await c.fetch(f"https://origin.test:{tls_origin.port}/get")
    state = FetchState.of_response(r)
    html = waterfall_html(state)
    assert ">tunnel</td>" in html
    phases = [name for name, _, _ in state.timing()[0]]
    assert phases.index("connect") < phases.index("tunnel") < phases.index("tls")
    # HAR has no tunnel field: its "connect" holds it (and the TLS, also "ssl");
    # Tornado's curl-style time_info puts it before appconnect, as curl does.
    from nbfetch.client.export import to_har
    from nbfetch.tornado import time_info

    t = r.timing
    har = to_har(r)["log"]["entries"][0]["timings"]
    assert har["connect"] == pytest.approx((t.connect + t.tunnel + t.tls) * 1000, abs=0.01)
    info = time_info(t)
    assert info["appconnect"] - info["connect"] == pytest.approx(t.tunnel + t.tls)
    assert (await squid.logged(before, 1))[0][0] == "CONNECT"


# -- the Tornado adapter -----------------------------------------------------------------
async def test_tornado_proxy_options(squid_auth, origin, tls_origin, ca, tmp_path):
    import nbfetch.tornado

    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    client = nbfetch.tornado.AsyncHTTPClient(force_instance=True)
    proxy = {"proxy_host": "127.0.0.1", "proxy_port": squid_auth.port}
    before = len(squid_auth.entries())
    try:
        plain = await client.fetch(
            f"http://origin.test:{origin.port}/headers",
            proxy_username="alice",
            proxy_password="s3cret",
            **proxy,
        )
        secure = await client.fetch(
            f"https://origin.test:{tls_origin.port}/headers",
            proxy_username="alice",
            proxy_password="s3cret",
            ca_certs=str(ca_file),
            **proxy,
        )
        with pytest.raises(ProxyError, match="407"):
            await client.fetch(f"http://origin.test:{origin.port}/get", **proxy)
        with pytest.raises(ValueError, match="proxy_port"):
            await client.fetch(f"http://origin.test:{origin.port}/", proxy_host="127.0.0.1")
    finally:
        client.close()
    assert (
        "Via" in json_of(plain)["headers"]
        and "Proxy-Authorization" not in json_of(plain)["headers"]
    )
    assert "Proxy-Authorization" not in json_of(secure)["headers"]
    # A tunnel is logged when it closes: after the requests that came later.
    assert sorted(e[:3] for e in await squid_auth.logged(before, 3)) == [
        ("CONNECT", f"origin.test:{tls_origin.port}", "200"),
        ("GET", f"http://origin.test:{origin.port}/get", "407"),
        ("GET", f"http://origin.test:{origin.port}/headers", "200"),
    ]


def json_of(response) -> dict:
    import json

    return json.loads(response.body)


def test_fetch_and_the_cli_take_a_proxy_option():
    from nbfetch.text.options import parse_options

    opts = parse_options("-x http://alice:s3cret@127.0.0.1:3128 http://origin.test/")
    assert opts.fetch_kwargs["proxy"] == "http://alice:s3cret@127.0.0.1:3128"
    assert "proxy" not in parse_options("http://origin.test/").fetch_kwargs


async def test_the_cli_options_fetch_through_squid(squid, origin):
    from nbfetch.text.options import parse_options

    before = len(squid.entries())
    opts = parse_options(f"--proxy {squid.url} http://origin.test:{origin.port}/headers")
    async with AsyncClient(**opts.client_kwargs) as c:
        r = await c.fetch(opts.url, opts.method, **opts.fetch_kwargs)
    assert "Via" in r.json()["headers"]
    assert [e[1] for e in await squid.logged(before, 1)] == [opts.url]


def test_tls_inside_tls_on_trio(squid_auth, tls_origin, ca, tmp_path):
    pytest.importorskip("trio")
    from loopwatch import run_trio

    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    with TLSFront(ca, squid_auth.port) as front:
        proxy = f"https://alice:s3cret@127.0.0.1:{front.port}"

        async def main():
            async with AsyncClient(proxy=proxy, verify=str(ca_file)) as c:
                return c.driver.name, await c.fetch(f"https://origin.test:{tls_origin.port}/get")

        driver, r = run_trio(main)
    assert driver == "trio" and r.status_code == 200
    assert [e.name for e in r.events].count("tls.done") == 2  # the proxy's, then the origin's
    assert_timing_sane(r.timing)


# -- a misbehaving proxy (exact bytes) ----------------------------------------------------
@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (b"HTTP/1.1 200 OK\r\nX-Pad: " + b"a" * 20000 + b"\r\n\r\n", "head .* is over 16 KiB"),
        (b"HTTP/1.1 200 OK\r\nBad Header\r\n\r\n", "invalid answer to CONNECT"),
        (b"HTTP/1.1 200 OK\r\n\r\nEXTRA", "sent data after opening the tunnel"),
        (b"", "closed the connection before answering CONNECT"),
        (b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n", "refused CONNECT a.test:443: 403"),
    ],
    ids=["huge-head", "bad-header", "extra-bytes", "closed", "forbidden"],
)
async def test_a_misbehaving_proxy_is_a_proxy_error(raw_server, answer, message):
    def handler(conn, server):
        server.read_request(conn)
        conn.sendall(answer)

    proxy = raw_server(handler)
    async with AsyncClient(proxy=proxy.url) as c:
        with pytest.raises(ProxyError, match=message) as info:
            await c.fetch("https://a.test/")
    assert info.value.phase == "tunnel"
    assert proxy.received[0].startswith(b"CONNECT a.test:443 HTTP/1.1\r\nHost: a.test:443\r\n")


async def test_a_proxy_that_never_answers_connect_times_out_in_the_tunnel(raw_server):
    def handler(conn, server):
        server.read_request(conn)
        conn.recv(1)  # silent until the client gives up and closes

    proxy = raw_server(handler)
    async with AsyncClient(proxy=proxy.url, connect_timeout=0.3) as c:
        with pytest.raises(FetchTimeout) as info:
            await c.fetch("https://a.test/")
    exc = info.value
    assert exc.phase == "tunnel" and exc.timeout == "connect_timeout" and exc.seconds == 0.3


async def test_an_untrusted_origin_through_a_tunnel_is_a_tls_error_and_no_probe_of_the_proxy(
    squid, tls_origin
):
    def raw_lines() -> int:
        with open(squid.log) as f:
            return sum(1 for line in f if line.strip())

    before, lines = len(squid.entries()), raw_lines()
    async with AsyncClient(proxy=squid.url) as c:  # the trustme CA is not trusted
        with pytest.raises(TLSError) as info:
            await c.fetch(f"https://origin.test:{tls_origin.port}/")
    assert info.value.phase == "tls" and "origin.test" in str(info.value)
    assert [e[0] for e in await squid.logged(before, 1)] == ["CONNECT"]
    # The issuer probe (tests/test_tls_trust.py) connects to the address the
    # handshake reached; through a tunnel that is the proxy, so there is none.
    assert raw_lines() == lines + 1


async def test_retries_do_not_repeat_a_proxy_refusal(squid_auth, origin):
    before = len(squid_auth.entries())
    async with AsyncClient(proxy=f"http://127.0.0.1:{squid_auth.port}", retries=3) as c:
        with pytest.raises(ProxyError) as info:
            await c.fetch(f"http://origin.test:{origin.port}/get")
    assert info.value.status == 407 and "attempts" not in str(info.value)
    assert [e[2] for e in await squid_auth.logged(before, 1)] == ["407"]
    assert len(squid_auth.entries()) == before + 1


# -- a TLS-intercepting corporate proxy: mitmproxy (conftest's start_mitmdump) -------------
async def test_https_through_an_intercepting_proxy_needs_its_ca(ca, tmp_path):
    from conftest import start_mitmdump

    origin_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(origin_ctx)
    origin_ca = tmp_path / "origin-ca.pem"
    ca.cert_pem.write_to_path(str(origin_ca))
    with DemoServer(ssl_context=origin_ctx).start() as server:
        # Regular mode: the proxy clients are told to use (CONNECT), re-signing each site.
        mitm = start_mitmdump(
            ["--set", f"ssl_verify_upstream_trusted_ca={origin_ca}"], tmp_path / "mitm"
        )
        try:
            url = f"https://127.0.0.1:{server.port}/get"
            proxy = f"http://127.0.0.1:{mitm.port}"
            async with AsyncClient(proxy=proxy, verify=mitm.ca) as c:
                r = await c.fetch(url)
            for verify in (True, str(origin_ca)):  # the default trust, the origin's own CA
                async with AsyncClient(proxy=proxy, verify=verify) as c:
                    with pytest.raises(TLSError) as info:
                        await c.fetch(url)
                assert info.value.phase == "tls" and "127.0.0.1" in str(info.value)
        finally:
            mitm.stop()
    assert r.status_code == 200 and server.stats["requests"] == 1
    assert [e.name for e in r.events].count("tunnel.done") == 1
