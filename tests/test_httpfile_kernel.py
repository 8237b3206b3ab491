"""The .http workflow in a real kernel (issue 18): ``%%fetch`` cells with
variables from the kernel, ``--env`` with a private override, a login → token →
authorised request chain across cells, ``??`` checks shown in the view and in
the result, ``%fetch --file`` with its live table, ``%fetch curl ...``, and bad
input as a short error."""

import json

import pytest
from kernel import Kernel

pytestmark = pytest.mark.timeout(120)

PRIVATE_KEY = "pr1vate-k3y-7f3a9c"


@pytest.fixture(scope="module")
def kernel(server, tmp_path_factory):
    cwd = tmp_path_factory.mktemp("kernel")
    # http-client.env.json beside the cells (the kernel's directory), the
    # secret in the private file beside it, as JetBrains' HTTP Client keeps them.
    (cwd / "http-client.env.json").write_text(
        json.dumps({"dev": {"host": server.url, "key": "shared-placeholder"}})
    )
    (cwd / "http-client.private.env.json").write_text(json.dumps({"dev": {"key": PRIVATE_KEY}}))
    (cwd / "api.http").write_text(
        "@user = ada\n"
        "\n"
        "### log in\n"
        "# @name login\n"
        "POST {{host}}/token\n"
        "Content-Type: application/json\n"
        "\n"
        '{"user": "{{user}}", "password": "secret"}\n'
        "\n"
        "?? status == 200\n"
        "?? body $.token_type == bearer\n"
        "\n"
        "### who am I\n"
        "GET {{host}}/me\n"
        "Authorization: Bearer {{login.response.body.$.access_token}}\n"
        "\n"
        '?? body $.user == "ada"\n'
        "\n"
        "### a check that fails\n"
        "GET {{host}}/status/404\n"
        "\n"
        "?? status == 200\n"
    )
    k = Kernel(cwd=str(cwd))
    k.run(f"%load_ext nbfetch\nimport nbfetch\nbase = {server.url!r}")
    yield k
    k.shutdown()


def _outputs(kernel, msg_id) -> list[dict]:
    """Every display bundle of a cell, as a saved notebook would keep it: the
    first display and each update of it."""
    return [
        m["content"]["data"]
        for m in kernel.iopub
        if m["parent_header"].get("msg_id") == msg_id
        and m["msg_type"] in ("display_data", "update_display_data")
    ]


def _final_html(kernel, msg_id) -> list[str]:
    return [d["text/html"] for d in _outputs(kernel, msg_id) if "text/html" in d]


def test_variables_from_the_kernel_and_a_check_in_the_view(kernel):
    kernel.run('path = "/anything"\ntag = "from-the-kernel"')
    msg_id = kernel.submit(
        "%%fetch out\n"
        "GET {{base}}{{path}}?tag={{tag}}\n"
        "X-Tag: {{tag}}\n"
        "\n"
        "?? status == 200\n"
        "?? body $.headers.X-Tag == from-the-kernel\n"
    )
    assert kernel.wait(msg_id)["status"] == "ok"
    assert kernel.value("type(out).__name__, out.passed") == "('RequestResult', True)"
    assert kernel.value("out.response.json()['args']") == "{'tag': 'from-the-kernel'}"
    assert kernel.value("[a.passed for a in out.assertions]") == "[True, True]"
    html = _final_html(kernel, msg_id)[-1]
    assert "✓ 2 checks passed" in html and "nbfetch-check-passed" in html
    # Every view copies as curl, .http and Python
    assert "nbfetch-copy-as" in html and "curl" in html


def test_a_failing_check_is_failed_in_the_view_and_in_the_result(kernel):
    msg_id = kernel.submit(
        "%%fetch bad\nGET {{base}}/status/404\n\n?? status == 200\n?? header x-nope exists\n"
    )
    reply = kernel.wait(msg_id)
    assert reply["status"] == "ok"  # a failed check does not stop the notebook
    assert kernel.value("bad.passed, [a.passed for a in bad.assertions]") == (
        "(False, [False, False])"
    )
    assert "404" in kernel.value("bad.assertions[0].message")
    html = _final_html(kernel, msg_id)[-1]
    assert "✗ 2 of 2 checks failed" in html
    assert html.count("nbfetch-check-failed") == 2
    text = _outputs(kernel, msg_id)[-1]["text/plain"]
    assert "✗ 2 of 2 checks failed" in text


def test_env_with_a_private_override_is_sent_and_masked(kernel):
    msg_id = kernel.submit(
        "%%fetch --env dev keyed\nGET {{host}}/anything\nX-Key: {{key}}\n\n?? status == 200\n"
    )
    assert kernel.wait(msg_id)["status"] == "ok"
    # The private file's value won (it was sent for real) ...
    assert kernel.value(f"keyed.response.json()['headers']['X-Key'] == {PRIVATE_KEY!r}") == "True"
    # ... and it is nowhere in what the notebook saves, though the echo carried it.
    outputs = _outputs(kernel, msg_id)
    assert outputs
    saved = json.dumps(outputs)
    assert PRIVATE_KEY not in saved
    assert "X-Key" in saved and "***" in saved


def test_login_token_and_an_authorised_request_across_two_cells(kernel):
    kernel.run(
        "%%fetch -q\n"
        "# @name login\n"
        "POST {{base}}/token\n"
        "Content-Type: application/json\n"
        "\n"
        '{"user": "grace", "password": "secret"}\n'
        "\n"
        "?? status == 200\n"
    )
    # The named request is a kernel variable: Python sees its response ...
    assert kernel.value("login.response.json()['token_type']") == "'bearer'"
    # ... and the next cell's template reads its body.
    kernel.run(
        "%%fetch -q me\n"
        "GET {{base}}/me\n"
        "Authorization: Bearer {{login.response.body.$.access_token}}\n"
        "\n"
        '?? body $.user == "grace"\n'
    )
    assert kernel.value("me.passed, me.response.json()") == "(True, {'user': 'grace'})"


def test_fetch_file_runs_every_request_with_the_live_table(kernel):
    msg_id = kernel.submit("run = %fetch --file api.http --env dev")
    assert kernel.wait(msg_id, timeout=60)["status"] == "ok"
    assert kernel.value("len(run), run.passed") == "(3, False)"
    assert kernel.value("[r.passed for r in run]") == "[True, True, False]"
    assert kernel.value("login.response.status_code") == "200"  # bound by its name
    # Live: one HTML widget for the table, updated as the rows came in ...
    opens = [
        m
        for m in kernel.messages(msg_id, "comm_open")
        if m["content"]["data"]["state"].get("_model_name") == "HTMLModel"
    ]
    assert len(opens) == 2  # the summary and the table
    # Five models in all (as ManyView): the box, two HTML, one Layout, one Style.
    assert len(kernel.messages(msg_id, "comm_open")) == 5
    table = [u for m in opens for u in kernel.updates(m["content"]["comm_id"])]
    assert any("nbfetch-run-row" in str(u["content"]["data"]["state"]) for u in table)
    # ... then a static bundle, and every model closed (a reload finds no missing model).
    closed = {m["content"]["comm_id"] for m in kernel.messages(msg_id, "comm_close")}
    assert {m["content"]["comm_id"] for m in kernel.messages(msg_id, "comm_open")} <= closed
    final = _outputs(kernel, msg_id)[-1]
    assert "application/vnd.jupyter.widget-view+json" not in final
    assert "3 requests: 2 passed, 1 failed" in final["text/plain"]
    assert "login" in final["text/html"] and "✗ 1 of 1" in final["text/html"]
    assert "status == 200: got 404" in final["text/html"].replace("&quot;", '"')


def test_a_pasted_curl_command_runs(kernel, server):
    # As pasted from a browser's "Copy as cURL": over two lines, shell quoting.
    kernel.run(
        "r = %fetch curl -X PUT -H 'X-From: curl' \\\n"
        f"  --json '{{\"a\": 1}}' '{server.url}/anything'"
    )
    assert kernel.value("r.json()['method'], r.json()['json'], r.json()['headers']['X-From']") == (
        "('PUT', {'a': 1}, 'curl')"
    )


def test_bad_input_is_a_short_error(kernel):
    reply = kernel.wait(kernel.submit("%%fetch\nGET {{base}}/get?x={{nosuchvar}}\n"))
    assert reply["status"] == "error" and reply["ename"] == "InvalidRequest"
    assert "nosuchvar" in reply["evalue"]
    assert len(reply["traceback"]) <= 6  # a few lines, not the stack
    reply = kernel.wait(kernel.submit("%fetch curl --no-such-flag http://127.0.0.1:1/"))
    assert reply["status"] == "error" and reply["ename"] == "InvalidRequest"
    assert len(reply["traceback"]) <= 6
    reply = kernel.wait(kernel.submit("%fetch --file no-such.http"))
    assert reply["status"] == "error" and reply["ename"] == "InvalidRequest"
    assert "no-such.http" in reply["evalue"]
    reply = kernel.wait(kernel.submit("%fetch --env dev {base}/get"))
    assert reply["status"] == "error" and "--env" in reply["evalue"]


def _widget_views(kernel, msg_id) -> list:
    return [
        m
        for m in kernel.messages(msg_id, "comm_open")
        if m["content"]["data"]["state"].get("_model_name") == "HTMLModel"
    ]


@pytest.mark.parametrize("how", ["cell", "file"])
def test_an_interrupt_ends_the_run_in_one_line_and_no_view_stays_live(kernel, how, tmp_path):
    slow = "GET {{base}}/drip?numbytes=10&duration=8&chunks=10\n"
    if how == "cell":
        code = "%%fetch\n" + slow
    else:
        path = tmp_path / "slow.http"
        path.write_text(slow + "###\nGET {{base}}/get\n")
        code = f"%fetch --file {path}"
    msg_id = kernel.submit(code)
    kernel.wait_for(lambda m: bool(_widget_views(kernel, msg_id)), timeout=20)
    # The drip is under way: its first bytes came (the server saw the request).
    kernel.wait_for(
        lambda m: (
            m["msg_type"] == "comm_msg"
            and m["parent_header"].get("msg_id") == msg_id
            and ("200" in str(m["content"]["data"].get("state", {}).get("value", "")))
        ),
        timeout=20,
    )
    kernel.km.interrupt_kernel()
    reply = kernel.wait(msg_id, timeout=20)
    assert reply["status"] == "error" and len(reply["traceback"]) <= 3
    final = _outputs(kernel, msg_id)[-1]
    assert "application/vnd.jupyter.widget-view+json" not in final
    assert "interrupted" in final["text/plain"]
    if how == "file":
        assert "not run" in final["text/plain"]
    closed = {m["content"]["comm_id"] for m in kernel.messages(msg_id, "comm_close")}
    assert {m["content"]["comm_id"] for m in kernel.messages(msg_id, "comm_open")} <= closed
    assert kernel.value("1 + 1") == "2"


@pytest.mark.parametrize("flag", ["-i", "--timing"])
def test_the_printed_response_of_a_cell_is_scrubbed_of_the_run_secrets(kernel, flag):
    # X-Tag has an ordinary name: only the run knows its value is the private
    # env file's; the echo of /anything prints it back.
    msg_id = kernel.submit(
        f"%%fetch --env dev {flag}\nGET {{{{host}}}}/anything\nX-Tag: {{{{key}}}}\n"
    )
    assert kernel.wait(msg_id)["status"] == "ok"
    printed = "".join(
        m["content"]["text"]
        for m in kernel.iopub
        if m["parent_header"].get("msg_id") == msg_id and m["msg_type"] == "stream"
    )
    assert "X-Tag" in printed and "***" in printed
    everything = json.dumps(
        [m["content"] for m in kernel.iopub if m["parent_header"].get("msg_id") == msg_id]
    )
    assert PRIVATE_KEY not in everything


@pytest.mark.parametrize("template", ["bad", "bad.prop", "bad.response.body.$.x"])
def test_a_variable_that_raises_is_a_failed_request_and_the_next_runs(kernel, template):
    kernel.run(
        "class Bad:\n"
        "    def __str__(self): raise RuntimeError('boom')\n"
        "    @property\n"
        "    def prop(self): raise KeyError('k')\n"
        "    @property\n"
        "    def response(self): raise KeyError('r')\n"
        "bad = Bad()"
    )
    reply = kernel.wait(
        kernel.submit(
            f"%%fetch\nGET {{{{base}}}}/get?x={{{{{template}}}}}\n###\n# @name after\nGET {{{{base}}}}/get\n"
        )
    )
    assert reply["status"] == "error" and reply["ename"] == "InvalidRequest"
    assert f"{{{{{template}}}}}" in reply["evalue"] and "raised" in reply["evalue"]
    assert "line 1" in reply["evalue"]  # where
    assert len(reply["traceback"]) <= 6
    assert kernel.value("after.response.status_code") == "200"  # the next request ran


def test_a_value_with_a_response_that_is_not_one_is_no_request(kernel):
    kernel.run("import types\nodd = types.SimpleNamespace(response=1)")
    reply = kernel.wait(kernel.submit("%%fetch\nGET {{base}}/get?x={{odd.response.body.$.x}}\n"))
    assert reply["status"] == "error" and reply["ename"] == "InvalidRequest"
    assert "no request named 'odd' has run" in reply["evalue"]


def test_fetch_file_applies_the_line_options_and_refuses_those_it_cannot(kernel):
    kernel.run(
        "open('opts.http', 'w').write("
        "'# @name h\\nGET {{base}}/headers\\n###\\n# @name slow\\nGET {{base}}/delay/3\\n"
        "###\\n# @name redir\\nGET {{base}}/redirect/1\\n"
        "###\\n# @name own\\nGET {{base}}/headers\\nX-Added: mine\\n')"
    )
    kernel.run("run = %fetch --file opts.http -H 'X-Added: yes' --timeout 1 -q", timeout=60)
    assert kernel.value("h.response.json()['headers']['X-Added']") == "'yes'"
    assert kernel.value("own.response.json()['headers']['X-Added']") == "'mine'"  # it wins
    assert kernel.value("type(slow.error).__name__") == "'FetchTimeout'"
    # No -L on the line: a .http request still follows (REST Client's default).
    assert kernel.value("redir.response.status_code") == "200"
    for code in (
        "%fetch --file opts.http --bg",
        "%fetch --file opts.http -o out.json",
        "%fetch --file opts.http -i",
        "%%fetch --bg\nGET {{base}}/get\n",
        "%%fetch -o out.json\nGET {{base}}/get\n",
        "%%fetch -X POST\nGET {{base}}/get\n",
        "%fetch --file opts.http -d injected",
        "%%fetch --json '{}'\nPOST {{base}}/post\n###\nGET {{base}}/get\n",
        "%%fetch --stream\nGET {{base}}/get\n###\nGET {{base}}/get\n",
    ):
        reply = kernel.wait(kernel.submit(code))
        assert reply["status"] == "error" and reply["ename"] == "InvalidRequest", code
        assert "cannot apply" in reply["evalue"] and len(reply["traceback"]) <= 6
    assert kernel.value("import os; os.path.exists('out.json')") == "False"


def test_a_request_name_that_replaces_a_variable_says_so_and_spares_a_module(kernel):
    kernel.run("clobbered = 5\nimport json as jsonmod")

    def stderr(msg_id):
        return "".join(
            m["content"]["text"]
            for m in kernel.iopub
            if m["parent_header"].get("msg_id") == msg_id
            and m["msg_type"] == "stream"
            and m["content"]["name"] == "stderr"
        )

    msg_id = kernel.submit("%%fetch -q\n# @name clobbered\nGET {{base}}/get\n")
    assert kernel.wait(msg_id)["status"] == "ok"
    assert "replaced the kernel variable clobbered (a int)" in stderr(msg_id)
    assert kernel.value("type(clobbered).__name__") == "'RequestResult'"
    msg_id = kernel.submit("%%fetch -q\n# @name clobbered\nGET {{base}}/get\n")
    assert kernel.wait(msg_id)["status"] == "ok"
    assert stderr(msg_id) == ""  # a result replacing a result: nothing to say
    msg_id = kernel.submit("%%fetch -q\n# @name jsonmod\nGET {{base}}/get\n")
    assert kernel.wait(msg_id)["status"] == "ok"
    assert "not bound, jsonmod is the module json" in stderr(msg_id)
    assert kernel.value("jsonmod.__name__") == "'json'"


def test_a_process_env_value_is_masked_in_the_live_view_too(kernel):
    secret = "PROCENV-val-4321"
    kernel.run(f"import os\nos.environ['NBF_PROC_SECRET'] = {secret!r}")
    msg_id = kernel.submit(
        "%%fetch\nGET {{base}}/drip?numbytes=4&duration=1&chunks=4&x={{$processEnv NBF_PROC_SECRET}}\n"
    )
    assert kernel.wait(msg_id, timeout=60)["status"] == "ok"
    sent = [m for m in kernel.iopub if m["parent_header"].get("msg_id") == msg_id]
    assert any(m["msg_type"] == "comm_msg" for m in sent)  # it was live
    assert secret not in json.dumps([m["content"] for m in sent])


def test_a_token_in_a_printed_json_body_is_masked(kernel):
    for code in (
        "%%fetch -i\nPOST {{base}}/token\nContent-Type: application/json\n\n"
        '{"user": "ada", "password": "secret"}\n',
        '%fetch -i -X POST --json \'{"user": "ada", "password": "secret"}\' {base}/token',
    ):
        msg_id = kernel.submit(code)
        assert kernel.wait(msg_id)["status"] == "ok"
        printed = "".join(
            m["content"]["text"]
            for m in kernel.iopub
            if m["parent_header"].get("msg_id") == msg_id and m["msg_type"] == "stream"
        )
        assert '"access_token": "***"' in printed and '"expires_in": 3600' in printed
