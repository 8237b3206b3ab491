"""The forms a secret takes in what a server writes back: JSON writers escape
characters of a token ("/" as "\\/" in PHP's json_encode, "+" as "\\u002b" in
Go's encoding/json, "=" as "\\u003d" in Gson), and ``Secrets`` must mask each
of them as text (``scrub``), as bytes (``scrub_bytes``) and in a recording's
wire (``mask_bytes``, which keeps lengths)."""

import base64
import json
import re

import pytest

import nbfetch
from nbfetch import AsyncClient
from nbfetch.core.redact import Secrets

#: An OAuth-style bearer token with the characters JSON writers escape, and a
#: base64 padding.
TOKEN = "ya29.a0AfH6SMB/q9Zx+k3LmN=="
ESCAPED = (
    TOKEN.replace("/", "\\/"),  # PHP json_encode's default
    TOKEN.replace("+", "\\u002b"),  # Go encoding/json
    TOKEN.replace("=", "\\u003d"),  # Gson
    TOKEN.replace("=", "\\u003D").replace("/", "\\u002F"),  # upper-case hex
    TOKEN.replace(".", "\\u002e").replace("/", "\\/").replace("+", "\\u002B"),  # a mix
)


def _bearer() -> Secrets:
    secrets = Secrets()
    secrets.add_headers([("Authorization", "Bearer " + TOKEN)])
    return secrets


@pytest.mark.parametrize("form", ESCAPED)
def test_a_json_escaped_secret_is_masked_as_text_bytes_and_wire(form):
    secrets = _bearer()
    text = f'{{"headers": {{"Authorization": "Bearer {form}"}}, "n": 1}}'
    assert secrets.scrub(text) == '{"headers": {"Authorization": "Bearer ***"}, "n": 1}'
    assert secrets.scrub_bytes(text.encode()) == secrets.scrub(text).encode()
    masked = secrets.mask_bytes(text.encode())
    # The wire keeps its length (Content-Length, chunk sizes) and no form is left.
    assert masked == text.replace(form, "*" * len(form)).encode()
    assert secrets.holds_bytes(text.encode()) and not secrets.holds_bytes(masked)
    # A window over bytes must reach back over the longest escaped form.
    assert secrets.longest_bytes >= len(form) and secrets.longest >= len(form)


def test_every_json_escape_of_a_character_is_masked():
    value = 'pä/ss"w\\o😀rd&x'  # non-ASCII, "/", '"', "\\", astral, "&"
    secrets = Secrets()
    secrets.add(value)
    forms = {
        json.dumps(value),  # ensure_ascii: \u00e4, a surrogate pair for the emoji
        json.dumps(value, ensure_ascii=False),
        # Upper-case hex digits (RFC 8259 allows either case).
        re.sub(r"\\u[0-9a-f]{4}", lambda m: m[0].upper().replace("U", "u"), json.dumps(value)),
        # Go's HTML-safe default: "&" as \u0026 (also inside the HTML-escaped form).
        json.dumps(value, ensure_ascii=False).replace("&", "\\u0026").replace("/", "\\/"),
    }
    for form in forms:
        body = form[1:-1] if form.startswith('"') else form
        assert secrets.scrub(f"[{body}]") == "[***]", form
        assert secrets.mask_bytes(f"[{body}]".encode()) == b"[" + b"*" * len(body.encode()) + b"]"
    assert secrets.longest_bytes >= max(len(f.encode()) for f in forms) - 2


def test_a_login_responses_escaped_token_is_masked_where_echoed():
    # A served value (the login's access_token) is remembered decoded and
    # matched in its escaped forms wherever a later body echoes it.
    secrets = Secrets()
    login = '{"access_token": "' + ESCAPED[0] + '", "token_type": "Bearer"}'
    secrets.add_json(json.loads(login))
    assert secrets.scrub(login) == '{"access_token": "***", "token_type": "Bearer"}'
    assert secrets.scrub(f"echo {ESCAPED[1]} and {TOKEN}") == "echo *** and ***"


def test_letters_and_digits_are_not_widened():
    # Only characters other than ASCII letters and digits take escapes: a
    # similar text that differs in a letter stays shown.
    secrets = _bearer()
    assert secrets.scrub(TOKEN.replace("q9", "q8").replace("/", "\\/")) != "***"
    upper = TOKEN.upper().replace("/", "\\u002f")  # the hex's case is open, the token's not
    assert secrets.scrub(upper) == upper


def _echo_escaped(conn, server) -> None:
    from conftest import reply

    while head := server.read_request(conn):
        sent = next(
            line.split(b" ", 2)[2].decode()
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"authorization:")
        )
        # The server echoes the request's own token in each writer's escapes.
        php, go, gson = (
            sent.replace("/", "\\/"),
            sent.replace("+", "\\u002b"),
            sent.replace("=", "\\u003d"),
        )
        body = f'{{"php": "{php}", "go": "{go}", "gson": "{gson}"}}'
        data = body.encode()
        reply(conn, b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n")
        reply(conn, b"Content-Length: %d\r\n\r\n%s" % (len(data), data))


@pytest.mark.anyio
async def test_a_server_echoing_the_token_escaped_leaks_it_nowhere(raw_server, tmp_path):
    server = raw_server(_echo_escaped)
    path = tmp_path / "escaped.har"
    async with AsyncClient() as client:
        with nbfetch.record(path):
            r = await client.fetch(
                server.url + "/echo", headers={"Authorization": "Bearer " + TOKEN}
            )
    # The live body is the server's, escapes and all; json() reads the token.
    assert TOKEN.replace("+", "\\u002b").encode() in r.body and r.json()["go"] == TOKEN
    forms = (TOKEN, *ESCAPED[:3])
    har_text = json.dumps(r.to_har())
    recorded = path.read_text()
    entry = json.loads(recorded)["log"]["entries"][0]
    wire = b"".join(base64.b64decode(p) for p in entry["_nbfetch"]["wire"])
    for form in forms:
        assert json.dumps(form)[1:-1] not in har_text and form not in har_text
        assert json.dumps(form)[1:-1] not in recorded and form not in recorded
        assert form.encode() not in wire
    assert entry["_nbfetch"]["replayable"] is True
    async with AsyncClient(replay=path) as client:
        again = await client.fetch(server.url + "/echo", headers={"Authorization": "Bearer x"})
    # The masked body keeps its length: the replay reads the same framing.
    assert len(again.body) == len(r.body) and b"**********" in again.body


PASSWORD = "hunter2-correct-horse"


def _json_request_secrets(body: bytes, ctype: str = "application/json") -> Secrets:
    from nbfetch.core.redact import request_secrets
    from nbfetch.core.request import Request

    request = Request.build(
        "POST", "http://127.0.0.1/login", body=body, headers={"Content-Type": ctype}
    )
    return request_secrets(request)


@pytest.mark.parametrize("where", ["first", "last", "among records"])
def test_a_json_body_too_big_to_parse_still_gives_its_secret_fields(where):
    from nbfetch.core.redact import MAX_BODY_SCANNED

    records = [{"id": i, "keyword": f"kw-{i:06d}", "note": "a token of it"} for i in range(1500)]
    doc = {"blob": "z" * MAX_BODY_SCANNED, "records": records}
    pair = {"password": PASSWORD, "apiKey": 'k"e/y-' + PASSWORD}  # escapes in a value
    doc = {**pair, **doc} if where == "first" else {**doc, **pair}
    if where == "among records":
        doc = {**doc, "records": [*records[:700], pair, *records[700:]]}
    body = json.dumps(doc).encode()
    assert len(body) > MAX_BODY_SCANNED
    secrets = _json_request_secrets(body)
    text = body.decode()
    scrubbed = secrets.scrub(text)
    # (Booleans, not the texts: a failing diff of 70 KB would outlast the timeout.)
    assert (PASSWORD in scrubbed, '"password": "***"' in scrubbed) == (False, True)
    assert ('"apiKey": "***"' in scrubbed) is True  # its value read with its JSON escapes
    # Values of fields that only contain a secret word ("keyword") stay shown.
    assert ("kw-000001" in scrubbed, "a token of it" in scrubbed) == (True, True)


def test_a_json_body_that_does_not_parse_still_gives_its_secret_fields():
    body = b'{"user": "al", "password": "' + PASSWORD.encode() + b'", }'  # a trailing comma
    assert _json_request_secrets(body).scrub(body.decode()) == '{"user": "al", "password": "***", }'


def _echo_length(conn, server) -> None:
    from conftest import reply

    while server.read_request(conn):
        reply(conn, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")


@pytest.mark.anyio
async def test_a_big_json_request_body_keeps_no_password_in_the_har(raw_server, tmp_path):
    server = raw_server(_echo_length)
    path = tmp_path / "big.har"
    doc = {"user": "al", "blob": "z" * 70_000, "password": PASSWORD}
    async with AsyncClient() as client:
        with nbfetch.record(path):
            r = await client.fetch(server.url + "/big", method="POST", json=doc)
    assert PASSWORD.encode() in server.received[0]  # it was sent
    recorded = path.read_text()
    assert (PASSWORD in recorded, PASSWORD in json.dumps(r.to_har())) == (False, False)
    text = json.loads(recorded)["log"]["entries"][0]["request"]["postData"]["text"]
    assert '"password": "***"' in text.replace('\\"', '"')
