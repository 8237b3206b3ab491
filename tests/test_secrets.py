"""Credentials never leave the client as text.

For each writer of text (error message, ``str``/``repr`` of an error, ``error``
event, ``r.events`` details and reprs, ``repr(response)``, HAR, ``events_frame``,
the rich display, the live view, the CLI, log records) the password, and the
Basic token built from it, must not appear: for a URL the parser rejects, a
redirect whose Location carries userinfo, and credentials given with ``auth=``.
The wire still carries the real credentials.
"""

import asyncio
import base64
import html
import html.parser
import io
import json
import logging
from urllib.parse import quote, quote_plus

import pytest
from conftest import answer_each, reply
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import nbfetch
from nbfetch import AsyncClient, InvalidRequest, RedirectError
from nbfetch.cli import main, run_cli
from nbfetch.core import redact
from nbfetch.core.headers import Headers
from nbfetch.core.redact import Secrets, is_secret_name, redact_header, redact_url
from nbfetch.core.urls import URL
from nbfetch.dask import FetchResult
from nbfetch.notebook.display import response_mimebundle
from nbfetch.notebook.live import ResponseView
from nbfetch.notebook.many_view import ManyView
from nbfetch.text.options import parse_options
from nbfetch.text.render import render_text

pytestmark = pytest.mark.anyio

USER = "alice-login"
PASSWORD = "s3cretPW7f2a"
TOKEN = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
SESSION = "sessionid9b41"
SECRETS = (PASSWORD, TOKEN)
#: Writers that hide cookies too. The CLI hides the Set-Cookie a server sent
#: unless --show-secrets; the rich display is the notebook layer's (VIEWS).
COOKIE_FREE = (
    *("history", "events repr", "event details", "request headers", "events_frame", "har"),
    "cli",
)


def assert_no_secret(texts: dict[str, str], secrets=SECRETS) -> None:
    leaks = {w: found for w, text in texts.items() if (found := [s for s in secrets if s in text])}
    assert not leaks, f"secrets leaked: {leaks}"


def assert_no_credentials(texts: dict[str, str], *extra: str) -> None:
    assert_no_secret(texts, (*SECRETS, *extra))
    assert_no_secret({where: texts[where] for where in COOKIE_FREE}, (SESSION,))


def view_html(view: ResponseView) -> str:
    return "".join(w.value for name, w in vars(view).items() if name.endswith("_html"))


def response_texts(response, opts=None) -> dict[str, str]:
    """Every text form of a finished fetch."""
    opts = opts or parse_options([str(response.url), "-i", "--timing"])
    return {
        "repr(response)": repr(response),
        "str(url)": str(response.url),
        "history": repr(response.history),
        "events repr": repr(response.events),
        "event details": "\n".join(str(e.details) for e in response.events),
        "event as_dict": json.dumps([e.as_dict() for e in response.events], default=str),
        "request headers": repr(response.request.headers),
        "events_frame": response.events_frame().to_csv(),
        "har": json.dumps(response.to_har()),
        "mimebundle": json.dumps(response_mimebundle(response)),
        "cli": render_text(response, opts, head=True),
    }


def auth_line(request: bytes) -> bytes | None:
    for line in request.split(b"\r\n"):
        if line.lower().startswith(b"authorization:"):
            return line.split(b":", 1)[1].strip()
    return None


# -- the one redaction function ----------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "shown"),
    [
        (f"http://{USER}:{PASSWORD}@h/x", "http://***@h/x"),
        (f"http://{USER}:{PASSWORD}@[bad/x", "http://***@[bad/x"),  # the parser rejects it
        (f"http://{USER}:{PASSWORD}@h:bad/", "http://***@h:bad/"),
        (f"http://{USER}:pa/{PASSWORD}@h/x", "http://***@h/x"),  # an unencoded "/"
        (f"http://{USER}:pa#{PASSWORD}@h/", "http://***@h/"),
        (f"http://{USER}:p@{PASSWORD}@h/", "http://***@h/"),  # an unencoded "@"
        (f"{USER}:{PASSWORD}@h/x", "***@h/x"),  # no scheme
        (f"http://{PASSWORD}@h/", "http://***@h/"),  # a token as the user name
        # nothing to hide: unchanged
        ("http://medium.com/@alice/post", "http://medium.com/@alice/post"),
        ("http://[::1]:8080/@a", "http://[::1]:8080/@a"),
        ("http://h/?to=a@b", "http://h/?to=a@b"),
        ("", ""),
    ],
)
def test_redact_url_hides_userinfo_of_any_string(text, shown):
    assert redact_url(text) == shown


def test_redact_header_keeps_the_scheme_and_redacts_location_userinfo():
    assert redact_header("Authorization", f"Basic {TOKEN}") == "Basic ***"
    assert redact_header("proxy-authorization", "Bearer abc") == "Bearer ***"
    assert redact_header("Cookie", f"sid={SESSION}") == "***"
    assert redact_header("Set-Cookie", f"sid={SESSION}", hidden=frozenset()) == f"sid={SESSION}"
    assert redact_header("Location", f"http://u:{PASSWORD}@h/", hidden=frozenset()) == (
        "http://***@h/"
    )
    assert redact_header("Content-Type", "text/plain") == "text/plain"


def test_url_keeps_credentials_for_the_wire_and_hides_them_in_text():
    u = URL.parse(f"http://{USER}:{PASSWORD}@127.0.0.1/x")
    assert (u.username, u.password) == (USER, PASSWORD)
    assert str(u) == "http://***@127.0.0.1/x" and USER not in repr(u)
    # equality and hashing see the credentials, which the text does not show
    other = URL.parse(f"http://{USER}:other@127.0.0.1/x")
    assert u != other and str(u) == str(other)
    assert u == f"http://{USER}:{PASSWORD}@127.0.0.1/x" and u != "http://127.0.0.1/x"


def test_dask_fetch_result_repr_redacts_the_url():
    result = FetchResult(url=f"http://{USER}:{PASSWORD}@h/", error="x")
    assert PASSWORD not in repr(result) and "http://***@h/" in repr(result)
    assert result.url == f"http://{USER}:{PASSWORD}@h/"  # the caller's own string, as given


# -- a URL the parser rejects ------------------------------------------------------------------
REJECTED = [
    f"http://{USER}:{PASSWORD}@[bad/x",
    f"http://{USER}:{PASSWORD}@[::1/x",
    f"http://{USER}:{PASSWORD}@h o/",
    f"http://{USER}:{PASSWORD}@h:99999/",
    f"http://{USER}:{PASSWORD}@h<x>/",
    f"http://{USER}:{PASSWORD}@h\r\nX-Injected: 1/",
    f"ftp://{USER}:{PASSWORD}@h/",
    f"{USER}:{PASSWORD}@h/x",  # no scheme: "alice-login" is not a scheme to echo
    f"http://{USER}:pa/{PASSWORD}@h/x",  # unencoded "/": the "port" is the password
]


@pytest.mark.parametrize("url", REJECTED)
async def test_a_rejected_url_never_shows_the_password(url):
    async with AsyncClient() as client:
        with pytest.raises(InvalidRequest) as info:
            await client.fetch(url)
    exc = info.value
    texts = {
        "str(exc)": str(exc),
        "repr(exc)": repr(exc),
        "exc.url": str(exc.url),
        "exc.message": exc.message,
        "live view": view_html(ResponseView("GET", url)),
        "many view": ManyView([url], max_clients=1).chart.value,
    }
    assert_no_secret(texts, (PASSWORD, USER))
    assert "***@" in exc.url  # the reader sees that credentials were given


def test_a_rejected_url_in_the_cli_never_shows_the_password(capsys):
    assert main([f"http://{USER}:{PASSWORD}@[bad/x"]) == 2
    err = capsys.readouterr().err
    assert "InvalidRequest" in err and "http://***@[bad/x" in err and PASSWORD not in err


# -- a redirect whose Location carries userinfo --------------------------------------------------
def redirecting_server(raw_server, location: bytes):
    """``/start`` redirects to ``location`` ({port} filled in); anything else is 200."""

    def handler(conn, server):
        while True:
            head = server.read_request(conn)
            if not head:
                return
            if head.startswith(b"GET /start "):
                target = location.replace(b"{port}", str(server.port).encode())
                reply(conn, b"HTTP/1.1 302 Found\r\nLocation: " + target + b"\r\n")
                reply(conn, b"Content-Length: 0\r\n\r\n")
            else:
                reply(
                    conn,
                    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                    b"Set-Cookie: sid=" + SESSION.encode() + b"; HttpOnly\r\n"
                    b"Content-Length: 2\r\n\r\nok",
                )

    return raw_server(handler)


async def test_a_redirect_location_with_userinfo_is_followed_but_never_shown(raw_server):
    location = f"http://{USER}:{PASSWORD}@127.0.0.1:{{port}}/final".encode()
    srv = redirecting_server(raw_server, location)
    view = ResponseView("GET", srv.url + "/start")
    async with AsyncClient() as client:
        r = await client.fetch(srv.url + "/start", trace=view.trace)
        unfollowed = await client.fetch(srv.url + "/start", follow_redirects=False)
    assert r.status_code == 200 and r.url.password == PASSWORD
    # the wire carries the credentials of the Location (same origin)
    assert auth_line(srv.received[1]) == f"Basic {TOKEN}".encode()
    texts = response_texts(r)
    texts["live view"] = view_html(view)
    texts["302 with -i"] = render_text(unfollowed, parse_options([srv.url, "-i"]), head=True)
    texts["302 rich display"] = response_mimebundle(unfollowed)["text/html"]
    assert_no_credentials(texts, USER)
    assert "http://***@127.0.0.1" in texts["har"] and "Basic ***" in texts["har"]
    assert f"Location: http://***@127.0.0.1:{srv.port}/final" in texts["302 with -i"]


async def test_a_malformed_location_with_userinfo_fails_without_showing_it(raw_server):
    srv = redirecting_server(raw_server, f"http://{USER}:{PASSWORD}@[bad/x".encode())
    events, view = [], ResponseView("GET", srv.url + "/start")

    def trace(event):
        events.append(event)
        view.trace(event)

    async with AsyncClient() as client:
        with pytest.raises(RedirectError) as info:
            await client.fetch(srv.url + "/start", trace=trace)
    (error,) = [e for e in events if e.name == "error"]
    texts = {
        "str(exc)": str(info.value),
        "repr(exc)": repr(info.value),
        "error event": repr(error),
        "error details": json.dumps(error.details),
        "events": repr(events),
        "live view": view_html(view),
    }
    assert_no_secret(texts)
    assert "http://***@[bad/x" in error.details["message"]


# -- credentials given with auth= or in the URL ---------------------------------------------------
async def test_auth_credentials_are_sent_but_never_shown(raw_server):
    srv = redirecting_server(raw_server, b"/final")  # a relative redirect, same origin
    async with AsyncClient() as client:
        r = await client.fetch(
            srv.url + "/start", auth=(USER, PASSWORD), headers={"Cookie": f"sid={SESSION}"}
        )
    assert [auth_line(req) for req in srv.received] == [f"Basic {TOKEN}".encode()] * 2
    assert_no_credentials(response_texts(r))


async def test_url_userinfo_is_sent_but_never_shown(raw_server):
    srv = redirecting_server(raw_server, b"/final")
    url = f"http://{USER}:{PASSWORD}@127.0.0.1:{srv.port}/start"
    out = io.StringIO()
    opts = parse_options([url, "--timing"])
    async with AsyncClient() as client:
        r = await client.fetch(url)
    assert auth_line(srv.received[0]) == f"Basic {TOKEN}".encode()
    await run_cli(opts, out=out)
    texts = response_texts(r, opts)
    texts["cli output"] = out.getvalue()
    assert_no_credentials(texts, USER)


async def test_panel_history_and_view_never_show_url_credentials(raw_server):
    import nbfetch

    srv = redirecting_server(raw_server, b"/final")
    async with AsyncClient() as client:
        url = f"http://{USER}:{PASSWORD}@127.0.0.1:{srv.port}/start"
        panel = nbfetch.FetchPanel(url=url, client=client)
        response = await panel.send()
    assert response.status_code == 200
    texts = {"history": repr(panel.history.options), "view": view_html(panel._views[-1])}
    assert_no_secret(texts, (PASSWORD, USER))


async def test_har_and_events_frame_keep_the_credentials_only_when_asked(raw_server):
    srv = redirecting_server(raw_server, b"/final")
    async with AsyncClient() as client:
        r = await client.fetch(
            srv.url + "/start",
            auth=(USER, PASSWORD),
            headers={"Cookie": f"sid={SESSION}", "Proxy-Authorization": "Basic proxytoken"},
        )
    kept = json.dumps(r.to_har(redact=False))
    for secret in (TOKEN, SESSION, "proxytoken"):
        assert secret in kept
    redacted = json.dumps(r.to_har())
    for secret in (TOKEN, SESSION, "proxytoken"):
        assert secret not in redacted
    assert SESSION in r.events_frame(redact=False).to_csv()
    assert SESSION not in r.events_frame().to_csv()


async def test_each_url_object_sends_its_own_credentials(raw_server):
    """A URL's text hides its credentials, so it cannot key the prepared-request cache."""
    srv = redirecting_server(raw_server, b"/final")
    async with AsyncClient() as client:
        for password in ("first", "second"):
            await client.fetch(URL.parse(f"http://{USER}:{password}@127.0.0.1:{srv.port}/x"))
    sent = [auth_line(req) for req in srv.received]
    assert sent == [
        b"Basic " + base64.b64encode(f"{USER}:{p}".encode()) for p in ("first", "second")
    ]


# -- the Tornado adapter's log records ------------------------------------------------------------
async def test_tornado_adapter_logs_no_credentials(raw_server, caplog):
    pytest.importorskip("tornado")
    from tornado.httpclient import HTTPClientError

    import nbfetch.tornado

    def garbage(conn, server):  # Tornado's convention: log it and fail with 599
        server.read_request(conn)
        reply(conn, b"NOT HTTP AT ALL\r\n\r\n")

    srv = raw_server(garbage)
    client = nbfetch.tornado.AsyncHTTPClient(force_instance=True)
    try:
        with caplog.at_level(logging.INFO, logger="tornado.general"):
            with pytest.raises(HTTPClientError):
                await client.fetch(f"http://{USER}:{PASSWORD}@127.0.0.1:{srv.port}/x")
            with pytest.raises(ValueError) as info:
                await client.fetch(f"http://{USER}:{PASSWORD}@[bad/x")
    finally:
        client.close()
    assert "Malformed HTTP message from http://***@127.0.0.1" in caplog.text
    assert_no_secret({"log": caplog.text, "ValueError": str(info.value)})


@pytest.mark.parametrize(
    "argv",
    [
        ["-H", f"Authorization Bearer {PASSWORD}", "http://a.test/"],  # the colon forgotten
        ["-H", f"Cookie=session={PASSWORD}", "http://a.test/"],
        ["http://a.test/", f"http://user:{PASSWORD}@b.test/"],  # argparse: unrecognized
    ],
)
def test_option_errors_do_not_echo_credentials(argv):
    with pytest.raises(InvalidRequest) as exc:
        parse_options(argv, prog="%fetch")
    assert PASSWORD not in str(exc.value) and PASSWORD not in repr(exc.value)


# -- secret query values, headers and echoed bodies (issue 15, item 10) --------------------------
API_KEY = "k3y-Zq81aV"
BEARER = "tok-7Hq2Lr9w"


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        ("api_key", True),
        ("ACCESS_TOKEN", True),  # an all-caps name is words too
        ("APIKey", True),
        ("X-Amz-Signature", True),
        ("api%5Fkey", True),  # percent-encoded
        ("client_secret", True),
        ("refresh_tokens", True),
        ("keyword", False),
        ("monkey", False),
        ("page", False),
    ],
)
def test_is_secret_name(name, secret):
    assert is_secret_name(name) is secret


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("http://h/?a=1&token=x;sig=y", "http://h/?a=1&token=***;sig=***"),  # ";" separates too
        ("http://h/?token=a&token=b", "http://h/?token=***&token=***"),  # repeated
        ("http://h/?api_key=a+b%2Bc&q=1", "http://h/?api_key=***&q=1"),
        ("http://h/?token==abc", "http://h/?token=***"),
        ("http://h/cb#access_token=x&state=1", "http://h/cb#access_token=***&state=1"),  # OAuth
        ("http://h/a?q=key#sig=x", "http://h/a?q=key#sig=***"),
        ("http://h/?keyword=python&token=", "http://h/?keyword=python&token="),
    ],
)
def test_redact_url_masks_secret_values_in_query_and_fragment(text, shown):
    assert redact_url(text) == shown


_VALUE = st.text(st.characters(exclude_characters="&;#\r\n", codec="utf-8"), min_size=1)


@settings(max_examples=200, deadline=None)
@given(name=st.sampled_from(["api_key", "token", "X-Signature", "password"]), value=_VALUE)
def test_redact_url_masks_any_secret_value(name, value):
    for written in (value, quote(value, safe=""), quote_plus(value)):
        assert redact_url(f"http://h/p?q=1&{name}={written}#f") == f"http://h/p?q=1&{name}=***#f"


@settings(max_examples=200, deadline=None)
@given(value=st.text(st.characters(codec="utf-8", exclude_characters="*"), min_size=4))
def test_secrets_scrub_every_form_an_echo_gives_a_query_value(value):
    assume(value == value.strip())
    secrets = Secrets()
    secrets.add_url(URL.parse(f"http://h/get?api_key={quote_plus(value)}"))
    echo = (
        f'{{"args": {{"api_key": {json.dumps(value)}}}, "raw": {json.dumps(value, ensure_ascii=False)},'
        f' "url": "http://h/get?api_key={quote_plus(value)}"}} <td>{html.escape(value)}</td>'
    )
    scrubbed = secrets.scrub(echo)
    for form in (value, quote_plus(value), json.dumps(value)[1:-1], html.escape(value)):
        assert form not in scrubbed


def test_secrets_of_basic_digest_aws_cookies_and_named_headers():
    digest = "6629fae49393a05397450978507c4ef1"
    secrets = Secrets()
    secrets.add_headers(
        [
            ("Authorization", f"Basic {TOKEN}"),
            ("Proxy-Authorization", f'Digest username="u", realm="r", response="{digest}"'),
            ("authorization", "AWS4-HMAC-SHA256 Credential=AKIA4EXAMPLE/x, Signature=ab12cd34"),
            ("Cookie", f'a=val-1234; sid="{SESSION}"; loneval99'),
            ("Set-Cookie", "s2=srvcookie77; HttpOnly"),
            ("X-Api-Key", API_KEY),
            ("Content-Type", "application/json"),
        ]
    )
    body = (
        f'{{"user": "{USER}", "password": "{PASSWORD}", "auth": "Basic {TOKEN}",'
        f' "r": "{digest}", "sig": "ab12cd34", "cred": "AKIA4EXAMPLE/x", "c": "val-1234 {SESSION}'
        f' loneval99 srvcookie77", "k": "{API_KEY}", "ct": "application/json"}}'
    )
    scrubbed = secrets.scrub(body)
    for secret in (PASSWORD, TOKEN, digest, "ab12cd34", "AKIA4EXAMPLE", "val-1234", SESSION):
        assert secret not in scrubbed
    for secret in ("loneval99", "srvcookie77", API_KEY):
        assert secret not in scrubbed
    # Basic's user name is no secret, nor is an ordinary header value
    assert USER in scrubbed and "application/json" in scrubbed


def test_secret_named_headers_are_hidden_unless_asked():
    assert redact_header("X-Api-Key", API_KEY) == "***"
    assert redact_header("X-Auth-Token", "abc", hidden=frozenset()) == "abc"
    assert redact_header("Keep-Alive", "timeout=5") == "timeout=5"
    h = Headers([("X-Api-Key", API_KEY), ("Authorization", f"Bearer {BEARER}")])
    assert API_KEY not in repr(h) and BEARER not in repr(h) and "Bearer ***" in repr(h)
    # shown: a Location's query stays, its userinfo never does
    location = f"http://u:{PASSWORD}@h/?token=t0k"
    assert redact_header("Location", location, hidden=frozenset()) == "http://***@h/?token=t0k"
    assert redact_header("Location", location) == "http://***@h/?token=***"


def test_str_of_a_url_keeps_query_values_and_every_repr_masks_them():
    """str(URL) is what a program fetches next; reprs and errors are what a notebook saves."""
    u = URL.parse(f"http://127.0.0.1/get?page=2&api_key={API_KEY}")
    assert str(u) == f"http://127.0.0.1/get?page=2&api_key={API_KEY}"
    assert repr(u) == "URL('http://127.0.0.1/get?page=2&api_key=***')"
    exc = InvalidRequest("bad", url=u)
    assert API_KEY not in str(exc) and API_KEY not in repr(exc)


async def demo_fetch(demo, **kwargs):
    async with AsyncClient() as client:
        return await client.fetch(
            f"{demo.url}/get?page=2&api_key={API_KEY}",
            headers={"Authorization": f"Bearer {BEARER}", "X-Api-Key": API_KEY},
            **kwargs,
        )


async def test_an_echoing_server_cannot_make_any_text_form_show_the_secrets(demo):
    r = await demo_fetch(demo)
    assert API_KEY in r.text and BEARER in r.text  # /get echoed both
    (sent,) = [e for e in r.events if e.name == "request.headers_sent"]
    assert sent["headers"]["authorization"] == f"Bearer {BEARER}"  # the Headers as sent
    assert sent["headers"]["host"] == f"127.0.0.1:{demo.port}"
    texts = response_texts(r)
    del texts["str(url)"], texts["event as_dict"]  # programmatic: they keep the values
    del texts["mimebundle"]  # the notebook layer's (VIEWS)
    texts["request repr"] = repr(r.request)
    texts["cli -i --timing"] = render_text(r, parse_options([str(r.url), "-i"]), head=True)
    assert_no_secret(texts, (API_KEY, BEARER))
    assert "api_key=***" in texts["repr(response)"] and "Bearer ***" in texts["events repr"]
    har = r.to_har()["log"]["entries"][0]
    assert har["request"]["url"].endswith("?page=2&api_key=***")
    assert {"name": "api_key", "value": "***"} in har["request"]["queryString"]
    assert {"name": "page", "value": "2"} in har["request"]["queryString"]


async def test_har_keeps_query_values_form_fields_and_echoes_only_when_asked(demo):
    async with AsyncClient() as client:
        r = await client.fetch(
            f"{demo.url}/post?api_key={API_KEY}",
            "POST",
            body=f"user=al&password={PASSWORD}".encode(),
            headers={"Content-Type": "application/x-www-form-urlencoded", "Cookie": "sid=abcd1234"},
        )
    entry = r.to_har()["log"]["entries"][0]["request"]
    assert entry["postData"]["text"] == "user=al&password=***"
    assert {"name": "password", "value": "***"} in entry["postData"]["params"]
    assert entry["cookies"] == [{"name": "sid", "value": "***"}]
    assert_no_secret({"har": json.dumps(r.to_har())}, (API_KEY, PASSWORD, "abcd1234"))
    kept = json.dumps(r.to_har(redact=False))
    assert API_KEY in kept and PASSWORD in kept and "abcd1234" in kept


def test_show_secrets_reveals_in_the_cli_output(demo):
    url = f"{demo.url}/get?api_key={API_KEY}"
    argv = ["-i", "-H", f"Authorization: Bearer {BEARER}", url]

    def cli(argv) -> str:
        out = io.StringIO()
        assert asyncio.run(run_cli(parse_options(argv, prog="nbfetch"), out=out)) == 0
        return out.getvalue()

    masked = cli(argv)
    assert API_KEY not in masked and BEARER not in masked and '"api_key": "***"' in masked
    shown = cli(["--show-secrets", *argv])
    assert API_KEY in shown and BEARER in shown


async def test_a_set_cookie_is_masked_in_include_output_unless_shown(raw_server):
    srv = redirecting_server(raw_server, b"/final")
    async with AsyncClient() as client:
        r = await client.fetch(srv.url + "/final")
    assert "Set-Cookie: ***" in render_text(r, parse_options([srv.url, "-i"]), head=True)
    shown = render_text(r, parse_options([srv.url, "-i", "--show-secrets"]), head=True)
    assert f"Set-Cookie: sid={SESSION}; HttpOnly" in shown


# -- a real kernel: what a front end receives, and so what a notebook saves ----------------------
#: The cells read the secrets from the kernel's environment: iopub carries each
#: cell's source (execute_input), which must not be what leaks them.
KERNEL_CELLS = [
    '%fetch -H "Authorization: Bearer {tok}" "{base}/get?api_key={key}"',
    'r = await nbfetch.fetch(f"{base}/get?api_key={key}", headers={"Authorization": f"Bearer {tok}"})'
    "\ndisplay(r)",
    "r",
    "repr(r), r.request, r.events[-1]",
]


def iopub_leaks(messages: list[dict], secrets: tuple[str, ...]) -> dict[str, list[str]]:
    """Which message types (with the mime type or comm method) carry which secret."""
    leaks: dict[str, set[str]] = {}
    for m in messages:
        content = m["content"]
        kinds = [m["msg_type"]]
        if isinstance(content.get("data"), dict):
            kinds = [f"{m['msg_type']} {k}" for k in content["data"]] or kinds
        for kind in kinds:
            part = content["data"].get(kind.split(" ", 1)[-1]) if " " in kind else content
            text = json.dumps(part)
            for s in secrets:
                if s in text:
                    leaks.setdefault(kind, set()).add(s)
    return {k: sorted(v) for k, v in leaks.items()}


@pytest.mark.timeout(120)
def test_no_secret_reaches_the_front_end_of_a_real_kernel(demo_server, tmp_path, monkeypatch):
    from kernel import Kernel

    monkeypatch.setenv("NBFETCH_TEST_TOKEN", BEARER)
    monkeypatch.setenv("NBFETCH_TEST_KEY", API_KEY)
    k = Kernel(cwd=str(tmp_path))
    try:
        k.run(
            "%load_ext nbfetch\nimport os, nbfetch\n"
            f"base = {demo_server.url!r}\n"
            "tok, key = os.environ['NBFETCH_TEST_TOKEN'], os.environ['NBFETCH_TEST_KEY']"
        )
        for code in KERNEL_CELLS:
            k.run(code)
        k.pump_for(1.0)  # a view's last updates may follow its cell's reply
        leaks = iopub_leaks(k.iopub, (BEARER, API_KEY))
        assert k.value(f"{API_KEY!r} in r.text and {BEARER!r} in r.text") == "True"  # echoed
    finally:
        k.shutdown()
    assert not leaks, f"secrets on iopub: {leaks}"


async def test_event_describe_is_the_text_a_view_shows_of_event_details(demo):
    r = await demo_fetch(demo)
    text = "\n".join(e.describe() for e in r.events)
    assert_no_secret({"describe": text}, (API_KEY, BEARER))
    assert "api_key=***" in text and "Bearer ***" in text
    (sent,) = [e for e in r.events if e.name == "request.headers_sent"]
    assert sent.describe(skip=("headers",)) == f"method=GET, url={redact_url(r.url)}"


async def test_secret_fields_of_a_json_body_are_scrubbed_from_its_echo(demo):
    async with AsyncClient() as client:
        r = await client.fetch(
            f"{demo.url}/post",
            "POST",
            json={"user": "al", "auth": {"password": PASSWORD}, "tokens": ["tkn-aa11", 7]},
        )
    assert PASSWORD in r.text and "tkn-aa11" in r.text
    texts = {
        "har": json.dumps(r.to_har()),
        "cli": render_text(r, parse_options([str(r.url)]), head=False),
    }
    assert_no_secret(texts, (PASSWORD, "tkn-aa11"))
    assert '"user": "al"' in texts["cli"]


# -- text is scrubbed before it is cut, hex-dumped, quoted or escaped --------------------
ECHOED = "tok-R3view-0123456789abcdef"


def _rich(response) -> str:
    bundle = response_mimebundle(response)
    return bundle["text/plain"] + bundle["text/html"]


def _serve_once(raw_server, response: bytes):
    def handler(conn, server):
        server.read_request(conn)
        conn.sendall(response)

    return raw_server(handler)


async def test_an_error_that_quotes_an_echoed_secret_is_scrubbed(raw_server):
    # h11's message quotes the bad chunk-size line the server sent: not repeated
    # (and a secret in it would have been scrubbed)
    s = _serve_once(
        raw_server,
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz " + ECHOED.encode() + b"\r\n",
    )
    async with AsyncClient() as client:
        with pytest.raises(nbfetch.ProtocolError) as exc:
            await client.fetch(s.url + "/", headers={"Authorization": f"Bearer {ECHOED}"})
    assert ECHOED not in str(exc.value) and "illegal chunk header" in str(exc.value)


async def test_an_http_error_reason_that_echoes_a_secret_is_scrubbed(raw_server):
    s = _serve_once(
        raw_server, b"HTTP/1.1 401 bad token " + ECHOED.encode() + b"\r\nContent-Length: 0\r\n\r\n"
    )
    async with AsyncClient() as client:
        r = await client.fetch(s.url + "/", headers={"Authorization": f"Bearer {ECHOED}"})
    with pytest.raises(nbfetch.HTTPStatusError) as exc:
        r.raise_for_status()
    assert ECHOED not in str(exc.value)


@pytest.mark.parametrize(
    ("ctype", "body"),
    [
        # a hex dump must not spell the secret in hex, nor in its text column
        ("application/octet-stream", b"\x00\x01" + ECHOED.encode() + b"\x00"),
        # a secret across the 20,000-character cut must not survive in part
        ("text/plain", b"x" * 19_980 + ECHOED.encode()),
    ],
    ids=["hexdump", "cut"],
)
async def test_a_body_preview_never_shows_part_of_an_echoed_secret(raw_server, ctype, body):
    s = _serve_once(
        raw_server,
        b"HTTP/1.1 200 OK\r\nContent-Type: "
        + ctype.encode()
        + b"\r\nContent-Length: "
        + str(len(body)).encode()
        + b"\r\n\r\n"
        + body,
    )
    async with AsyncClient() as client:
        r = await client.fetch(s.url + "/", headers={"Authorization": f"Bearer {ECHOED}"})
    shown = _rich(r)
    hexed = " ".join(f"{b:02x}" for b in ECHOED.encode()[:8])
    assert ECHOED[:12] not in shown and hexed not in shown


async def test_a_set_cookie_value_echoed_in_the_body_is_scrubbed(raw_server):
    body = f"your session is {ECHOED}".encode()
    s = _serve_once(
        raw_server,
        b"HTTP/1.1 200 OK\r\nSet-Cookie: sid=" + ECHOED.encode() + b"; HttpOnly\r\n"
        b"Content-Type: text/plain\r\nContent-Length: "
        + str(len(body)).encode()
        + b"\r\n\r\n"
        + body,
    )
    async with AsyncClient() as client:
        r = await client.fetch(s.url + "/")
    assert ECHOED not in _rich(r)


async def test_quoted_values_and_json_body_fields_echoed_by_the_server_are_scrubbed(demo):
    async with AsyncClient() as client:
        quoted = await client.fetch(demo.url + "/get", params={"password": 'hunter"22-quoted'})
        posted = await client.fetch(
            demo.url + "/post", method="POST", json={"password": "hunter2-body-pw"}
        )
    # JSON writes the quote as \", HTML then as \&quot;: neither form survives
    assert "hunter" not in _rich(quoted)
    assert "hunter2-body-pw" not in _rich(posted)


async def test_a_server_planted_secret_cannot_cut_open_an_attribute(raw_server):
    # The redirect's secret-named value equals a piece of the views' own markup;
    # scrubbing finished HTML would cut the style attribute open and let the
    # next header value in as CSS. Text is scrubbed before it is escaped.
    style = "position:fixed;top:0;left:0;width:100vw;height:100vh;z-index:9999"

    def handler(conn, server):
        for answer in (
            b"HTTP/1.1 302 Found\r\nLocation: /final?token=break-all%22%3E\r\n"
            b"Content-Length: 0\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nX-Note: ;" + style.encode() + b";x:\r\nContent-Length: 0\r\n\r\n",
        ):
            server.read_request(conn)
            conn.sendall(answer)

    s = raw_server(handler)
    async with AsyncClient() as client:
        r = await client.fetch(s.url + "/start")
    styles: list[str] = []

    class Styles(html.parser.HTMLParser):
        def handle_starttag(self, tag, attrs):
            styles.extend(v or "" for k, v in attrs if k == "style")

    Styles().feed(response_mimebundle(r)["text/html"])
    assert styles and not any("position:fixed" in s for s in styles)


def test_many_secret_named_parameters_stay_bounded_and_the_first_secret_stays_masked():
    secrets = Secrets()
    secrets.add(ECHOED)  # the request's own credential comes first
    flood = "http://h/?" + "&".join(f"t{i}_token=value{i:06d}" for i in range(1500))
    secrets.add_url(flood, served=True)  # a Location
    assert len(secrets._served) <= redact.MAX_SECRET_FORMS
    assert ECHOED not in secrets.scrub(f"echo {ECHOED} and value000001")


async def test_a_redirect_flood_stays_bounded_in_every_view(raw_server):
    """A Location with 1,500 secret-named parameters is the server's, whichever
    way a view learns it (the redirected hop's request, its headers_sent event):
    bounded, as the Location itself is, not the user's unbounded store."""
    from nbfetch.notebook.snapshot import FetchState
    from nbfetch.text.render import response_secrets

    flood = "&".join(f"t{i}_token=value{i:06d}" for i in range(1500)).encode()

    def handler(conn, server):
        server.read_request(conn)
        conn.sendall(
            b"HTTP/1.1 302 Found\r\nLocation: /end?" + flood + b"\r\nContent-Length: 0\r\n\r\n"
        )
        server.read_request(conn)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")

    s = raw_server(handler)
    async with AsyncClient() as client:
        r = await client.fetch(s.url + "/start", headers={"Authorization": f"Bearer {ECHOED}"})
    for secrets in (FetchState.of_response(r).secrets, response_secrets(r)):
        assert len(secrets._served) <= redact.MAX_SECRET_FORMS
        assert len(secrets._values) < 50  # the user's: what the first request sent
        assert ECHOED not in secrets.scrub(f"echo {ECHOED}")


async def test_show_events_masks_secret_query_values(demo):
    from nbfetch.notebook.live import show_events

    async with AsyncClient() as client:
        r = await client.fetch(demo.url + f"/get?api_key={ECHOED}")
    shown = show_events(r).value
    assert "request.headers_sent" in shown and "api_key=***" in shown and ECHOED not in shown


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("line", "said"),
    [
        (b"Set-Cookie : sid=TOPSECRETVALUE", "illegal header line (field Set-Cookie)"),
        (b"Set-Cookie sid=TOPSECRETVALUE", "illegal header line"),  # no colon: no name
        (b"TOPSECRETVALUE", "illegal header line"),
    ],
)
async def test_a_malformed_header_line_is_never_quoted_in_the_error(raw_server, line, said):
    def handler(conn, server):
        server.read_request(conn)
        reply(conn, b"HTTP/1.1 200 OK\r\n" + line + b"\r\nContent-Length: 0\r\n\r\n")

    srv = raw_server(handler)
    events = []
    async with AsyncClient(trace=events.append) as client:
        with pytest.raises(nbfetch.ProtocolError) as info:
            await client.fetch(srv.url + "/")
    assert f"malformed response: {said} [wait]" in str(info.value)
    texts = [str(info.value), repr(info.value), *(repr(e) for e in events)]
    assert not any("TOPSECRET" in t for t in texts)


def test_a_server_cannot_crowd_out_the_users_secrets():
    # A first response with 1,100 api_key fields, then the user's own values:
    # a private environment of 700 and a later request's login token.
    secrets = Secrets()
    secrets.add_json([{"api_key": f"served-{i:06d}"} for i in range(1100)])
    secrets.add_url("http://h/?" + "&".join(f"t{i}_token=loc{i:06d}" for i in range(1500)), True)
    secrets.add_headers([("X-Auth-Token", "served-header-value")], served=True)
    private = [f"private-{i:06d}" for i in range(700)]
    for value in private:
        secrets.add(value)
    secrets.add_headers([("Authorization", "Bearer login-token-42"), ("Cookie", "sid=cookie-v1")])
    secrets.add_url("http://alice:pw-9876@h/")
    shown = secrets.scrub(" ".join([*private, "login-token-42", "cookie-v1", "pw-9876"]))
    assert set(shown.split()) == {"***"}
    # What the server fed stays bounded: 64 values of one JSON document,
    # MAX_SECRET_FORMS forms in all.
    assert secrets.scrub("served-000063 served-000064") == "*** served-000064"
    assert len(secrets._served) <= redact.MAX_SECRET_FORMS
    other = Secrets()
    other.add_json([{"token": f"other-{i:06d}"} for i in range(64)])
    other.update(secrets)
    assert len(other._served) == redact.MAX_SECRET_FORMS
    assert "login-token-42" not in other.scrub("login-token-42 private-000699")
    assert "private-000699" not in other.scrub("private-000699")


def test_many_user_values_mask_the_longest_match_as_text_and_bytes():
    secrets = Secrets()
    for i in range(5000):
        secrets.add(f"user-value-{i:05d}")
    for value in ("abcd", "abcdefgh", "abcdxyz"):
        secrets.add(value)
    text = "user-value-04999 abcdefg abcdxy abcdxyz abcdefghi user-value-5"
    assert secrets.scrub(text) == "*** ***efg ***xy *** ***i user-value-5"
    assert secrets.scrub_bytes(text.encode()) == secrets.scrub(text).encode()
    nested = Secrets()  # prefixes nested deeper than a prefix tree's recursion
    for i in range(4, 1500):
        nested.add("a" * i)
    assert nested.scrub("a" * 1499 + "b") == "***b"


MASKED_FIELDS = (
    "access_token", "refresh_token", "id_token", "accessToken", "tokens", "password",
    "passwd", "pwd", "client_secret", "secret", "api_key", "apiKey", "X-Api-Key",
    "access_key", "AWSSecretAccessKey", "private_key", "session_id", "sessionId", "sid",
    "signature", "cookie", "Set-Cookie", "authorization", "credentials", "jwt",
)  # fmt: skip
SHOWN_FIELDS = (
    "token_type", "key", "keys", "alg", "session", "sort_key", "expires_in",
    "password_expires_at", "token_url", "secret_name", "auth", "bearer", "keyword",
)  # fmt: skip


def test_only_fields_that_name_a_credential_are_masked_in_a_servers_json():
    secrets = Secrets()
    doc = {name: f"<{name}>" for name in MASKED_FIELDS + SHOWN_FIELDS}
    secrets.add_json({"data": [doc], "short": {"password": "abc"}})
    for name in MASKED_FIELDS:
        assert secrets.scrub(f"<{name}>") == "***", name
    for name in SHOWN_FIELDS:
        assert secrets.scrub(f"<{name}>") == f"<{name}>", name
    assert secrets.scrub("abc") == "abc"  # under MIN_SECRET_LENGTH
    jira = Secrets()
    jira.add_json({"token_type": "Bearer", "key": "PROJ-1234", "keys": [{"alg": "RS256"}]})
    assert not jira
    # A request body is the user's: every secret-named field, as before.
    sent = Secrets()
    sent.add_json({"session": "mine-1234", "password": "abc"}, served=False)
    assert sent.scrub("mine-1234") == "***"


async def test_a_reason_phrase_that_echoes_the_token_is_masked_in_the_repr(raw_server):
    token = "sk_live_5f3a9c2e7d1b4a60"
    srv = raw_server(
        answer_each(f"HTTP/1.1 401 invalid token {token}\r\nContent-Length: 0\r\n\r\n".encode())
    )
    async with AsyncClient() as c:
        r = await c.fetch(srv.url + "/api", headers={"Authorization": "Bearer " + token})
    assert r.reason == f"invalid token {token}"  # the data stays as it came
    assert repr(r) == f"<Response [401 invalid token ***] {srv.url}/api>"
    with pytest.raises(nbfetch.HTTPStatusError) as info:
        r.raise_for_status()
    assert token not in str(info.value)


def test_a_refresh_header_shows_no_url_credentials():
    value = "0; url=http://bob:pw-secret@example.test/next?token=abc123"
    assert redact_header("Refresh", value) == "0; url=http://***@example.test/next?token=***"
