"""Whole ``.http`` files run against the demo server: requests in order on one
client, a token chained from one response into the next request, the cookie
jar carrying a login (and ``# @no-cookie-jar``), failed rows for a failed check,
an undefined variable and a refused connection, ``stop_on_failure``, the
observer, the table, and a cancelled run leaving no socket behind."""

from __future__ import annotations

import asyncio
import socket
import threading

import pytest
from conftest import answer_each, client_sockets_to, idle_connections, wait_until
from loopwatch import run_trio

from nbfetch import AsyncClient, InvalidRequest
from nbfetch.httpfile.parse import parse_http
from nbfetch.httpfile.report import render_table
from nbfetch.httpfile.run import RunResult, arun_http

pytestmark = [pytest.mark.anyio, pytest.mark.loop_watchdog]

CHAIN = """\
# @name first
POST {{base}}/post
Content-Type: application/json

{"token": "tok-{{$randomInt 1000 9999}}-abcdef", "n": 2}

?? status == 200
?? body $.json.token startsWith tok-

###
# @name second
GET {{base}}/get
Authorization: Bearer {{first.response.body.$.json.token}}

?? status == 200
?? body $.headers.Authorization startsWith "Bearer tok-"
?? py response.json()["headers"]["Authorization"] == "Bearer " + first.response.json()["json"]["token"]
"""


@pytest.fixture
def pandas():
    # Imported outside the test body: a first import of pandas blocks the loop.
    return pytest.importorskip("pandas")


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1].split("/")[0])


async def run_text(text: str, base: str, **kwargs) -> RunResult:
    return await arun_http(parse_http(text, source="test.http"), namespace={"base": base}, **kwargs)


async def test_a_token_from_one_response_goes_into_the_next_request(demo, pandas):
    run = await run_text(CHAIN, demo.url)
    assert run.passed, repr(run)
    assert [r.name for r in run] == ["first", "second"] and len(run) == 2
    token = run["first"].response.json()["json"]["token"]
    sent = run["second"].response.request.headers["authorization"]
    assert sent == f"Bearer {token}"
    assert run[1] is run["second"] and run.named["first"] is run[0]
    assert [len(r.assertions) for r in run] == [2, 3]
    assert all(a.passed for r in run for a in r.assertions)
    # The token went in an Authorization header: no text of the run shows it.
    frame = run.to_frame()
    assert list(frame["status"]) == [200, 200] and list(frame["ok"]) == [True, True]
    texts = [repr(run), repr(run[1]), frame.to_string()]
    texts += [repr(a) for a in run[1].assertions]
    for text in texts:
        assert token not in text


async def test_the_table_has_one_row_per_request_and_a_summary(demo):
    run = await run_text(CHAIN + "\n###\nGET {{base}}/status/404\n\n?? status == 200\n", demo.url)
    table = repr(run)
    lines = table.splitlines()
    assert lines[0].split() == ["#", "request", "status", "time", "checks"]
    assert lines[1].split()[:4] == ["1", "first:", "POST", f"{demo.url}/post"]
    assert lines[1].split()[4:] == ["200", *lines[1].split()[5:7], "2", "passed"]
    assert lines[2].split()[1:3] == ["second:", "GET"] and "3 passed" in lines[2]
    assert lines[3].split()[1:4] == ["GET", f"{demo.url}/status/404", "404"]
    assert lines[3].endswith("1 failed")
    assert lines[4].strip() == "FAILED status == 200: got 404"
    assert lines[5] == "3 requests: 2 passed, 1 failed, 0 skipped; checks: 5 passed, 1 failed"
    assert "\x1b[" not in table  # plain text
    coloured = render_table(run, colour=True).splitlines()
    assert coloured[1].startswith("\x1b[32m") and coloured[3].startswith("\x1b[31m")


async def test_what_was_not_run_is_noted_under_its_row(demo):
    text = "GET {{base}}/get\n\n> {%\n    client.global.set('x', 1);\n%}\n"
    run = await run_text(text, demo.url)
    assert run.passed
    note = repr(run).splitlines()[2].strip()
    assert note.startswith("note: not run: ") and "response handler" in note, note


async def test_a_failing_check_fails_the_row_and_the_run(demo):
    run = await run_text("GET {{base}}/get\n\n?? status == 201\n?? status == 200\n", demo.url)
    assert not run.passed and run.failures == [run[0]]
    result = run[0]
    assert result.response.status_code == 200 and result.error is None
    assert [(a.passed, a.message) for a in result.assertions] == [
        (False, "status == 201: got 200"),
        (True, "status == 200"),
    ]
    assert result.failed_assertions == [result.assertions[0]]


async def test_without_checks_a_status_below_400_passes(demo):
    run = await run_text("GET {{base}}/get\n###\nGET {{base}}/status/500\n", demo.url)
    assert [r.passed for r in run] == [True, False]
    assert "FAILED status 500" in repr(run)


async def test_an_undefined_variable_is_a_failed_row_and_the_run_goes_on(demo):
    text = "GET {{base}}/get?x={{nope}}\n\n###\nGET {{base}}/get\n"
    run = await run_text(text, demo.url)
    bad, good = run
    assert isinstance(bad.error, InvalidRequest) and "{{nope}}" in str(bad.error)
    assert bad.options is None and bad.response is None and not bad.passed
    assert good.passed and demo.stats["requests"] == 1  # nothing was sent for the first
    table = repr(run).splitlines()
    assert table[1].split()[1:3] == ["GET", "{{base}}/get?x={{nope}}"]
    assert table[1].split()[3:5] == ["error", "-"]
    assert table[2].strip().startswith("error: InvalidRequest: {{nope}} is not defined")


async def test_a_request_using_a_failed_named_request_fails_clearly(demo):
    text = (
        "# @name login\nGET {{base}}/get?x={{nope}}\n\n###\n"
        "GET {{base}}/get\nAuthorization: Bearer {{login.response.body.$.token}}\n"
    )
    run = await run_text(text, demo.url)
    assert [r.passed for r in run] == [False, False]
    error = run[1].error
    assert isinstance(error, InvalidRequest) and "login" in str(error), error
    assert demo.stats["requests"] == 0


async def test_a_refused_connection_is_a_failed_row(demo):
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    text = f"GET http://127.0.0.1:{port}/\n\n?? status == 200\n\n###\nGET {{{{base}}}}/get\n"
    run = await run_text(text, demo.url)
    assert type(run[0].error).__name__ == "ConnectError" and run[0].assertions == []
    assert run[1].passed
    assert "error: ConnectError:" in repr(run)


async def test_stop_on_failure_skips_the_rest(demo):
    text = "GET {{base}}/get\n\n?? status == 500\n\n###\nGET {{base}}/get\n###\nGET {{base}}/get\n"
    run = await run_text(text, demo.url, stop_on_failure=True)
    assert [r.skipped for r in run] == [False, True, True]
    assert demo.stats["requests"] == 1 and run.failures == [run[0]]
    assert repr(run).splitlines()[-1] == (
        "3 requests: 0 passed, 1 failed, 2 skipped; checks: 0 passed, 1 failed"
    )


async def test_the_cookie_jar_carries_a_login_and_no_cookie_jar_leaves_it_out(demo):
    text = """\
GET {{base}}/login?user=ada

?? status == 200

###
# @no-cookie-jar
GET {{base}}/whoami

?? status == 401

###
# @no-cookie-jar
GET {{base}}/login?user=bob

?? status == 401

###
GET {{base}}/whoami

?? body $.user == ada
"""
    run = await run_text(text, demo.url)
    assert run.passed, repr(run)
    assert run[1].response.json()["cookies"] == {}
    # bob's session cookie was not stored: the last request is still ada's.
    assert run[3].response.json()["cookies"] == run[0].response.json()["cookies"]


async def test_a_callers_client_is_used_and_left_open(demo):
    events = []
    async with AsyncClient(trace=events.append) as client:
        run = await run_text("GET {{base}}/get\n###\nGET {{base}}/get\n", demo.url, client=client)
        assert run.passed and not client.closed
        # One keep-alive connection for the whole run.
        assert [e.name for e in events].count("connection.reused") == 1
        assert (await client.fetch(demo.url + "/get")).status_code == 200


async def test_the_run_closes_the_client_it_opened(demo):
    before = client_sockets_to(_port(demo.url))
    run = await run_text("GET {{base}}/get\n", demo.url)
    assert run.passed
    await wait_until(lambda: client_sockets_to(_port(demo.url)) == before, what="sockets closed")


async def test_the_observer_sees_each_request_start_and_finish(demo):
    calls = []

    class Observer:
        def started(self, index, block, options):
            events = []
            calls.append(("started", index, options and options.url, events))
            return events.append

        def finished(self, index, result):
            calls.append(("finished", index, result.passed))

    text = "GET {{base}}/get\n###\nGET {{base}}/{{nope}}\n###\nGET {{base}}/get\n\n?? status == 1\n"
    await run_text(text, demo.url, observer=Observer())
    assert [c[:3] for c in calls] == [
        ("started", 0, f"{demo.url}/get"),
        ("finished", 0, True),
        ("started", 1, None),
        ("finished", 1, False),
        ("started", 2, f"{demo.url}/get"),
        ("finished", 2, False),
    ]
    traced = [e.name for e in calls[0][3]]
    assert traced[0] in ("queued", "dequeued") and "response.done" in traced
    assert calls[2][3] == []  # nothing was sent: no events


async def test_an_environment_file_beside_the_http_file(demo, tmp_path):
    (tmp_path / "http-client.env.json").write_text(f'{{"dev": {{"base": "{demo.url}"}}}}')
    (tmp_path / "api.http").write_text("GET {{base}}/get\n\n?? status == 200\n")
    run = await arun_http(tmp_path / "api.http", env="dev")
    assert run.passed, repr(run)


async def test_cancelling_a_run_mid_request_leaves_no_socket(raw_server, demo):
    release = threading.Event()
    holding = threading.Event()

    def handler(conn, server):  # reads the request, never answers
        server.read_request(conn)
        holding.set()
        release.wait(30)

    srv = raw_server(handler)
    # The first request leaves a keep-alive connection to the demo server idle
    # in the pool while the second one hangs.
    text = f"GET {demo.url}/get\n###\nGET {srv.url}/slow\n\n?? status == 200\n"
    text += f"###\nGET {srv.url}/never\n"
    demo_port = _port(demo.url)
    before_demo = client_sockets_to(demo_port)
    before_tasks = asyncio.all_tasks()
    try:
        for client in (None, AsyncClient()):  # the run's own client, then the caller's
            holding.clear()
            task = asyncio.ensure_future(arun_http(parse_http(text), client=client))
            await wait_until(holding.is_set, what="the server to hold the request")
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            await wait_until(lambda: client_sockets_to(srv.port) == 0, what="the socket to close")
            await wait_until(
                lambda: not (asyncio.all_tasks() - before_tasks), what="the run's tasks to end"
            )
            if client is None:  # the run closed the client it opened: its idle connection too
                await wait_until(
                    lambda: client_sockets_to(demo_port) == before_demo,
                    what="the idle one to close",
                )
            else:  # the caller's is left open, its idle connection its own
                assert not client.closed and client._queue.active == 0
                assert idle_connections(client) == 1
                await client.aclose()
        assert srv.connections == 2  # one per run: the third request never started
    finally:
        release.set()


async def test_a_credential_written_in_the_file_is_masked_in_the_table():
    with socket.socket() as s:  # a port nothing listens on: the fetch fails
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    text = (
        f"GET http://127.0.0.1:{port}/x\nAuthorization: Bearer literal-t0ken\n\n?? status == 200\n"
    )
    # A URL that happens to carry it (a server could echo it anywhere) is masked too.
    text += f"###\nPOST http://127.0.0.1:{port}/?echo=literal-t0ken\n"
    run = await run_text(text, "")
    assert [type(r.error).__name__ for r in run] == ["ConnectError"] * 2
    assert "literal-t0ken" not in repr(run) and "echo=***" in repr(run)


async def test_a_password_sent_in_a_json_body_is_masked_where_the_echo_shows_it(demo):
    text = (
        "POST {{base}}/post\nContent-Type: application/json\n\n"
        '{"user": "ada", "password": "hunter22"}\n\n?? body $.json.password == other\n'
    )
    run = await run_text(text, demo.url)
    failed = run[0].assertions[0]
    assert failed.actual == '"***"' and "hunter22" not in failed.message + repr(run)
    shown = await run_text(text, demo.url, show_secrets=True)
    assert shown[0].assertions[0].actual == '"hunter22"'


async def test_credentials_a_response_sets_are_masked_in_checks_and_the_table(raw_server):
    reply = (
        b"HTTP/1.1 200 OK\r\nSet-Cookie: sid=s3ss10n-c00kie; HttpOnly\r\n"
        b"Set-Cookie: other=an0ther-c00kie\r\nAuthorization: Bearer resp-t0ken-1\r\n"
        b"Content-Length: 2\r\n\r\nok"
    )
    srv = raw_server(answer_each(reply))
    text = (
        "GET {{base}}/login\n\n?? header set-cookie contains nope\n"
        "?? header authorization == nope\n?? body == nope\n"
    )
    run = await run_text(text, srv.url)
    shown = repr(run) + "".join(a.message + a.actual for a in run[0].assertions)
    for secret in ("s3ss10n-c00kie", "an0ther-c00kie", "resp-t0ken-1"):
        assert secret not in shown, shown
    assert 'got "sid=***; HttpOnly, other=***"' in run[0].assertions[0].message
    assert run[0].assertions[2].message == 'body == nope: got "ok"'  # not over-masked
    assert (
        "s3ss10n-c00kie"
        in (await run_text(text, srv.url, show_secrets=True))[0].assertions[0].actual
    )


async def test_a_secret_named_response_header_is_masked_in_checks_and_echoes(raw_server):
    body = b'{"echo": "t0ken-fr0m-the-server", "id": "req-42"}'
    reply = (
        b"HTTP/1.1 200 OK\r\nX-Auth-Token: t0ken-fr0m-the-server\r\nX-Request-Id: req-42\r\n"
        b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body)
    ) + body
    srv = raw_server(answer_each(reply))
    text = (
        "GET {{base}}/login\n\n?? header x-auth-token == nope\n?? body $.echo == nope\n"
        "?? header x-request-id == nope\n\n###\nGET {{base}}/again\n\n?? body == nope\n"
    )
    run = await run_text(text, srv.url)
    shown = repr(run) + "".join(a.message + a.actual for r in run for a in r.assertions)
    assert "t0ken-fr0m-the-server" not in shown, shown
    assert run[0].assertions[0].message == 'header x-auth-token == nope: got "***"'
    assert run[0].assertions[2].message == 'header x-request-id == nope: got "req-42"'


async def test_a_secret_in_a_url_path_is_not_in_the_error(tmp_path):
    with socket.socket() as s:  # a port nothing listens on: the fetch fails
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    (tmp_path / "http-client.env.json").write_text('{"dev": {}}')
    (tmp_path / "http-client.private.env.json").write_text('{"dev": {"hook": "H00KSECRET42"}}')
    (tmp_path / "a.http").write_text(f"GET http://127.0.0.1:{port}/hooks/{{{{hook}}}}\n")
    run = await arun_http(tmp_path / "a.http", env="dev")
    error = run[0].error
    assert type(error).__name__ == "ConnectError"
    shown = f"{error} {error!r} {error.url} {error.hint} {run!r}"
    assert "H00KSECRET42" not in shown and "/hooks/***" in str(error), shown


async def test_a_value_that_becomes_a_secret_later_is_masked_in_earlier_checks(demo):
    # The token is quoted by a failed check in row 1, and only row 2 makes it a
    # secret (its Bearer): row 1's result must not keep it.
    text = (
        "# @name login\nPOST {{base}}/post\nContent-Type: application/json\n\n"
        '{"tok": "late-s3cret-value"}\n\n?? body $.json.tok == other\n\n###\n'
        "GET {{base}}/get\nAuthorization: Bearer {{login.response.body.$.json.tok}}\n"
    )
    run = await run_text(text, demo.url)
    failed = run["login"].failed_assertions[0]
    shown = f"{failed.message} {failed.actual} {failed!r} {run!r}"
    assert "late-s3cret-value" not in shown and failed.actual == '"***"', shown
    shown = await run_text(text, demo.url, show_secrets=True)
    assert shown["login"].failed_assertions[0].actual == '"late-s3cret-value"'


async def test_a_timeout_hint_names_the_http_setting(demo):
    run = await run_text("# @timeout 300 ms\nGET {{base}}/delay/5\n", demo.url)
    error = run[0].error
    assert type(error).__name__ == "FetchTimeout" and error.timeout == "request_timeout"
    assert error.hint == (
        "request_timeout is 0.3 s: if the server is just slow, raise it"
        " with '# @timeout SECONDS' above the request line"
    )


def test_a_run_on_trio(demo):
    pytest.importorskip("trio")

    async def main():
        return await run_text(CHAIN, demo.url)

    run = run_trio(main)
    assert run.passed, repr(run)
    assert run["second"].response.request.headers["authorization"].startswith("Bearer tok-")
