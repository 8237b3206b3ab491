"""Short errors in a real kernel: what a failing cell prints, line by line.

A cell's output lines are the lines of its ``error`` message's traceback plus its
stream text (a live view is a widget, not text). Each case states its bound N;
the issue's bar is 10 lines for any error cell.
"""

import re
import socket
import ssl
import time

import pytest
import trustme
from kernel import Kernel

import nbfetch
from nbfetch import AsyncClient
from nbfetch.cli import main
from nbfetch.demo import DemoServer

pytestmark = pytest.mark.timeout(120)
ANSI = re.compile(r"\x1b\[[0-9;]*m")


@pytest.fixture(scope="module")
def refused_port():
    with socket.socket() as s:  # bound then closed: nothing listens there
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def kernel(server, tmp_path_factory):
    k = Kernel(cwd=str(tmp_path_factory.mktemp("kernel")))
    k.run(
        f"%load_ext nbfetch\nimport nbfetch\nbase = {server.url!r}\n"
        "small = nbfetch.AsyncClient(limits=nbfetch.Limits(max_body_size=100))\n"
        # getaddrinfo's answer for an unknown name, without a DNS query leaving the machine
        "import socket\n"
        "async def _no_such_name(host, port):\n"
        "    raise socket.gaierror(socket.EAI_NONAME, 'Name or service not known')\n"
        "noname = nbfetch.AsyncClient(resolver=_no_such_name)"
    )
    yield k
    k.shutdown()


def output_lines(kernel, msg_id) -> list[str]:
    lines = []
    for m in kernel.messages(msg_id):
        if m["msg_type"] == "error":
            text = "\n".join(m["content"]["traceback"])
        elif m["msg_type"] == "stream":
            text = m["content"]["text"].rstrip("\n")
        else:
            continue
        lines += ANSI.sub("", text).split("\n")
    return lines


def failing(kernel, code, timeout=30):
    """Run a cell that must fail; returns (reply, its output lines)."""
    msg_id = kernel.submit(code)
    reply = kernel.wait(msg_id, timeout)
    assert reply["status"] == "error", code
    return reply, output_lines(kernel, msg_id), msg_id


def view_texts(kernel, msg_id) -> str:
    """All HTML the cell's widgets showed (first states and updates)."""
    ids = {
        w["comm_id"]: w["state"].get("value", "")
        for w in kernel.widget_models("HTMLModel")
        if w["msg"]["parent_header"]["msg_id"] == msg_id
    }
    values = list(ids.values())
    for comm_id in ids:
        values += [
            str(m["content"]["data"]["state"].get("value", "")) for m in kernel.updates(comm_id)
        ]
    return "\n".join(values)


def cancel_buttons(kernel, msg_id) -> list[str]:
    return [
        w["comm_id"]
        for w in kernel.widget_models("ButtonModel")
        if w["msg"]["parent_header"]["msg_id"] == msg_id
    ]


def disabled(kernel, comm_id) -> bool:
    return any(m["content"]["data"]["state"].get("disabled") for m in kernel.updates(comm_id))


# -- await nbfetch.fetch: type, message, url, phase, hint, "%tb" (N = 5) -------------------
@pytest.mark.parametrize(
    ("code", "ename", "hint"),
    [
        ("await noname.fetch('http://nosuch.invalid/')", "ConnectError", "does not resolve"),
        ("await nbfetch.fetch('http://127.0.0.1:{port}/')", "ConnectError", "nothing listens"),
        (
            "await nbfetch.fetch(base + '/delay/3', read_timeout=0.2)",
            "FetchTimeout",
            "read_timeout is 0.2 s",
        ),
        ("await small.fetch(base + '/bytes/1000')", "TooLargeError", "max_body_size=100"),
    ],
    ids=["unresolvable", "refused", "timeout", "too-large"],
)
def test_an_awaited_fetch_error_is_a_few_lines_with_a_hint(kernel, refused_port, code, ename, hint):
    reply, lines, _ = failing(kernel, code.format(port=refused_port))
    assert reply["ename"] == ename
    assert len(lines) <= 5, lines
    assert lines[0].startswith(f"{ename}: ")
    assert any(line.strip().startswith("url:") for line in lines)
    assert hint in "\n".join(lines)
    assert lines[-1].strip() == "full traceback: %tb"
    assert "__nbfetch" not in "\n".join(lines) and "File " not in "\n".join(lines)


@pytest.mark.parametrize(
    "code", ["await noname.fetch('http://nosuch.invalid/')", "%fetch http://127.0.0.1:1/"]
)
def test_tb_shows_the_whole_stack_afterwards(kernel, code):
    failing(kernel, code)
    msg_id = kernel.submit("%tb")
    kernel.wait(msg_id)
    text = "\n".join(output_lines(kernel, msg_id))
    # several frames, down into the connector that raised it
    assert text.count("File ") >= 3, text
    assert "connect.py" in text and "ConnectError" in text


# -- %fetch: the view shows the error, the cell adds one line (N = 1) ----------------------
@pytest.mark.parametrize(
    ("url", "ename", "in_view"),
    [
        ("http://127.0.0.1:{port}/", "ConnectError", "nothing listens"),
        ("htp://x", "InvalidRequest", "unsupported URL scheme"),
    ],
    ids=["refused", "typo-scheme"],
)
def test_fetch_magic_error_is_one_line_and_the_view_finishes(
    kernel, refused_port, url, ename, in_view
):
    reply, lines, msg_id = failing(kernel, f"%fetch {url.format(port=refused_port)}")
    assert reply["ename"] == ename  # the cell fails: Run All stops here
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"{ename}: ") and "%tb" in lines[0]
    shown = view_texts(kernel, msg_id)
    assert ename in shown and in_view in shown  # the error state, with its hint
    (button,) = cancel_buttons(kernel, msg_id)
    assert disabled(kernel, button)  # no live Cancel left on a finished view


def test_fetch_magic_too_large_is_one_line(kernel):
    kernel.run("nbfetch.default_client().limits.max_body_size = 100")
    try:
        reply, lines, _ = failing(kernel, "%fetch {base}/bytes/1000")
    finally:
        kernel.run("nbfetch.default_client().limits.max_body_size = 100 * 1024**2")
    assert reply["ename"] == "TooLargeError" and len(lines) == 1, lines
    assert "max_body_size" in lines[0]


# -- %fetch argument errors: no view, the error and a pointer to --help (N = 3) ------------
def test_a_mistyped_option_is_two_lines_and_no_view(kernel):
    reply, lines, msg_id = failing(kernel, "%fetch --nosuch {base}/get")
    assert reply["ename"] == "InvalidRequest"
    assert len(lines) <= 3, lines
    assert lines[0] == "InvalidRequest: %fetch: unrecognized arguments: --nosuch"
    assert "see %fetch --help" in lines[1]
    assert not cancel_buttons(kernel, msg_id)


def test_an_undefined_variable_is_named_before_anything_is_sent(kernel, server):
    server.reset_stats()
    reply, lines, msg_id = failing(kernel, "%fetch {nosuchvar}/get")
    assert reply["ename"] == "InvalidRequest"
    assert reply["evalue"].startswith("%fetch: name 'nosuchvar' is not defined")
    assert len(lines) <= 3, lines
    assert not cancel_buttons(kernel, msg_id)
    reply, lines, _ = failing(kernel, "%fetch $nosuchvar/get")
    assert "name 'nosuchvar' is not defined" in reply["evalue"]
    assert server.stats["requests"] == 0


def test_json_braces_are_not_templates(kernel):
    kernel.run("""r = %fetch -q --json '{"a": 1}' {base}/post""")
    assert kernel.value("r.json()['json']") == "{'a': 1}"


# -- Kernel → Interrupt: one line, the next cell runs (N = 1) ------------------------------
def test_interrupt_during_a_fetch_is_one_line(kernel):
    msg_id = kernel.submit("r = %fetch {base}/drip?numbytes=10&duration=8&chunks=10")
    kernel.wait_for(
        lambda m: (
            m["msg_type"] == "comm_msg"
            and m["parent_header"].get("msg_id") == msg_id
            and "200 OK" in str(m["content"]["data"].get("state", {}).get("value", ""))
        ),
        timeout=15,
    )
    kernel.km.interrupt_kernel()
    reply = kernel.wait(msg_id, timeout=10)
    lines = output_lines(kernel, msg_id)
    assert reply["status"] == "error" and reply["ename"] == "FetchCancelled"
    assert lines == [f"FetchCancelled: {reply['evalue']}"]
    assert reply["evalue"].startswith("interrupted [download] (http://127.0.0.1:")
    assert kernel.value("1 + 1") == "2"


def test_interrupt_during_an_awaited_fetch_is_one_line(kernel):
    msg_id = kernel.submit(
        "r = await nbfetch.fetch(base + '/drip?numbytes=10&duration=8&chunks=10',"
        " trace=lambda e: e.name == 'response.headers' and print('headers'))"
    )
    kernel.wait_for(
        lambda m: (
            m["msg_type"] == "stream"
            and m["parent_header"].get("msg_id") == msg_id
            and "headers" in m["content"]["text"]
        ),
        timeout=15,
    )
    kernel.km.interrupt_kernel()
    reply = kernel.wait(msg_id, timeout=10)
    assert reply["ename"] == "CancelledError"
    lines = [line for line in output_lines(kernel, msg_id) if line != "headers"]
    assert lines == [
        "CancelledError: the fetch was cancelled (Kernel → Interrupt?); %tb: full traceback"
    ]
    assert kernel.value("1 + 1") == "2"


def test_a_cancellation_elsewhere_keeps_its_traceback(kernel):
    _, lines, _ = failing(
        kernel, "import asyncio\nasyncio.current_task().cancel()\nawait asyncio.sleep(1)"
    )
    assert len(lines) > 3 and "CancelledError" in lines[1], lines  # IPython's own


def test_a_cancellation_that_is_not_ours_propagates(kernel):
    """An ``asyncio.timeout`` around the fetch cancels it: that is a TimeoutError
    for the code around it, not an nbfetch error."""
    reply, _, _ = failing(
        kernel,
        "import asyncio\n"
        "async with asyncio.timeout(0.3):\n"
        "    await __nbfetch_magics__.fetch_line('{base}/drip?numbytes=5&duration=5&chunks=5')",
    )
    assert reply["ename"] == "TimeoutError"


# -- a custom exception handler already set is kept ---------------------------------------
def test_a_users_own_exception_handler_is_not_clobbered(tmp_path):
    k = Kernel(cwd=str(tmp_path))
    try:
        k.run(
            "def mine(shell, etype, value, tb, tb_offset=None):\n"
            "    print('mine:', value)\n"
            "get_ipython().set_custom_exc((ZeroDivisionError,), mine)\n"
            "import nbfetch"
        )
        msg_id = k.submit("1 / 0")
        k.wait(msg_id)
        assert output_lines(k, msg_id) == ["mine: division by zero"]
        _, lines, _ = failing(k, "await nbfetch.fetch('http://127.0.0.1:1/')")
        assert lines[0].startswith("ConnectError: ") and len(lines) <= 5, lines
        k.run("%load_ext nbfetch")  # installing again changes nothing
        msg_id = k.submit("1 / 0")
        k.wait(msg_id)
        assert output_lines(k, msg_id) == ["mine: division by zero"]
    finally:
        k.shutdown()


# -- the hints themselves (core data, no IPython) -----------------------------------------
@pytest.fixture(scope="module")
def ca():
    return trustme.CA()


@pytest.fixture(scope="module")
def tls_server(ca):
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost", "127.0.0.1", "demo.test").configure_cert(ctx)
    s = DemoServer(ssl_context=ctx).start()
    yield s
    s.stop()


@pytest.mark.anyio
async def test_tls_hints_name_the_cause(tls_server, ca, tmp_path):
    url = f"https://demo.test:{tls_server.port}/get"
    async with AsyncClient(hostname_mapping={"demo.test": "127.0.0.1"}) as c:
        with pytest.raises(nbfetch.TLSError) as unknown_ca:
            await c.fetch(url)
    assert "not signed by a CA this machine trusts" in unknown_ca.value.hint
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    mapping = {"wrong.test": "127.0.0.1"}
    async with AsyncClient(verify=str(ca_file), hostname_mapping=mapping) as c:
        with pytest.raises(nbfetch.TLSError) as mismatch:
            await c.fetch(f"https://wrong.test:{tls_server.port}/get")
    assert "for another host name" in mismatch.value.hint


def test_the_command_prints_the_hint(refused_port, capsys):
    assert main([f"http://127.0.0.1:{refused_port}/"]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("nbfetch: ConnectError: cannot connect")
    assert (
        err[1]
        == "nbfetch: hint: nothing listens on that port: is the server running, is the port right?"
    )
    assert main(["--nosuch", "http://127.0.0.1/"]) == 2
    assert capsys.readouterr().err.splitlines()[1] == "nbfetch: hint: see nbfetch --help"


# -- what the second review found -------------------------------------------------------
def test_interrupt_while_waiting_for_the_head_ends_at_once(kernel):
    """The loop sleeps in select() while a fetch waits: the interrupt must wake
    it, not wait for the server's answer (30 s away)."""
    msg_id = kernel.submit("r = %fetch {base}/delay/30")
    kernel.wait_for(
        lambda m: (
            m["msg_type"] == "comm_msg"
            and m["parent_header"].get("msg_id") == msg_id
            and "request.body_sent" in str(m["content"]["data"].get("state", {}).get("value", ""))
        ),
        timeout=15,
    )
    kernel.km.interrupt_kernel()
    reply = kernel.wait(msg_id, timeout=20)  # long before the 30 s answer
    assert reply["ename"] == "FetchCancelled"
    assert reply["evalue"].startswith("interrupted [wait]")


def test_interrupt_of_a_fetch_inside_a_def_is_one_line_and_stops_it(kernel, server):
    kernel.run(
        "def g():\n    r = %fetch -q {base}/drip?numbytes=8&duration=8&chunks=8\n    return r"
    )
    # an earlier test's request may still be served (the server finishes a
    # /delay its client left): count from what is in flight now
    before = server.stats["in_flight"]
    msg_id = kernel.submit("rr = g()")
    deadline = time.monotonic() + 15
    while server.stats["in_flight"] <= before and time.monotonic() < deadline:
        kernel.pump_for(0.05)
    kernel.km.interrupt_kernel()
    reply = kernel.wait(msg_id, timeout=20)
    assert reply["ename"] == "FetchCancelled" and reply["evalue"].startswith("interrupted")
    assert output_lines(kernel, msg_id) == [f"FetchCancelled: {reply['evalue']}"]
    # the fetch stopped with the cell: its connection is gone long before 8 s
    deadline = time.monotonic() + 5
    while server.stats["in_flight"] > before and time.monotonic() < deadline:
        kernel.pump_for(0.05)
    assert server.stats["in_flight"] <= before
    assert kernel.value("1 + 1") == "2"


def test_a_users_own_cancelled_error_keeps_its_message_and_traceback(kernel):
    def cb_code(where):
        return (
            "import asyncio\n"
            "def boom(chunk):\n"
            "    raise asyncio.CancelledError('mine: stop here')\n"
            f"await nbfetch.fetch(base + '/chunked?count=3', {where}=boom)"
        )

    _, lines, _ = failing(kernel, cb_code("on_chunk"))
    assert len(lines) > 3 and any("mine: stop here" in line for line in lines), lines
