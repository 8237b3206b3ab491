"""The notebook side of the .http workflow without a kernel (issue 18): the run
table (``RunView``), the Checks and "Copy as" tabs of a ``ResponseView``, the
panel's "paste cURL" box, and ``nbfetch.run_http`` outside a kernel. Real runs
against the demo server; ipywidgets objects work outside a kernel."""

from __future__ import annotations

import json

import pytest

import nbfetch
from nbfetch.httpfile.parse import parse_http
from nbfetch.httpfile.run import arun_http
from nbfetch.notebook.http import environment_secrets
from nbfetch.notebook.live import ResponseView
from nbfetch.notebook.run_view import RunView

pytestmark = [pytest.mark.anyio, pytest.mark.loop_watchdog]

PRIVATE = "pr1v-9d8c7b6a"
TOKEN = "tok-9f8e7d6c"
HOSTILE = "<img src=x onerror=alert(1)>"


@pytest.fixture
def env_dir(tmp_path):
    (tmp_path / "http-client.env.json").write_text(json.dumps({"dev": {"key": "placeholder"}}))
    (tmp_path / "http-client.private.env.json").write_text(json.dumps({"dev": {"key": PRIVATE}}))
    return tmp_path


def _file(demo, directory):
    text = (
        "# @name login\n"
        f"POST {demo.url}/token\n"
        "Content-Type: application/json\n"
        "\n"
        '{"user": "ada", "password": "secret"}\n'
        "\n"
        "?? status == 200\n"
        "###\n"
        f"GET {demo.url}/anything?q=<svg/onload=alert(1)>\n"
        "X-Key: {{key}}\n"
        "\n"
        "?? body $.headers.X-Key == {{key}}\n"
        "?? body $.args.q == nope\n"
        "###\n"
        f"GET {demo.url}/get?x={{{{nosuch}}}}\n"
    )
    return parse_http(text, directory=str(directory))


async def _run(demo, env_dir, **view_options):
    http = _file(demo, env_dir)
    secrets = environment_secrets(http, "dev", None)
    view = RunView(http.requests, title="api.http", secrets=secrets, **view_options)
    show = view_options.get("show_secrets", False)
    run = await arun_http(http, env="dev", observer=view, show_secrets=show)
    view.secrets.update(run.secrets)
    view.settle()
    return view, run


async def test_the_run_table_has_a_row_per_request_with_its_checks(demo, env_dir):
    view, run = await _run(demo, env_dir)
    assert [r.passed for r in run] == [True, False, False]
    text = view.text()
    assert "api.http: 3 requests: 1 passed, 2 failed" in text
    lines = text.splitlines()
    assert "login" in lines[1] and "200" in lines[1] and "✓ 1" in lines[1]
    assert "✗ 1 of 2" in lines[2]
    assert "✗ body $.args.q == nope" in text
    assert "InvalidRequest" in text and "{{nosuch}} is not defined" in text
    html = view.html()
    # The failed rows come open in the saved output, with their checks.
    assert html.count("nbfetch-run-row") == 3 and html.count("<details") == 3
    assert html.count('<details class="nbfetch-run-row" open style=') == 2
    assert "nbfetch-check-passed" in html and "nbfetch-check-failed" in html
    assert view.counts() == {"done": 3, "passed": 1, "failed": 2, "pending": 0}
    # A row's own view: its events replayed, its checks in the Checks tab.
    second = view.view(1)
    assert second.state.status[0] == 200 and second.tab_bar.value == "Checks"
    assert [c.passed for c in second.state.checks] == [True, False]
    assert PRIVATE not in second.snapshot_bundle()["text/html"]
    with pytest.raises(LookupError, match="request 3 has no response"):
        view.view(2)


async def test_the_run_table_escapes_and_masks(demo, env_dir):
    view, run = await _run(demo, env_dir)
    assert run[1].response.json()["headers"]["X-Key"] == PRIVATE  # sent for real
    html, text = view.html(), view.text()
    assert "<svg" not in html and "q=&lt;svg/onload=alert(1)&gt;" in html
    for shown in (html, text):
        assert PRIVATE not in shown
    # The check compared the private value: it passed, and shows as ***.
    assert run[1].assertions[0].passed and "***" in html
    shown, _ = await _run(demo, env_dir, show_secrets=True)
    assert PRIVATE in shown.html()


async def test_a_table_never_displayed_stays_a_live_widget(demo, env_dir):
    view, _ = await _run(demo, env_dir)
    assert view.settled and view._static is None
    assert "nbfetch-run-row" in view.table.value  # its models hold the final table


async def test_the_checks_tab_opens_on_a_failure_and_is_in_the_snapshot(demo, tmp_path):
    http = parse_http(
        f"GET {demo.url}/anything?x={HOSTILE}\n"
        "Authorization: Bearer " + TOKEN + "\n\n"
        "?? status == 200\n"
        "?? body $.args.x == 1\n"
        '?? body contains "' + TOKEN + '"\n',
        directory=str(tmp_path),
    )
    run = await arun_http(http)
    result = run[0]
    view = ResponseView(
        result.options.method,
        result.options.url,
        assertions=result.block.assertions,
        options=result.options,
    )
    assert view.tab_bar.options[-2:] == ("Checks", "Copy as")
    assert "3 to check" in view.checks_html.value
    for event in result.response.events:
        view.trace(event)
    view.attach_response(result.response)
    view.attach_checks(result.assertions)
    assert [c.passed for c in result.assertions] == [True, False, True]
    assert view.tab_bar.value == "Checks"  # a failure is what to look at
    assert "✗ 1 of 3 checks failed" in view.status_html.value
    bundle = view.snapshot_bundle()
    html = bundle["text/html"]
    assert html.count("nbfetch-check-failed") == 1 and html.count("nbfetch-check-passed") == 2
    assert HOSTILE not in html and "&lt;img" in html  # what the server echoed, escaped
    assert TOKEN not in json.dumps(bundle)  # the check's own text is masked too
    assert "✗ 1 of 3 checks failed" in bundle["text/plain"]
    assert "body $.args.x == 1" in bundle["text/plain"]


async def test_a_plain_view_has_no_checks_tab_but_copies(demo):
    r = await nbfetch.fetch(demo.url + "/get?api_key=" + TOKEN)
    view = ResponseView("GET", r.url)
    assert "Checks" not in view.tab_bar.options
    for event in r.events:
        view.trace(event)
    view.attach_response(r)
    view.show_tab("Copy as")
    copy = view.content.value
    assert copy.count("nbfetch-copy-text") == 5 and copy.count('class="nbfetch-copy"') == 5
    assert "curl" in copy and "import httpx" in copy and "import requests" in copy
    assert TOKEN not in copy and "api_key=***" in copy
    assert TOKEN not in view.snapshot_bundle()["text/html"]


async def test_run_http_outside_a_kernel_is_the_runner(demo, tmp_path):
    path = tmp_path / "api.http"
    path.write_text(f"GET {demo.url}/get\n\n?? status == 200\n")
    run = await nbfetch.run_http(path)
    assert run.passed and len(run) == 1 and run[0].response.status_code == 200
    # A result reads as its Response, as %%fetch NAME bound the Response before.
    assert run[0].status_code == 200 and run[0].json()["url"].endswith("/get")
    path.write_text("GET http://127.0.0.1:1/\n")  # refused: no response to read
    failed = (await nbfetch.run_http(path))[0]
    with pytest.raises(AttributeError, match="no response"):
        failed.status_code  # noqa: B018
    with pytest.raises(nbfetch.InvalidRequest, match="cannot read"):
        await nbfetch.run_http(tmp_path / "no-such.http")


# -- the panel's "paste cURL" box ---------------------------------------------------------
@pytest.fixture
def panel():
    return nbfetch.FetchPanel()


def test_a_pasted_curl_fills_the_form(panel):
    assert panel.fill_from_curl(
        "curl -X PUT 'http://127.0.0.1:8000/anything' -H 'X-One: 1' "
        f"-H 'Authorization: Bearer {TOKEN}' --json '{{\"k\": [1, 2]}}' -L --max-time 7"
    )
    assert (panel.method.value, panel.url.value) == ("PUT", "http://127.0.0.1:8000/anything")
    assert "X-One: 1" in panel.headers.value and TOKEN in panel.headers.value
    assert (panel.body_kind.value, json.loads(panel.body.value)) == ("JSON", {"k": [1, 2]})
    assert panel.follow.value is True and panel.timeout.value == 7
    # The copies follow, masked.
    assert TOKEN not in panel.as_curl.value and "X-One: 1" in panel.as_curl.value
    assert "PUT" in panel.as_http.value and TOKEN not in panel.as_http.value
    panel.fill_from_curl("curl http://127.0.0.1:8000/get")
    assert panel.follow.value is False  # curl follows no redirect without -L
    assert panel.timeout.value == 30  # no --max-time: the panel's default, not "none"
    assert panel.body_kind.value == "none" and panel.headers.value == ""


def test_a_bad_curl_is_a_clear_error_and_leaves_the_form(panel):
    panel.url.value = "http://127.0.0.1:8000/kept"
    assert not panel.fill_from_curl(f"curl --no-such-flag 'http://u:{TOKEN}@127.0.0.1/'")
    assert "cURL:" in panel.error.value and "no-such-flag" in panel.error.value
    assert TOKEN not in panel.error.value
    assert panel.url.value == "http://127.0.0.1:8000/kept"
    assert not panel.fill_from_curl("curl -F 'f=@/etc/hostname' http://127.0.0.1/")
    assert "file uploads" in panel.error.value
    assert panel.fill_from_curl("curl http://127.0.0.1:8000/get")
    assert panel.error.value == ""


@pytest.mark.parametrize("show_secrets", [False, True])
async def test_a_token_in_a_json_response_body_is_masked_in_the_saved_view(demo, show_secrets):
    r = await nbfetch.fetch(demo.url + "/token", "POST", json={"user": "ada", "password": "secret"})
    token = r.json()["access_token"]
    view = ResponseView("POST", r.url, show_secrets=show_secrets)
    for event in r.events:
        view.trace(event)
    view.attach_response(r)
    view.show_tab("Body")
    saved = json.dumps([view.snapshot_bundle(), view.content.value])
    if show_secrets:
        assert token in saved
    else:
        assert token not in saved
        assert "&quot;access_token&quot;: &quot;***&quot;" in view.content.value
        assert "&quot;expires_in&quot;: 3600" in view.content.value  # an ordinary field stays
    # A run's table masks it too: a check may show what it found.
    http = parse_http(
        f"POST {demo.url}/token\nContent-Type: application/json\n\n"
        '{"user": "ada", "password": "secret"}\n\n?? body $.access_token == nope\n'
    )
    table = RunView(http.requests, show_secrets=show_secrets)
    run = await arun_http(http, observer=table, show_secrets=show_secrets)
    table.settle()
    shown = run[0].response.json()["access_token"]
    assert (shown in table.html()) is show_secrets


async def test_a_long_run_draws_at_most_max_rows_and_the_failures(demo):
    from nbfetch.notebook.run_view import MAX_ROWS

    n = MAX_ROWS + 50
    text = "".join(
        f"GET {demo.url}/{'status/404' if i == n - 10 else 'get'}\n\n?? status == 200\n###\n"
        for i in range(n)
    )
    http = parse_http(text)
    view = RunView(http.requests, throttle=3600)
    await arun_http(http, observer=view)
    view.settle()
    html = view.html()
    assert html.count("nbfetch-run-row") == MAX_ROWS
    assert "… 50 more requests (not drawn; counted above)" in html
    assert f"{n} requests: {n - 1} passed, 1 failed" in html
    # The failure is drawn (open, with its check) though it comes after the cap.
    assert f">{n - 9}</span>" in html and "status == 200: got 404" in html.replace("&quot;", '"')
    # The text form (40 rows) lists it too, under its own number.
    text = view.text()
    assert f"  {n - 9}  GET " in text and "✗ status == 200: got 404" in text.replace("&quot;", '"')


@pytest.mark.parametrize("body", ["-d injected", "--json '{\"a\": 1}'", "-F a=1"])
async def test_a_body_on_the_line_of_a_run_is_refused_before_any_request(demo, tmp_path, body):
    from nbfetch.core.errors import InvalidRequest
    from nbfetch.notebook.magics import fetch_cell, fetch_file
    from nbfetch.text.options import parse_options

    requests = f"GET {demo.url}/anything\n###\nPOST {demo.url}/anything\n"
    path = tmp_path / "f.http"
    path.write_text(requests)
    opts = parse_options(f"--file {path} {body} -q", prog="%fetch", need_url=False)
    with pytest.raises(InvalidRequest, match="body goes in the cell/file"):
        await fetch_file(opts)
    with pytest.raises(InvalidRequest, match="body goes in the cell/file"):
        await fetch_cell(requests, f"{body} -q")
    assert demo.stats["requests"] == 0
