"""The browser transport's translation (client/browser.py) in CPython: the
browser's side is a scripted stand-in for drivers/browser.py's ``JSFetch``
(start/read/abort/timing), so these check what nbfetch makes of a browser
Response, never what a browser does (tests/test_pyodide.py runs the real
``js.fetch`` in Pyodide)."""

import asyncio
import sys

import pytest

import nbfetch
from nbfetch import AsyncClient
from nbfetch.client import api
from nbfetch.client.browser import (
    BrowserOpener,
    check_client,
    rejected_error,
    split_headers,
    timing_details,
)
from nbfetch.core.errors import (
    ConnectError,
    FetchTimeout,
    InvalidRequest,
    NetworkError,
    ProtocolError,
    RedirectError,
)
from nbfetch.core.request import Request
from nbfetch.drivers.browser import BrowserHead, FetchRejected, pick_entry
from nbfetch.drivers.synthetic import MAX_REQUEST_BYTES
from nbfetch.notebook.snapshot import FetchState, chunks_html, snapshot_text, status_html

pytestmark = [pytest.mark.anyio, pytest.mark.loop_watchdog]


@pytest.fixture
def anyio_backend():
    return "asyncio"


class ScriptedFetch:
    """Stands in for JSFetch: answers with ``head`` (a float: the head never
    comes, wait that long) and ``pieces`` (bytes, or a float: wait that long;
    an exception: raise it)."""

    origin = None
    timing_missing = None

    def __init__(self, head, pieces=(), timing=None, reject=None):
        self.head, self.pieces, self.entry, self.reject = head, list(pieces), timing, reject
        self.started, self.aborted = None, False

    def page_origin(self):
        return self.origin

    async def start(self, url, method, headers, body, redirect):
        self.started = (url, method, headers, body, redirect)
        if self.reject is not None:
            raise self.reject
        if isinstance(self.head, float):
            await asyncio.sleep(self.head)
        return self.head

    async def read(self):
        while self.pieces:
            piece = self.pieces.pop(0)
            if isinstance(piece, float):
                await asyncio.sleep(piece)
                continue
            if isinstance(piece, Exception):
                raise piece
            return piece
        return None

    def abort(self):
        self.aborted = True

    def timing(self):
        return self.entry


def head(
    status=200, headers=(), url="http://api.test/x", redirected=False, type="basic", text="OK"
):
    return BrowserHead(status, text, list(headers), url, redirected, type, True)


def client_for(*fetches):
    made = list(fetches)
    client = AsyncClient()
    client.opener = BrowserOpener(make_fetch=lambda: made.pop(0))
    return client


RESOURCE = {
    "startTime": 100.0,
    "domainLookupStart": 101.0,
    "domainLookupEnd": 103.0,
    "connectStart": 103.0,
    "secureConnectionStart": 104.0,
    "connectEnd": 108.0,
    "requestStart": 108.0,
    "responseStart": 120.0,
    "responseEnd": 130.0,
    "encodedBodySize": 40.0,
    "decodedBodySize": 90.0,
    "nextHopProtocol": "h2",
}


async def test_a_browser_response_becomes_a_chunked_head_one_chunk_per_piece():
    fake = ScriptedFetch(
        head(
            headers=[
                ("content-type", "application/json"),
                ("content-encoding", "gzip"),
                ("content-length", "40"),
                ("x-a", "1"),
            ]
        ),
        [b'{"a": ', b"[1, 2]", b"}"],
        timing=RESOURCE,
    )
    async with client_for(fake) as client:
        r = await client.fetch("https://api.test/x")
    assert r.json() == {"a": [1, 2]}
    # Decoded by the browser: no Content-Encoding left to decode again, and
    # the body re-framed as chunks (its Content-Length was the encoded one).
    assert "content-encoding" not in r.headers and "content-length" not in r.headers
    assert r.headers["transfer-encoding"] == "chunked"
    assert r.headers["x-a"] == "1"
    events = {e.name: e for e in r.events}
    assert [e.name for e in r.events].count("response.chunk") == 3
    response = events["browser.response"].details
    assert response["transport"] == "browser" and response["reconstructed"] is True
    assert response["decoded_by_browser"] == "gzip"
    assert response["removed"] == {"content-encoding": "gzip", "content-length": "40"}
    # What the browser hides stays None; Resource Timing is reported as such.
    assert r.timing.dns is None and r.timing.connect is None and r.timing.tls is None
    assert not any(e.name.startswith(("resolve.", "connect.", "tls.")) for e in r.events)
    timing = events["browser.timing"].details
    assert timing["dns"] == pytest.approx(0.002) and timing["tls"] == pytest.approx(0.004)
    assert timing["protocol"] == "h2" and timing["source"] == "Resource Timing"


async def test_what_is_passed_to_fetch_and_what_is_left_to_the_browser():
    fake = ScriptedFetch(head(), [b"ok"])
    async with client_for(fake) as client:
        r = await client.fetch("http://api.test/p", "POST", json={"a": 1}, headers={"X-Token": "t"})
    url, method, headers, body, redirect = fake.started
    assert (url, method, body, redirect) == ("http://api.test/p", "POST", b'{"a": 1}', "follow")
    names = [n for n, _ in headers]
    assert "x-token" in names and "content-type" in names and "accept" in names
    # nbfetch's own Host, Content-Length, Accept-Encoding and User-Agent: the browser's.
    assert not {"host", "content-length", "accept-encoding", "user-agent"} & set(names)
    sent = next(e for e in r.events if e.name == "browser.request").details
    assert {"Host", "Content-Length", "Accept-Encoding", "User-Agent"} <= set(
        sent["left_to_browser"]
    )
    assert "not known" in sent["note"]


@pytest.mark.parametrize(
    "headers",
    [
        {"Cookie": "a=1"},
        {"Host": "other.test"},
        {"Connection": "close"},
        {"Sec-Fetch-Mode": "cors"},
        {"Proxy-Authorization": "Basic eA=="},
        {"Accept-Encoding": "identity"},
        {"X-HTTP-Method-Override": "TRACE"},
    ],
)
async def test_a_forbidden_header_the_caller_set_is_refused_before_anything_is_sent(headers):
    fake = ScriptedFetch(head(), [b"ok"])
    seen = []
    async with client_for(fake) as client:
        with pytest.raises(InvalidRequest) as info:
            await client.fetch("http://api.test/x", headers=headers, trace=seen.append)
    assert fake.started is None
    name = next(iter(headers))
    assert name in str(info.value)
    assert seen[-1].name == "error"


def test_a_user_agent_of_the_callers_own_is_passed():
    request = Request.build("GET", "http://a.test/", headers={"User-Agent": "mine/1"})
    passed, left = split_headers(request)
    assert ("user-agent", "mine/1") in passed and left == ["Host"]


async def test_cookies_and_proxies_have_no_effect_in_a_browser_and_say_so():
    async with client_for(ScriptedFetch(head())) as client:
        with pytest.raises(InvalidRequest, match="cookies= has no effect"):
            await client.fetch("http://api.test/", cookies={"a": "1"})
        with pytest.raises(InvalidRequest, match="proxy"):
            await client.fetch("http://api.test/", proxy="http://127.0.0.1:3128")
    with pytest.raises(InvalidRequest, match="verify= has no effect"):
        check_client({"verify": False})
    with pytest.raises(InvalidRequest, match="hostname_mapping= has no effect"):
        check_client({"hostname_mapping": {"a.test": "127.0.0.1"}})
    check_client({"verify": True, "hostname_mapping": {}, "proxy": None})


async def test_redirects_report_the_final_url_only():
    fake = ScriptedFetch(head(url="http://api.test/final", redirected=True), [b"x"])
    async with client_for(fake) as client:
        r = await client.fetch("http://api.test/start")
    assert str(r.url) == "http://api.test/final"
    assert r.history == []
    details = next(e for e in r.events if e.name == "browser.response").details
    assert details["redirected"] and "only the final URL" in details["note"]
    state = FetchState.of_response(r)
    assert "final" in state.url


async def test_a_hidden_redirect_with_follow_redirects_false_is_an_error():
    fake = ScriptedFetch(BrowserHead(0, "", [], "", False, "opaqueredirect", False))
    async with client_for(fake) as client:
        with pytest.raises(RedirectError, match="hides"):
            await client.fetch("http://api.test/r", follow_redirects=False)
    assert fake.started[4] == "manual"


async def test_a_rejected_fetch_is_a_connect_error_explaining_cors_cross_origin():
    fake = ScriptedFetch(head(), reject=FetchRejected("TypeError", "Failed to fetch"))
    fake.origin = "http://127.0.0.1:8000"
    async with client_for(fake) as client:
        with pytest.raises(ConnectError) as info:
            await client.fetch("http://api.test/x")
    assert "CORS" in str(info.value) and "Access-Control-Allow-Origin" in str(info.value)
    assert info.value.hint and "console" in info.value.hint


def test_same_origin_or_no_page_is_no_cors_claim():
    same = rejected_error("TypeError", "x", "http://a.test/p", "http://a.test", body=False)
    node = rejected_error("TypeError", "fetch failed", "http://a.test/p", None, body=False)
    for exc in (same, node):
        # (A hidden redirect to another origin may be refused by CORS: said
        # as one possibility, not as the likely cause.)
        assert isinstance(exc, ConnectError) and "likely cause is CORS" not in str(exc)
        assert "could not be reached" in str(exc)
    broken = rejected_error("TypeError", "network", "http://a.test/", None, body=True)
    assert isinstance(broken, NetworkError) and broken.phase == "download"


async def test_a_body_broken_midway_is_a_network_error():
    fake = ScriptedFetch(head(), [b"part", FetchRejected("TypeError", "network error")])
    async with client_for(fake) as client:
        with pytest.raises(NetworkError) as info:
            await client.fetch("http://api.test/x")
    assert info.value.phase == "download"


async def test_the_read_timeout_between_pieces_aborts_the_browsers_fetch():
    fake = ScriptedFetch(head(), [b"first", 30.0, b"never"])
    async with client_for(fake) as client:
        with pytest.raises(FetchTimeout) as info:
            await client.fetch("http://api.test/slow", read_timeout=0.2)
    assert info.value.timeout == "read_timeout" and info.value.phase == "download"
    assert fake.aborted


async def test_closing_a_stream_early_aborts_the_browsers_fetch():
    fake = ScriptedFetch(head(), [b"a", 0.05, b"b", 30.0])
    async with client_for(fake) as client, client.stream("GET", "http://api.test/s") as r:
        async for _ in r.aiter_bytes():
            break
    assert fake.aborted


async def test_cancelling_the_fetch_aborts_the_browsers_fetch():
    fake = ScriptedFetch(head(), [30.0])
    async with client_for(fake) as client:
        task = asyncio.ensure_future(client.fetch("http://api.test/s"))
        while fake.started is None:
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert fake.aborted


async def test_a_finished_fetch_does_not_abort():
    fake = ScriptedFetch(head(), [b"x"])
    async with client_for(fake) as client:
        await client.fetch("http://api.test/")
    assert not fake.aborted


async def test_head_requests_and_bodiless_statuses():
    fake = ScriptedFetch(BrowserHead(204, "", [], "http://api.test/", False, "basic", False))
    other = ScriptedFetch(head(headers=[("content-length", "5")]), [b"never"])
    async with client_for(fake, other) as client:
        assert (await client.fetch("http://api.test/")).status_code == 204
        r = await client.fetch("http://api.test/", "HEAD")
    assert r.body == b""


async def test_the_views_say_the_wire_view_is_reconstructed():
    fake = ScriptedFetch(head(), [b"a", b"b"])
    async with client_for(fake) as client:
        r = await client.fetch("http://api.test/x")
    state = FetchState.of_response(r)
    assert "reconstructed" in status_html(state)
    assert "pieces, not the server" in chunks_html(state)
    assert "reconstructed" in snapshot_text(state)


def test_resource_timing_zeros_are_no_timing():
    assert timing_details(None) is None
    zeros = dict.fromkeys(RESOURCE, 0.0) | {"nextHopProtocol": ""}
    assert timing_details(zeros) is None
    hidden = RESOURCE | {"domainLookupStart": 0.0, "domainLookupEnd": 0.0}
    assert timing_details(hidden)["dns"] is None
    # No TLS over plain http, whatever the entry says.
    assert timing_details(RESOURCE, secure=False)["tls"] is None


def test_sync_fetching_refuses_in_a_browser(monkeypatch):
    monkeypatch.setattr(sys, "platform", "emscripten")
    with pytest.raises(InvalidRequest, match="cannot block in a browser"):
        nbfetch.fetch_sync("http://api.test/")

    async def never():
        raise AssertionError("not run")

    with pytest.raises(InvalidRequest, match=r"await nbfetch\.fetch"):
        api.run_sync(never())


async def test_non_ascii_header_bytes_and_status_text_are_the_servers_bytes():
    # A browser shows a head's bytes as latin-1 characters (ByteString): a
    # UTF-8 filename arrives as "rÃ©sumÃ©", and goes back to h11 as those bytes.
    utf8 = 'attachment; filename="résumé.pdf"'.encode()
    fake = ScriptedFetch(
        head(headers=[("content-disposition", utf8.decode("latin-1"))], text="Déjà vu"), [b"ok"]
    )
    async with client_for(fake) as client:
        r = await client.fetch("http://api.test/x")
    assert r.headers.get_raw("content-disposition") == [utf8]
    assert r.reason == "Déjà vu" and r.body == b"ok"


@pytest.mark.parametrize(
    "bad",
    [
        head(headers=[("x-a", "a\x0cb")]),  # h11 refuses a form feed in a value
        head(headers=[("x-a", "\u2603")]),  # not a byte: no server sent it
        head(text="OK\r\nX-Injected: 1"),  # would add a header line to the head
    ],
    ids=["form-feed", "not-a-byte", "crlf-reason"],
)
async def test_a_head_that_cannot_be_framed_fails_and_aborts_the_browsers_fetch(bad):
    # Left running, its body would hold one of the browser's few connections
    # to the origin (Chromium: 6) until the server ends it.
    fake = ScriptedFetch(bad, [b"body", 30.0])
    async with client_for(fake) as client:
        with pytest.raises(ProtocolError) as info:
            await client.fetch("http://api.test/x")
    assert info.value.phase == "wait"
    assert fake.aborted


async def test_many_empty_pieces_are_skipped():
    fake = ScriptedFetch(head(), [b""] * 5000 + [b"end"])
    async with client_for(fake) as client:
        r = await client.fetch("http://api.test/x")
    assert r.body == b"end"


async def test_a_url_with_credentials_is_fetched_without_them_and_with_basic_auth():
    fake = ScriptedFetch(head(), [b"ok"])
    async with client_for(fake) as client:
        r = await client.fetch("http://alice:s3cret@api.test/x?token=abc")
    url, _, headers, _, _ = fake.started
    # fetch() refuses a URL with credentials (and "***@" is no URL to fetch).
    assert url == "http://api.test/x?token=abc"
    assert ("authorization", "Basic YWxpY2U6czNjcmV0") in headers
    sent = next(e for e in r.events if e.name == "browser.request").details
    assert "Authorization: Basic" in sent["userinfo"]


async def test_connect_timeout_bounds_the_wait_for_the_head():
    # fetch() hides the connection: an unreachable host only shows as a head
    # that never comes.
    fake = ScriptedFetch(30.0)
    async with client_for(fake) as client:
        with pytest.raises(FetchTimeout) as info:
            await client.fetch("http://api.test/x", connect_timeout=0.2, read_timeout=20)
    assert info.value.timeout == "connect_timeout" and info.value.seconds == 0.2
    assert fake.aborted
    # The shorter read_timeout still names itself.
    fake = ScriptedFetch(30.0)
    async with client_for(fake) as client:
        with pytest.raises(FetchTimeout) as info:
            await client.fetch("http://api.test/x", connect_timeout=20, read_timeout=0.2)
    assert info.value.timeout == "read_timeout"
    assert fake.aborted


async def test_max_redirects_the_browser_cannot_apply_is_said_and_zero_is_enforced():
    fake = ScriptedFetch(head(url="http://api.test/final", redirected=True), [b"x"])
    async with client_for(fake) as client:
        with pytest.raises(RedirectError, match="max_redirects=0"):
            await client.fetch("http://api.test/start", max_redirects=0)
    assert fake.aborted
    fakes = [ScriptedFetch(head(), [b"x"]) for _ in range(2)]
    async with client_for(*fakes) as client:
        r = await client.fetch("http://api.test/", max_redirects=3)
        assert "max_redirects=3 is not applied" in _request_details(r)["max_redirects"]
        r = await client.fetch("http://api.test/", max_redirects=20)
        assert "max_redirects" not in _request_details(r)


def _request_details(r):
    return next(e for e in r.events if e.name == "browser.request").details


def test_a_failed_same_origin_fetch_may_be_a_hidden_redirect():
    followed = rejected_error(
        "TypeError",
        "Failed to fetch",
        "http://a.test/p",
        "http://a.test",
        body=False,
        redirect="follow",
    )
    assert "another origin" in str(followed) and "more than 20 times" in str(followed)
    manual = rejected_error(
        "TypeError",
        "Failed to fetch",
        "http://a.test/p",
        "http://a.test",
        body=False,
        redirect="manual",
    )
    assert "redirected" not in str(manual)


async def test_a_user_agent_of_the_callers_own_is_marked_as_maybe_ignored():
    fakes = [ScriptedFetch(head(), [b"x"]) for _ in range(2)]
    async with client_for(*fakes) as client:
        r = await client.fetch("http://api.test/", headers={"User-Agent": "mine/1"})
        assert _request_details(r)["may_be_ignored"] == ["user-agent"]
        r = await client.fetch("http://api.test/")  # nbfetch's own: left to the browser
        assert "may_be_ignored" not in _request_details(r)


async def test_an_upload_over_the_buffer_bound_is_refused_before_anything_is_sent():
    fake = ScriptedFetch(head(), [b"x"])
    async with client_for(fake) as client:
        with pytest.raises(InvalidRequest, match="at most 64 MiB"):
            await client.fetch("http://api.test/", "PUT", body=b"x" * (MAX_REQUEST_BYTES + 1))
    assert fake.started is None


async def test_a_streamed_upload_over_the_bound_fails_as_it_passes_it_without_waiting():
    piece = b"x" * 1024**2

    async def body():
        for _ in range(MAX_REQUEST_BYTES // len(piece) + 1):
            yield piece

    fake = ScriptedFetch(head(), [b"x"])
    async with client_for(fake) as client:
        # read_timeout=None: a wait for an answer that cannot come would hang
        # (until pytest-timeout), rather than fail at once.
        with pytest.raises(NetworkError, match="holds the request whole"):
            await client.fetch("http://api.test/", "PUT", body=body(), read_timeout=None)
    assert fake.started is None


def test_the_resource_timing_entry_is_the_one_closest_to_this_fetchs_start():
    # Entries of the same URL: an earlier fetch's, this one's, a later one's.
    assert pick_entry([10.0, 50.2, 80.0], 50.0) == 1
    assert pick_entry([10.0, 80.0, 50.2], 50.0) == 2
    assert pick_entry([10.0], 50.0) is None  # only an earlier fetch's
    assert pick_entry([], 50.0) is None


async def test_a_full_resource_timing_buffer_is_said():
    fake = ScriptedFetch(head(), [b"x"])
    fake.timing_missing = "the page's Resource Timing buffer is full"
    async with client_for(fake) as client:
        r = await client.fetch("http://api.test/")
    timing = next(e for e in r.events if e.name == "browser.timing").details
    assert timing["missing"] == "the page's Resource Timing buffer is full"
