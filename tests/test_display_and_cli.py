"""HTML safety of everything shown, and the terminal CLI."""

import subprocess
import sys

import pytest
from conftest import reply

import nbfetch
from nbfetch import AsyncClient
from nbfetch.notebook.display import response_mimebundle
from nbfetch.notebook.live import ResponseView, show_events

pytestmark = [pytest.mark.anyio, pytest.mark.loop_watchdog]

HOSTILE = '<script>alert(1)</script>"><img src=x onerror=alert(2)>'


def hostile_server(raw_server, content_type=b"text/html"):
    body = HOSTILE.encode() * 3

    def handler(conn, server):
        server.read_request(conn)
        reply(
            conn,
            b"HTTP/1.1 200 <script>alert(3)</script>\r\n"
            b"X-Evil: " + HOSTILE.encode() + b"\r\n"
            b"Content-Type: " + content_type + b"\r\n"
            b"Content-Length: %d\r\n\r\n" % len(body) + body,
        )

    return raw_server(handler)


@pytest.mark.parametrize("ctype", [b"text/html", b"application/json", b"application/octet-stream"])
async def test_response_html_escapes_everything_the_server_sent(raw_server, ctype):
    srv = hostile_server(raw_server, ctype)
    async with AsyncClient() as c:
        r = await c.fetch(srv.url)
    html = response_mimebundle(r)["text/html"]
    assert "<script" not in html.lower()
    assert "<img src=x onerror" not in html
    assert "&lt;script&gt;alert(3)&lt;/script&gt;" in html  # the reason phrase
    assert "&quot;&gt;&lt;img src=x onerror=alert(2)&gt;" in html  # the header value


async def test_live_view_widgets_escape_everything(raw_server):
    srv = hostile_server(raw_server)
    view = ResponseView("GET", srv.url + "/<b>")
    async with AsyncClient() as c:
        r = await c.fetch(srv.url, trace=view.trace)
    view.attach_response(r)
    for widget in (
        view.status_html,
        view.headers_html,
        view.events_html,
        view.body_html,
        view.chunks_html,
    ):
        assert "<script" not in widget.value.lower()
        assert "<img src=x" not in widget.value
    assert "&lt;script&gt;" in view.status_html.value + view.headers_html.value
    assert "<script" not in show_events(r).value.lower()


async def test_error_messages_quoting_server_bytes_are_escaped(raw_server):
    # A chunk extension h11 lets through and the chunk view refuses: its error
    # quotes the size line (h11's own errors no longer quote what it refused).
    def handler(conn, server):
        server.read_request(conn)
        reply(
            conn,
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"5;<img src=x onerror=alert(4)>\r\nhello\r\n0\r\n\r\n",
        )

    srv = raw_server(handler)
    view = ResponseView("GET", srv.url)
    async with AsyncClient() as c:
        with pytest.raises(nbfetch.ProtocolError, match="malformed chunk-size line"):
            await c.fetch(srv.url, trace=view.trace)
    assert "ProtocolError" in view.error_html.value
    assert "&lt;img src=x onerror=alert(4)&gt;" in view.error_html.value
    assert "<img" not in view.error_html.value


async def test_images_are_inlined_only_as_data_uris(raw_server):
    svg = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'

    def handler(conn, server):
        server.read_request(conn)
        reply(
            conn,
            b"HTTP/1.1 200 OK\r\nContent-Type: image/svg+xml\r\nContent-Length: %d\r\n\r\n"
            % len(svg)
            + svg,
        )

    srv = raw_server(handler)
    async with AsyncClient() as c:
        r = await c.fetch(srv.url)
    html = response_mimebundle(r)["text/html"]
    assert '<img src="data:image/svg+xml;base64,' in html and "<script" not in html


async def test_long_bodies_are_truncated_in_the_repr(demo):
    from nbfetch.notebook.snapshot import MAX_PREVIEW

    sizes = []
    async with AsyncClient() as c:
        for lines in (2000, 8000):
            r = await c.fetch(demo.url + f"/stream/{lines}")
            bundle = response_mimebundle(r)
            assert "truncated" in bundle["text/html"]
            sizes.append((len(r.body), len(bundle["text/html"]), len(bundle["text/plain"])))
    (body, html, text), (big_body, big_html, big_text) = sizes
    assert big_body > 3.5 * body > 1_400_000
    # Bounded whatever the body's size: four times the body, the same repr
    # (the preview is cut at MAX_PREVIEW characters; escaping at most sextuples
    # one, "&quot;"; the chunk and event tables have at most 200 rows each).
    assert big_html < 1.05 * html < 6 * MAX_PREVIEW + 60_000
    assert big_text < 1.05 * text < 10_000


async def test_binary_bodies_show_as_hex(demo):
    async with AsyncClient() as c:
        r = await c.fetch(demo.url + "/bytes/1000")
    html = response_mimebundle(r)["text/html"]
    assert "00000000  " in html and "1,000 bytes in all" in html


def run_cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "nbfetch", *args], capture_output=True, text=True, timeout=30
    )


def test_cli_get_with_timing(demo):
    out = run_cli("--timing", demo.url + "/get")
    assert out.returncode == 0
    assert out.stdout.startswith("HTTP/1.1 200 OK\n")
    assert '"url": "' + demo.url + '/get"' in out.stdout
    for phase in ("queue", "connect", "send", "wait", "download", "total"):
        assert f"  {phase}" in out.stdout


def test_cli_post_json_and_exit_codes(demo, tmp_path):
    out = run_cli("-X", "POST", "--json", '{"a": 1}', demo.url + "/post")
    assert out.returncode == 0 and '"a": 1' in out.stdout
    assert run_cli(demo.url + "/status/404").returncode == 4
    assert run_cli(demo.url + "/status/503").returncode == 5
    target = tmp_path / "out.bin"
    out = run_cli("-o", str(target), demo.url + "/bytes/5000")
    assert target.stat().st_size == 5000 and "saved 5,000 bytes" in out.stdout


def test_cli_errors_are_one_line(demo):
    out = run_cli("ftp://x/")
    assert out.returncode == 2 and out.stderr.startswith(
        "nbfetch: InvalidRequest: unsupported URL scheme"
    )
    out = run_cli("--read-timeout", "0.2", demo.url + "/delay/2")
    assert out.returncode == 1 and "FetchTimeout" in out.stderr and "[wait]" in out.stderr


def test_cli_stream_shows_chunks_as_they_come(demo):
    out = run_cli("--stream", demo.url + "/stream/3")
    assert out.returncode == 0 and out.stdout.count('"id": ') == 3


def test_console_script_is_installed():
    import shutil

    assert shutil.which("nbfetch") is not None


def test_parse_options_maps_curl_flags():
    from nbfetch.text.options import parse_options

    o = parse_options(
        "-X put -H 'A: 1' -H 'B: two words' -d @/dev/null --no-follow --timeout 3 -u me:pw -k http://h/"
    )
    assert o.method == "PUT" and o.url == "http://h/"
    assert o.fetch_kwargs["headers"][:2] == [("A", "1"), ("B", "two words")]
    assert o.fetch_kwargs["follow_redirects"] is False and o.fetch_kwargs["request_timeout"] == 3
    assert o.fetch_kwargs["auth"] == ("me", "pw") and o.client_kwargs == {"verify": False}
    with pytest.raises(nbfetch.InvalidRequest, match="Name: value"):
        parse_options("-H nocolon http://h/")
