"""The live view as a front end receives it (a real kernel over ZMQ), and its
renderers without a kernel: widget models per view, the final states read from
real comm messages, the static snapshot that replaces the widget at the end."""

from __future__ import annotations

import json
import re

import pytest
from kernel import Kernel

from nbfetch.core.events import Event
from nbfetch.notebook.snapshot import (
    FetchState,
    chunks_html,
    progress_html,
    snapshot_html,
    waterfall_html,
)

pytestmark = pytest.mark.timeout(120)

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


@pytest.fixture(scope="module")
def kernel(server, tmp_path_factory):
    k = Kernel(cwd=str(tmp_path_factory.mktemp("kernel")))
    k.run(f"%load_ext nbfetch\nimport nbfetch\nbase = {server.url!r}")
    yield k
    k.shutdown()


def opened(kernel, msg_id) -> dict[str, dict]:
    """comm_id → opening state of every widget model the cell ``msg_id`` created."""
    return {
        m["content"]["comm_id"]: m["content"]["data"]["state"]
        for m in kernel.messages(msg_id, "comm_open")
    }


def last_state(kernel, comm_id, opening: dict) -> dict:
    """A model's state as a front end holds it: the opening state and its updates."""
    state = dict(opening)
    for m in kernel.updates(comm_id):
        state.update(m["content"]["data"]["state"])
    return state


def final_view(kernel, msg_id) -> dict:
    """The status line (HTML), whether Cancel is still shown, and closed models."""
    models = opened(kernel, msg_id)
    states = {cid: last_state(kernel, cid, s) for cid, s in models.items()}
    (status,) = [
        s["value"]
        for s in states.values()
        if s["_model_name"] == "HTMLModel" and "<code>" in s.get("value", "")
    ]
    (hbox,) = [s for s in states.values() if s["_model_name"] == "HBoxModel"]
    (button,) = [cid for cid, s in states.items() if s["_model_name"] == "ButtonModel"]
    closed = {m["content"]["comm_id"] for m in kernel.iopub if m["msg_type"] == "comm_close"}
    return {
        "status": status,
        "text": re.sub(r"<[^>]+>", "", status),
        "cancel_shown": f"IPY_MODEL_{button}" in hbox["children"],
        "models": len(models),
        "all_closed": set(models) <= closed,
    }


def snapshot_update(kernel, msg_id) -> dict:
    """The update_display_data that replaced the cell's view."""
    (shown,) = [
        m for m in kernel.messages(msg_id, "display_data") if WIDGET_VIEW in m["content"]["data"]
    ]
    display_id = shown["content"]["transient"]["display_id"]
    kernel.wait_for(
        lambda m: (
            m["msg_type"] == "update_display_data"
            and m["content"]["transient"]["display_id"] == display_id
        )
    )
    updates = [
        m
        for m in kernel.iopub
        if m["msg_type"] == "update_display_data"
        and m["content"]["transient"]["display_id"] == display_id
    ]
    return updates[-1]["content"]["data"]


def test_a_view_is_at_most_ten_models_and_ends_as_a_static_snapshot(kernel):
    msg_id = kernel.submit("r = %fetch {base}/get?x=1")
    assert kernel.wait(msg_id)["status"] == "ok"
    data = snapshot_update(kernel, msg_id)
    view = final_view(kernel, msg_id)
    assert view["models"] <= 10, view["models"]  # 38 before (a Tab of HTML widgets)
    assert view["all_closed"]  # no widget left behind for a reload to miss
    assert WIDGET_VIEW not in data
    assert 'class="nbfetch-response"' in data["text/html"] and "200 OK" in data["text/html"]
    assert "<script" not in data["text/html"]
    assert "200 OK" in data["text/plain"] and "\n" not in data["text/plain"]
    assert "200 OK" in view["text"] and not view["cancel_shown"]


def test_a_bg_handle_shows_as_its_view_and_both_outputs_become_the_snapshot(kernel):
    first = kernel.submit("h = %fetch --bg {base}/drip?numbytes=5&duration=1&chunks=5")
    kernel.wait(first)
    again = kernel.submit("h")
    kernel.wait(again)
    assert kernel.messages(again, "execute_result") == []
    ids = {
        m["content"]["transient"]["display_id"]
        for msg_id in (first, again)
        for m in kernel.messages(msg_id, "display_data")
    }
    assert len(ids) == 1  # one display_id: one update replaces both outputs
    kernel.run("await h")
    data = snapshot_update(kernel, again)
    assert WIDGET_VIEW not in data and "200 OK" in data["text/html"]
    assert "5 B · 5 chunks" in data["text/html"]


def test_an_error_ends_the_view_in_an_error_state(kernel):
    msg_id = kernel.submit("r = %fetch http://127.0.0.1:1/refused")
    assert kernel.wait(msg_id)["status"] == "error"
    view = final_view(kernel, msg_id)
    assert "ConnectError" in view["text"] and "…" not in view["text"]
    assert not view["cancel_shown"] and view["all_closed"]
    assert "ConnectError" in snapshot_update(kernel, msg_id)["text/html"]


def test_invalid_input_ends_the_view(kernel):
    msg_id = kernel.submit("%fetch htp://x")
    assert kernel.wait(msg_id)["status"] == "error"
    view = final_view(kernel, msg_id)
    # before: "starting…" for ever, with an enabled Cancel button
    assert "starting" not in view["text"] and "…" not in view["text"]
    assert "error" in view["text"] and not view["cancel_shown"]
    assert WIDGET_VIEW not in snapshot_update(kernel, msg_id)


def _wait_for_status(kernel, msg_id, text):
    kernel.wait_for(  # the view's models are open (the button is created after the status)
        lambda m: (
            m["msg_type"] == "comm_open"
            and m["parent_header"].get("msg_id") == msg_id
            and m["content"]["data"]["state"].get("_model_name") == "VBoxModel"
        )
    )
    ids = {cid for cid, s in opened(kernel, msg_id).items() if s.get("_model_name") == "HTMLModel"}
    kernel.wait_for(
        lambda m: (
            m["msg_type"] == "comm_msg"
            and m["content"]["comm_id"] in ids
            and text in str(m["content"]["data"].get("state", {}).get("value", ""))
        ),
        timeout=10,
    )


def _ipykernel_version() -> tuple[int, ...]:
    import ipykernel

    return tuple(int(x) for x in ipykernel.__version__.split(".")[:2])


@pytest.mark.skipif(
    _ipykernel_version() < (7, 4),
    reason="ipykernel < 7.4 handles widget messages only after an awaiting cell",
)
def test_cancel_ends_as_cancelled_once(kernel):
    msg_id = kernel.submit("r = %fetch {base}/drip?numbytes=10&duration=8&chunks=10")
    _wait_for_status(kernel, msg_id, "200 OK")
    (button,) = [
        cid for cid, s in opened(kernel, msg_id).items() if s["_model_name"] == "ButtonModel"
    ]
    kernel.click(button)
    kernel.wait(msg_id, timeout=10)
    view = final_view(kernel, msg_id)
    assert "cancelled during download" in view["text"], view["text"]
    assert view["text"].count("cancelled") == 1  # said once: what it was, and where
    assert "…" not in view["text"] and not view["cancel_shown"]


def test_interrupt_ends_as_interrupted(kernel):
    msg_id = kernel.submit("r = %fetch {base}/drip?numbytes=10&duration=8&chunks=10")
    _wait_for_status(kernel, msg_id, "200 OK")
    kernel.km.interrupt_kernel()
    kernel.wait(msg_id, timeout=10)
    view = final_view(kernel, msg_id)
    assert "interrupted during download" in view["text"], view["text"]
    assert "cancelled" not in view["text"] and "…" not in view["text"]
    assert not view["cancel_shown"] and view["all_closed"]
    assert "interrupted" in snapshot_update(kernel, msg_id)["text/plain"]


def test_a_2000_chunk_stream_keeps_the_rendered_rows_bounded(kernel):
    msg_id = kernel.submit("r = %fetch --stream {base}/chunked?count=2000&size=8")
    kernel.wait(msg_id, timeout=60)
    states = [
        last_state(kernel, cid, s)
        for cid, s in opened(kernel, msg_id).items()
        if s["_model_name"] == "HTMLModel"
    ]
    content = [s["value"] for s in states if "chunks, " in s.get("value", "")]
    assert len(content) == 1 and "last 200 of 2,000 chunks" in content[0]
    assert content[0].count("<tr>") <= 201
    html = snapshot_update(kernel, msg_id)["text/html"]
    assert "Chunks (2,000)" in html and html.count("<tr>") < 200
    assert len(html) < 60_000


def test_nbclient_saves_the_snapshot_not_the_widget(server, tmp_path):
    """What notebooks/execute.py does: the saved output is the static bundle."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(f"%load_ext nbfetch\nbase = {server.url!r}"),
        nbformat.v4.new_code_cell(
            "r = %fetch -H 'Authorization: Bearer tok-sekrit-1' {base}/get?api_key=key-sekrit-2"
        ),
    ]
    NotebookClient(
        nb,
        timeout=60,
        kernel_name="python3",
        store_widget_state=True,
        resources={"metadata": {"path": str(tmp_path)}},
    ).execute()
    (output,) = nb.cells[1].outputs
    assert output["output_type"] == "display_data"
    assert WIDGET_VIEW not in output["data"]
    assert "200 OK" in output["data"]["text/html"]
    saved = json.dumps([c.outputs for c in nb.cells]) + json.dumps(nb.metadata)
    assert "tok-sekrit-1" not in saved and "key-sekrit-2" not in saved


# -- the renderers, without a kernel -----------------------------------------------------
def events(*spec) -> list[Event]:
    return [Event(name, 100.0 + t, t, details) for name, t, details in spec]


def test_a_dns_failure_is_a_dns_bar():
    state = FetchState("GET", "http://nosuchhost.invalid/")
    for e in events(
        ("queued", 0.0, {}),
        ("dequeued", 0.001, {}),
        ("resolve.start", 0.002, {"host": "nosuchhost.invalid", "port": 80}),
        ("error", 0.5, {"phase": "resolve", "type": "ConnectError", "message": "cannot resolve"}),
    ):
        state.feed(e)
    phases, total = state.timing()
    names = [name for name, _, _ in phases]
    assert names == ["queue", "dns"] and total == pytest.approx(0.5)
    html = waterfall_html(state)
    assert ">dns<" in html and ">connect<" not in html


def progress_state(content_length) -> FetchState:
    state = FetchState("GET", "http://127.0.0.1/x")
    for e in events(
        ("queued", 0.0, {}),
        (
            "response.headers",
            0.1,
            {
                "status": 200,
                "reason": "OK",
                "http_version": "HTTP/1.1",
                "headers": {},
                "content_length": content_length,
            },
        ),
        ("response.data", 1.1, {"bytes": 3 * 2**20, "wire_bytes": 3 * 2**20}),
    ):
        state.feed(e)
    return state


def test_progress_is_tqdm_grade():
    known = progress_html(progress_state(6 * 2**20), live=True, now=101.1)
    assert "3.0 MiB of 6.0 MiB" in known and "3.0 MiB/s" in known
    assert "ETA 1.0 s" in known and "width:50.0%" in known
    unknown = progress_html(progress_state(None), live=True, now=101.1)
    # no full bar before the end: a striped segment that slides
    assert "nbfetch-indeterminate" in unknown and "animation:" in unknown
    assert "width:100%" not in unknown and "ETA" not in unknown
    # the static snapshot tells the two apart without animation
    snap = progress_html(progress_state(None), live=False)
    assert "repeating-linear-gradient" in snap and "animation" not in snap
    assert "repeating-linear-gradient" not in progress_html(progress_state(10), live=False)


def test_the_snapshot_masks_what_the_request_sent():
    state = FetchState(
        "GET",
        "http://u:pw-sekrit@127.0.0.1/get?api_key=key-sekrit",
        headers=[("Authorization", "Bearer tok-sekrit")],
    )
    state.fail(ValueError("echo: Bearer tok-sekrit key-sekrit pw-sekrit"))
    html = snapshot_html(state)
    for secret in ("tok-sekrit", "key-sekrit", "pw-sekrit"):
        assert secret not in html
    assert "Bearer ***" in html and "api_key=***" in html
    shown = FetchState("GET", "http://127.0.0.1/get?api_key=key-sekrit", show_secrets=True)
    assert "key-sekrit" in snapshot_html(shown)


def test_a_finished_content_length_body_says_what_it_was():
    state = progress_state(10)
    state.feed(Event("response.done", 101.2, 1.2, {}))
    html = chunks_html(state)
    assert "no chunked body" not in html
    assert "not chunked: a Content-Length body, 10 bytes" in html


# -- what the second review found -------------------------------------------------------
def test_a_view_displayed_after_its_fetch_ended_is_the_snapshot(kernel):
    msg_id = kernel.submit(
        "from nbfetch.notebook.live import ResponseView\n"
        "v = ResponseView('GET', base + '/get')\n"
        "r = await nbfetch.fetch(base + '/get', trace=v.trace)\n"
        "display(v)"
    )
    kernel.wait(msg_id)
    (shown,) = kernel.messages(msg_id, "display_data")
    assert WIDGET_VIEW not in shown["content"]["data"]
    assert "200 OK" in shown["content"]["data"]["text/html"]
    closed = {m["content"]["comm_id"] for m in kernel.iopub if m["msg_type"] == "comm_close"}
    assert set(opened(kernel, msg_id)) <= closed


def test_a_redirect_then_a_failure_is_shown_as_the_failure(kernel):
    msg_id = kernel.submit("r = %fetch {base}/redirect/9")
    kernel.wait(msg_id)
    html = snapshot_update(kernel, msg_id)["text/html"]
    # the last response read was a 302; the fetch ended in the error, said as such
    head = html.split("<details")[0]
    assert "TooManyRedirects" in head and ">error<" in head


async def _traced(url, **options):
    import nbfetch

    events = []
    try:
        await nbfetch.fetch(url, trace=events.append, **options)
    except nbfetch.FetchError:
        pass
    return events


@pytest.mark.anyio
async def test_the_state_finishes_with_the_last_hop_not_the_first(server):
    state = FetchState("GET", server.url + "/redirect/2")
    ended = [e.name for e in await _traced(server.url + "/redirect/2") if state.feed(e)]
    assert ended == ["response.done"] and state.status[0] == 200 and state.outcome == "done"
    # a timeout on the second hop: an error, not the first hop's 302
    url = server.url + "/redirect-to?url=/delay/5"
    state = FetchState("GET", url)
    for e in await _traced(url, read_timeout=0.3):
        state.feed(e)
    assert state.outcome == "error" and state.error["type"] == "FetchTimeout"
    assert state.status is None


@pytest.mark.anyio
async def test_a_head_with_content_length_is_complete(server):
    url = server.url + "/bytes/1000"
    state = FetchState("HEAD", url)
    for e in await _traced(url, method="HEAD"):
        state.feed(e)
    assert state.expected is None and "of 1,000" not in progress_html(state, live=False)


def test_a_large_json_body_is_previewed_as_text_without_parsing_it():
    from nbfetch.notebook import snapshot

    class Big:  # just what body_preview reads
        path = None
        body = json.dumps(list(range(300_000))).encode()
        headers = {"content-type": "application/json"}
        encoding = "utf-8"

    kind, text = snapshot.body_preview(Big())
    assert len(Big.body) > snapshot.MAX_PRETTY_JSON
    assert kind == "text" and text.startswith("[0, 1, 2") and "truncated" in text


@pytest.mark.anyio
async def test_a_request_refused_before_sending_still_ends_a_traced_view():

    events = await _traced("htp://x")
    assert [e.name for e in events] == ["error"]
    state = FetchState("GET", "htp://x")
    assert state.feed(events[0]) and state.outcome == "error"
