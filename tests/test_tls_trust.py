"""Corporate TLS: what a client trusts (verify= a CA file, a hashed CA directory,
an ssl.SSLContext, the OS store through truststore; SSL_CERT_FILE/SSL_CERT_DIR
with trust_env) and a verification failure that explains itself, against real
TLS servers on 127.0.0.1 (trustme CAs) and a real TLS-intercepting proxy
(mitmproxy in reverse mode, with its own CA).

The environment is read when the client is made (see nbfetch/client/tls.py), so
``monkeypatch.setenv`` in this process is enough: no subprocess needed."""

import shutil
import ssl
import subprocess
import sys
import time
from contextlib import suppress

import pytest
import trustme
from conftest import start_mitmdump

import nbfetch
from nbfetch import AsyncClient
from nbfetch.demo import DemoServer

pytestmark = [pytest.mark.anyio, pytest.mark.loop_watchdog]

HINT = "AsyncClient(verify='company-ca.pem'), or SSL_CERT_FILE=company-ca.pem"


@pytest.fixture(autouse=True)
def no_tls_environment(monkeypatch):
    # The tests set what they need; the runner's own settings must not leak in.
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)


@pytest.fixture(scope="module")
def ca():
    return trustme.CA(organization_name="Example Corp", organization_unit_name="Proxy CA")


@pytest.fixture(scope="module")
def server(ca):
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost", "127.0.0.1").configure_cert(ctx)
    with DemoServer(ssl_context=ctx).start() as server:
        yield server


@pytest.fixture
def url(server):
    return f"https://localhost:{server.port}/get"


@pytest.fixture
def ca_file(ca, tmp_path):
    path = tmp_path / "company-ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


def subject_hash(pem_path) -> str:
    """OpenSSL's subject hash, the name a CA directory (capath) looks a CA up by."""
    openssl = shutil.which("openssl")
    assert openssl, "the openssl command (Debian's openssl package) is needed"
    command = [openssl, "x509", "-hash", "-noout", "-in", str(pem_path)]
    return subprocess.run(command, capture_output=True, text=True, check=True).stdout.strip()


@pytest.fixture
def ca_dir(ca_file, tmp_path):
    """A c_rehash-style directory: the CA under ``<subject hash>.0``."""
    directory = tmp_path / "certs"
    directory.mkdir()
    shutil.copy(ca_file, directory / f"{subject_hash(ca_file)}.0")
    return str(directory)


async def fetch_error(url, **client_options) -> nbfetch.TLSError:
    async with AsyncClient(**client_options) as c:
        with pytest.raises(nbfetch.TLSError) as exc:
            await c.fetch(url)
    assert exc.value.phase == "tls"
    return exc.value


# -- verify= -------------------------------------------------------------------


async def test_verify_a_ca_file_and_a_path_object(url, ca_file):
    from pathlib import Path

    for verify in (ca_file, Path(ca_file)):
        async with AsyncClient(verify=verify) as c:
            assert (await c.fetch(url)).status_code == 200


async def test_verify_a_hashed_ca_directory(url, ca_dir, ca_file, tmp_path):
    async with AsyncClient(verify=ca_dir) as c:
        assert (await c.fetch(url)).status_code == 200
    # The same CA under a name OpenSSL does not look up: a directory is read by
    # hash, not file by file, so it trusts nothing.
    unhashed = tmp_path / "unhashed"
    unhashed.mkdir()
    shutil.copy(ca_file, unhashed / "company-ca.pem")
    err = await fetch_error(url, verify=str(unhashed))
    assert f"verify={str(unhashed)!r}" in str(err)
    assert f"run `openssl rehash {unhashed}`" in str(err)
    # A hashed directory that still does not hold the issuer gets no such hint.
    other = tmp_path / "hashed-other"
    other.mkdir()
    trustme.CA().cert_pem.write_to_path(str(other / "00000000.0"))
    assert "openssl rehash" not in str(await fetch_error(url, verify=str(other)))


@pytest.fixture(scope="module")
def contexts(ca):
    """Two contexts, trusting the CA and not; made here because loading CAs blocks
    the loop, which is what the loop watchdog is for."""
    trusting = ssl.create_default_context()
    ca.configure_trust(trusting)
    return trusting, ssl.create_default_context()


async def test_verify_an_ssl_context(url, contexts):
    trusting, default = contexts
    async with AsyncClient(verify=trusting) as c:
        assert c.ssl_context() is trusting
        assert (await c.fetch(url)).status_code == 200
    err = await fetch_error(url, verify=default)
    assert "the CAs of the ssl.SSLContext given as verify=" in str(err)


async def test_a_verify_that_is_not_one_of_the_kinds_is_refused():
    with pytest.raises(nbfetch.InvalidRequest, match="verify= takes True, False"):
        AsyncClient(verify=42)


async def test_an_empty_verify_is_refused_not_taken_as_the_default_cas(ca_file, monkeypatch):
    # verify=os.environ.get("CA_BUNDLE", ""): ssl would load the default CAs
    # for cafile="", and read SSL_CERT_FILE although trust_env=False.
    monkeypatch.setenv("SSL_CERT_FILE", ca_file)
    with pytest.raises(nbfetch.InvalidRequest, match="verify='' names no CA file"):
        AsyncClient(verify="", trust_env=False)


async def test_a_missing_ca_file_says_so(url, tmp_path):
    missing = str(tmp_path / "nope.pem")
    err = await fetch_error(url, verify=missing)
    assert f"cannot load the certificates of verify={missing!r}" in str(err)
    assert "No such file" in str(err) and url in str(err)


# -- the failure explains itself ---------------------------------------------------


async def test_an_untrusted_certificate_names_host_issuer_and_the_fix(url, server):
    err = await fetch_error(url)
    message = str(err)
    assert "certificate verify failed for 'localhost'" in message
    assert "unable to get local issuer certificate (X509 error 20)" in message
    # The issuer, read from the server's certificate (a second, unverified handshake).
    assert "issued by 'O=Example Corp, OU=Proxy CA'" in message
    assert "not among the trusted CAs (the system CAs and certifi's)" in message
    assert HINT in message and url in message
    assert isinstance(err, nbfetch.ConnectError)
    # An IP literal: no SNI, and the message names the address.
    err = await fetch_error(f"https://127.0.0.1:{server.port}/get")
    assert "for '127.0.0.1'" in str(err) and "Example Corp" in str(err)


async def test_a_name_mismatch_is_not_told_to_add_a_ca(server, ca_file):
    err = await fetch_error(
        f"https://wrong.test:{server.port}/get",
        verify=ca_file,
        hostname_mapping={"wrong.test": "127.0.0.1"},
    )
    assert "certificate verify failed for 'wrong.test': Hostname mismatch" in str(err)
    assert "made for another name" in str(err) and "company-ca" not in str(err)


async def test_the_issuer_probe_is_bounded(raw_server, ca):
    """The second handshake that reads the issuer meets a server that stalls: the
    error still comes, without the issuer, within a bound (the connect budget, at most PROBE_TIMEOUT)."""
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_ctx)

    def handler(conn, server):
        if server.connections == 1:  # the fetch's own handshake: an untrusted certificate
            with suppress(ssl.SSLError):
                server_ctx.wrap_socket(conn, server_side=True)
        while conn.recv(65536):  # the probe's: never answered
            pass

    srv = raw_server(handler)
    start = time.monotonic()
    err = await fetch_error(f"https://127.0.0.1:{srv.port}/", connect_timeout=1.0)
    elapsed = time.monotonic() - start
    assert srv.connections == 2 and "issued by" not in str(err) and HINT in str(err)
    assert elapsed < 10, elapsed  # the 1 s budget bounds the probe; 10 s: only a missing bound


def test_the_issuer_reader_takes_hostile_bytes():
    from nbfetch.client.tls import issuer_name

    hostile = trustme.CA(organization_name="Evil\x1b[31m\nCorp<script>")
    der = ssl.PEM_cert_to_DER_cert(hostile.cert_pem.bytes().decode())
    name = issuer_name(der)
    assert name is not None and "\x1b" not in name and "\n" not in name and "\\x1b" in name
    # Every truncation, and lengths that point past the end: None, never an exception.
    assert all(issuer_name(der[:cut]) is None for cut in range(len(der)))
    assert issuer_name(b"\x30\x84\xff\xff\xff\xff") is None
    assert issuer_name(b"") is None and issuer_name(b"\x30\x00") is None
    long = trustme.CA(organization_name="x" * 64, organization_unit_name="y" * 64)
    assert len(issuer_name(ssl.PEM_cert_to_DER_cert(long.cert_pem.bytes().decode()))) <= 202


# -- the environment (trust_env) ----------------------------------------------------


async def test_ssl_cert_file_replaces_the_default_cas(url, ca_file, monkeypatch):
    monkeypatch.setenv("SSL_CERT_FILE", ca_file)
    async with AsyncClient() as c:
        assert (await c.fetch(url)).status_code == 200
        # The company bundle is the whole trust, as OpenSSL, curl and httpx read it.
        assert c.ssl_context().cert_store_stats()["x509_ca"] == 1
    await fetch_error(url, trust_env=False)


async def test_ssl_cert_dir(url, ca_dir, monkeypatch):
    monkeypatch.setenv("SSL_CERT_DIR", ca_dir)
    async with AsyncClient() as c:
        assert (await c.fetch(url)).status_code == 200
    await fetch_error(url, trust_env=False)


async def test_the_environment_is_read_when_the_client_is_made(url, ca_file, monkeypatch):
    before = AsyncClient()
    monkeypatch.setenv("SSL_CERT_FILE", ca_file)
    during = AsyncClient()
    monkeypatch.delenv("SSL_CERT_FILE")
    async with during:
        assert (await during.fetch(url)).status_code == 200
    async with before:
        with pytest.raises(nbfetch.TLSError):
            await before.fetch(url)


async def test_an_explicit_verify_wins_over_the_environment(url, ca_file, tmp_path, monkeypatch):
    other = tmp_path / "other.pem"
    trustme.CA().cert_pem.write_to_path(str(other))
    monkeypatch.setenv("SSL_CERT_FILE", ca_file)
    err = await fetch_error(url, verify=str(other))
    assert f"verify={str(other)!r}" in str(err)
    # And the environment's CA, when it is the wrong one, is named as what was trusted.
    monkeypatch.setenv("SSL_CERT_FILE", str(other))
    err = await fetch_error(url)
    assert f"SSL_CERT_FILE={str(other)!r} (from the environment)" in str(err)


# -- the operating system's store (truststore) -----------------------------------


async def test_truststore_refuses_a_ca_the_system_does_not_know(url):
    err = await fetch_error(url, verify="truststore")
    assert "not among the trusted CAs (the operating system's trust store (truststore))" in str(err)
    assert "Example Corp" in str(err) and HINT in str(err)


@pytest.mark.skipif(sys.platform != "linux", reason="truststore reads OpenSSL's paths on Linux")
async def test_truststore_on_linux_is_openssls_default_store(url, ca_file, monkeypatch):
    """On Linux truststore trusts what OpenSSL's default locations hold, and
    OpenSSL reads SSL_CERT_FILE for them: the one system store a test can change."""
    monkeypatch.setenv("SSL_CERT_FILE", ca_file)
    async with AsyncClient(verify="truststore", trust_env=False) as c:
        assert (await c.fetch(url)).status_code == 200


async def test_truststore_missing_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "truststore", None)  # import truststore: ImportError
    with pytest.raises(nbfetch.InvalidRequest, match=r"pip install 'nbfetch\[truststore\]'"):
        AsyncClient(verify="truststore")


# -- a TLS-intercepting proxy (mitmproxy, its own CA) -------------------------------


@pytest.fixture(scope="module")
def mitm(server, ca, tmp_path_factory):
    """mitmdump in reverse mode in front of ``server``: it checks the origin
    against the origin's CA and shows clients certificates of its own CA."""
    confdir = tmp_path_factory.mktemp("mitmproxy")
    origin_ca = confdir / "origin-ca.pem"
    ca.cert_pem.write_to_path(str(origin_ca))
    proxy = start_mitmdump(
        [
            "--mode",
            f"reverse:https://127.0.0.1:{server.port}",
            "--set",
            f"ssl_verify_upstream_trusted_ca={origin_ca}",
        ],
        confdir,
    )
    yield proxy
    proxy.stop()


async def test_intercepting_proxy_with_its_ca_works_and_without_it_fails_clearly(
    mitm, server, ca_file, monkeypatch
):
    url = f"https://localhost:{mitm.port}/get"
    server.reset_stats()
    async with AsyncClient(verify=mitm.ca) as c:
        r = await c.fetch(url)
    assert r.status_code == 200 and server.stats["requests"] == 1  # through the proxy
    # The default trust, and even the origin's own CA: the proxy re-signs the site.
    for options in ({}, {"verify": ca_file}):
        message = str(await fetch_error(url, **options))
        assert "certificate verify failed for 'localhost'" in message
        assert "issued by 'CN=mitmproxy, O=mitmproxy'" in message and HINT in message
    monkeypatch.setenv("SSL_CERT_FILE", mitm.ca)
    async with AsyncClient() as c:
        assert (await c.fetch(url)).status_code == 200
