"""Cookies: the RFC 6265 policy (core/cookies.py, with an injected clock), the
jar wired around each hop (a login redirect on the demo server and httpbin),
cookies.txt, secrets in every writer, and a hostile server's flood."""

from __future__ import annotations

import asyncio
import json
import os
import stat
import time

import pytest
from conftest import answer_each
from test_secrets import response_texts

import nbfetch
from nbfetch import AsyncClient, CookieJar, InvalidRequest, Limits
from nbfetch.core.cookies import MAX_COOKIE_SIZE, parse_cookie_date
from nbfetch.notebook.snapshot import FetchState, snapshot_html

T0 = 1_800_000_000.0  # an injected "now": 2027-01-15


class Clock:
    def __init__(self, now: float = T0):
        self.now = now

    def __call__(self) -> float:
        return self.now


def jar_at(clock: Clock | None = None, **kw) -> CookieJar:
    return CookieJar(clock=clock or Clock(), **kw)


def sent(jar: CookieJar, url: str) -> str:
    return jar.header_for(url)[0]


# -- the policy (pure) ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("origin", "set_cookie", "stored_for"),
    [
        # RFC 6265 5.3 step 5: a public suffix (ICANN and private parts of the list).
        ("http://a.example.co.uk/", "k=v; Domain=co.uk", None),
        ("http://a.example.co.uk/", "k=v; Domain=.uk", None),
        ("http://me.github.io/", "k=v; Domain=github.io", None),
        ("http://a.example.co.uk/", "k=v; Domain=example.co.uk", "example.co.uk"),
        # ... unless it is the host itself: then host-only (browsers' carve-out)
        ("http://localhost/", "k=v; Domain=localhost", "localhost"),
        # Step 6: a Domain the host does not domain-match.
        ("http://a.example.com/", "k=v; Domain=other.com", None),
        ("http://a.example.com/", "k=v; Domain=b.a.example.com", None),
        ("http://a.example.com/", "k=v; Domain=ample.com", None),
        ("http://127.0.0.1/", "k=v; Domain=0.0.1", None),  # an IP matches only itself
        ("http://127.0.0.1/", "k=v; Domain=127.0.0.1", "127.0.0.1"),
        ("http://a.example.com/", "k=v; Domain=.EXAMPLE.com", "example.com"),
        ("http://a.example.com/", "k=v", "a.example.com"),
    ],
)
def test_domain_attribute_policy(origin, set_cookie, stored_for):
    jar = jar_at()
    jar.store(origin, [set_cookie])
    assert [c.domain for c in jar.cookies()] == ([stored_for] if stored_for else [])


def test_host_only_and_domain_cookies_reach_their_hosts_only():
    jar = jar_at()
    jar.store("http://example.com/", ["host=1", "dom=2; Domain=example.com"])
    assert sent(jar, "http://example.com/") == "host=1; dom=2"
    assert sent(jar, "http://www.example.com/") == "dom=2"
    assert sent(jar, "http://example.org/") == ""
    assert sent(jar, "http://badexample.com/") == ""


def test_paths_default_and_match():
    jar = jar_at()
    jar.store("http://h.test/docs/guide/page", ["d=1"])  # default-path /docs/guide
    jar.store("http://h.test/", ["p=2; Path=/docs", "r=3; Path=/"])
    assert jar.cookies()[0].path == "/docs/guide"
    assert sent(jar, "http://h.test/docs/guide/x") == "d=1; p=2; r=3"  # longest path first
    assert sent(jar, "http://h.test/docs/guide") == "d=1; p=2; r=3"
    assert sent(jar, "http://h.test/docs") == "p=2; r=3"
    assert sent(jar, "http://h.test/docsx") == "r=3"  # section 5.1.4: not a path-match
    assert sent(jar, "http://h.test/") == "r=3"


@pytest.mark.parametrize(
    ("origin", "set_cookie"),
    [
        ("http://example.com/", "sid=EVIL; Path=/app"),  # a longer path: sent first
        ("http://www.example.com/", "sid=EVIL; Domain=example.com"),  # a parent domain
        ("http://www.example.com/", "sid=EVIL"),  # a subdomain's host-only cookie
        ("http://example.com/", "sid=EVIL; Max-Age=0"),  # a deletion
    ],
)
def test_plain_http_cannot_shadow_a_secure_cookie(origin, set_cookie):
    # rfc6265bis 5.7 step 16: same name, domains that domain-match either way,
    # and a path that path-matches the Secure cookie's: the new cookie is ignored.
    jar = jar_at()
    jar.store("https://example.com/", ["sid=GOOD; Secure; Path=/"])
    assert jar.store(origin, [set_cookie]) == []
    assert sent(jar, "https://example.com/app/x") == "sid=GOOD"
    # Other names, other paths' parents and other sites stay settable from http.
    assert len(jar.store("http://example.com/", ["other=1"])) == 1
    assert len(jar.store("http://example.org/", ["sid=x"])) == 1
    jar.store("https://example.com/", ["deep=1; Secure; Path=/deep"])
    assert len(jar.store("http://example.com/", ["deep=2; Path=/"])) == 1  # / is no sub-path


def test_secure_cookies_need_https_except_to_loopback():
    jar = jar_at()
    assert jar.store("http://example.com/", ["s=1; Secure"]) == []
    jar.store("https://example.com/", ["s=1; Secure", "plain=2"])
    assert sent(jar, "https://example.com/") == "s=1; plain=2"
    assert sent(jar, "http://example.com/") == "plain=2"
    # An http response cannot replace (or delete) a Secure cookie (rfc6265bis 5.7).
    jar.store("http://example.com/", ["s=evil", "s=; Max-Age=0"])
    assert sent(jar, "https://example.com/") == "s=1; plain=2"
    # localhost and 127.0.0.0/8 are secure contexts, as in browsers.
    for origin in ("http://localhost:8000/", "http://127.0.0.2:8000/", "http://[::1]:8000/"):
        jar.store(origin, ["ls=3; Secure"])
        assert sent(jar, origin) == "ls=3", origin


def test_name_prefixes():
    jar = jar_at()
    jar.store(
        "https://a.example.com/",
        [
            "__Secure-a=1",  # no Secure: refused
            "__Secure-b=2; Secure",
            "__Host-c=3; Secure; Path=/",
            "__Host-d=4; Secure; Path=/; Domain=example.com",  # refused: a Domain
            "__Host-e=5; Secure; Path=/x",  # refused: not Path=/
        ],
    )
    assert sorted(jar) == ["__Host-c", "__Secure-b"]


def test_expiry_max_age_and_expires_with_an_injected_clock():
    clock = Clock()
    jar = jar_at(clock)
    future = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(T0 + 3600))
    past = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(T0 - 1))
    jar.store(
        "http://h.test/",
        [
            "age=1; Max-Age=60",
            f"both=2; Max-Age=60; Expires={future}",  # Max-Age wins (section 5.3 step 3)
            f"exp=3; Expires={future}",
            f"old=4; Expires={past}",  # already expired: not stored
            "session=5",
            "bad=6; Max-Age=soon",  # an invalid Max-Age is ignored: a session cookie
        ],
    )
    by_name = {c.name: c for c in jar.cookies()}
    assert sorted(by_name) == ["age", "bad", "both", "exp", "session"]
    assert by_name["age"].expires == by_name["both"].expires == T0 + 60
    assert by_name["exp"].expires == T0 + 3600
    assert by_name["session"].expires is None and by_name["bad"].expires is None
    clock.now = T0 + 61
    assert sorted(jar) == ["bad", "exp", "session"]
    assert "age" not in sent(jar, "http://h.test/")
    jar.store("http://h.test/", ["exp=; Max-Age=0"])  # deletes
    assert sorted(jar) == ["bad", "session"]


@pytest.mark.parametrize(
    "text",
    [
        "Wed, 21 Oct 2015 07:28:00 GMT",  # RFC 1123
        "Wednesday, 21-Oct-15 07:28:00 GMT",  # RFC 850
        "Wed Oct 21 07:28:00 2015",  # asctime
        "21 oct 2015 07:28:00",  # the lenient algorithm: any order
    ],
)
def test_cookie_dates(text):
    assert parse_cookie_date(text) == 1445412480.0


def test_flags_are_kept_as_data_and_reprs_hide_values():
    jar = jar_at()
    jar.store("https://h.test/", ["sid=hunter2-value; HttpOnly; SameSite=lax; Secure"])
    (cookie,) = jar.cookies()
    assert (cookie.http_only, cookie.secure, cookie.same_site) == (True, True, "Lax")
    assert "hunter2-value" not in repr(cookie) + repr(jar) + json.dumps(cookie.describe())
    assert jar["sid"] == "hunter2-value" and dict(jar) == {"sid": "hunter2-value"}


def test_malformed_and_oversized_cookies_are_ignored():
    jar = jar_at()
    big = "x" * MAX_COOKIE_SIZE
    stored = jar.store(
        "http://h.test/",
        [
            *("novalue", "=v", "a\x00b=1", "c=\x01", f"big={big}"),
            *("ok=1", f"attr=1; Path=/{'p' * 2000}"),
        ],
    )
    assert [c.name for c in stored] == ["ok", "attr"]
    assert jar.cookies()[1].path == "/"  # the oversized Path was ignored


def test_bounds_per_domain_and_in_all_evict_the_least_recently_used():
    jar = jar_at(max_per_domain=3, max_total=5)
    jar.store("http://a.test/", ["a1=1", "a2=2", "a3=3"])
    sent(jar, "http://a.test/")  # all used, a1 first: the least recently used
    jar.store("http://a.test/", ["a4=4"])
    assert sorted(c.name for c in jar.cookies() if c.domain == "a.test") == ["a2", "a3", "a4"]
    for host in ("b.test", "c.test", "d.test"):
        jar.store(f"http://{host}/", ["k=v"])
    assert len(jar) == 5
    assert "d.test" in {c.domain for c in jar.cookies()}  # the newest stayed


def test_jar_api_set_delete_clear():
    jar = jar_at()
    jar.set("tok", "abc123", "api.test", include_subdomains=True)
    assert sent(jar, "http://v1.api.test/") == "tok=abc123"
    jar.set("x", "1", "other.test")
    assert jar.delete("tok") == 1 and list(jar) == ["x"]
    jar.clear("other.test")
    assert len(jar) == 0


# -- cookies.txt ------------------------------------------------------------------------------
def test_cookies_txt_round_trip(tmp_path):
    clock = Clock()
    jar = jar_at(clock)
    jar.store(
        "https://www.example.com/app/x",
        [
            "host=1; Max-Age=3600; HttpOnly",
            "dom=2; Domain=example.com; Path=/; Secure",
            "sess=3",
        ],
    )
    path = tmp_path / "cookies.txt"
    jar.save(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600  # credentials: the owner only
    text = path.read_text()
    assert text.startswith("# Netscape HTTP Cookie File")
    assert "#HttpOnly_www.example.com\tFALSE\t/app\tFALSE\t1800003600\thost\t1" in text
    assert ".example.com\tTRUE\t/\tTRUE\t0\tdom\t2" in text
    again = jar_at(clock)
    assert again.load(path) == 3

    def fields(j):
        return sorted(
            (c.name, c.value, c.domain, c.path, c.host_only, c.secure, c.http_only, c.expires)
            for c in j.cookies()
        )

    assert fields(again) == fields(jar)


def test_cookies_txt_as_curl_writes_it():
    text = (
        "# Netscape HTTP Cookie File\n# https://curl.se/docs/http-cookies.html\n\n"
        "#HttpOnly_.example.com\tTRUE\t/\tFALSE\t1900000000\tsid\tabc\n"
        "example.com\tFALSE\t/\tFALSE\t1000\texpired\tx\n"  # expired: skipped
        "broken line\n"
        "example.com\tFALSE\t/p\tTRUE\t0\tsession\ty\n"
    )
    jar = jar_at()
    assert jar.loads(text) == 2
    assert sent(jar, "https://a.example.com/p/q") == "sid=abc"
    assert sent(jar, "https://example.com/p/q") == "session=y; sid=abc"


# -- through the client ---------------------------------------------------------------------------
@pytest.mark.anyio
@pytest.mark.loop_watchdog
async def test_login_redirect_on_the_demo_server(demo):
    events = []
    async with AsyncClient(trace=events.append) as client:
        r = await client.fetch(demo.url + "/login?user=ada")
        assert r.status_code == 200 and r.json()["user"] == "ada"
        assert [h.status_code for h in r.history] == [302]
        token = client.cookies["session"]
        assert r.json()["cookies"] == {"session": token}
        # Later fetches send it too; the server's view proves it.
        assert (await client.fetch(demo.url + "/whoami")).json()["user"] == "ada"
    stored = [e for e in events if e.name == "cookies.stored"]
    assert stored[0]["cookies"] == [
        {
            "name": "session",
            "domain": "127.0.0.1",
            "path": "/",
            "host_only": True,
            "flags": "HttpOnly SameSite=Lax",
            "expires": None,
        }
    ]
    assert [e["names"] for e in events if e.name == "cookies.sent"] == [["session"]] * 2
    assert all(token not in repr(e) + json.dumps(e.as_dict(), default=str) for e in events)


@pytest.mark.anyio
async def test_no_cookie_is_kept_with_cookies_false(demo):
    async with AsyncClient(cookies=False) as client:
        r = await client.fetch(demo.url + "/login?user=ada")
        assert r.status_code == 401 and client.cookies is None
        # The fetch's own cookies= are still sent.
        r = await client.fetch(demo.url + "/whoami", cookies={"a": "1"})
        assert r.json()["cookies"] == {"a": "1"}


@pytest.mark.anyio
async def test_one_fetch_without_the_jar_with_cookies_false(demo):
    async with AsyncClient(cookies={"theme": "dark"}) as client:
        await client.fetch(demo.url + "/login?user=ada")
        token = client.cookies["session"]
        # Neither the jar's cookie nor the client's seed goes with it...
        r = await client.fetch(demo.url + "/whoami", cookies=False)
        assert (r.status_code, r.json()["cookies"]) == (401, {})
        # ...and what it sets is not stored: the session stays the first one.
        r = await client.fetch(demo.url + "/login?user=bob", cookies=False)
        assert r.status_code == 401 and client.cookies["session"] == token
        r = await client.fetch(demo.url + "/whoami")
        assert r.json()["user"] == "ada"


@pytest.mark.anyio
async def test_a_shared_jar_and_a_seed_mapping(demo):
    async with AsyncClient() as first:
        await first.fetch(demo.url + "/login?user=ada")
        async with AsyncClient(cookies=first.cookies) as second:
            assert (await second.fetch(demo.url + "/whoami")).json()["user"] == "ada"
    async with AsyncClient(cookies={"theme": "dark"}) as client:
        r = await client.fetch(demo.url + "/whoami", cookies={"lang": "en"})
        assert r.json()["cookies"] == {"theme": "dark", "lang": "en"}
        assert len(client.cookies) == 0  # a seed is sent, not stored as a server's


@pytest.mark.anyio
async def test_per_fetch_cookies_win_and_stay_with_their_fetch_and_origin(demo):
    async with AsyncClient() as client:
        await client.fetch(demo.url + "/login?user=ada")
        token = client.cookies["session"]
        r = await client.fetch(demo.url + "/whoami", cookies={"session": "other", "x": "1"})
        assert r.json()["cookies"] == {"session": "other", "x": "1"}  # one per name: the fetch's
        r = await client.fetch(demo.url + "/whoami")
        assert r.json()["cookies"] == {"session": token}  # that fetch only
        # A redirect to another origin (localhost is another host): neither the
        # fetch's cookies nor the jar's host-only cookie go there.
        other = demo.url.replace("127.0.0.1", "localhost")
        r = await client.fetch(
            demo.url + "/redirect-to", params={"url": other + "/whoami"}, cookies={"x": "1"}
        )
        assert r.status_code == 401 and r.json()["cookies"] == {}
        assert r.history[0].request.headers.get("cookie") == f"x=1; session={token}"


@pytest.mark.anyio
async def test_an_explicit_cookie_header_is_kept_in_one_field(raw_server):
    handler = answer_each(
        b"HTTP/1.1 200 OK\r\nSet-Cookie: a=jar\r\nSet-Cookie: b=jar\r\n"
        + b"Content-Length: 0\r\n\r\n"
    )

    srv = raw_server(handler)
    async with AsyncClient() as client:
        await client.fetch(srv.url + "/")
        await client.fetch(srv.url + "/", headers={"Cookie": "a=mine"})
    cookie_lines = [
        line for line in srv.received[-1].split(b"\r\n") if line.lower().startswith(b"cookie:")
    ]
    assert cookie_lines == [b"Cookie: a=mine; b=jar"]  # RFC 6265 5.4: one Cookie field


@pytest.mark.anyio
async def test_invalid_cookies_are_refused_before_sending(demo):
    async with AsyncClient() as client:
        with pytest.raises(InvalidRequest, match="cookie 'a'"):
            await client.fetch(demo.url + "/get", cookies={"a": "1; admin=1"})
    with pytest.raises(InvalidRequest, match="invalid cookie name"):
        AsyncClient(cookies={"a b": "1"})


@pytest.mark.anyio
async def test_cookies_txt_carries_a_login_to_another_client(demo, tmp_path):
    async with AsyncClient() as client:
        await client.fetch(demo.url + "/login?user=grace")
        client.cookies.save(tmp_path / "c.txt")
    async with AsyncClient() as client:
        assert client.cookies.load(tmp_path / "c.txt") == 1
        assert (await client.fetch(demo.url + "/whoami")).json()["user"] == "grace"
        client.cookies.clear()
        assert (await client.fetch(demo.url + "/whoami")).status_code == 401


@pytest.mark.anyio
@pytest.mark.loop_watchdog
async def test_httpbin_cookies_set_redirects_and_deletes(httpbin):
    async with AsyncClient() as client:
        r = await client.fetch(httpbin.url + "/cookies/set?k=v&other=2")
        assert r.history and r.history[0].status_code == 302
        assert r.json() == {"cookies": {"k": "v", "other": "2"}}
        r = await client.fetch(httpbin.url + "/cookies/delete?k")
        assert r.json() == {"cookies": {"other": "2"}}
        assert dict(client.cookies) == {"other": "2"}


# -- secrets ----------------------------------------------------------------------------------------
@pytest.mark.anyio
async def test_cookie_values_are_masked_in_every_writer_unless_asked(demo):
    async with AsyncClient() as client:
        r = await client.fetch(demo.url + "/login?user=ada")
        token = client.cookies["session"]
    texts = response_texts(r)
    texts["history headers"] = repr(r.history[0].headers)
    texts["snapshot"] = snapshot_html(FetchState.of_response(r))
    leaks = [where for where, text in texts.items() if token in text]
    assert not leaks, leaks
    # The request pane lists the cookies, values masked ...
    assert "Cookies sent" in texts["snapshot"] and "Cookies stored" in texts["snapshot"]
    assert "HttpOnly SameSite=Lax" in texts["snapshot"]
    # ... and shows them when asked.
    assert token in snapshot_html(FetchState.of_response(r, show_secrets=True))
    assert r.to_har(redact=False) and token in json.dumps(r.to_har(redact=False))


# -- a hostile server ---------------------------------------------------------------------------------
@pytest.mark.anyio
@pytest.mark.loop_watchdog
async def test_a_flood_of_set_cookie_headers_is_bounded(raw_server):
    n = 3000
    fields = b"".join(b"Set-Cookie: c%d=%s; Path=/\r\n" % (i, b"v" * 20) for i in range(n))
    huge = b"Set-Cookie: huge=" + b"x" * (MAX_COOKIE_SIZE + 1) + b"\r\n"
    domains = b"".join(
        b"Set-Cookie: d%d=1; Domain=%s\r\n" % (i, d)
        for i, d in enumerate([b"com", b"co.uk", b"example.com", b"1"])
    )

    handler = answer_each(
        b"HTTP/1.1 200 OK\r\n" + fields + huge + domains + b"Content-Length: 0\r\n\r\n"
    )

    srv = raw_server(handler)
    events = []
    limits = Limits(max_headers=n + 10, max_header_bytes=1024 * 1024)
    async with AsyncClient(limits=limits, trace=events.append) as client:
        r = await client.fetch(srv.url + "/")
        assert r.status_code == 200
        jar = client.cookies
        assert len(jar) == nbfetch.core.cookies.MAX_PER_DOMAIN  # one host: its bound
        assert "huge" not in jar and not any(c.name.startswith("d") for c in jar.cookies())
        assert {c.name for c in jar.cookies()} == {f"c{i}" for i in range(n - 50, n)}
        (stored,) = [e for e in events if e.name == "cookies.stored"]
        assert stored["stored"] == n and stored["ignored"] == 5  # huge, four foreign domains
        assert len(stored["cookies"]) == 50  # the event's list is bounded too
        # What the jar sends stays bounded too: 50 cookies of 24 bytes.
        r = await client.fetch(srv.url + "/")
    cookie = next(
        line for line in srv.received[-1].split(b"\r\n") if line.lower().startswith(b"cookie:")
    )
    assert cookie.count(b"=") == 50 and len(cookie) < 50 * 32


# -- the public suffix list loads off the loop ---------------------------------------------------------
def domain_cookie_server(raw_server):
    handler = answer_each(
        b"HTTP/1.1 200 OK\r\nSet-Cookie: k=v; Domain=demo.test\r\n" + b"Content-Length: 0\r\n\r\n"
    )

    return raw_server(handler)


async def fetch_twice(port: int) -> list[bytes]:
    """A Domain cookie from app.demo.test, then a fetch to other.demo.test."""
    mapping = {"app.demo.test": "127.0.0.1", "other.demo.test": "127.0.0.1"}
    async with AsyncClient(hostname_mapping=mapping) as client:
        await client.fetch(f"http://app.demo.test:{port}/")
        r = await client.fetch(f"http://other.demo.test:{port}/")
        return r.request.headers.get_list("cookie")


@pytest.fixture
def suffix_list_loads(monkeypatch) -> list[str]:
    """The names of the threads that build the public suffix list (~75 ms of
    CPU here, more on CI: never on the event loop's thread)."""
    import threading

    import publicsuffixlist

    threads = []
    real = publicsuffixlist.PublicSuffixList

    def recording(*args, **kwargs):
        threads.append(threading.current_thread().name)
        return real(*args, **kwargs)

    monkeypatch.setattr(publicsuffixlist, "PublicSuffixList", recording)
    monkeypatch.setattr(nbfetch.core.cookies, "_suffixes", None)  # as in a new process
    return threads


@pytest.mark.anyio
@pytest.mark.loop_watchdog
async def test_the_suffix_list_loads_in_a_worker_thread(raw_server, suffix_list_loads):
    import threading

    srv = domain_cookie_server(raw_server)
    assert await fetch_twice(srv.port) == ["k=v"]
    assert len(suffix_list_loads) == 1
    assert suffix_list_loads[0] != threading.current_thread().name


def test_the_suffix_list_loads_in_a_worker_thread_on_trio(raw_server, suffix_list_loads):
    import threading

    from loopwatch import run_trio

    pytest.importorskip("trio")
    srv = domain_cookie_server(raw_server)
    assert run_trio(fetch_twice, srv.port) == ["k=v"]
    assert len(suffix_list_loads) == 1
    assert suffix_list_loads[0] != threading.current_thread().name


@pytest.mark.anyio
async def test_the_tornado_adapter_keeps_no_cookies_as_tornado(demo):
    tornado_adapter = pytest.importorskip("nbfetch.tornado")
    client = tornado_adapter.AsyncHTTPClient(force_instance=True)
    try:
        r = await client.fetch(demo.url + "/login?user=ada", raise_error=False)
        assert r.code == 401  # the 302's cookie was not sent to /whoami
    finally:
        client.close()


@pytest.mark.anyio
async def test_cookies_txt_is_curls_format_both_ways(demo, tmp_path):
    import shutil
    import subprocess

    curl = shutil.which("curl")
    if curl is None:
        pytest.skip("curl is not installed")
    curl_jar, our_jar = tmp_path / "curl.txt", tmp_path / "ours.txt"
    subprocess.run(
        [curl, "-sS", "-m", "20", "-c", str(curl_jar), demo.url + "/login?user=linus"],
        check=True,
        capture_output=True,
    )
    async with AsyncClient() as client:
        assert client.cookies.load(curl_jar) == 1  # curl's "#HttpOnly_" line
        assert (await client.fetch(demo.url + "/whoami")).json()["user"] == "linus"
        client.cookies.clear()
        await client.fetch(demo.url + "/login?user=ada")
        client.cookies.save(our_jar)
    out = subprocess.run(
        [curl, "-sS", "-m", "20", "-b", str(our_jar), demo.url + "/whoami"],
        check=True,
        capture_output=True,
    ).stdout
    assert json.loads(out)["user"] == "ada"


# -- hostile values never fail a fetch ---------------------------------------------------------
def test_max_age_is_clamped_both_ways():
    clock = Clock()
    jar = jar_at(clock)
    jar.store("http://h.test/", ["keep=1", "long=1; Max-Age=" + "9" * 400])
    assert [c.expires for c in jar.cookies() if c.name == "long"] == [T0 + 400 * 24 * 3600]
    jar.store("http://h.test/", ["keep=1; Max-Age=-" + "9" * 400])  # a float would overflow
    assert [c.name for c in jar.cookies()] == ["long"]  # "keep" deleted: expired


@pytest.mark.anyio
async def test_a_hostile_set_cookie_is_ignored_never_fails_the_fetch(raw_server, monkeypatch):
    handler = answer_each(
        b"HTTP/1.1 200 OK\r\nSet-Cookie: a=1; Max-Age=-"
        + b"9" * 400
        + b"\r\n"
        + b"Set-Cookie: b=2; Expires=boom\r\nSet-Cookie: c=3\r\n"
        + b"Content-Length: 0\r\n\r\n"
    )

    srv = raw_server(handler)
    async with AsyncClient() as client:
        r = await client.fetch(srv.url + "/")
        assert r.status_code == 200 and dict(client.cookies) == {"b": "2", "c": "3"}

        # A bug in parsing one cookie (any exception) ignores that cookie only.
        real = nbfetch.core.cookies.parse_cookie_date

        def broken(text):
            if text == "boom":
                raise RuntimeError("a bug in the date parser")
            return real(text)

        monkeypatch.setattr(nbfetch.core.cookies, "parse_cookie_date", broken)
        client.cookies.clear()
        events = []
        r = await client.fetch(srv.url + "/", trace=events.append)
        assert r.status_code == 200 and dict(client.cookies) == {"c": "3"}
        stored = next(e.details for e in events if e.name == "cookies.stored")
        assert (stored["stored"], stored["ignored"]) == (1, 2)


IPV4_FORMS = ["127.1", "127.000.0.1", "0x7f.0.0.1", "0X7F.1", "2130706433", "017700000001"]


@pytest.mark.parametrize("host", IPV4_FORMS)
def test_every_ipv4_literal_form_is_an_address_matching_only_itself(host):
    import socket

    from nbfetch.core.cookies import ipv4_number, is_loopback

    assert ipv4_number(host) == int.from_bytes(socket.inet_aton(host), "big")
    assert is_loopback(host) and is_loopback("::ffff:127.0.0.1") and not is_loopback("127.0.0.1x")
    jar = jar_at()
    jar.store(f"http://{host}/", ["dom=1; Domain=1", "dom2=1; Domain=0.1", "own=1"])
    assert [(c.name, c.domain, c.host_only) for c in jar.cookies()] == [("own", host.lower(), True)]
    assert sent(jar, "http://1.1/") == sent(jar, "http://127.001.0.1/") == ""


@pytest.mark.anyio
async def test_a_cookie_of_one_address_never_reaches_another(raw_server):
    handler = answer_each(
        b"HTTP/1.1 200 OK\r\nSet-Cookie: sid=SECRET; Domain=0.1; Path=/\r\n"
        + b"Content-Length: 0\r\n\r\n"
    )

    a = raw_server(handler)  # 127.0.0.1, asked for as 127.000.0.1
    b = raw_server(handler, host="127.1.0.1")  # asked for as 127.001.0.1
    async with AsyncClient() as client:
        await client.fetch(f"http://127.000.0.1:{a.port}/login")
        await client.fetch(f"http://127.001.0.1:{b.port}/")
    assert b"SECRET" not in b.received[0]


# -- cookie bombs ------------------------------------------------------------------------------
def test_a_deep_host_cannot_store_more_than_its_sites_bound():
    from nbfetch.core.cookies import MAX_PER_SITE

    jar = jar_at()
    host = "a.b.c.d.e.f.g.h.i.j.example.com"
    labels = host.split(".")
    for domain in [".".join(labels[i:]) for i in range(len(labels) - 1)]:  # to example.com
        jar.store(f"http://{host}/", [f"c{i}=v; Domain={domain}" for i in range(50)])
    assert len(jar) == MAX_PER_SITE  # not 11 domains x 50
    jar.store("http://other.example.org/", ["o=1"])  # another site keeps its room
    assert len(jar) == MAX_PER_SITE + 1 and "o" in jar


def test_the_cookie_header_keeps_the_most_specific_cookies_within_its_bound():
    from nbfetch.core.cookies import MAX_COOKIE_HEADER

    jar = jar_at()
    jar.store("http://www.example.com/", ["own=mine"])
    # A sibling subdomain floods its parent domain with large, newer cookies.
    bomb = [f"b{i}={'v' * 1000}; Domain=example.com; Path=/" for i in range(40)]
    jar.store("http://evil.example.com/", bomb)
    value, names, dropped = jar.header_for("http://www.example.com/app")
    assert len(value) <= MAX_COOKIE_HEADER < 40 * 1000
    assert names[0] == "own" and dropped == 41 - len(names) > 0


@pytest.mark.anyio
async def test_a_request_sends_at_most_8_kib_of_the_jars_cookies(raw_server):
    bomb = b"".join(b"Set-Cookie: b%d=%s\r\n" % (i, b"v" * 1000) for i in range(30))

    handler = answer_each(b"HTTP/1.1 200 OK\r\n" + bomb + b"Content-Length: 0\r\n\r\n")

    srv = raw_server(handler)
    events = []
    async with AsyncClient(trace=events.append) as client:
        await client.fetch(srv.url + "/")
        await client.fetch(srv.url + "/")
    [line] = [x for x in srv.received[1].split(b"\r\n") if x.lower().startswith(b"cookie:")]
    assert len(line) <= len(b"Cookie: ") + 8192
    [sent_event] = [e.details for e in events if e.name == "cookies.sent"]
    assert len(sent_event["names"]) == 8 and sent_event["dropped"] == 22


# -- bounded work per header (the event loop parses them) -------------------------------------
def test_absurd_expires_values_and_attribute_floods_are_rejected_up_front():
    date = "Wed, 09 Jun 2027 10:18:14 GMT"
    assert parse_cookie_date(date + " x" * 20) is not None  # lenient (5.1.1) within the bound
    assert parse_cookie_date(date + " x" * 200) is None  # past 128 characters: no date
    jar = jar_at()
    stored = jar.store("http://h.test/", ["ok=1" + "; x" * 32, "flood=1" + "; x" * 33])
    assert [c.name for c in stored] == ["ok"]  # at most 32 attributes


@pytest.mark.anyio
@pytest.mark.loop_watchdog
async def test_a_head_of_hostile_set_cookie_fields_keeps_the_loop_free(raw_server):
    fields = b"".join(b"Set-Cookie: c%d=v; Expires=%s\r\n" % (i, b"x " * 500) for i in range(62))

    handler = answer_each(b"HTTP/1.1 200 OK\r\n" + fields + b"Content-Length: 0\r\n\r\n")

    srv = raw_server(handler)
    async with AsyncClient() as client:
        for _ in range(3):
            r = await client.fetch(srv.url + "/")
    assert r.status_code == 200 and len(client.cookies) == 50  # session cookies, bounded


# -- cookies given by the caller or a file follow the Set-Cookie path's rules ------------------
@pytest.mark.parametrize(
    ("name", "value", "domain", "path"),
    [
        ("a", "x\r\nX-Injected: 1", "h.test", "/"),
        ("a", "x\x00y", "h.test", "/"),
        ("a", "x; admin=1", "h.test", "/"),  # a second cookie in the header
        ("a b", "1", "h.test", "/"),
        ("a=b", "1", "h.test", "/"),
        ("", "1", "h.test", "/"),
        ("a", "1", "h.test; admin=1", "/"),
        ("a", "1", "h.test", "/x\r\n"),
        ("a", "1", "h.test", "x"),
    ],
)
def test_set_refuses_what_a_server_could_not_set(name, value, domain, path):
    jar = jar_at()
    with pytest.raises(ValueError, match=r"invalid cookie|path"):
        jar.set(name, value, domain, path)
    assert len(jar) == 0
    with pytest.raises(ValueError) as info:
        jar.set("sid", "SECRET; admin=1", "h.test")
    assert "SECRET" not in str(info.value)  # the name is said, never the value


@pytest.mark.anyio
async def test_a_cookies_txt_line_cannot_smuggle_a_second_cookie(raw_server):
    handler = answer_each(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")

    srv = raw_server(handler)
    async with AsyncClient() as client:
        text = "127.0.0.1\tFALSE\t/\tFALSE\t0\ta\tx; admin=1\n127.0.0.1\tFALSE\t/\tFALSE\t0\tb\t2\n"
        assert client.cookies.loads(text) == 1
        await client.fetch(srv.url + "/")
    assert b"\r\nCookie: b=2\r\n" in srv.received[0] and b"admin" not in srv.received[0]


def test_save_replaces_the_file_atomically_and_private(tmp_path, monkeypatch):
    path = tmp_path / "cookies.txt"
    path.write_text("old")
    os.chmod(path, 0o644)
    jar = jar_at()
    jar.set("sid", "precious", "h.test")
    jar.save(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600  # not the old file's 0644
    saved = path.read_text()

    def broken():
        raise RuntimeError("dumps failed")

    monkeypatch.setattr(jar, "dumps", broken)
    with pytest.raises(RuntimeError):
        jar.save(path)
    assert path.read_text() == saved and os.listdir(tmp_path) == ["cookies.txt"]


def test_an_infinite_or_nan_expiry_is_refused():
    jar = jar_at()
    line = "h.test\tFALSE\t/\tFALSE\t" + "9" * 400 + "\tother\tx\n"
    assert jar.loads(line) == 0  # 400 digits: inf
    for bad in (float("inf"), float("nan"), 10**400, True, "soon"):
        with pytest.raises(ValueError, match="expires="):
            jar.set("a", "1", "h.test", expires=bad)
    jar.dumps()  # nothing stored that it cannot write


@pytest.mark.anyio
async def test_concurrent_first_fetches_build_the_public_suffix_list_once(raw_server, monkeypatch):
    import publicsuffixlist

    real, built = publicsuffixlist.PublicSuffixList, []

    def slow_build(*args, **kwargs):
        built.append(1)
        time.sleep(0.2)  # a slow build: every first fetch arrives while it runs
        return real(*args, **kwargs)

    monkeypatch.setattr(publicsuffixlist, "PublicSuffixList", slow_build)
    monkeypatch.setattr(nbfetch.core.cookies, "_suffixes", None)

    handler = answer_each(
        b"HTTP/1.1 200 OK\r\nSet-Cookie: k=v; Domain=demo.test\r\n" + b"Content-Length: 0\r\n\r\n"
    )

    srv = raw_server(handler)
    mapping = {"app.demo.test": "127.0.0.1"}
    async with AsyncClient(hostname_mapping=mapping, max_clients=10) as client:
        urls = [f"http://app.demo.test:{srv.port}/{i}" for i in range(10)]
        await asyncio.gather(*(client.fetch(url) for url in urls))
        assert client.cookies["k"] == "v"
    assert len(built) == 1


def test_plain_http_siblings_cannot_evict_or_crowd_out_a_secure_cookie():
    # Review: the per-site bound evicted the oldest cookie whatever it was, so
    # four plain-http subdomains flooding 50 cookies each pushed out the site's
    # Secure session cookie, after which http could set its own under that name;
    # and 8 KiB of long-path http cookies kept it out of the Cookie header.
    jar = CookieJar(clock=lambda: 1_000_000.0)
    jar.store("https://www.example.com/", ["session=SECRET; Domain=example.com; Secure; Path=/"])
    for host in "abcd":
        jar.store(f"http://{host}.example.com/", [f"junk{i}=x" for i in range(50)])
    jar.store("http://a.example.com/", ["session=ATTACKER; Domain=example.com; Path=/"])
    assert jar.header_for("https://www.example.com/").value.count("session=") == 1
    assert "session=SECRET" in jar.header_for("https://www.example.com/").value
    big = "v" * 240
    jar.store(
        "http://b.example.com/",
        [f"long{i}={big}; Domain=example.com; Path=/app" for i in range(40)],
    )
    header = jar.header_for("https://www.example.com/app/page")
    assert "session=SECRET" in header.value and len(header.value) <= 8192
    assert header.dropped > 0
