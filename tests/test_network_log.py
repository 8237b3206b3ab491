"""The process's network log (client/netlog.py): every fetch of every client,
newest first, in a bounded ring of summaries redacted on output; its panel in a
real kernel (tests/test_browser_network.py shows it in JupyterLab)."""

import json

import pytest
from conftest import answer_each

import nbfetch
from nbfetch import AsyncClient
from nbfetch.client.netlog import MAX_HEAD_CHARS, MAX_HEADER_VALUE, NetworkLog
from nbfetch.core.headers import Headers
from nbfetch.notebook.network_view import NetworkView

pytestmark = [pytest.mark.anyio, pytest.mark.loop_watchdog]


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.fixture
def log():
    log = NetworkLog(size=5).enable()
    yield log
    log.disable()
    log.clear()


async def test_fetches_of_every_client_are_logged_newest_first(log, demo):
    async with AsyncClient() as a, AsyncClient() as b:
        await a.fetch(demo.url + "/get?n=1")
        await b.fetch(demo.url + "/status/404")
    await nbfetch.fetch(demo.url + "/post", "POST", json={"x": 1})
    # The shared client's connection would outlive the test (later tests count
    # the sockets to the session's demo server).
    await nbfetch.default_client().aclose()
    rows = log.rows()
    assert [r["method"] for r in rows] == ["POST", "GET", "GET"]
    assert [r["status"] for r in rows] == [200, 404, 200]
    assert log.rows(status=404)[0]["url"].endswith("/status/404")
    assert len(log.rows(text="post")) == 1


async def test_the_ring_keeps_the_last_size_fetches(log, demo):
    async with AsyncClient() as client:
        for i in range(8):
            await client.fetch(demo.url + f"/get?i={i}")
    assert len(log) == 5
    assert log.rows()[0]["url"].endswith("i=7")
    assert log.rows()[-1]["url"].endswith("i=3")


async def test_failures_are_logged_and_secrets_never_shown(log, demo, tmp_path):
    url = demo.url.replace("http://", "http://user:hunter2pw@")
    async with AsyncClient() as client:
        await client.fetch(
            url + "/get?token=sekrit-token-1",
            headers={"Authorization": "Bearer sekrit-bearer-2", "Cookie": "sid=sekrit-cookie-3"},
        )
        with pytest.raises(nbfetch.FetchError):
            await client.fetch("http://127.0.0.1:9/refused")
    rows = log.rows()
    assert rows[0]["status"] in (None, 0) or rows[0].get("error")
    everything = json.dumps(rows, default=str) + repr(log) + log.text()
    everything += json.dumps(log.to_har(), default=str)
    for entry in log:
        everything += json.dumps(entry.detail(), default=str)
    for secret in ("hunter2pw", "sekrit-token-1", "sekrit-bearer-2", "sekrit-cookie-3"):
        assert secret not in everything, secret


async def test_no_output_of_the_log_or_its_view_shows_a_secret(log, demo, tmp_path):
    """The entries keep the fetch's own Headers, URL and first body bytes
    (redacted when a text is made, not when recorded): every output made from
    them is checked, for secrets the request sent and ones the server set."""
    url = demo.url.replace("http://", "http://user:hunter2pw@")
    async with AsyncClient() as client:
        await client.fetch(
            url + "/get?token=sekrit-token-1",
            headers={"Authorization": "Bearer sekrit-bearer-2", "Cookie": "sid=sekrit-cookie-3"},
        )
        # A form's secret field, echoed back in the body (the preview).
        await client.fetch(demo.url + "/post", "POST", data={"password": "sekrit-pass-4"})
        # A login's answer: the token the server issued, in a JSON body...
        token = (
            await client.fetch(
                demo.url + "/token", "POST", json={"user": "ada", "password": "secret"}
            )
        ).json()["access_token"]
        # ...sent back in the next request.
        await client.fetch(demo.url + "/me", headers={"Authorization": f"Bearer {token}"})
        # A cookie the server set on a redirect, echoed by the next hop's body.
        session = (await client.fetch(demo.url + "/login?user=ada")).json()["cookies"]["session"]
    secrets = ["hunter2pw", "sekrit-token-1", "sekrit-bearer-2", "sekrit-cookie-3"]
    secrets += ["sekrit-pass-4", token, session]
    view = NetworkView(log, throttle=0)
    try:
        outputs = [json.dumps(log.rows(), default=str), repr(log), log.text()]
        outputs.append(json.dumps(log.to_har(), default=str))
        log.save_har(tmp_path / "log.har")
        outputs.append((tmp_path / "log.har").read_text())
        for entry in log:
            outputs += [repr(entry), json.dumps(entry.detail(), default=str)]
            view.pick.value = entry.id  # what picking a row in the view shows
            outputs += [view.html(), view.text(), repr(view)]
    finally:
        view.close()
    assert len(log) == 5
    everything = "\n".join(outputs)
    # What was recorded is there (the test would see a secret if it leaked)...
    assert "/me" in everything and "whoami" in everything and "ada" in everything
    for secret in secrets:
        assert secret not in everything, secret


# -- in a real kernel --------------------------------------------------------------

WIDGET = "application/vnd.jupyter.widget-view+json"


@pytest.mark.timeout(120)
def test_the_network_panel_in_a_real_kernel(server, tmp_path):
    """``nbfetch.network()`` in a kernel: fetches of two clients in two cells,
    newest first; a fetch of a later cell appears in the panel already shown;
    the status filter and picking a row, sent as a browser sends them (widget
    state updates), change what the widgets show."""
    from kernel import Kernel

    k = Kernel(cwd=str(tmp_path))
    try:
        k.run(
            f"import nbfetch\nbase = {server.url!r}\n"
            "a, b = nbfetch.AsyncClient(), nbfetch.AsyncClient()\n"
            "r1 = await a.fetch(base + '/get?cell=1')"
        )
        k.run("r2 = await b.fetch(base + '/status/404?cell=2')")
        shown = k.submit("nbfetch.network()")
        assert k.wait(shown)["status"] == "ok"
        assert k.messages(shown, "execute_result") == []  # the widget, not a repr
        assert [m for m in k.messages(shown, "display_data") if WIDGET in m["content"]["data"]]

        def model(name, test):
            (found,) = [
                w["comm_id"]
                for w in k.widget_models(name)
                if w["msg"]["parent_header"]["msg_id"] == shown and test(w["state"])
            ]
            return found

        html = [
            w["comm_id"]
            for w in k.widget_models("HTMLModel")
            if w["msg"]["parent_header"]["msg_id"] == shown
        ]
        (table,) = [c for c in html if 'class="nbfetch-network"' in (k.state(c, "value") or "")]
        (summary,) = [c for c in html if "Network:" in (k.state(c, "value") or "")]
        status = model("TextModel", lambda s: s.get("placeholder", "").startswith("status"))
        pick = model(
            "DropdownModel", lambda s: "pick a fetch" in " ".join(s.get("_options_labels", []))
        )
        detail = [c for c in html if c not in (table, summary)]

        def order(value):
            return [m for m in ("cell=4", "cell=2", "cell=1") if m in value]

        assert order(k.state(table, "value")) == ["cell=2", "cell=1"]

        # A fetch of a later cell: the panel shown above follows.
        k.run("r3 = await a.fetch(base + '/get?cell=4')")
        k.wait_for(
            lambda m: (
                m["msg_type"] == "comm_msg"
                and m["content"]["comm_id"] == table
                and "cell=4" in m["content"]["data"].get("state", {}).get("value", "")
            ),
            timeout=20,
        )
        assert order(k.state(table, "value")) == ["cell=4", "cell=2", "cell=1"]

        # The status filter, typed in the browser: only the 404 is drawn.
        k.set_state(status, {"value": "404"})
        k.wait_for(
            lambda m: (
                m["msg_type"] == "comm_msg"
                and m["content"]["comm_id"] == summary
                and "1 shown of 1 matching"
                in m["content"]["data"].get("state", {}).get("value", "")
            ),
            timeout=20,
        )
        assert order(k.state(table, "value")) == ["cell=2"]
        labels = k.state(pick, "_options_labels")
        assert len(labels) == 2 and "/status/404?cell=2" in labels[1]

        # Picking that row (the browser sends the Dropdown's index): its detail.
        k.set_state(pick, {"index": 1})
        k.wait_for(
            lambda m: (
                m["msg_type"] == "comm_msg"
                and m["content"]["comm_id"] in detail
                and "Response headers" in m["content"]["data"].get("state", {}).get("value", "")
            ),
            timeout=20,
        )
        (shown_detail,) = [c for c in detail if "Response headers" in (k.state(c, "value") or "")]
        text = k.state(shown_detail, "value")
        assert "404" in text and "/status/404?cell=2" in text
        assert "Request headers" in text and "Events" in text and "response.headers" in text
        assert k.value("nbfetch.network_log.rows()[0]['url'].endswith('cell=4')") == "True"
    finally:
        k.shutdown()


async def test_every_row_of_the_panel_is_its_seven_cells(log, demo):
    """#, method, name, status, size, time, waterfall: what a browser draws in
    each column (a malformed cell shows its markup as text, in another column)."""
    from html.parser import HTMLParser

    async with AsyncClient() as client:
        await client.fetch(demo.url + "/json")
        await client.fetch(demo.url + "/status/404")

    class Cells(HTMLParser):
        def __init__(self):
            super().__init__()
            self.rows, self.cell = [], None

        def handle_starttag(self, tag, attrs):
            if tag == "tr":
                self.rows.append([])
            elif tag == "td":
                self.cell = ""

        def handle_endtag(self, tag):
            if tag == "td":
                self.rows[-1].append("</td> alone" if self.cell is None else self.cell.strip())
                self.cell = None

        def handle_data(self, data):
            if self.cell is not None:
                self.cell += data
            elif data.strip() and self.rows:
                self.rows[-1].append(f"outside a cell: {data}")

    view = NetworkView(log, throttle=0)
    try:
        parser = Cells()
        parser.feed(view.table.value)
    finally:
        view.close()
    header, *rows = parser.rows
    assert header[:6] == ["#", "Method", "Name", "Status", "Size", "Time"]
    assert [r[:4] for r in rows] == [
        ["2", "GET", "/status/404", "404"],
        ["1", "GET", "/json", "200"],
    ]
    assert all(len(r) == 7 for r in parser.rows)


async def test_an_entry_keeps_bounded_heads_whatever_is_sent(log, raw_server):
    # 50 fields of 1,200 characters from the server (under h11's head limit) and a
    # 20 KB request header: an entry keeps a bounded copy of each head, and no
    # event it keeps holds the whole one (a ring of 500 held 66 MB of them).
    fat = b"".join(b"X-Fat-%d: %s\r\n" % (i, b"v" * 1200) for i in range(50))
    srv = raw_server(answer_each(b"HTTP/1.1 200 OK\r\n" + fat + b"Content-Length: 2\r\n\r\nok"))
    async with AsyncClient() as c:
        r = await c.fetch(srv.url + "/x", headers={"X-Big": "r" * 20_000})
    assert len(r.headers) == 51  # the response itself is whole
    (entry,) = log.entries()

    def within(headers) -> bool:
        values = [v for _, v in headers.items()]
        return max(map(len, values)) <= MAX_HEADER_VALUE and sum(map(len, values)) <= MAX_HEAD_CHARS

    assert within(entry._request_headers) and within(entry._response_headers)
    held = [v for e in entry._events for v in e.details.values() if isinstance(v, Headers)]
    assert all(within(h) for h in held)
    assert entry.response_headers[0] == ("X-Fat-0", "v" * 1024)


@pytest.mark.parametrize(
    "pad",
    [
        b"".join(b"X-Pad-%d: v\r\n" % i for i in range(70)),  # past MAX_HEADERS fields
        b"".join(b"X-Long-%d: %s\r\n" % (i, b"v" * 1100) for i in range(17)),  # past the chars
    ],
    ids=["fields", "chars"],
)
async def test_a_cut_head_still_masks_the_login_it_answers(log, raw_server, pad):
    # Content-Type (and a token a field set) come after the cut: the JSON
    # credential scrub must still know the body is JSON.
    token = "tok_9f8e7d6c5b4a39281706"
    body = json.dumps({"access_token": token, "user": "ann"}).encode()
    srv = raw_server(
        answer_each(
            b"HTTP/1.1 200 OK\r\n" + pad + b"Content-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n" % len(body) + body
        )
    )
    async with AsyncClient() as c:
        await c.fetch(srv.url + "/login")
    (entry,) = log.entries()
    assert entry.content_type == "application/json"
    shown = json.dumps([entry.detail(), log.to_har()], default=str)
    assert token not in shown and '"access_token": "***"' in entry.detail()["preview"]


async def test_an_entry_keeps_no_1xx_head_and_its_own_events(log, raw_server):
    # Sixteen 103 heads of ~60 KB before the answer: the entry keeps none
    # whole (its events are filtered), and changing r.events leaves it be.
    hint = b"HTTP/1.1 103 Early Hints\r\n" + b"Link: <%s>\r\n" % (b"x" * 60_000) + b"\r\n"
    srv = raw_server(answer_each(hint * 16 + b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"))
    async with AsyncClient() as c:
        r = await c.fetch(srv.url + "/x")
    (entry,) = log.entries()
    held = [v for e in entry._events for v in e.details.values() if isinstance(v, Headers)]
    assert sum(len(v) for h in held for _, v in h.items()) <= MAX_HEAD_CHARS
    names = [e["name"] for e in entry.detail()["events"]]
    r.events.clear()
    assert [e["name"] for e in entry.detail()["events"]] == names and "response.done" in names
