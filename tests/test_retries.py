"""Retries (issue 17 item 4): the pure policy of core/retry.py, and the client
retrying real servers on 127.0.0.1: 503/429 with Retry-After, connect errors,
idempotency, replayable bodies, the request_timeout bound and cancellation."""

import asyncio
import socket
import time
import uuid
from email.utils import formatdate
from urllib.parse import quote

import pytest
from conftest import assert_timing_sane, client_sockets_to, idle_connections, wait_until
from loopwatch import run_trio

import nbfetch
from nbfetch import AsyncClient, Retry
from nbfetch.core.retry import parse_retry_after
from nbfetch.demo import DemoServer


def names(r):
    return [e.name for e in r.events]


def retries(r):
    return [e.details for e in r.events if e.name == "retry"]


def unavailable(demo, n, **query):
    """A fresh /unavailable URL: "come back later" ``n`` times, then 200."""
    url = f"{demo.url}/unavailable/{uuid.uuid4().hex}/{n}"
    return url + ("?" + "&".join(f"{k}={quote(str(v))}" for k, v in query.items()) if query else "")


def closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now: a connect is refused at once
    return port


# -- the policy, without a network ----------------------------------------------------


def test_backoff_doubles_up_to_its_cap_and_jitter_only_shortens_it():
    exact = Retry(backoff_factor=0.5, backoff_max=3, jitter=0)
    assert [exact.backoff(n) for n in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    lowest = Retry(backoff_factor=1, jitter=0.5, random=lambda: 1.0)
    highest = Retry(backoff_factor=1, jitter=0.5, random=lambda: 0.0)
    assert (lowest.backoff(3), highest.backoff(3)) == (2.0, 4.0)
    full = Retry(backoff_factor=1, jitter=1, random=lambda: 0.75)
    assert full.backoff(1) == 0.25


def test_retry_after_delay_seconds_and_http_dates():
    now = 784111777.0  # Sun, 06 Nov 1994 08:49:37 GMT (RFC 9110's example)
    assert parse_retry_after("120", now) == 120.0
    assert parse_retry_after(" 0 ", now) == 0.0
    assert parse_retry_after("Sun, 06 Nov 1994 08:49:47 GMT", now) == 10.0  # IMF-fixdate
    assert parse_retry_after("Sunday, 06-Nov-94 08:49:57 GMT", now) == 20.0  # RFC 850
    assert parse_retry_after("Sun Nov  6 08:50:37 1994", now) == 60.0  # asctime
    assert parse_retry_after("Sun, 06 Nov 1994 08:40:00 GMT", now) == 0.0  # in the past
    for bad in ("-1", "1.5", "soon", "", "١٢", None):
        assert parse_retry_after(bad, now) is None, bad


def test_which_statuses_methods_and_bodies_are_retried():
    p = Retry(total=2, backoff_factor=1, jitter=0)
    kw = {"now": 0.0, "retries_done": 0, "replayable": True}
    assert p.status_delay("GET", 503, None, **kw) == 1.0
    assert p.status_delay("GET", 503, "7", **kw) == 7.0  # the server's wait wins
    assert p.status_delay("GET", 500, None, **kw) is None
    assert p.status_delay("POST", 503, None, **kw) is None  # not idempotent
    assert Retry(methods={"post"}).status_delay("POST", 503, "0", **kw) == 0.0
    assert p.status_delay("PUT", 503, None, **{**kw, "replayable": False}) is None
    assert p.status_delay("GET", 503, None, **{**kw, "retries_done": 2}) is None  # total
    # Longer than retry_after_max: returned, not retried before the server asked.
    assert Retry(retry_after_max=60).status_delay("GET", 429, "61", **kw) is None
    assert Retry(respect_retry_after=False, jitter=0).status_delay("GET", 429, "61", **kw) == 0.5


def test_which_errors_are_retried():
    p = Retry(total=1, backoff_factor=0, jitter=0)
    assert p.error_delay(nbfetch.ConnectError("refused"), retries_done=0) == 0.0
    assert p.error_delay(nbfetch.ConnectError("refused"), retries_done=1) is None
    assert p.error_delay(nbfetch.TLSError("certificate verify failed"), retries_done=0) is None
    connect = nbfetch.FetchTimeout("x", timeout="connect_timeout", seconds=1)
    whole = nbfetch.FetchTimeout("x", timeout="request_timeout", seconds=1)
    assert p.error_delay(connect, retries_done=0) == 0.0
    assert p.error_delay(whole, retries_done=0) is None
    assert p.error_delay(nbfetch.NetworkError("reset"), retries_done=0) is None
    assert (
        Retry(connect_errors=False).error_delay(nbfetch.ConnectError("x"), retries_done=0) is None
    )


def test_retries_option_values():
    assert Retry.of(None) is None and Retry.of(0) is None
    assert Retry.of(3).total == 3
    policy = Retry(total=1)
    assert Retry.of(policy) is policy
    for bad in (-1, 1.5, True, "3"):
        with pytest.raises(nbfetch.InvalidRequest):
            Retry.of(bad)
    with pytest.raises(nbfetch.InvalidRequest):
        Retry(jitter=2)
    with pytest.raises(
        nbfetch.InvalidRequest, match=r"retries= takes .*\(http://127\.0\.0\.1:9/\)"
    ):
        nbfetch.fetch_sync("http://127.0.0.1:9/", retries="3")


# -- against real servers -------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.loop_watchdog
async def test_no_retries_by_default(demo):
    async with AsyncClient() as c:
        r = await c.fetch(unavailable(demo, 1))
    assert r.status_code == 503 and "retry" not in names(r)


@pytest.mark.anyio
@pytest.mark.loop_watchdog
async def test_503_with_retry_after_then_200(demo):
    url = unavailable(demo, 1, retry_after=1)
    async with AsyncClient(retries=Retry(total=2, backoff_factor=0)) as c:
        start = time.monotonic()
        r = await c.fetch(url)
        elapsed = time.monotonic() - start
    assert r.status_code == 200 and r.json()["requests"] == 2
    assert retries(r) == [{"attempt": 2, "reason": "status 503", "delay": 1.0}]
    assert elapsed >= 1.0  # the server's Retry-After, not the backoff (0)
    # The second attempt reused the first one's connection: it was released
    # (its body read) before the wait.
    assert names(r).index("connection.reused") > names(r).index("retry")
    assert r.history == []  # history is redirects; the attempts are hops of the events
    assert_timing_sane(r.timing)
    assert r.timing.redirect >= 1.0  # the earlier attempt and the wait


@pytest.mark.anyio
@pytest.mark.loop_watchdog
async def test_429_with_an_http_date_retry_after(demo):
    when = formatdate(time.time() + 2, usegmt=True)
    url = unavailable(demo, 1, status=429, retry_after=when)
    async with AsyncClient() as c:
        r = await c.fetch(url, retries=1)
    assert r.status_code == 200
    [retry] = retries(r)
    assert retry["reason"] == "status 429" and 0 < retry["delay"] <= 2.0


@pytest.mark.anyio
@pytest.mark.loop_watchdog
async def test_connect_errors_are_retried_then_fail_naming_every_attempt():
    url = f"http://127.0.0.1:{closed_port()}/get"
    seen = []
    async with AsyncClient(retries=Retry(total=2, backoff_factor=0.01)) as c:
        with pytest.raises(nbfetch.ConnectError) as info:
            await c.fetch(url, "POST", body=b"x", trace=seen.append)  # nothing was sent
    message = str(info.value)
    assert "after 3 attempts" in message, message
    assert "attempt 1: ConnectError: cannot connect" in message
    assert "attempt 2: ConnectError: cannot connect" in message
    assert info.value.phase == "connect" and str(info.value.url) == url
    assert [e["attempt"] for e in seen if e.name == "retry"] == [2, 3]
    assert [e.name for e in seen].count("error") == 1


@pytest.mark.anyio
@pytest.mark.loop_watchdog
async def test_post_is_not_retried_on_a_status_unless_told(demo):
    async with AsyncClient(retries=3) as c:
        url = unavailable(demo, 1)
        r = await c.fetch(url, "POST", body=b"payload")
        assert r.status_code == 503 and "retry" not in names(r)
        r = await c.fetch(url, "POST", body=b"payload")  # the server's 2nd request
        assert r.status_code == 200 and r.json()["requests"] == 2
        told = Retry(total=1, backoff_factor=0, methods={"POST"})
        r = await c.fetch(unavailable(demo, 1), "POST", body=b"payload", retries=told)
        assert r.status_code == 200 and len(retries(r)) == 1


@pytest.mark.anyio
@pytest.mark.loop_watchdog
async def test_a_body_that_cannot_be_replayed_is_not_retried(demo):
    async def body():
        yield b"once"

    async with AsyncClient(retries=Retry(total=2, backoff_factor=0)) as c:
        r = await c.fetch(unavailable(demo, 1), "PUT", body=body())
    assert r.status_code == 503 and "retry" not in names(r)


@pytest.mark.anyio
@pytest.mark.loop_watchdog
async def test_request_timeout_bounds_the_retries(demo):
    # The server asks for 30 s (within retry_after_max), the fetch has 3 s:
    # the 503 is returned at once, never a sleep into the deadline.
    async with AsyncClient(retries=Retry(total=5), request_timeout=3) as c:
        start = time.monotonic()
        r = await c.fetch(unavailable(demo, 1, retry_after=30))
        assert time.monotonic() - start < 3
        assert r.status_code == 503 and "retry" not in names(r)
        # A connect error whose backoff would outlast the deadline: raised at once.
        url = f"http://127.0.0.1:{closed_port()}/"
        start = time.monotonic()
        with pytest.raises(nbfetch.ConnectError) as info:
            await c.fetch(url, retries=Retry(total=5, backoff_factor=1, jitter=0))
        assert time.monotonic() - start < 3
    # The wait of 1 s fitted in the 3 s, the next one of 2 s did not.
    assert "(after 2 attempts; attempt 1: ConnectError" in str(info.value)
    assert "no attempt 3: its wait of 2 s would end after request_timeout=3s" in str(info.value)


@pytest.mark.anyio
@pytest.mark.loop_watchdog
async def test_cancel_during_the_backoff_leaks_nothing():
    # Its own server: the session's is shared with clients of other tests,
    # whose pooled sockets to it would be counted below.
    with DemoServer().start() as demo:
        await _cancel_during_the_backoff(demo)


async def _cancel_during_the_backoff(demo):
    seen = []
    async with AsyncClient(retries=Retry(total=2)) as c:
        task = asyncio.ensure_future(
            c.fetch(unavailable(demo, 2, retry_after=30), trace=seen.append)
        )
        await wait_until(lambda: any(e.name == "retry" for e in seen), what="the retry event")
        # Sleeping now: the 503's connection is already back in the pool.
        assert idle_connections(c) == 1
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert c._queue.active == 0  # the max_clients slot was given back
        assert seen[-1].name == "cancelled" and seen[-1]["phase"] == "retry"
        assert client_sockets_to(demo.port) <= idle_connections(c)
    await wait_until(lambda: client_sockets_to(demo.port) == 0, what="sockets closed")


def test_retries_on_trio(demo):
    trio = pytest.importorskip("trio")

    async def main():
        async with AsyncClient(retries=Retry(total=1, backoff_factor=0.05)) as c:
            r = await c.fetch(unavailable(demo, 1, retry_after=0))
            seen = []

            def cancel_at_the_retry(event):  # cancelled in the backoff sleep
                seen.append(event)
                if event.name == "retry":
                    scope.cancel()

            with trio.CancelScope() as scope:
                await c.fetch(unavailable(demo, 2, retry_after=30), trace=cancel_at_the_retry)
            return r, scope.cancelled_caught, c._queue.active, seen[-1]

    r, cancelled, active, last = run_trio(main)
    assert r.status_code == 200 and len(retries(r)) == 1
    assert cancelled and active == 0
    assert last.name == "cancelled" and last["phase"] == "retry"


# -- the views ------------------------------------------------------------------------


@pytest.mark.anyio
async def test_each_attempt_is_a_bar_in_the_waterfall_and_in_fetch_many(demo):
    from nbfetch.notebook.many_view import ManyView
    from nbfetch.notebook.snapshot import FetchState, waterfall_html

    url = unavailable(demo, 2)
    async with AsyncClient(retries=Retry(total=2, backoff_factor=0.01, jitter=0)) as c:
        r = await c.fetch(url)
    assert r.status_code == 200 and len(retries(r)) == 2
    html = waterfall_html(FetchState.of_response(r))
    assert html.count('class="nbfetch-attempt"') == 4  # 2 attempts, 2 waits
    assert "attempt 1 · 503" in html and "attempt 2 · 503" in html and "wait 0.02 s" in html
    assert ">redirect<" not in html  # the earlier hops are the attempt bars instead
    assert ">wait<" in html and ">download<" in html  # the last attempt's phases

    # Live, in the wait before attempt 2: the wait is the last bar, growing.
    state = FetchState("GET", url)
    first_retry = next(e for e in r.events if e.name == "retry")
    for e in r.events[: r.events.index(first_retry) + 1]:
        state.feed(e)
    live = waterfall_html(state, now=first_retry.time + 0.25)
    assert live.count('class="nbfetch-attempt"') == 2 and "250.0 ms" in live
    assert ">connect<" not in live

    view = ManyView([url], max_clients=1)
    for e in r.events:
        view.trace(0, e)
    view.finish()
    assert view.html().count('class="nbfetch-attempt"') == 4
    assert 'title="attempt 2: 503' in view.html()


# -- hostile values and bugs between a response and its caller ---------------------------


def answer_503_then_200(retry_after: bytes):
    """A raw handler: 503 with ``retry_after`` on the first request, then 200s."""

    def handler(conn, server):
        while server.read_request(conn):
            if len(server.received) == 1:
                head = b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: " + retry_after
                conn.sendall(head + b"\r\nContent-Length: 1\r\n\r\nx")
            else:
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")

    return handler


def test_absurd_retry_after_dates_and_huge_retry_numbers_do_not_overflow():
    # Year 99999999999 overflows datetime.timestamp(): unparseable (RFC 9110 10.2.3).
    assert parse_retry_after("Mon, 01 Jan 99999999999 00:00:00 GMT", 0.0) is None
    # 2 ** 1024 is no float: retry 1025 of Retry(total=1100) waits its capped backoff.
    assert Retry(total=1100, backoff_factor=0, jitter=0).backoff(1025) == 0.0
    assert Retry(total=2000, jitter=0).backoff(2000) == 30.0  # backoff_max


@pytest.mark.anyio
async def test_a_hostile_retry_after_date_is_retried_with_backoff(raw_server):
    srv = raw_server(answer_503_then_200(b"Mon, 01 Jan 99999999999 00:00:00 GMT"))
    policy = Retry(total=1, backoff_factor=0, jitter=0)
    async with AsyncClient(retries=policy, max_connections_per_host=1) as c:
        r = await c.fetch(srv.url + "/")
        assert (r.status_code, r.body, len(retries(r))) == (200, b"ok", 1)
        assert c._pool.open == {("http", "127.0.0.1", srv.port): 1}  # one, reused


@pytest.mark.anyio
async def test_any_error_after_a_response_arrived_closes_its_connection(raw_server, monkeypatch):
    # A bug in the policy (any exception, not only a FetchError) between the
    # response head and the caller must not keep the connection checked out:
    # with max_connections_per_host=1 the next fetch would wait for it forever.
    srv = raw_server(answer_503_then_200(b"0"))

    def broken(*args, **kwargs):
        raise RuntimeError("a bug in the policy")

    monkeypatch.setattr(Retry, "status_delay", broken)
    async with AsyncClient(retries=1, max_connections_per_host=1) as c:
        with pytest.raises(RuntimeError, match="a bug"):
            await c.fetch(srv.url + "/")
        assert c._pool.open == {} and c._queue.active == 0
        r = await asyncio.wait_for(c.fetch(srv.url + "/", retries=0), 10)
        assert r.status_code == 200


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"methods": "POST"}, "methods takes a collection"),  # not {"P", "O", "S", "T"}
        ({"methods": ["GET", 1]}, "1 is not one of the method names"),
        ({"methods": ["GET POST"]}, "is not one of the method names"),
        ({"statuses": "503"}, "statuses takes a collection"),
        ({"statuses": 503}, "statuses takes a collection"),
        ({"statuses": [503, "429"]}, "'429' is not one of the status codes"),
        ({"statuses": [True]}, "True is not one of the status codes"),
        ({"backoff_factor": float("nan")}, "backoff_factor must be a finite number"),
        ({"backoff_max": float("inf")}, "backoff_max must be a finite number"),
        ({"retry_after_max": float("nan")}, "retry_after_max must be a finite number"),
        ({"jitter": float("nan")}, "jitter must be between 0 and 1"),
    ],
)
def test_retry_refuses_values_it_would_misread(kwargs, message):
    with pytest.raises(nbfetch.InvalidRequest, match=message):
        Retry(**kwargs)


def test_retry_takes_any_collection_of_methods_and_statuses():
    policy = Retry(methods=("get", "M-SEARCH"), statuses=range(500, 505))
    assert policy.methods == {"GET", "M-SEARCH"} and 500 in policy.statuses


def test_the_error_of_many_attempts_lists_the_first_and_last_few():
    from nbfetch.core.retry import attempts_error

    reasons = [f"ConnectError: refused #{i}" for i in range(1, 300)]
    exc = attempts_error(nbfetch.ConnectError("refused"), reasons)
    message = str(exc)
    assert "after 300 attempts; attempt 1: ConnectError: refused #1;" in message
    assert "attempt 3: ConnectError: refused #3; 293 more attempts; attempt 297:" in message
    assert "; attempt 299: ConnectError: refused #299)" in message and len(message) < 1000
    few = str(attempts_error(nbfetch.ConnectError("refused"), reasons[:7]))
    assert "more attempts" not in few and few.count("attempt ") == 7


def test_retry_takes_any_real_number_and_refuses_the_rest_clearly():
    # A notebook computes these (numpy scalars, Fractions); a huge int, a
    # non-bool flag or a missing random source is an InvalidRequest at once.
    numpy = pytest.importorskip("numpy")
    from fractions import Fraction

    policy = Retry(total=numpy.int64(3), backoff_factor=numpy.float32(0.5), jitter=Fraction(1, 2))
    assert policy.total == 3 and policy.backoff_factor == 0.5 and policy.jitter == 0.5
    for bad in (
        {"backoff_max": 10**400},
        {"retry_after_max": 10**400},
        {"connect_errors": "no"},
        {"respect_retry_after": None},
        {"random": None},
    ):
        with pytest.raises(nbfetch.InvalidRequest):
            Retry(**bad)
