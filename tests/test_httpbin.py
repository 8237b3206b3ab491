"""The same fetch path against a third-party server: httpbin (pytest-httpbin)."""

import gzip

import pytest
import pytest_httpbin.certs

import nbfetch
from nbfetch import AsyncClient

pytestmark = [pytest.mark.anyio, pytest.mark.loop_watchdog]


async def test_get_and_anything(httpbin):
    async with AsyncClient() as c:
        r = await c.fetch(httpbin.url + "/get?a=1", headers={"X-Test": "yes"})
        assert r.json()["args"] == {"a": "1"}
        assert r.json()["headers"]["X-Test"] == "yes"
        r = await c.fetch(httpbin.url + "/anything", "PATCH", json={"k": [1, 2]})
        assert r.json()["method"] == "PATCH" and r.json()["json"] == {"k": [1, 2]}


async def test_stream_lines(httpbin):
    async with AsyncClient() as c, c.stream("GET", httpbin.url + "/stream/20") as s:
        body = b"".join([d async for d in s.aiter_bytes()])
    assert len(body.splitlines()) == 20


@pytest.mark.parametrize(
    "path,key", [("/gzip", "gzipped"), ("/deflate", "deflated"), ("/brotli", "brotli")]
)
async def test_compressed(httpbin, path, key):
    async with AsyncClient() as c:
        r = await c.fetch(httpbin.url + path)
    assert r.json()[key] is True
    assert r.wire_bytes < r.decoded_bytes


async def test_drip_arrives_over_time(httpbin):
    async with AsyncClient() as c:
        r = await c.fetch(httpbin.url + "/drip?numbytes=5&duration=0.5&delay=0")
    assert r.body == b"*" * 5
    assert r.timing.download > 0.3


async def test_redirects(httpbin):
    async with AsyncClient() as c:
        r = await c.fetch(httpbin.url + "/redirect/3")
        assert r.status_code == 200 and len(r.history) == 3
        r = await c.fetch(httpbin.url + "/absolute-redirect/2")
        assert r.url == httpbin.url + "/get"
        r = await c.fetch(
            httpbin.url + "/redirect-to?url=/status/418&status_code=307", "POST", body=b"x"
        )
        assert r.status_code == 418


async def test_status_and_auth(httpbin):
    async with AsyncClient() as c:
        assert (await c.fetch(httpbin.url + "/status/503")).status_code == 503
        r = await c.fetch(httpbin.url + "/basic-auth/user/pass", auth=("user", "pass"))
        assert r.json() == {"authenticated": True, "user": "user"}


async def test_bytes_and_gzip_raw(httpbin):
    async with AsyncClient() as c:
        r = await c.fetch(httpbin.url + "/bytes/100000?seed=1")
        assert len(r.body) == 100000
        r = await c.fetch(httpbin.url + "/gzip", decompress=False)
        assert gzip.decompress(r.body).startswith(b"{")


async def test_tls_with_httpbin_secure(httpbin_secure):
    async with AsyncClient(verify=pytest_httpbin.certs.where()) as c:
        r = await c.fetch(httpbin_secure.url + "/get")
    assert r.status_code == 200
    names = [e.name for e in r.events]
    assert names.index("connect.done") < names.index("tls.start") < names.index("tls.done")
    done = next(e for e in r.events if e.name == "tls.done")
    assert done["version"].startswith("TLS") and done["cipher"]
    assert r.timing.tls > 0


async def test_tls_verification_fails_without_the_ca(httpbin_secure):
    async with AsyncClient() as c:
        with pytest.raises(nbfetch.TLSError, match="certificate") as exc:
            await c.fetch(httpbin_secure.url + "/get")
    assert exc.value.phase == "tls" and httpbin_secure.url in str(exc.value)


async def test_tls_verify_false(httpbin_secure):
    async with AsyncClient(verify=False) as c:
        assert (await c.fetch(httpbin_secure.url + "/get")).status_code == 200
