"""The fetch_many waterfall and FetchPanel (issue 15, items 6 and 9).

Sans-kernel where plain Python shows it (ipywidgets objects work outside a
kernel), with the real demo server; a real kernel (tests/kernel.py) for what a
front end receives: the comm messages of Enter in the URL box and of a history
selection, the widget-model counts, and the final static bundle of fetch_many.
"""

from __future__ import annotations

import re

import pytest
from kernel import Kernel

import nbfetch
from nbfetch.notebook import many_view
from nbfetch.notebook.many_view import ManyView, labels, nice_ticks
from nbfetch.notebook.snapshot import human_bytes

# Async tests fail if the event loop is blocked for more than 100 ms (conftest).
pytestmark = pytest.mark.loop_watchdog

TOKEN = "tok-9f8e7d6c"
API_KEY = "k3y-abc123"


def test_labels_keep_the_part_that_differs():
    urls = [f"http://127.0.0.1:8000/drip?numbytes=20&duration=0.5&i={i}" for i in range(30)]
    got = labels(urls)
    assert len(set(got)) == 30 and got[0] == "i=0" and got[29] == "i=29"
    assert labels(["http://h/a/one/x", "http://h/a/two/x"]) == ["one", "two"]
    # all the same: the path, the way DevTools names a request
    assert labels(["http://h/delay/0.4"] * 3) == ["/delay/0.4"] * 3
    long = labels([f"http://h/{'x' * 80}{i}" for i in range(2)])
    assert all(len(label) == many_view.LABEL_CHARS and "…" in label for label in long)
    assert long[0] != long[1]  # the middle goes, the differing end stays


def test_units_and_axis_ticks():
    assert [human_bytes(n) for n in (20, 1536, 5 * 2**20)] == ["20 B", "1.5 KiB", "5.0 MiB"]
    assert nice_ticks(0.87) == pytest.approx([0, 0.2, 0.4, 0.6, 0.8])
    assert nice_ticks(12) == pytest.approx([0, 5, 10])


@pytest.mark.anyio
async def test_waterfall_columns_axis_and_rows_that_open(demo):
    urls = [demo.url + f"/bytes/{n}?api_key={API_KEY}" for n in (10, 2048)] + [
        "http://127.0.0.1:1/refused"
    ]
    view = ManyView(urls, max_clients=2)
    results = await nbfetch.fetch_many(
        urls,
        max_clients=2,
        trace=view.trace,
        show=False,
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    view.attach_results(results)
    view.finish()
    html = view.html()
    for column in ("Name", "Status", "Time", "Size"):
        assert f">{column}</td>" in html
    assert re.search(r">\d+ ms</span>", html)  # a tick of the time axis
    assert html.count('<details class="nbfetch-many-row"') == 3
    assert "10 B" in html and "2.0 KiB" in html and "ConnectError" in html
    # a row's details: status line, phases, request headers as sent (masked), error
    assert "200 OK" in html and "download" in html and "Request headers" in html
    assert "Authorization</td>" in html and "Bearer ***" in html
    assert "in phase <b>connect</b>" in html
    assert TOKEN not in html and API_KEY not in html and TOKEN not in view.text()
    # the width follows the cell: no fixed pixel width for the chart
    assert not re.search(r"width:\d+px", html)
    assert "#f6f6f6" not in html and "#666" not in html
    own = view.view(1)
    assert own.state.status[0] == 200 and own.response is results[1]
    assert view.result(2) is results[2]
    assert "3 fetches" in view.summary.value and "1 failed" in view.summary.value


@pytest.mark.anyio
async def test_show_secrets_reveals_them(demo):
    url = demo.url + f"/get?api_key={API_KEY}"
    view = ManyView([url], max_clients=1, show_secrets=True)
    results = await nbfetch.fetch_many([url], trace=view.trace, show=False)
    view.attach_results(results)
    view.finish()
    assert API_KEY in view.html()


@pytest.mark.anyio
async def test_rows_are_bounded_with_a_count_of_the_rest(demo, monkeypatch):
    monkeypatch.setattr(many_view, "MAX_ROWS", 3)
    urls = [demo.url + f"/get?i={i}" for i in range(5)]
    view = ManyView(urls, max_clients=5)
    await nbfetch.fetch_many(urls, trace=view.trace, show=False)
    view.finish()
    assert view.chart.value.count("<details") == 3 and "… 2 more fetches" in view.chart.value
    assert "5 fetches" in view.summary.value and "5 done" in view.summary.value


@pytest.fixture
def panel():
    # Built outside the test body: a panel is tens of ms of widget building.
    return nbfetch.FetchPanel()


@pytest.mark.anyio
async def test_panel_masks_copies_and_history_and_refills_the_form(demo, panel):
    panel.url.value = demo.url + f"/get?api_key={API_KEY}&x=1"
    panel.headers.value = f"Authorization: Bearer {TOKEN}\nX-One: 1"
    for text in (panel.as_curl.value, panel.as_python.value, panel.copy_buttons.value):
        assert TOKEN not in text and API_KEY not in text
    assert "Bearer ***" in panel.as_curl.value and "api_key=***" in panel.as_curl.value
    assert 'data-text="curl ' in panel.copy_buttons.value
    first = await panel.send()
    assert first.json()["headers"]["Authorization"] == f"Bearer {TOKEN}"  # sent for real
    assert "X-One</td>" in panel.sent.value and "Bearer ***" in panel.sent.value
    assert TOKEN not in panel.sent.value and API_KEY not in repr(panel.history.options)

    panel.url.value, panel.method.value = demo.url + "/anything", "PUT"
    panel.headers.value, panel.body_kind.value, panel.body.value = "", "JSON", '{"a": 1}'
    panel.follow.value = False
    await panel.send()
    panel.history.value = panel.history.options[0]
    assert panel.current.children[0] is panel._views[0]
    assert (panel.method.value, panel.url.value) == (
        "GET",
        demo.url + f"/get?api_key={API_KEY}&x=1",
    )
    assert panel.headers.value.startswith("Authorization") and panel.body_kind.value == "none"
    assert panel.follow.value is True and "-H 'X-One: 1'" in panel.as_curl.value
    assert "X-One</td>" in panel.sent.value


@pytest.mark.anyio
async def test_panel_show_secrets_copies_the_real_values(demo):
    panel = nbfetch.FetchPanel(url=demo.url + f"/get?api_key={API_KEY}", show_secrets=True)
    assert API_KEY in panel.as_curl.value and API_KEY in panel.copy_buttons.value


# -- in a real kernel -----------------------------------------------------------------------
@pytest.fixture(scope="module")
def kernel(server, tmp_path_factory):
    k = Kernel(cwd=str(tmp_path_factory.mktemp("kernel")))
    k.run(f"import nbfetch\nbase = {server.url!r}")
    yield k
    k.shutdown()


def _opens(kernel, msg_id):
    return [m for m in kernel.messages(msg_id, "comm_open")]


def _custom(kernel, comm_id, data):
    msg = kernel.kc.session.msg("comm_msg", {"comm_id": comm_id, "data": data})
    kernel.kc.shell_channel.send(msg)


@pytest.mark.timeout(120)
def test_fetch_many_is_five_models_and_ends_as_a_static_bundle(kernel):
    msg_id = kernel.submit(
        "rs = await nbfetch.fetch_many("
        f"[base + '/get?i=%d&api_key={API_KEY}' % i for i in range(30)], max_clients=4)"
    )
    kernel.wait(msg_id, timeout=60)
    opens = _opens(kernel, msg_id)
    assert len(opens) == 5  # VBox, 2 HTML, one shared Layout and Style
    (shown,) = kernel.messages(msg_id, "display_data")
    assert "application/vnd.jupyter.widget-view+json" in shown["content"]["data"]
    display_id = shown["content"]["transient"]["display_id"]
    (final,) = kernel.messages(msg_id, "update_display_data")
    assert final["content"]["transient"]["display_id"] == display_id
    data = final["content"]["data"]
    assert set(data) == {"text/plain", "text/html"}  # no widget: a saved notebook shows it
    assert data["text/html"].count('<details class="nbfetch-many-row"') == 30
    assert "Request headers" in data["text/html"]
    assert data["text/plain"].startswith("30 fetches, max_clients=4: 30 done")
    assert API_KEY not in str(data) and "api_key=***" in data["text/html"]
    closed = {m["content"]["comm_id"] for m in kernel.messages(msg_id, "comm_close")}
    assert closed == {m["content"]["comm_id"] for m in opens}
    assert kernel.value("[r.status_code for r in rs].count(200)") == "30"


@pytest.mark.timeout(120)
def test_panel_enter_sends_and_history_selection_refills(kernel, server):
    server.reset_stats()
    msg_id = kernel.submit("panel = nbfetch.FetchPanel(url=base + '/get?from=enter')\npanel")
    kernel.wait(msg_id)
    opens = _opens(kernel, msg_id)
    # Shared Layouts and Styles (65 before); 45 with the .http copy and the
    # Paste cURL tab (issue 18).
    assert len(opens) == 45
    (url,) = [
        m
        for m in opens
        if m["content"]["data"]["state"].get("_model_name") == "TextModel"
        and m["content"]["data"]["state"].get("value", "").endswith("from=enter")
    ]
    comm = url["content"]["comm_id"]
    # what ipywidgets 8.1's TextView sends on Enter
    _custom(kernel, comm, {"method": "custom", "content": {"event": "submit"}})
    kernel.wait_for(
        lambda m: (
            "→ 200" in str(m["content"].get("data", {}).get("state", {}).get("_options_labels", ""))
        ),
        timeout=20,
    )
    assert server.stats["requests"] == 1
    # a second fetch from another URL, then the front end selects the first entry
    kernel.run("panel.url.value = base + '/status/404'\nt = panel.send()\nawait t")
    (select,) = [
        m for m in opens if m["content"]["data"]["state"].get("_model_name") == "SelectModel"
    ]
    _custom(kernel, select["content"]["comm_id"], {"method": "update", "state": {"index": 0}})
    kernel.wait_for(
        lambda m: (
            m["msg_type"] == "comm_msg"
            and m["content"]["comm_id"] == comm
            and str(m["content"]["data"].get("state", {}).get("value", "")).endswith("from=enter")
        ),
        timeout=10,
    )
    assert kernel.value("panel.current.children[0] is panel._views[0]") == "True"
    assert kernel.value("'from=enter' in panel.as_curl.value") == "True"


@pytest.mark.timeout(120)
def test_an_interrupted_fetch_many_still_ends_as_a_static_bundle(kernel):
    msg_id = kernel.submit("rs = await nbfetch.fetch_many([base + '/delay/20'] * 4, max_clients=2)")
    kernel.wait_for(
        lambda m: m["msg_type"] == "display_data" and m["parent_header"].get("msg_id") == msg_id,
        timeout=20,
    )
    kernel.km.interrupt_kernel()  # what Kernel → Interrupt sends
    kernel.wait(msg_id, timeout=30)
    (final,) = kernel.messages(msg_id, "update_display_data")
    data = final["content"]["data"]
    assert "application/vnd.jupyter.widget-view+json" not in data
    assert data["text/plain"].startswith("4 fetches, max_clients=2: 0 done")
    assert len(kernel.messages(msg_id, "comm_close")) == 5
    assert kernel.value("1 + 1") == "2"  # the kernel goes on


# -- what the second review found -------------------------------------------------------
@pytest.mark.anyio
async def test_panel_invalid_url_ends_its_view_and_says_why(panel):
    panel.url.value = "htp://x"
    result = await panel.send()
    view = panel._views[-1]
    assert isinstance(result, nbfetch.InvalidRequest)
    assert view.finished and view.state.outcome == "error"
    assert "unsupported URL scheme" in panel.error.value


@pytest.mark.anyio
async def test_panel_closes_the_views_that_leave_its_history(demo, panel, monkeypatch):
    from nbfetch.notebook import panel as panel_module

    monkeypatch.setattr(panel_module, "MAX_HISTORY", 2)
    panel.url.value = demo.url + "/get"
    first = None
    for _ in range(3):
        await panel.send()
        first = first or panel._views[0]
    assert first not in panel._views and len(panel._views) == 2
    assert all(m.comm is None for m in first._models)  # every model of it closed
    assert all(m.comm is not None for m in panel._views[-1]._models)


@pytest.mark.anyio
async def test_fetches_refused_before_sending_are_failed_rows_not_queued(demo):
    urls = ["htp://x", demo.url + "/get"]
    view = ManyView(urls, max_clients=2)
    results = await nbfetch.fetch_many(urls, trace=view.trace, show=False)
    view.attach_results(results)
    view.finish()
    assert view.counts() == {"done": 1, "failed": 1, "in_flight": 0, "queued": 0}
    assert "InvalidRequest" in view.text()
