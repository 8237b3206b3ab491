"""fetch_many and its waterfall, FetchPanel, HAR and DataFrame exports (no kernel needed:
ipywidgets objects work in plain Python; the kernel tests check what a front end receives)."""

import asyncio
import json

import pytest
from conftest import wait_until

import nbfetch
from nbfetch.httpfile.parse import parse_http
from nbfetch.notebook.many_view import ManyView
from nbfetch.text.curl import parse_curl

pytestmark = [pytest.mark.anyio, pytest.mark.loop_watchdog]


async def test_fetch_many_keeps_order_contains_failures_and_respects_max_clients(demo):
    urls = [demo.url + "/delay/0.05"] * 8 + [
        demo.url + "/status/503",
        "http://127.0.0.1:1/refused",
        demo.url + "/get",
    ]
    results = await nbfetch.fetch_many(urls, max_clients=3, show=False)
    assert [type(r).__name__ for r in results] == ["Response"] * 9 + ["ConnectError", "Response"]
    assert results[8].status_code == 503 and results[10].json()["url"] == demo.url + "/get"
    assert demo.stats["max_in_flight"] == 3
    assert sum(1 for r in results[:8] if r.timing.queue > 0.03) >= 4


async def test_many_view_rows_and_counts(demo):
    urls = [demo.url + "/delay/0.05"] * 4 + ["http://127.0.0.1:1/<script>"]
    view = ManyView(urls, max_clients=2)
    await nbfetch.fetch_many(urls, max_clients=2, trace=view.trace, show=False)
    view.finish()
    assert view.counts() == {"done": 4, "failed": 1, "in_flight": 0, "queued": 0}
    html = view.chart.value
    assert html.count('<details class="nbfetch-many-row"') == 5 and "ConnectError" in html
    assert "<script>" not in html and "&lt;script&gt;" in html
    # the later fetches were queued behind max_clients=2: their rows have a queued bar
    assert html.count('title="queued:') == 5
    assert "5 fetches" in view.summary.value and "1 failed" in view.summary.value


@pytest.fixture
def panel():
    # Built outside the test body: a panel is some thirty widgets, tens of ms
    # of synchronous work that a notebook cell does before any fetch starts.
    return nbfetch.FetchPanel()


async def test_fetch_panel_builds_sends_and_cancels(demo, panel):
    panel.url.value, panel.method.value = demo.url + "/anything", "PUT"
    panel.headers.value = "X-One: 1\nX-Two: two words"
    panel.body_kind.value = "JSON"
    panel.body.value = '{"k": [1, 2]}'
    # "Copy as" curl reads back as the same request (nbfetch.text.curl).
    copied = parse_curl(panel.as_curl.value)
    assert copied.method == "PUT" and copied.url == demo.url + "/anything"
    headers = copied.fetch_kwargs["headers"]
    assert ("X-One", "1") in headers and ("X-Two", "two words") in headers
    assert json.loads(copied.fetch_kwargs["body"]) == {"k": [1, 2]}
    assert "json={'k': [1, 2]}" in panel.as_python.value
    block = parse_http(panel.as_http.value).requests[0]  # and as an .http block
    assert (block.method, block.url) == ("PUT", demo.url + "/anything")
    assert ("X-Two", "two words") in block.headers and json.loads(block.body) == {"k": [1, 2]}
    response = await panel.send()
    echo = response.json()
    assert (
        echo["method"] == "PUT"
        and echo["json"] == {"k": [1, 2]}
        and echo["headers"]["X-Two"] == "two words"
    )
    assert panel.history.options[-1].endswith("→ 200")

    panel.url.value = demo.url + "/drip?numbytes=10&duration=5&chunks=10"
    panel.method.value = "GET"
    panel.body_kind.value = "none"
    task = panel.send()
    await wait_until(lambda: panel._views[-1]._chunk_count >= 1, what="the first chunk")
    panel.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert panel._views[-1].error is not None

    panel.history.value = panel.history.options[0]  # selecting shows that fetch again
    assert panel.current.children[0] is panel._views[0]


async def test_fetch_panel_reports_bad_input_without_sending(demo, panel):
    panel.url.value, panel.method.value = demo.url + "/post", "POST"
    panel.body_kind.value = "JSON"
    panel.body.value = "{not json"
    assert panel.send() is None
    assert "not valid JSON" in panel.error.value
    panel.body_kind.value = "none"
    panel.headers.value = "no colon"
    assert panel.send() is None and "Name: value" in panel.error.value
    assert demo.stats["requests"] == 0


async def test_har_export(demo):
    r = await nbfetch.fetch(demo.url + "/redirect/2", headers={"X-Q": "1"})
    har = r.to_har()
    json.dumps(har)  # serialisable
    log = har["log"]
    assert log["version"] == "1.2" and log["creator"]["name"] == "nbfetch"
    entries = log["entries"]
    assert [e["response"]["status"] for e in entries] == [302, 302, 200]
    assert entries[0]["response"]["redirectURL"] == "/redirect/1"
    last = entries[-1]
    assert (
        last["request"]["url"] == demo.url + "/get"
        and {"name": "X-Q", "value": "1"} in last["request"]["headers"]
    )
    assert json.loads(last["response"]["content"]["text"])["url"] == demo.url + "/get"
    for e in entries:
        for key in ("blocked", "dns", "connect", "ssl", "send", "wait", "receive"):
            assert e["timings"][key] == -1 or e["timings"][key] >= 0
        assert e["startedDateTime"].endswith("Z")
    first = entries[0]["timings"]
    assert first["connect"] > 0 and first["send"] >= 0 and first["receive"] >= 0
    assert entries[0]["startedDateTime"] <= entries[-1]["startedDateTime"]


@pytest.fixture
def pandas():
    # Imported outside the test body: a first import of pandas blocks the loop.
    return pytest.importorskip("pandas")


async def test_events_frame(demo, pandas):
    r = await nbfetch.fetch(demo.url + "/chunked?sizes=3,4")
    df = r.events_frame()
    assert list(df["name"])[:2] == ["queued", "dequeued"]
    assert list(df.loc[df["name"] == "response.chunk", "size"]) == [3, 4]
    assert df["offset"].is_monotonic_increasing


async def test_recorded_events_are_capped_but_subscribers_see_all(demo):
    seen = {"response.chunk": 0, "response.data": 0}

    def count(event):
        if event.name in seen:
            seen[event.name] += 1

    async with nbfetch.AsyncClient(limits=nbfetch.Limits(max_recorded_events=100)) as c:
        r = await c.fetch(demo.url + "/chunked?count=500&size=4", trace=count)
    assert seen["response.chunk"] == 500
    # Small chunks that arrive together are decoded (response.data) together.
    assert 1 <= seen["response.data"] <= 500
    body_events = [e for e in r.events if e.name in ("response.chunk", "response.data")]
    assert len(body_events) == 100
    done = r.events[-1]
    assert done.name == "response.done"
    assert done["events_dropped"] == sum(seen.values()) - 100
    assert len(r.body) == 2000
