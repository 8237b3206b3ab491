"""The notebook layer in a real kernel: magics, the live view, Cancel, interrupt, sync API."""

import time

import pytest
from conftest import client_sockets_to
from kernel import Kernel

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def kernel(server, tmp_path_factory):
    k = Kernel(cwd=str(tmp_path_factory.mktemp("kernel")))
    k.run(f"%load_ext nbfetch\nimport nbfetch\nbase = {server.url!r}")
    yield k
    k.shutdown()


def test_a_response_renders_richly_without_load_ext(server, tmp_path):
    """The notebook layer registers its formatter with IPython when nbfetch is
    imported in a kernel: ``r`` shows as HTML with no ``%load_ext`` (the client
    layer's Response has no display code of its own)."""
    fresh = Kernel(cwd=str(tmp_path))
    try:
        fresh.run(f"import nbfetch\nr = await nbfetch.fetch({server.url + '/get'!r})")
        msg_id = fresh.submit("r")
        assert fresh.wait(msg_id)["status"] == "ok"
        (result,) = fresh.messages(msg_id, "execute_result")
        data = result["content"]["data"]
        assert 'class="nbfetch-response"' in data["text/html"]
        assert "200 OK" in data["text/plain"] and "total" in data["text/plain"]
        assert fresh.value("'_repr_mimebundle_' in dir(r)") == "False"
    finally:
        fresh.shutdown()


def test_fetch_line_returns_a_response_and_binds_it(kernel):
    kernel.run("r = %fetch {base}/get?x=1")
    assert kernel.value("type(r).__name__") == "'Response'"
    assert kernel.value("r.status_code, r.json()['args']") == "(200, {'x': '1'})"


def test_dollar_expansion_and_options(kernel):
    kernel.run(
        'path = "/post"\nr = %fetch -X PUT --json \'{"a": [1]}\' -H "X-Test: yes" $base/anything'
    )
    assert (
        kernel.value("r.json()['method'], r.json()['json'], r.json()['headers']['X-Test']")
        == "('PUT', {'a': [1]}, 'yes')"
    )


def test_bare_fetch_shows_the_live_view_not_a_second_repr(kernel):
    msg_id = kernel.submit("%fetch {base}/get")
    assert kernel.wait(msg_id)["status"] == "ok"
    assert kernel.messages(msg_id, "execute_result") == []
    views = [
        m
        for m in kernel.messages(msg_id, "display_data")
        if "application/vnd.jupyter.widget-view+json" in m["content"]["data"]
    ]
    assert len(views) == 1


def test_include_and_output_file(kernel, tmp_path):
    out = tmp_path / "body.bin"
    msg_id = kernel.submit(f"%fetch -q -i -o {out} {{base}}/bytes/1000")
    kernel.wait(msg_id)
    text = "".join(m["content"]["text"] for m in kernel.messages(msg_id, "stream"))
    assert "HTTP/1.1 200 OK" in text and "Content-Length: 1000" in text
    assert out.stat().st_size == 1000


def test_bad_arguments_are_a_clear_error(kernel):
    reply = kernel.wait(kernel.submit("%fetch --no-such-option {base}/get"))
    assert reply["status"] == "error" and reply["ename"] == "InvalidRequest"
    assert "unrecognized arguments" in reply["evalue"]


def test_cell_magic_http_format(kernel):
    kernel.run(
        "%%fetch -q out\n"
        "# a comment\n"
        "POST {{base}}/post\n"
        "Content-Type: application/json\n"
        "\n"
        '{"n": 1}\n'
        "###\n"
        "GET {{base}}/headers HTTP/1.1\n"
        "X-Two: 2\n"
    )
    assert kernel.value("[r.status_code for r in out]") == "[200, 200]"
    assert (
        kernel.value("out[0].json()['json'], out[1].json()['headers']['X-Two']")
        == "({'n': 1}, '2')"
    )


def test_fetch_inside_a_def_uses_the_sync_path(kernel):
    kernel.run("def status():\n    r = %fetch -q {base}/get\n    return r.status_code")
    assert kernel.value("status()") == "200"


def test_background_fetch_view_keeps_updating_after_the_cell(kernel):
    msg_id = kernel.submit("h = %fetch --bg {base}/drip?numbytes=20&duration=1.5&chunks=20")
    reply = kernel.wait(msg_id, timeout=5)
    assert reply["status"] == "ok"
    idle_at = len(kernel.iopub)
    html = [
        w
        for w in kernel.widget_models("HTMLModel")
        if w["msg"]["parent_header"]["msg_id"] == msg_id
    ]
    assert html
    kernel.pump_for(2.0)
    later = {
        w["comm_id"]: [m for m in kernel.updates(w["comm_id"]) if kernel.iopub.index(m) >= idle_at]
        for w in html
    }
    # the fetch went on after its cell had finished: the byte and chunk counters
    # of the status line kept changing, and the final state arrived
    assert max(len(v) for v in later.values()) >= 5
    last_values = [
        m["content"]["data"]["state"].get("value", "") for v in later.values() for m in v
    ]
    assert any("20 B · 20 chunks" in value for value in last_values)
    assert (
        kernel.value("h.done(), (await h).status_code, len(h.result().body)") == "(True, 200, 20)"
    )


def test_throttle_bounds_widget_updates_and_they_keep_coming(kernel):
    # 2 s of a stream of 5,000 chunks: the view renders at most every 50 ms
    # (~20 updates per second per widget), and does render all along.
    msg_id = kernel.submit(
        "r = %fetch {base}/chunked?sizes=" + ",".join(["20"] * 5000) + "&delay=0.0004"
    )
    kernel.wait(msg_id, timeout=60)
    html = [
        w
        for w in kernel.widget_models("HTMLModel")
        if w["msg"]["parent_header"]["msg_id"] == msg_id
    ]
    duration = float(kernel.value("r.timing.total"))
    for w in html:
        n = len(kernel.updates(w["comm_id"]))
        assert n <= 25 * duration + 3, (n, duration)

    def values(w):
        return [
            (m["header"]["date"], m["content"]["data"]["state"]["value"])
            for m in kernel.updates(w["comm_id"])
            if "value" in m["content"]["data"]["state"]
        ]

    status = [w for w in html if any(" chunks · " in v for _, v in values(w))]
    assert len(status) == 1
    updates = values(status[0])
    # A quarter of the throttle's pace at least, spread over the stream (not all
    # at its end), and the exact final count last.
    assert len(updates) >= max(5, 5 * duration), (len(updates), duration)
    assert _seconds(updates[-1][0]) - _seconds(updates[0][0]) >= duration / 2
    assert "97.7 KiB · 5,000 chunks" in updates[-1][1]
    assert kernel.value("sum(1 for e in r.events if e.name == 'response.chunk')") == "5000"


def _seconds(date) -> float:
    """A message header's date (a datetime, or its ISO text) in seconds."""
    from datetime import datetime

    if isinstance(date, str):
        date = datetime.fromisoformat(date.replace("Z", "+00:00"))
    return date.timestamp()


def _cancel_button(kernel, msg_id):
    def is_button(m):
        if m["msg_type"] != "comm_open" or m["parent_header"].get("msg_id") != msg_id:
            return False
        state = m["content"]["data"].get("state", {})
        return state.get("_model_name") == "ButtonModel" and state.get("description") == "Cancel"

    return kernel.wait_for(is_button)["content"]["comm_id"]


def _wait_for_status_line(kernel, msg_id):
    """Until the view of that cell shows the response's status line."""
    ids = {
        w["comm_id"]
        for w in kernel.widget_models("HTMLModel")
        if w["msg"]["parent_header"]["msg_id"] == msg_id
    }
    kernel.wait_for(
        lambda m: (
            m["msg_type"] == "comm_msg"
            and m["content"]["comm_id"] in ids
            and "200 OK" in str(m["content"]["data"].get("state", {}).get("value", ""))
        ),
        timeout=10,
    )


def _ipykernel_version() -> tuple[int, ...]:
    import ipykernel

    return tuple(int(x) for x in ipykernel.__version__.split(".")[:2])


@pytest.mark.skipif(
    _ipykernel_version() < (7, 4),
    reason="ipykernel < 7.4 (Python 3.10) handles widget messages only after an awaiting cell",
)
def test_cancel_click_cancels_an_awaiting_fetch(kernel, server):
    msg_id = kernel.submit("r = %fetch {base}/drip?numbytes=10&duration=8&chunks=10")
    button = _cancel_button(kernel, msg_id)
    _wait_for_status_line(kernel, msg_id)
    start = time.monotonic()
    kernel.click(button)
    reply = kernel.wait(msg_id, timeout=10)
    # before the 8 s drip would have ended (a FetchCancelled says the rest)
    assert time.monotonic() - start < 8
    assert reply["status"] == "error" and reply["ename"] == "FetchCancelled"
    assert client_sockets_to(server.port) <= kernel_pool_size(kernel)
    assert kernel.value("nbfetch.default_client()._queue.active") == "0"


def kernel_pool_size(kernel) -> int:
    return int(kernel.value("sum(map(len, nbfetch.default_client()._pool.idle.values()))"))


def test_interrupt_cancels_an_awaiting_fetch(kernel, server):
    msg_id = kernel.submit("r = %fetch {base}/drip?numbytes=10&duration=8&chunks=10")
    _cancel_button(kernel, msg_id)
    _wait_for_status_line(kernel, msg_id)
    start = time.monotonic()
    kernel.km.interrupt_kernel()
    reply = kernel.wait(msg_id, timeout=10)
    # before the 8 s drip would have ended (the error reply says it was cut short)
    assert time.monotonic() - start < 8
    assert reply["status"] == "error"
    assert client_sockets_to(server.port) <= kernel_pool_size(kernel)
    assert kernel.value("nbfetch.default_client()._queue.active") == "0"
    assert kernel.value("1 + 1") == "2"  # the kernel is fine


def test_fetch_sync_keeps_the_queue_and_background_fetches_alive(kernel):
    kernel.run("bg = %fetch --bg -q {base}/drip?numbytes=5&duration=0.6&chunks=5")
    first = kernel.submit("r = nbfetch.fetch_sync(base + '/delay/0.3')\nr.status_code")
    second = kernel.submit("after = 'ran'")
    assert kernel.wait(first)["status"] == "ok"
    assert kernel.wait(second)["status"] == "ok"
    assert kernel.value("after, r.status_code") == "('ran', 200)"
    assert kernel.value("(await bg).body") == "b'*****'"


def _models_of(kernel, msg_id, name):
    return [w for w in kernel.widget_models(name) if w["msg"]["parent_header"]["msg_id"] == msg_id]


def test_fetch_many_waterfall_updates_live(kernel, server):
    # A drip an earlier test cut short ends server-side at its next write: wait
    # for it, or it counts in max_in_flight below.
    deadline = time.monotonic() + 10
    while server.stats["in_flight"]:
        assert time.monotonic() < deadline, "an earlier request is still being served"
        time.sleep(0.05)
    server.reset_stats()
    msg_id = kernel.submit(
        "rs = await nbfetch.fetch_many([base + '/delay/0.2'] * 12, max_clients=3)"
    )
    kernel.wait(msg_id, timeout=30)

    def values(comm_id):
        return [
            m["content"]["data"]["state"]["value"]
            for m in kernel.updates(comm_id)
            if "value" in m["content"]["data"]["state"]
        ]

    html = _models_of(kernel, msg_id, "HTMLModel")
    chart = [w for w in html if any("nbfetch-waterfall" in v for v in values(w["comm_id"]))]
    assert len(chart) == 1
    values = values(chart[0]["comm_id"])
    assert len(values) >= 3  # it filled in while the fetches ran
    rows = values[-1].count('<details class="nbfetch-many-row"')
    assert rows == 12 and values[-1].count('title="queued:') == 12
    assert server.stats["max_in_flight"] == 3
    assert kernel.value("[r.status_code for r in rs].count(200)") == "12"


def test_fetch_panel_send_click_in_the_kernel(kernel, server):
    server.reset_stats()
    msg_id = kernel.submit("panel = nbfetch.FetchPanel(url=base + '/get?from=panel')\npanel")
    kernel.wait(msg_id)
    send = [
        w
        for w in _models_of(kernel, msg_id, "ButtonModel")
        if w["state"].get("description") == "Send"
    ]
    assert len(send) == 1
    kernel.click(send[0]["comm_id"])
    kernel.wait_for(
        lambda m: (
            m["msg_type"] == "comm_msg"
            and "→ 200" in str(m["content"]["data"].get("state", {}).get("_options_labels", ""))
        ),
        timeout=10,
    )
    assert server.stats["requests"] == 1
    assert kernel.value("panel._views[-1].response.json()['args']") == "{'from': 'panel'}"


def test_live_view_memory_stays_flat_on_a_200000_chunk_stream(kernel):
    kernel.run(
        "import tracemalloc\n"
        "tracemalloc.start()\n"
        "view = nbfetch.ResponseView('GET', base)\n"
        "display(view)\n"
        "async with nbfetch.AsyncClient() as c:\n"
        "    async with c.stream('GET', base + '/chunked?count=200000&size=8', trace=view.trace) as s:\n"
        "        total = 0\n"
        "        async for data in s.aiter_bytes():\n"
        "            total += len(data)\n"
        "peak = tracemalloc.get_traced_memory()[1] / 2**20\n"
        "tracemalloc.stop()",
        timeout=90,
    )
    assert kernel.value("total") == "1600000"
    assert kernel.value("len(view._chunks), view._chunk_count") == "(200, 200000)"
    assert kernel.value("'last 200 of 200,000 chunks' in view.chunks_html.value") == "True"
    # 400,000 body events: kept in r.events they would be ~120 MB
    assert float(kernel.value("peak")) < 40, kernel.value("peak")
