"""Load runs (issue 19.3): percentiles per phase against known delays, errors by
kind, the loopback refusal, slo, compare interleaving, open-loop rate,
cancellation without leaks, bounded memory, and the live view in a real kernel."""

import asyncio
import functools
import json
import math
import pickle
import random
import socket
import subprocess
import sys
import time
import uuid

import pytest
from browser import (  # noqa: F401 (fixtures)
    browser_fixture,
    lab_fixture,
    open_notebook,
    run_cell,
    shots_dir,
    wait_done,
)
from conftest import client_sockets_to, wait_until
from kernel import Kernel
from loopwatch import watch

import nbfetch
from nbfetch.client.load import Histogram, LoadRun, parse_duration
from nbfetch.core.errors import FetchError, InvalidRequest
from nbfetch.demo.server import DemoServer

pytestmark = pytest.mark.anyio
ERR = Histogram.RELATIVE_ERROR


def token() -> str:
    return uuid.uuid4().hex[:12]


def sequence(demo, delays="0", status="200") -> str:
    """A /sequence URL of a fresh token: the k-th request waits delays[k % len]."""
    return f"{demo.url}/sequence/{token()}?delays={delays}&status={status}"


# -- the histogram ------------------------------------------------------------------------
def test_every_bucket_midpoint_is_within_the_stated_relative_error():
    rng = random.Random(19)
    values = [2.0 ** rng.uniform(-20, 12) for _ in range(20_000)]
    values += [2.0**e for e in range(-20, 12)]  # bucket edges
    worst = max(abs(Histogram.midpoint(Histogram.index(v)) - v) / v for v in values)
    assert worst <= ERR, worst
    assert ERR <= 0.01
    assert len(Histogram().counts) == Histogram.BUCKETS == 2048


def test_percentiles_match_the_exact_nearest_rank_within_the_error():
    rng = random.Random(7)
    values = [rng.lognormvariate(-3, 1) for _ in range(5_001)]
    hist = Histogram()
    for v in values:
        hist.add(v)
    ordered = sorted(values)
    qs = (1, 50, 90, 95, 99, 99.9, 100)
    for q, got in zip(qs, hist.percentiles(qs), strict=True):
        exact = ordered[math.ceil(q / 100 * len(ordered)) - 1]
        assert abs(got - exact) <= ERR * exact, (q, got, exact)
    assert hist.percentiles((100,)) == [max(values)] and hist.min == min(values)
    assert Histogram().percentiles((50,)) == [None]


def test_durations_parse_as_slo_limits_do():
    assert parse_duration("200ms") == pytest.approx(0.2)
    assert parse_duration("1.5s") == 1.5 and parse_duration(2) == 2.0
    assert parse_duration("300us") == pytest.approx(0.0003)
    for bad in ("fast", "-1s", float("nan")):
        with pytest.raises(InvalidRequest):
            parse_duration(bad)


# -- percentiles against known delays --------------------------------------------------------
@pytest.mark.loop_watchdog
async def test_percentiles_per_phase_against_known_delays(own_demo):
    demo = own_demo
    # Nine of every ten requests wait 50 ms at the server, one waits 200 ms:
    # the p50 is a 50 ms one, the p95 and p99 a 200 ms one.
    url = sequence(demo, delays=",".join(["0.05"] * 9 + ["0.2"]))
    result = await nbfetch.load(url, n=100, concurrency=20)
    assert result.completed == result.started == 100 and result.errors == {}
    assert result.statuses == {200: 100}
    total, wait = result.phases["total"], result.phases["wait"]
    assert total.count == wait.count == 100
    # Never faster than the server's delay, less the histogram's stated error.
    assert total.p50 >= 0.05 * (1 - ERR) and wait.p50 >= 0.05 * (1 - ERR)
    assert total.p95 >= 0.2 * (1 - ERR) and total.p99 >= 0.2 * (1 - ERR)
    assert total.p50 < 0.2 * (1 - ERR)  # a 50 ms request, however slow the machine
    assert total.min <= total.p50 <= total.p95 <= total.p99 <= total.max
    assert result.percentile("p95", "total") == total.p95 == result.percentile(95)
    # Connect and TLS count only the requests that opened a connection.
    assert 1 <= result.phases["connect"].count <= 100 and "tls" not in result.phases
    assert demo.stats["requests"] == 100
    # The run's own client is closed at the end: no keep-alive socket left open.
    await wait_until(lambda: client_sockets_to(demo.port) == 0, 5, "the pool closed")


async def test_errors_are_counted_by_kind(demo):
    # 0: the server closes the connection unanswered. POST: never retried (a
    # GET on a reused connection would be, once: it is idempotent, RFC 9110
    # section 9.2.2), so each request is one k of the sequence.
    url = sequence(demo, status="200,200,500,404,0")
    result = await nbfetch.load(url, n=50, concurrency=5, method="POST")
    assert result.completed == 50
    assert result.statuses == {200: 20, 500: 10, 404: 10}
    errors = dict(result.errors)
    assert errors.pop("5xx") == 10 and errors.pop("4xx") == 10
    # What is left: the unanswered ones, by FetchError class.
    assert sum(errors.values()) == 10, errors
    assert all(issubclass(getattr(nbfetch, kind), FetchError) for kind in errors)
    assert result.error_count == 30
    assert result.error_messages["5xx"].startswith("500")
    # Latencies are of the responses, whatever their status.
    assert result.phases["total"].count == 40


# -- only servers you own ----------------------------------------------------------------
async def test_targets_outside_loopback_are_refused_before_anything_is_sent(demo):
    asked = []

    async def resolver(host, port):
        asked.append(host)
        return [(socket.AF_INET, ("127.0.0.1", demo.port))]

    client = nbfetch.AsyncClient(resolver=resolver)
    for url in ("http://10.0.0.1/", "http://[2001:db8::1]/", f"http://api.test:{demo.port}/get"):
        with pytest.raises(InvalidRequest, match="not loopback"):
            await nbfetch.load(url, n=5, client=client)
    with pytest.raises(InvalidRequest, match="proxy"):
        await nbfetch.load(demo.url + "/get", n=5, proxy="http://10.0.0.1:3128")
    with pytest.raises(InvalidRequest, match="redirect"):
        await nbfetch.load(demo.url + "/get", n=5, follow_redirects=True)
    with pytest.raises(InvalidRequest, match="not loopback"):  # the compared one too
        await nbfetch.load(demo.url + "/get", n=5, compare="http://192.0.2.1/")
    assert asked == [] and demo.stats["requests"] == 0 and demo.stats["connections"] == 0

    # A name is loopback when hostname_mapping maps it there; allow_remote lets
    # any target through (here a name only the resolver knows).
    mapped = await nbfetch.load(
        f"http://api.test:{demo.port}/get",
        n=3,
        client_options={"hostname_mapping": {"api.test": "127.0.0.1"}},
    )
    assert mapped.statuses == {200: 3}
    remote = await nbfetch.load(
        f"http://api.test:{demo.port}/get", n=3, client=client, allow_remote=True
    )
    assert remote.statuses == {200: 3} and set(asked) == {"api.test"}
    local = await nbfetch.load(f"http://localhost:{demo.port}/get", n=2)
    assert local.statuses == {200: 2}
    await client.aclose()


async def test_every_address_a_name_resolves_to_is_checked_before_connecting(demo):
    """localhost (and *.localhost) pass by name, but a resolver (or DNS, or a
    rebinding answer) may send them anywhere: each address is checked right
    before its connect. The TEST-NET address is never reached: the check refuses
    it first, and even without the check the client's local address 127.0.0.1
    cannot send to it (the kernel says EINVAL), so no packet leaves loopback."""
    asked = []

    async def elsewhere(host, port):
        asked.append(host)
        return [(socket.AF_INET, ("192.0.2.1", port))]

    async def mixed(host, port):
        asked.append(host)
        return [(socket.AF_INET, ("127.0.0.1", demo.port)), (socket.AF_INET, ("192.0.2.1", port))]

    guard = {"local_address": "127.0.0.1"}
    given = nbfetch.AsyncClient(resolver=elsewhere, **guard)
    runs = [
        ("http://localhost:8080/get", {"client_options": {"resolver": elsewhere, **guard}}),
        ("http://api.localhost:8080/get", {"client_options": {"resolver": elsewhere, **guard}}),
        ("http://LOCALHOST.:8080/get", {"client": given}),
        (f"http://localhost:{demo.port}/get", {"client_options": {"resolver": mixed, **guard}}),
        # The compared configuration too, through its own client.
        (demo.url + "/get", {"compare": {"url": "http://localhost:8080/", "client": given}}),
    ]
    for url, kwargs in runs:
        with pytest.raises(InvalidRequest, match=r"resolves to 192\.0\.2\.1, not loopback"):
            await nbfetch.load(url, n=50, concurrency=2, **kwargs)
    assert len(asked) >= len(runs)
    # Refused once, the run stops: no request counted 50 times, none sent.
    assert demo.stats["requests"] <= 2 and demo.stats["connections"] <= 2
    await given.aclose()


async def test_a_given_clients_connection_outside_loopback_is_not_reused(demo):
    """A given client may already hold a connection for the target's origin
    that its resolver opened elsewhere: the run would reuse it without a
    connect. Here a real connection to the demo server stands in for one (its
    peer address relabelled: no traffic may leave loopback to make a real one)."""
    client = nbfetch.AsyncClient()
    await client.fetch(demo.url + "/get")
    (conn,) = (c for conns in client._pool.conns.values() for c in conns)
    conn.remote = ("192.0.2.1", demo.port)
    demo.reset_stats()
    with pytest.raises(InvalidRequest, match=r"already has a connection to it at 192\.0\.2\.1"):
        await nbfetch.load(demo.url + "/get", n=5, client=client)
    assert demo.stats["requests"] == 0
    await client.aclose()


async def test_a_connection_pooled_after_the_checks_is_refused_at_reuse(demo):
    # A connection that joins the given client's pool after load() checked it
    # (still connecting then, or opened by other code during the run) is
    # checked when a worker would reuse it. Relabelled as above.
    client = nbfetch.AsyncClient(max_clients=1)
    run = LoadRun(demo.url + "/get", n=5, concurrency=1, client=client)
    await client.fetch(demo.url + "/get")
    (conn,) = (c for conns in client._pool.conns.values() for c in conns)
    conn.remote = ("192.0.2.1", demo.port)
    demo.reset_stats()
    with pytest.raises(InvalidRequest, match=r"is to 192\.0\.2\.1, not loopback"):
        await run.run()
    assert demo.stats["requests"] == 0 and conn not in client._pool.conns.get(conn.key, ())
    await client.aclose()


async def test_a_name_through_a_proxy_is_refused(demo):
    # The proxy resolves the name itself: hostname_mapping does not reach it.
    options = {"hostname_mapping": {"api.example.com": "127.0.0.1"}, "proxy": demo.url}
    with pytest.raises(InvalidRequest, match="through a proxy: the proxy resolves the name"):
        await nbfetch.load("http://api.example.com/v1/items", n=3, client_options=options)
    assert demo.stats["requests"] == 0


@pytest.mark.parametrize(
    ("key", "why"),
    [("p95.redirect", "follow no redirect"), ("max.tls", "no target is https")],
)
async def test_an_slo_on_a_phase_no_request_has_is_refused(demo, key, why):
    with pytest.raises(InvalidRequest, match=why):
        await nbfetch.load(demo.url + "/get", n=5, slo={key: "1s"})
    assert demo.stats["requests"] == 0


def test_the_address_check_holds_under_trio():
    trio = pytest.importorskip("trio")

    async def elsewhere(host, port):
        return [(socket.AF_INET, ("192.0.2.1", port))]

    options = {"resolver": elsewhere, "local_address": "127.0.0.1"}  # EINVAL: see above
    with pytest.raises(InvalidRequest, match=r"resolves to 192\.0\.2\.1"):
        trio.run(
            functools.partial(nbfetch.load, "http://localhost:8080/", n=3, client_options=options)
        )


async def test_allow_remote_is_exactly_true_or_false(demo):
    # local_address 127.0.0.1: a TEST-NET address is unreachable from it (EINVAL),
    # so even a client that took "false" for a yes sends nothing off loopback.
    guard = {"local_address": "127.0.0.1"}
    for flag in ("false", "no", 0, 1, 0.5, None):
        with pytest.raises(InvalidRequest, match="allow_remote is True or False"):
            await nbfetch.load(
                "http://192.0.2.1:8080/get", n=1, allow_remote=flag, client_options=guard
            )
    assert (await nbfetch.load(demo.url + "/get", n=2, allow_remote=False)).statuses == {200: 2}


# -- service levels -------------------------------------------------------------------------
async def test_slo_pass_and_fail(demo):
    ok = await nbfetch.load(sequence(demo), n=20, slo={"p95.total": "30s", "errors": 0})
    assert ok.passed is True and [c.passed for c in ok.slo] == [True, True]

    slow = await nbfetch.load(
        sequence(demo, delays="0.05", status="200,503"),
        n=20,
        concurrency=4,
        slo={"p50.total": "10ms", "errors": 0, "error_rate": "60%"},
    )
    assert slow.passed is False
    p50, errors, rate = slow.slo
    assert not p50.passed and p50.actual >= 0.05 * (1 - ERR)
    assert not errors.passed and errors.actual == 10
    assert rate.passed and rate.actual == 0.5
    assert "SLO FAIL" in slow.text()

    plain = await nbfetch.load(sequence(demo), n=2)
    assert plain.passed is None
    with pytest.raises(InvalidRequest, match="slo key"):
        await nbfetch.load(sequence(demo), n=2, slo={"p95.latency": "1s"})
    with pytest.raises(InvalidRequest, match="errors"):
        await nbfetch.load(sequence(demo), n=2, slo={"errors": "none"})


async def test_an_slo_that_could_never_be_judged_is_refused_before_anything_is_sent(demo):
    bad = [
        {"p0.total": "1s"},
        {"p101.total": "1s"},
        {"error_rate": "abc"},
        {"error_rate": None},
        {"error_rate": "nan"},
        {"error_rate": "-1%"},
        {"rps": "fast"},
        {"rps": float("nan")},
        {"rps": float("inf")},
        {"rps": True},
        {"p95.total": "-1ms"},
        {"p95.lag": "1ms"},  # no lag without rate=: it could never pass
        {"max.lag": "1s"},
    ]
    for slo in bad:
        with pytest.raises(InvalidRequest, match="slo"):
            await nbfetch.load(sequence(demo), n=5, slo=slo)
    assert demo.stats["requests"] == 0
    good = await nbfetch.load(
        sequence(demo),
        n=5,
        rate=1000,
        slo={"p100.total": "30s", "p95.lag": "30s", "error_rate": "1.5%", "rps": "0.5"},
    )
    assert [c.limit for c in good.slo] == [30, 30, 0.015, 0.5] and good.passed


async def test_result_as_plain_data_and_a_dataframe(demo):
    result = await nbfetch.load(sequence(demo, delays="0.01"), n=10, slo={"errors": 0})
    data = json.loads(json.dumps(result.as_dict()))
    assert data["completed"] == 10 and data["passed"] is True
    assert data["phases"]["total"]["count"] == 10 and data["relative_error"] == ERR
    frame = result.dataframe()
    assert frame.loc["total", "p50"] == result.phases["total"].p50
    assert {"count", "p50", "p95", "p99", "max"} <= set(frame.columns)


# -- compare ------------------------------------------------------------------------------
async def test_compare_alternates_the_two_request_by_request(demo):
    a, b = token(), token()
    demo.sequence_log.clear()
    both = await nbfetch.load(
        f"{demo.url}/sequence/{a}?delays=0.01",
        n=10,
        concurrency=1,
        compare={"url": f"{demo.url}/sequence/{b}?delays=0.05", "label": "slow"},
    )
    # One at a time each: the server saw A, B, A, B... never all of A first.
    assert list(demo.sequence_log) == [a, b] * 10
    assert (both.a.label, both.b.label) == ("A", "slow")
    assert both.a.completed == both.b.completed == 10
    ratio = both.ratio("p50", "total")
    assert ratio == both.b.percentile("p50") / both.a.percentile("p50") and ratio > 1
    assert both.b.percentile("p50") >= 0.05 * (1 - ERR)
    frame = both.dataframe()
    assert frame.loc[("total", "p50"), "ratio"] == pytest.approx(ratio)

    # With more workers the order is no longer exact, but every prefix stays
    # balanced: the two share the whole run.
    demo.sequence_log.clear()
    await nbfetch.load(
        f"{demo.url}/sequence/{a}", n=40, concurrency=3, compare=f"{demo.url}/sequence/{b}"
    )
    log = list(demo.sequence_log)
    assert log.count(a) == log.count(b) == 40
    balance = [log[:i].count(a) - log[:i].count(b) for i in range(len(log))]
    assert max(map(abs, balance)) <= 2 * 3, balance


async def test_compare_gives_each_configuration_its_own_concurrency():
    """The slower side used to take the shared workers (8 in flight of a
    concurrency of 4); now each has ``concurrency``, and the starts still
    alternate, so the fast side keeps to the slow one's pace."""
    with DemoServer().start() as fast, DemoServer().start() as slow:
        both = await nbfetch.load(
            fast.url + "/delay/0.2", n=9, concurrency=3, compare=slow.url + "/delay/0.5"
        )
        assert both.a.completed == both.b.completed == 9
        assert fast.stats["max_in_flight"] == slow.stats["max_in_flight"] == 3


# -- open loop ------------------------------------------------------------------------------
async def test_rate_is_an_open_loop_and_says_when_the_client_falls_behind(demo):
    # One worker, 50 ms a request: at most ~20/s, asked for 200/s.
    behind = await nbfetch.load(sequence(demo, delays="0.05"), n=10, concurrency=1, rate=200)
    assert behind.behind and behind.late >= 5 and behind.max_lag > 0.1
    lag, total, wait = (behind.phases[p] for p in ("lag", "total", "wait"))
    assert lag.count == total.count == 10
    # Latency counts from the intended start: the lag is in the total.
    assert total.max >= lag.max + 0.05 * (1 - ERR)
    assert total.p99 > wait.p99
    assert "intended start" in behind.text()

    # Never early: 11 requests at 50/s take at least 10 intervals.
    paced = await nbfetch.load(sequence(demo), n=11, concurrency=4, rate=50)
    assert paced.elapsed >= 10 / 50 - 0.005 and paced.completed == 11


async def test_duration_ends_the_run(demo):
    started = time.monotonic()
    result = await nbfetch.load(sequence(demo, delays="0.01"), n=None, duration="300ms")
    assert 0.3 - 0.005 <= time.monotonic() - started < 30
    assert result.completed == result.started >= 1 and result.planned is None
    with pytest.raises(InvalidRequest, match="must end"):
        await nbfetch.load(sequence(demo), n=None)
    for bad in ({"n": 0}, {"concurrency": 0}, {"concurrency": 1001}, {"rate": -1}):
        with pytest.raises(InvalidRequest):
            await nbfetch.load(sequence(demo), **bad)
    assert demo.stats["requests"] == result.completed


async def test_an_invalid_request_stops_the_run_once(demo):
    with pytest.raises(InvalidRequest):
        await nbfetch.load(demo.url + "/get", n=50, headers={"X-Bad": "a\r\nb"})
    assert demo.stats["requests"] == 0


async def test_a_run_whose_fetches_fail_at_once_still_lets_the_loop_run(demo, tmp_path):
    """Under replay, a miss fails without a suspension: 500 in a row used to run
    as one step of the loop. Each failure yields now: a task beside it runs."""
    path = tmp_path / "one.har"
    async with nbfetch.AsyncClient() as client:
        with nbfetch.record(path):
            await client.fetch(demo.url + "/get")
    ticks = 0

    async def beside():
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    with nbfetch.replay(path, timing="fast"):
        ticker = asyncio.ensure_future(beside())
        try:
            result = await nbfetch.load(demo.url + "/missing", n=500, concurrency=1)
        finally:
            ticker.cancel()
    assert result.errors == {"ReplayMissError": 500}
    assert ticks >= 250, ticks


async def test_a_secret_the_server_echoes_is_not_kept(raw_server):
    secret = "sk_live_" + token()

    def echo(conn, server):
        head = server.read_request(conn)
        sent = head.split(b"Bearer ")[1].split(b"\r\n")[0]
        conn.sendall(b"HTTP/1.1 401 bad token " + sent + b"\r\nContent-Length: 0\r\n\r\n")

    from nbfetch.notebook.load_view import LoadView

    srv = raw_server(echo)
    run = LoadRun(
        srv.url + "/api", n=3, concurrency=1, headers={"Authorization": "Bearer " + secret}
    )
    view = LoadView(run)
    run.on_change = view.changed
    result = await run.run()
    view.finish()
    assert result.errors == {"4xx": 3} and result.error_messages["4xx"] == "401 bad token ***"
    for shown in (
        str(result.error_messages),
        result.text(),
        json.dumps(result.as_dict()),
        view.html(),
    ):
        assert secret not in shown
    view.close()


# -- cancel, memory, the loop ------------------------------------------------------------
async def test_cancel_stops_every_fetch_and_leaks_nothing(own_demo):
    demo = own_demo
    before = asyncio.all_tasks()
    run = LoadRun(sequence(demo, delays="2"), n=None, duration=60, concurrency=6)
    task = asyncio.ensure_future(run.run())
    await wait_until(lambda: demo.stats["in_flight"] == 6, 10, "six requests at the server")
    assert client_sockets_to(demo.port) == 6
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert run.cancelled and run.finished
    await wait_until(lambda: client_sockets_to(demo.port) == 0, 5, "every socket closed")
    assert asyncio.all_tasks() == before
    partial = run.snapshot()
    assert partial.cancelled and partial.started == 6 and partial.completed == 0
    await wait_until(lambda: demo.stats["in_flight"] == 0, 10, "the server to see them go")


async def test_memory_stays_bounded_whatever_n(demo):
    sizes = []
    for n in (50, 1500):
        run = LoadRun(sequence(demo), n=n, concurrency=8)
        await run.run()
        # What the run keeps: its histograms and counters, never a list per request.
        sizes.append(len(pickle.dumps([t.stats for t in run.targets])))
    assert sizes[1] <= sizes[0] * 1.2, sizes


async def test_the_live_view_never_blocks_the_loop(demo):
    """2,000 requests with the view rendering as they end: the loop watchdog sees
    no gap of more than 100 ms of CPU (renders are throttled, updates O(1))."""
    from nbfetch.notebook.load_view import LoadView

    run = LoadRun(sequence(demo), n=2000, concurrency=32, slo={"p99.total": "30s"})
    view = LoadView(run, throttle=0.05)
    run.on_change = view.changed
    async with watch():
        result = await run.run()
        view.finish()
    assert result.completed == 2000 and result.passed
    html = view.html()
    assert "SLO PASS" in html and "2,000" in html and "p95" in html
    view.close()


def test_a_script_gets_the_result_and_loads_no_widgets(demo):
    code = (
        "import sys, nbfetch\n"
        f"r = nbfetch.load_sync({sequence(demo)!r}, n=5, slo={{'errors': 0}})\n"
        "print(r.completed, r.passed, 'ipywidgets' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.split() == ["5", "True", "False"]


def test_it_runs_under_trio(demo):
    trio = pytest.importorskip("trio")
    result = trio.run(
        functools.partial(nbfetch.load, sequence(demo, delays="0.01"), n=6, concurrency=2)
    )
    assert result.statuses == {200: 6} and result.phases["total"].p50 >= 0.01 * (1 - ERR)


# -- the live view in a real kernel -----------------------------------------------------------
@pytest.fixture(scope="module")
def kernel(server, tmp_path_factory):
    k = Kernel(cwd=str(tmp_path_factory.mktemp("kernel")))
    k.run(f"import asyncio, nbfetch\nbase = {server.url!r}")
    yield k
    k.shutdown()


@pytest.mark.timeout(120)
def test_the_view_in_a_kernel_updates_live_and_ends_static(kernel, server):
    msg_id = kernel.submit(
        "r = await nbfetch.load(base + '/sequence/kview?delays=0.02', n=150, concurrency=4,"
        " slo={'p95.total': '30s', 'errors': 0})"
    )
    assert kernel.wait(msg_id, timeout=90)["status"] == "ok"
    assert kernel.value("r.passed, r.completed") == "(True, 150)"
    (html,) = [
        w
        for w in kernel.widget_models("HTMLModel")
        if w["msg"]["parent_header"]["msg_id"] == msg_id
    ]
    updates = [
        m["content"]["data"]["state"].get("value", "") for m in kernel.updates(html["comm_id"])
    ]
    # Live: several renders while it ran (150 x >= 20 ms / 4 >= 0.75 s at 4 a
    # second), far fewer than one per request.
    assert 2 <= len(updates) < 150, len(updates)
    assert any("running" in u for u in updates)
    # The end: the output became the static result, the models closed.
    (final,) = [
        m
        for m in kernel.messages(msg_id, "update_display_data")
        if "text/html" in m["content"]["data"]
    ]
    data = final["content"]["data"]
    assert "SLO PASS" in data["text/html"] and "p95" in data["text/html"]
    assert "150/150 requests" in data["text/plain"]
    # Every widget model of the view closed (a reload never says "model not found").
    opened = {m["content"]["comm_id"] for m in kernel.messages(msg_id, "comm_open")}
    closed = {m["content"]["comm_id"] for m in kernel.messages(msg_id, "comm_close")}
    assert html["comm_id"] in opened and opened == closed


@pytest.mark.timeout(120)
def test_cancel_button_in_a_kernel_returns_the_partial_result(kernel, server):
    tasks = kernel.value("len(asyncio.all_tasks())")
    msg_id = kernel.submit(
        "r = await nbfetch.load(base + '/sequence/kcancel?delays=0.2', n=None,"
        " duration=60, concurrency=4)"
    )
    button = kernel.wait_for(
        lambda m: (
            m["msg_type"] == "comm_open"
            and _is_button(m)
            and m["parent_header"].get("msg_id") == msg_id
        )
    )
    kernel.wait_for(
        lambda m: (
            m["msg_type"] == "comm_msg"
            and "requests" in str(m["content"]["data"].get("state", {}).get("value", ""))
            and m["parent_header"].get("msg_id") == msg_id
        ),
        timeout=30,
    )
    kernel.click(button["content"]["comm_id"])
    reply = kernel.wait(msg_id, timeout=30)
    assert reply["status"] == "ok"
    assert kernel.value("r.cancelled, r.passed") == "(True, None)"
    assert kernel.value("r.started >= r.completed") == "True"
    # Nothing left: no socket to the server, no task beyond those of before.
    deadline = time.monotonic() + 10
    while client_sockets_to(server.port) and time.monotonic() < deadline:
        kernel.pump_for(0.1)
    assert client_sockets_to(server.port) == 0
    assert kernel.value("len(asyncio.all_tasks())") == tasks
    (final,) = [
        m
        for m in kernel.messages(msg_id, "update_display_data")
        if "text/html" in m["content"]["data"]
    ]
    assert "cancelled" in final["content"]["data"]["text/html"]


def _is_button(m) -> bool:
    return m["content"]["data"].get("state", {}).get("_model_name") == "ButtonModel"


# -- in the browser: JupyterLab + Chromium -----------------------------------------------
BROWSER_CELLS = [
    "import nbfetch\nfrom nbfetch import demo\nserver = demo.serve()\nbase = server.url",
    "r = await nbfetch.load(base + '/sequence/fast?delays=0.01,0.01,0.01,0.04', n=400,"
    " concurrency=8, compare={'url': base + '/sequence/slow?delays=0.03,0.03,0.03,0.12',"
    " 'label': 'slow'}, slo={'p95.total': '100ms', 'errors': 0})",
]


@pytest.mark.timeout(300)
def test_the_view_in_jupyterlab_renders_and_settles(lab, browser, tmp_path):
    """The load run in a real JupyterLab page: the live widget, then the static
    result (saved in the notebook), in the Light and Dark themes."""
    out = shots_dir(tmp_path)
    page = open_notebook(browser, lab, "load.ipynb", BROWSER_CELLS)
    run_cell(page, 0)
    view = run_cell(page, 1, wait=False)
    view.locator(".nbfetch-load", has_text="running").wait_for(timeout=30_000)
    live = view.locator(".jp-OutputArea").inner_text()
    assert "requests" in live and "Cancel" in live
    view.locator(".nbfetch-load", has_text="SLO").wait_for(timeout=120_000)
    wait_done(page, 1, timeout=120_000)
    text = view.locator(".jp-OutputArea").inner_text()
    assert "400 / 400 requests" in text and "slow / A" in text and "p95" in text
    assert view.locator(".widget-button").count() == 0  # static now: no Cancel
    view.screenshot(path=str(out / "load-compare.png"))
    page.close()

    themes = lab.settings / "@jupyterlab" / "apputils-extension"
    themes.mkdir(parents=True, exist_ok=True)
    (themes / "themes.jupyterlab-settings").write_text('{"theme": "JupyterLab Dark"}')
    try:
        page = open_notebook(browser, lab, "load.ipynb", BROWSER_CELLS)
        run_cell(page, 0)
        dark = run_cell(page, 1, timeout=120_000)
        dark.locator(".nbfetch-load", has_text="SLO").wait_for(timeout=30_000)
        dark.screenshot(path=str(out / "load-compare-dark.png"))
        page.close()
    finally:
        (themes / "themes.jupyterlab-settings").write_text('{"theme": "JupyterLab Light"}')
