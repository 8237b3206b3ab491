"""nbfetch.record() and nbfetch.replay(): a session recorded against the real
demo server replays with the server stopped, through the client's own h11
path (same bodies, chunk sizes, extensions, trailers, heads, events); the
unmatched modes; secrets; the size bound; the HAR's shape."""

import asyncio
import base64
import json
import socket
import time

import jsonschema
import pytest
from conftest import client_sockets_to

import nbfetch
from nbfetch import AsyncClient
from nbfetch.client import observe
from nbfetch.demo.server import DEMO_PASSWORD, DemoServer

pytestmark = [pytest.mark.anyio, pytest.mark.loop_watchdog]

#: Events of the connection itself: a replayed hop has no socket, so none.
SOCKET_EVENTS = ("resolve.", "connect.", "connection.reused", "tls.")

#: HAR 1.2 (http://www.softwareishard.com/blog/har-12-spec/): the required
#: fields of the log, its entries, their requests, responses and timings.
_NV = {
    "type": "array",
    "items": {
        "type": "object",
        "required": ["name", "value"],
        "properties": {"name": {"type": "string"}, "value": {"type": "string"}},
    },
}
HAR_SCHEMA = {
    "type": "object",
    "required": ["log"],
    "properties": {
        "log": {
            "type": "object",
            "required": ["version", "creator", "entries"],
            "properties": {
                "version": {"type": "string"},
                "creator": {
                    "type": "object",
                    "required": ["name", "version"],
                    "properties": {"name": {"type": "string"}, "version": {"type": "string"}},
                },
                "entries": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": [
                            "startedDateTime",
                            "time",
                            "request",
                            "response",
                            "cache",
                            "timings",
                        ],
                        "properties": {
                            "startedDateTime": {"type": "string", "format": "date-time"},
                            "time": {"type": "number", "minimum": 0},
                            "request": {
                                "type": "object",
                                "required": [
                                    "method",
                                    "url",
                                    "httpVersion",
                                    "cookies",
                                    "headers",
                                    "queryString",
                                    "headersSize",
                                    "bodySize",
                                ],
                                "properties": {
                                    "method": {"type": "string"},
                                    "url": {"type": "string"},
                                    "headers": _NV,
                                    "queryString": _NV,
                                    "cookies": _NV,
                                    "headersSize": {"type": "integer"},
                                    "bodySize": {"type": "integer"},
                                },
                            },
                            "response": {
                                "type": "object",
                                "required": [
                                    "status",
                                    "statusText",
                                    "httpVersion",
                                    "cookies",
                                    "headers",
                                    "content",
                                    "redirectURL",
                                    "headersSize",
                                    "bodySize",
                                ],
                                "properties": {
                                    "status": {"type": "integer"},
                                    "headers": _NV,
                                    "cookies": _NV,
                                    "content": {
                                        "type": "object",
                                        "required": ["size", "mimeType"],
                                        "properties": {
                                            "size": {"type": "integer"},
                                            "mimeType": {"type": "string"},
                                            "text": {"type": "string"},
                                        },
                                    },
                                },
                            },
                            "timings": {
                                "type": "object",
                                "required": ["send", "wait", "receive"],
                                "properties": {
                                    k: {"type": "number", "minimum": -1}
                                    for k in ("blocked", "dns", "connect", "send", "wait")
                                },
                            },
                        },
                    },
                },
            },
        }
    },
}


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.fixture
def origin():
    """A demo server of the test's own: the test stops it."""
    server = DemoServer().start()
    yield server
    server.stop()


def _port_closed(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def _shown(r) -> dict:
    """What replay must reproduce of a response (and of each hop before it)."""
    return {
        "url": str(r.url),
        "status": r.status_code,
        "reason": r.reason,
        "headers": [(n, v) for n, v in r.headers.items() if n.lower() != "date"],
        "trailers": None if r.trailers is None else list(r.trailers.items()),
        "chunks": [
            (e["index"], e["size"], e["extensions"]) for e in r.events if e.name == "response.chunk"
        ],
        "events": [e.name for e in r.events if not e.name.startswith(SOCKET_EVENTS)],
        "history": [(str(h.url), h.status_code) for h in r.history],
    }


def _wire(entry) -> bytes:
    return b"".join(base64.b64decode(p) for p in entry["_nbfetch"]["wire"])


async def _session(client, url):
    """The demo API session: JSON, a drip, chunks with extensions and trailers,
    gzip, a redirect chain, a POST, a cookie login, a bearer token."""
    out = {}
    out["json"] = await client.fetch(url + "/json")
    out["drip"] = await client.fetch(url + "/drip?numbytes=30&chunks=3&duration=0.3")
    out["chunked"] = await client.fetch(url + "/chunked?sizes=5,300,7&ext=1&trailers=1")
    out["gzip"] = await client.fetch(url + "/gzip")
    out["redirects"] = await client.fetch(url + "/redirect/2")
    out["post"] = await client.fetch(url + "/anything?b=2&a=1", "POST", json={"x": [1, 2]})
    out["login"] = await client.fetch(url + "/login?user=ada")
    out["token"] = await client.fetch(
        url + "/token", "POST", json={"user": "ada", "password": DEMO_PASSWORD}
    )
    token = out["token"].json()["access_token"]
    out["me"] = await client.fetch(url + "/me", headers={"Authorization": f"Bearer {token}"})
    return out, token


async def test_a_recorded_session_replays_with_the_origin_stopped(origin, tmp_path):
    path = tmp_path / "session.har"
    async with AsyncClient() as client:
        with nbfetch.record(path) as rec:
            recorded, token = await _session(client, origin.url)
    assert rec.stopped and path.exists()
    session_cookie = client.cookies.get("session")
    port = origin.port
    origin.stop()
    assert _port_closed(port)

    async with AsyncClient() as client:
        with nbfetch.replay(path, timing="fast") as replayer:
            replayed, replayed_token = await _session(client, origin.url)
            assert client_sockets_to(port) == 0
    assert replayer.passed == 0
    assert replayer.answered == 12  # 9 fetches, 2 more hops of /redirect/2, /whoami
    for name, r in recorded.items():
        again = replayed[name]
        if name in ("login", "token"):  # the session cookie, the token: masked
            continue
        assert again.body == r.body, name
        assert _shown(again) == _shown(r), name
        assert not any(e.name.startswith(SOCKET_EVENTS) for e in again.events)
    # The drip's and the chunked body's chunks as the server framed them.
    assert [c[1] for c in _shown(replayed["drip"])["chunks"]] == [10, 10, 10]
    assert _shown(replayed["chunked"])["chunks"][1] == (
        1,
        300,
        (("index", "1"), ("name", "chunk 1")),
    )
    assert replayed["chunked"].trailers["x-chunks"] == "3"
    assert [h.status_code for h in replayed["redirects"].history] == [302, 302]
    # Masked in place, the same length: the framing holds, the values do not leak.
    assert replayed_token == "*" * len(token)
    assert len(replayed["token"].body) == len(recorded["token"].body)
    whoami = replayed["login"].json()
    assert whoami["user"] == "ada" and set(whoami["cookies"]["session"]) == {"*"}
    assert session_cookie and session_cookie not in path.read_text()


async def test_replay_reproduces_the_wire_pieces_and_their_gaps(origin, tmp_path):
    path = tmp_path / "drip.har"
    url = origin.url + "/drip?numbytes=4&chunks=4&duration=0.6"
    async with AsyncClient() as client:
        with nbfetch.record(path):
            async with client.stream("GET", url) as r:
                live = [(c.size, c.raw) async for c in r.aiter_chunks()]
    entry = json.loads(path.read_text())["log"]["entries"][0]
    times = entry["_nbfetch"]["wire_times"]
    assert len(entry["_nbfetch"]["wire"]) >= 4  # a piece per drip, as read
    async with AsyncClient(replay=path) as client:
        start = time.perf_counter()
        async with client.stream("GET", url) as r:
            again = [(c.size, c.raw) async for c in r.aiter_chunks()]
        took = time.perf_counter() - start
    assert again == live
    # "recorded" timing: the recorded gaps are waited (each within max_gap).
    assert took >= 0.8 * min(times[-1], 4 * 1.0)
    async with AsyncClient(replay=nbfetch.Replay(path, timing="recorded", speed=1e6)) as client:
        r = await client.fetch(url)
    assert r.body == b"****"


async def test_fail_mode_names_the_closest_and_opens_no_socket(own_demo, tmp_path):
    demo = own_demo
    path = tmp_path / "s.har"
    async with AsyncClient() as client:
        with nbfetch.record(path):
            await client.fetch(demo.url + "/items?n=2")
            await client.fetch(demo.url + "/get")
    demo.reset_stats()
    port = int(demo.url.rsplit(":", 1)[1])
    async with AsyncClient() as client:
        with nbfetch.replay(path):
            task = asyncio.ensure_future(client.fetch(demo.url + "/items?n=3"))
            with pytest.raises(nbfetch.ReplayMissError) as info:
                await task
            assert client_sockets_to(port) == 0
    message = str(info.value)
    assert "GET " + demo.url + "/items?n=3" in message
    assert "closest recorded: GET " + demo.url + "/items?n=2" in message
    assert isinstance(info.value, nbfetch.FetchError)
    assert demo.stats["connections"] == 0 and demo.stats["requests"] == 0


async def test_pass_mode_sends_the_unmatched_to_the_network(demo, tmp_path):
    path = tmp_path / "s.har"
    async with AsyncClient() as client:
        with nbfetch.record(path):
            await client.fetch(demo.url + "/items?n=2")
    demo.reset_stats()
    async with AsyncClient() as client:
        with nbfetch.replay(path, unmatched="pass") as replayer:
            answered = await client.fetch(demo.url + "/items?n=2")
            assert demo.stats["requests"] == 0
            live = await client.fetch(demo.url + "/items?n=1")
    assert answered.json()["count"] == 2
    assert live.json()["count"] == 1 and demo.stats["requests"] == 1
    assert "connect.done" in [e.name for e in live.events]
    assert (replayer.answered, replayer.passed) == (1, 1)


async def test_record_mode_appends_what_went_to_the_network(demo, tmp_path):
    path = tmp_path / "s.har"
    async with AsyncClient() as client:
        with nbfetch.record(path):
            await client.fetch(demo.url + "/items?n=2")
        with nbfetch.replay(path, unmatched="record"):
            await client.fetch(demo.url + "/items?n=2")  # replayed: not appended
            await client.fetch(demo.url + "/items?n=4")  # live: appended
    urls = [e["request"]["url"] for e in json.loads(path.read_text())["log"]["entries"]]
    assert urls == [demo.url + "/items?n=2", demo.url + "/items?n=4"]
    demo.reset_stats()
    async with AsyncClient(replay=path) as client:
        assert (await client.fetch(demo.url + "/items?n=4")).json()["count"] == 4
    assert demo.stats["requests"] == 0


async def test_matching_ignores_query_order_and_repeats_the_last(demo, tmp_path):
    path = tmp_path / "s.har"
    async with AsyncClient() as client:
        with nbfetch.record(path):
            first = await client.fetch(demo.url + "/get?a=1&b=2", headers={"X-N": "1"})
            second = await client.fetch(demo.url + "/get?a=1&b=2", headers={"X-N": "2"})
    async with AsyncClient(replay=path) as client:
        answers = [
            (await client.fetch(demo.url + "/get?b=2&a=1")).json()["headers"].get("X-N")
            for _ in range(3)
        ]
    assert answers == [first.json()["headers"]["X-N"], second.json()["headers"]["X-N"], "2"]


async def test_the_client_replay_keyword_answers_that_client_only(demo, tmp_path):
    path = tmp_path / "s.har"
    async with AsyncClient() as client:
        with nbfetch.record(path) as rec:
            await client.fetch(demo.url + "/items?n=2")
    har = rec.har
    demo.reset_stats()
    async with AsyncClient(replay=har) as replaying, AsyncClient() as plain:
        assert (await replaying.fetch(demo.url + "/items?n=2")).json()["count"] == 2
        assert demo.stats["requests"] == 0
        await plain.fetch(demo.url + "/items?n=2")
        assert demo.stats["requests"] == 1
    assert observe.current_opener() is None


async def test_secrets_are_absent_from_the_file_unless_asked(origin, tmp_path):
    path = tmp_path / "s.har"
    url = origin.url
    bearer = "tok-7f3a9c2e81"
    async with AsyncClient() as client:
        with nbfetch.record(path):
            await client.fetch(url.replace("://", "://ada:pw-hunter22@") + "/get")
            await client.fetch(url + "/get?api_key=key-51b2c9", headers={"X-Api-Key": "hdr-9d8e7f"})
            await client.fetch(url + "/headers", headers={"Authorization": f"Bearer {bearer}"})
            await client.fetch(url + "/login?user=ada")
            token = await client.fetch(
                url + "/token", "POST", json={"user": "ada", "password": DEMO_PASSWORD}
            )
    cookie = client.cookies.matching(nbfetch.URL.parse(url + "/"))
    values = [c.value for c in cookie]
    assert values, "the login set its cookie"
    access = token.json()["access_token"]
    text = path.read_text()
    entries = json.loads(text)["log"]["entries"]
    wire = b"".join(_wire(e) for e in entries)
    for secret in ("pw-hunter22", "key-51b2c9", "hdr-9d8e7f", bearer, access, *values):
        assert secret not in text, secret
        assert secret.encode() not in wire, secret
    assert DEMO_PASSWORD not in [
        p["value"] for e in entries for p in e["request"].get("postData", {}).get("params", [])
    ]
    assert f'"password": "{DEMO_PASSWORD}"' not in text
    set_cookie = next(e for e in entries if "/login" in e["request"]["url"])
    assert b"Set-Cookie: session=" + b"*" * len(values[0]) + b"; Path=/" in _wire(set_cookie)

    kept = tmp_path / "kept.har"
    async with AsyncClient() as client:
        with nbfetch.record(kept, redact=False):
            await client.fetch(url + "/login?user=ada")
    kept_cookie = client.cookies.matching(nbfetch.URL.parse(url + "/"))[0].value
    assert kept_cookie.encode() in b"".join(
        _wire(e) for e in json.loads(kept.read_text())["log"]["entries"]
    )


async def test_the_size_bound_truncates_warns_and_refuses_replay(demo, tmp_path):
    path = tmp_path / "s.har"
    async with AsyncClient() as client:
        with (
            pytest.warns(nbfetch.RecordingTruncated, match="max_bytes=20,000"),
            nbfetch.record(path, max_bytes=20_000) as rec,
        ):
            small = await client.fetch(demo.url + "/bytes/1000")
            await client.fetch(demo.url + "/bytes/200000")
    har = json.loads(path.read_text())
    assert rec.truncated == 1 and "cannot be replayed" in har["log"]["comment"]
    big = har["log"]["entries"][1]["_nbfetch"]
    assert big["replayable"] is False and "max_bytes=20,000" in big["note"]
    assert len(_wire(har["log"]["entries"][1])) <= 20_000
    async with AsyncClient(replay=path) as client:
        assert (await client.fetch(demo.url + "/bytes/1000")).body == small.body
        with pytest.raises(nbfetch.ReplayError, match="cannot be replayed: truncated"):
            await client.fetch(demo.url + "/bytes/200000")


async def test_a_recorded_connection_failure_replays_as_one(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens once it is closed
    path = tmp_path / "s.har"
    async with AsyncClient() as client:
        with nbfetch.record(path), pytest.raises(nbfetch.ConnectError) as live:
            await client.fetch(f"http://127.0.0.1:{port}/x")
    entry = json.loads(path.read_text())["log"]["entries"][0]
    assert entry["response"]["status"] == 0 and "ConnectError" in entry["_error"]
    async with AsyncClient(replay=path) as client:
        with pytest.raises(nbfetch.ConnectError) as again:
            await client.fetch(f"http://127.0.0.1:{port}/x")
    assert again.value.phase == live.value.phase
    assert "(replayed)" in str(again.value)


async def test_the_file_is_written_when_the_block_fails(demo, tmp_path):
    path = tmp_path / "s.har"
    async with AsyncClient() as client:
        with pytest.raises(KeyboardInterrupt), nbfetch.record(path):
            await client.fetch(demo.url + "/json")
            raise KeyboardInterrupt
        async with nbfetch.record(tmp_path / "a.har") as rec:
            await client.fetch(demo.url + "/json")
        rec.stop()  # idempotent
    assert len(json.loads(path.read_text())["log"]["entries"]) == 1
    assert len(json.loads((tmp_path / "a.har").read_text())["log"]["entries"]) == 1
    assert observe.observers() == ()
    assert [p.name for p in tmp_path.iterdir() if p.suffix == ".part"] == []


async def test_the_recording_is_valid_har(origin, tmp_path):
    path = tmp_path / "s.har"
    async with AsyncClient() as client:
        with nbfetch.record(path):
            await _session(client, origin.url)
            with pytest.raises(nbfetch.ConnectError):
                await client.fetch("http://127.0.0.1:9/")
    har = json.loads(path.read_text())
    jsonschema.validate(har, HAR_SCHEMA, format_checker=jsonschema.FormatChecker())
    assert har["log"]["version"] == "1.2"
    events = har["log"]["entries"][1]["_nbfetch"]["events"]
    assert [e["name"] for e in events][:2] == ["queued", "dequeued"]
    assert all(isinstance(e["offset"], float) for e in events)


async def test_a_malformed_recording_fails_with_a_replay_error(demo, tmp_path):
    path = tmp_path / "s.har"
    async with AsyncClient() as client:
        with nbfetch.record(path) as rec:
            await client.fetch(demo.url + "/json")
    har = rec.har
    har["log"]["entries"][0]["_nbfetch"]["wire"] = ["not base64!"]
    async with AsyncClient(replay=har) as client:
        with pytest.raises(nbfetch.ReplayError, match="malformed"):
            await client.fetch(demo.url + "/json")
    with pytest.raises(nbfetch.ReplayError, match="not a HAR"):
        nbfetch.Replay({"log": {}})


# -- redaction where the wire's framing or encoding hides a secret ---------------------
TOKEN = "sk_live_5f3a9c2e7d1b4a60"


def _chunked(*parts: bytes) -> bytes:
    return (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        + b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts)
        + b"0\r\n\r\n"
    )


def _plain(body: bytes, ctype: str = "application/json", extra: bytes = b"") -> bytes:
    return (
        b"HTTP/1.1 200 OK\r\nContent-Type: %s\r\n%sContent-Length: %d\r\n\r\n"
        % (ctype.encode(), extra, len(body))
        + body
    )


async def _recorded(path, url, **opts):
    async with AsyncClient() as client:
        with nbfetch.record(path):
            r = await client.fetch(url, headers={"Authorization": f"Bearer {TOKEN}"}, **opts)
    return r, json.loads(path.read_text())["log"]["entries"][0]


async def test_a_secret_split_by_a_chunk_boundary_is_masked_and_replays(raw_server, tmp_path):
    from conftest import answer_each

    first, second = b'{"you_sent": "' + TOKEN[:8].encode(), TOKEN[8:].encode() + b'"}'
    server = raw_server(answer_each(_chunked(first, second)))
    path = tmp_path / "s.har"
    _, entry = await _recorded(path, server.url + "/x")
    wire = _wire(entry)
    # The body without its framing holds no token, and the chunk sizes stay.
    assert b"16\r\n" + first[:-8] + b"*" * 8 + b"\r\n12\r\n" + b"*" * 16 + b'"}' in wire
    assert entry["_nbfetch"]["replayable"] is True
    async with AsyncClient(replay=path) as client:
        again = await client.fetch(server.url + "/x")
    assert again.body == b'{"you_sent": "' + b"*" * len(TOKEN) + b'"}'
    assert [e["size"] for e in again.events if e.name == "response.chunk"] == [22, 18]


async def test_a_token_in_a_location_fragment_is_masked_in_the_wire(raw_server, tmp_path):
    from conftest import answer_each

    secret = b"ya29.implicitGrantTokenXYZ"
    head = b"HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:1/cb#access_token=%s&state=s1\r\n"
    server = raw_server(answer_each(head % secret + b"Content-Length: 0\r\n\r\n"))
    path = tmp_path / "f.har"
    async with AsyncClient() as client:
        with nbfetch.record(path):
            await client.fetch(server.url + "/authorize", follow_redirects=False)
    entry = json.loads(path.read_text())["log"]["entries"][0]
    assert secret.decode() not in path.read_text()
    assert head % (b"*" * len(secret)) in _wire(entry)


async def test_a_binary_body_echoing_a_secret_is_scrubbed_in_its_base64_text(raw_server, tmp_path):
    from conftest import answer_each

    body = b"\x00\x01frame authorization=" + TOKEN.encode() + b"\xff\xfe"
    server = raw_server(answer_each(_plain(body, "application/octet-stream")))
    r, entry = await _recorded(tmp_path / "b.har", server.url + "/bin")
    for content in (
        entry["response"]["content"],
        r.to_har()["log"]["entries"][0]["response"]["content"],
    ):
        assert content["encoding"] == "base64"
        text = base64.b64decode(content["text"])
        assert TOKEN.encode() not in text and text.startswith(b"\x00\x01frame authorization=")


@pytest.mark.parametrize(
    "what", ["gzip, decompress=False", "gzip, secret past 1 MB", "gzip, no secret"]
)
async def test_a_compressed_body_is_scanned_whole_for_secrets(raw_server, tmp_path, what):
    import gzip

    from conftest import answer_each

    plain = b'{"you_sent": "' + TOKEN.encode() + b'"}'
    if "past" in what:
        plain = b"x" * 2_000_000 + plain
    elif "no secret" in what:
        plain = b"y" * 2_000_000
    server = raw_server(
        answer_each(_plain(gzip.compress(plain), "text/plain", b"Content-Encoding: gzip\r\n"))
    )
    path = tmp_path / "g.har"
    opts = {"decompress": False} if "decompress" in what else {}
    _, entry = await _recorded(path, server.url + "/g", **opts)
    custom = entry["_nbfetch"]
    if "no secret" in what:  # nothing to hide: the wire is kept and replays
        assert custom["replayable"] is True
        async with AsyncClient(replay=path) as client:
            assert (await client.fetch(server.url + "/g")).body == plain
        return
    assert custom["wire"] == [] and custom["replayable"] is False
    assert "compressed body holds a secret" in custom["note"]
    async with AsyncClient(replay=path) as client:
        with pytest.raises(nbfetch.ReplayError, match="compressed body holds a secret"):
            await client.fetch(server.url + "/g")


async def test_a_large_json_login_has_its_token_masked(raw_server, tmp_path):
    from conftest import answer_each

    served = "srvtok_9a8b7c6d5e4f"
    body = json.dumps({"pad": "y" * 1_100_000, "access_token": served}).encode()
    server = raw_server(answer_each(_plain(body)))
    path = tmp_path / "l.har"
    async with AsyncClient() as client:
        with nbfetch.record(path):
            await client.fetch(server.url + "/login")
    entry = json.loads(path.read_text())["log"]["entries"][0]
    assert served.encode() not in _wire(entry) and served not in path.read_text()
    assert entry["_nbfetch"]["replayable"] is True


async def test_a_json_body_too_large_to_parse_keeps_no_wire(raw_server, tmp_path, monkeypatch):
    from conftest import answer_each

    from nbfetch.client import record as record_module

    monkeypatch.setattr(record_module, "MAX_JSON_SCANNED", 1000)
    body = json.dumps({"pad": "y" * 2000, "access_token": "srvtok_9a8b7c6d5e4f"}).encode()
    server = raw_server(answer_each(_plain(body)))
    path = tmp_path / "l.har"
    async with AsyncClient() as client:
        with nbfetch.record(path):
            await client.fetch(server.url + "/login")
    custom = json.loads(path.read_text())["log"]["entries"][0]["_nbfetch"]
    assert custom["wire"] == [] and "was not parsed for credentials" in custom["note"]


# -- the recording's memory ------------------------------------------------------------
async def test_decoded_bodies_are_not_kept_while_recording(raw_server, tmp_path):
    import gc
    import gzip
    import tracemalloc

    from conftest import answer_each

    wire = gzip.compress(b"a" * 1_000_000)  # 1 MB decoded, about 1 KB on the wire
    server = raw_server(answer_each(_plain(wire, "text/plain", b"Content-Encoding: gzip\r\n")))
    async with AsyncClient() as client:
        await client.fetch(server.url + "/warm")
        rec = nbfetch.record(tmp_path / "m.har", max_bytes=2_000_000)
        try:
            tracemalloc.start()
            before = tracemalloc.get_traced_memory()[0]
            for i in range(20):
                await client.fetch(server.url + f"/x{i}")
            gc.collect()  # the responses themselves are let go: only the recording holds
            held = tracemalloc.get_traced_memory()[0] - before
        finally:
            tracemalloc.stop()
            rec._stop_observing()
    # The decoded copies took 1 MB a fetch (20 MB); the wire and events are small.
    assert held < 4_000_000, held


async def test_past_the_budget_fetches_keep_a_summary_and_are_capped(demo, tmp_path, monkeypatch):
    from nbfetch.client import record as record_module

    monkeypatch.setattr(record_module, "MAX_FETCHES", 3)
    path = tmp_path / "c.har"
    async with AsyncClient() as client:
        with pytest.warns(nbfetch.RecordingTruncated), nbfetch.record(path, max_bytes=0) as rec:
            for _ in range(5):
                await client.fetch(demo.url + "/stream/20")
    assert rec.skipped == 2 and len(rec._fetches) == 3
    har = json.loads(path.read_text())
    assert "2 fetch(es) past the first 3 not recorded" in har["log"]["comment"]
    entries = har["log"]["entries"]
    assert len(entries) == 3 and all(e["response"]["status"] == 200 for e in entries)
    # No body events past max_bytes: the summary is the milestones.
    for entry in entries:
        names = [e["name"] for e in entry["_nbfetch"]["events"]]
        assert "response.data" not in names and "response.done" in names


# -- hops without an answer -------------------------------------------------------------
async def test_a_cancelled_or_unanswered_hop_replays_as_an_error(raw_server, tmp_path):
    from conftest import wait_until

    def silent(conn, server):
        server.read_request(conn)
        conn.recv(1)  # never answers; returns when the client closes

    server = raw_server(silent)
    path = tmp_path / "c.har"
    async with AsyncClient() as client:
        rec = nbfetch.record(path)
        cancelled = asyncio.ensure_future(client.fetch(server.url + "/cancelled"))
        await wait_until(lambda: len(server.received) == 1, what="the request")
        cancelled.cancel()
        with pytest.raises(asyncio.CancelledError):
            await cancelled
        waiting = asyncio.ensure_future(client.fetch(server.url + "/waiting"))
        await wait_until(lambda: len(server.received) == 2, what="the request")
        rec.stop()
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
    entries = json.loads(path.read_text())["log"]["entries"]
    errors = {e["request"]["url"].rsplit("/", 1)[1]: e["_nbfetch"]["error"] for e in entries}
    assert errors["cancelled"]["type"] == "cancelled"
    assert errors["waiting"]["type"] == "incomplete"
    assert all(e["response"]["status"] == 0 and e["_error"] for e in entries)
    async with AsyncClient(replay=path) as client:
        with pytest.raises(nbfetch.ReplayError, match=r"was cancelled when it was recorded"):
            await client.fetch(server.url + "/cancelled")
        with pytest.raises(nbfetch.ReplayError, match=r"had not finished when it was recorded"):
            await client.fetch(server.url + "/waiting")


async def test_a_sync_block_ending_on_the_loop_warns_when_large(demo, tmp_path, monkeypatch):
    import warnings

    from nbfetch.client import record as record_module

    monkeypatch.setattr(record_module, "LOOP_WARN_BYTES", 10_000)
    async with AsyncClient() as client:
        with (
            pytest.warns(record_module.RecordingBlocksLoop, match="async with"),
            nbfetch.record(tmp_path / "a.har"),
        ):
            await client.fetch(demo.url + "/bytes/20000")
        assert (tmp_path / "a.har").exists()  # written before the block's exit returned
        with warnings.catch_warnings():
            warnings.simplefilter("error", record_module.RecordingBlocksLoop)
            with nbfetch.record(tmp_path / "b.har"):  # small: no warning
                await client.fetch(demo.url + "/bytes/100")
            async with nbfetch.record(tmp_path / "c.har"):  # written in a thread
                await client.fetch(demo.url + "/bytes/20000")


async def test_past_the_budget_a_fetch_holds_no_body_events(demo, tmp_path):
    import gc
    import tracemalloc

    async with AsyncClient() as client:
        await client.fetch(demo.url + "/stream/50")
        with pytest.warns(nbfetch.RecordingTruncated):
            rec = nbfetch.record(tmp_path / "m.har", max_bytes=0)
            try:
                tracemalloc.start()
                before = tracemalloc.get_traced_memory()[0]
                for _ in range(100):
                    await client.fetch(demo.url + "/stream/50")  # 50 chunks each
                gc.collect()
                held = tracemalloc.get_traced_memory()[0] - before
            finally:
                tracemalloc.stop()
                rec._stop_observing()
    # Measured: 21 KB a fetch when each kept its body events (through its
    # Recorder), 4.4 KB as a summary.
    assert held / 100 < 10_000, held


async def test_a_truncated_wire_is_masked_too(raw_server, tmp_path):
    import threading

    from conftest import wait_until

    kept = threading.Event()
    first = b'{"you_sent": "' + TOKEN.encode() + b'", "pad": "'

    def handler(conn, server):
        server.read_request(conn)
        conn.sendall(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
            b"Set-Cookie: sid=cookie-5e1f0a; Path=/\r\nContent-Length: %d\r\n\r\n"
            % (len(first) + 100_002)
            + first
        )
        kept.wait(10)  # the recording holds the first piece: the rest passes max_bytes
        conn.sendall(b"y" * 100_000 + b'"}')

    server = raw_server(handler)
    path = tmp_path / "t.har"
    async with AsyncClient() as client:
        with (
            pytest.warns(nbfetch.RecordingTruncated),
            nbfetch.record(path, max_bytes=50_000) as rec,
        ):
            task = asyncio.ensure_future(
                client.fetch(server.url + "/x", headers={"Authorization": f"Bearer {TOKEN}"})
            )
            await wait_until(lambda: rec.kept > 0, what="the first piece recorded")
            kept.set()
            await task
    entry = json.loads(path.read_text())["log"]["entries"][0]
    wire = _wire(entry)
    assert entry["_nbfetch"]["replayable"] is False and b'{"you_sent": "' in wire
    assert TOKEN.encode() not in wire and b"cookie-5e1f0a" not in wire


async def test_a_secret_sent_one_byte_a_chunk_is_masked(raw_server, tmp_path):
    from conftest import answer_each

    body = b'{"you_sent": "' + TOKEN.encode() + b'"}'
    server = raw_server(answer_each(_chunked(*(body[i : i + 1] for i in range(len(body))))))
    path = tmp_path / "s.har"
    _, entry = await _recorded(path, server.url + "/x")
    assert b"1\r\n*\r\n" * len(TOKEN) in _wire(entry)
    async with AsyncClient(replay=path) as client:
        again = await client.fetch(server.url + "/x")
    assert again.body == body.replace(TOKEN.encode(), b"*" * len(TOKEN))
    assert len([e for e in again.events if e.name == "response.chunk"]) == len(body)


@pytest.mark.parametrize(
    "extra, body",
    [
        # A served value masked everywhere made every "true" of the body "****".
        (b"Access-Control-Allow-Credentials: true\r\n", b'{"ok": true, "items": [true]}'),
        # ... the chunk-size lines "2000" illegal, and Content-Length "1024" bad.
        (b"Set-Cookie: quota=2000; Path=/\r\n", b"a" * 0x2000),
        (b"Set-Cookie: page_size=1024\r\n", b"b" * 1024),
        (b"Set-Cookie: accept=gzip\r\n", b"gzip"),
    ],
    ids=["cors-true", "cookie-chunk-size", "cookie-content-length", "cookie-gzip"],
)
async def test_short_served_values_and_framing_are_not_masked(raw_server, tmp_path, extra, body):
    from conftest import answer_each

    if len(body) == 0x2000:  # chunked: the chunk-size lines read "2000"
        wire = _chunked(body, body).replace(b"Transfer-Encoding", extra + b"Transfer-Encoding")
    else:
        wire = _plain(body, "application/json", extra)
    server = raw_server(answer_each(wire))
    path = tmp_path / "c.har"
    # The user's own short key "1024" does not mask the framing either.
    live, entry = await _recorded(path, server.url + "/x", params={"api_key": "1024"})
    assert entry["_nbfetch"]["replayable"] is True
    async with AsyncClient(replay=path) as client:
        again = await client.fetch(server.url + "/x", params={"api_key": "1024"})
    assert again.body == live.body == body * (2 if len(body) == 0x2000 else 1)


async def test_a_long_served_cookie_is_masked_in_the_body_too(raw_server, tmp_path):
    from conftest import answer_each

    cookie = b"sess-0a9b8c7d6e5f"
    body = b'{"echo": "' + cookie + b'"}'
    server = raw_server(
        answer_each(_plain(body, "application/json", b"Set-Cookie: sid=%s\r\n" % cookie))
    )
    _, entry = await _recorded(tmp_path / "k.har", server.url + "/x")
    assert cookie not in _wire(entry) and b'{"echo": "' + b"*" * len(cookie) in _wire(entry)


async def test_a_json_body_that_did_not_end_keeps_no_wire(raw_server, tmp_path):
    served = "srv_access_tok_8d7c6b5a"
    body = json.dumps({"access_token": served, "pad": "x" * 200}).encode()

    def dropped(conn, server):  # promises 50 bytes more than it sends, then closes
        server.read_request(conn)
        conn.sendall(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
            % (len(body) + 50)
            + body
        )
        conn.close()

    server = raw_server(dropped)
    path = tmp_path / "p.har"
    async with AsyncClient() as client:
        with nbfetch.record(path), pytest.raises(nbfetch.FetchError):
            await client.fetch(server.url + "/login")
    custom = json.loads(path.read_text())["log"]["entries"][0]["_nbfetch"]
    assert served not in path.read_text()
    assert custom["wire"] == [] and custom["replayable"] is False
    assert "did not end" in custom["note"]


async def test_building_the_file_holds_one_parsed_json_body_at_a_time(raw_server, tmp_path):
    import tracemalloc

    import anyio
    from conftest import answer_each

    # 1.2 MB of text, a list of 600,000 items (4.8 MB of pointers) once parsed.
    body = b"[" + b"0," * 599_999 + b"0]"
    server = raw_server(answer_each(_plain(body)))
    async with AsyncClient() as client:
        rec = nbfetch.record(tmp_path / "j.har")
        for i in range(8):
            await client.fetch(server.url + f"/x{i}")
        tracemalloc.start()
        try:
            # In a thread: traced, building the file takes seconds of CPU.
            await anyio.to_thread.run_sync(rec.stop)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    # Each scan kept its parsed list until the end: 56 MB at once; one at a
    # time it is 14 MB (most of it the HAR's base64 wire, 8 x 1.6 MB).
    assert peak < 30_000_000, peak


async def test_one_decode_budget_for_the_whole_recording(raw_server, tmp_path, monkeypatch):
    import gzip

    from conftest import answer_each

    from nbfetch.client import record as record_module

    # Each body's decoding (~2 MB for its HAR text, 2 MB scanned for secrets)
    # fits MAX_SCANNED alone; the second's would pass the recording's.
    monkeypatch.setattr(record_module, "MAX_SCANNED", 5_000_000)
    monkeypatch.setattr(record_module, "LOOP_WARN_BYTES", 1_000_000)
    plain = b"z" * 2_000_000
    server = raw_server(
        answer_each(_plain(gzip.compress(plain), "text/plain", b"Content-Encoding: gzip\r\n"))
    )
    path = tmp_path / "d.har"
    async with AsyncClient() as client:
        # A sync block on the loop: the decoding held it, said once known.
        with pytest.warns(nbfetch.RecordingBlocksLoop, match="decoded"), nbfetch.record(path):
            for i in range(2):
                await client.fetch(
                    server.url + f"/g{i}", headers={"Authorization": f"Bearer {TOKEN}"}
                )
    first, second = (e["_nbfetch"] for e in json.loads(path.read_text())["log"]["entries"])
    assert first["replayable"] is True
    assert second["wire"] == [] and second["replayable"] is False
    assert "budget of 5,000,000 decoded bytes" in second["note"]


@pytest.mark.parametrize(
    "head, secret",
    [
        (b"HTTP/1.1 200 OK\r\nX-Api-Key: fold_one\r\n fold_part_two\r\n", b"fold_part_two"),
        (
            b"HTTP/1.1 200 OK\r\nSet-Cookie: sid=c_head\r\n cookie_tail_3141; Path=/\r\n",
            b"tail_3141",
        ),
        (b"HTTP/1.1 302 Found\r\nLocation: http://alice:p@ssw0rd@127.0.0.1:9/n\r\n", b"ssw0rd"),
        (b"HTTP/1.1 302 Found\r\nLocation: http://alice:pa/ss_9981@127.0.0.1:9/n\r\n", b"ss_9981"),
        (
            b"HTTP/1.1 200 OK\r\nRefresh: 0; url=http://bob:refreshpw_2718@127.0.0.1:9/\r\n",
            b"pw_2718",
        ),
    ],
    ids=["folded-key", "folded-cookie", "raw-at", "raw-slash", "refresh"],
)
async def test_head_credentials_the_field_rules_missed_are_masked(
    raw_server, tmp_path, head, secret
):
    from conftest import answer_each

    server = raw_server(answer_each(head + b"Content-Length: 2\r\n\r\nok"))
    path = tmp_path / "h.har"
    async with AsyncClient() as client:
        with nbfetch.record(path):
            await client.fetch(server.url + "/x", follow_redirects=False)
    entry = json.loads(path.read_text())["log"]["entries"][0]
    assert secret not in _wire(entry) and entry["_nbfetch"]["replayable"] is True
    async with AsyncClient(replay=path) as client:
        assert (await client.fetch(server.url + "/x", follow_redirects=False)).body == b"ok"


@pytest.mark.parametrize(
    "tail, secret",
    [
        (b"5\r\nhello\r\n0\r\nX-Auth-Token: trl_secret_77aa\r\n\r\n", b"trl_secret_77aa"),
        (b"5\r\nhello\r\n0\r\nSet-Cookie: sid=sidtrailer_9911\r\n\r\n", b"sidtrailer_9911"),
        # The request's own token, echoed in a trailer no rule names.
        (b"5\r\nhello\r\n0\r\nX-Echo: " + TOKEN.encode() + b"\r\n\r\n", TOKEN.encode()),
        (b"5;signature=ext_sig_5150\r\nhello\r\n0\r\n\r\n", b"ext_sig_5150"),
    ],
    ids=["secret-named-trailer", "set-cookie-trailer", "echo-trailer", "chunk-extension"],
)
async def test_trailers_and_chunk_extensions_are_masked(raw_server, tmp_path, tail, secret):
    from conftest import answer_each

    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n"
    server = raw_server(answer_each(head + tail))
    path = tmp_path / "t.har"
    _, entry = await _recorded(path, server.url + "/x")
    assert secret not in _wire(entry) and entry["_nbfetch"]["replayable"] is True
    assert secret.decode() not in path.read_text()  # nor in the events' details
    async with AsyncClient(replay=path) as client:
        assert (await client.fetch(server.url + "/x")).body == b"hello"


@pytest.mark.parametrize(
    "body, ctype, secret",
    [
        (
            b"access_token=gho_16C7e42F292c6912E7710c838347Ae178B4a&scope=repo&token_type=bearer",
            "application/x-www-form-urlencoded",
            b"gho_16C7e42F292c6912E7710c838347Ae178B4a",
        ),
        (b')]}\'\n{"access_token": "srv_tok_4c2d9e8f"}', "application/json", b"srv_tok_4c2d9e8f"),
        (
            b'{"event": "start"}\n{"access_token": "ndj_token_0042"}\n',
            "application/x-ndjson",
            b"ndj_token_0042",
        ),
    ],
    ids=["form", "xssi-guard", "ndjson"],
)
async def test_a_served_token_in_a_form_or_guarded_json_is_masked(
    raw_server, tmp_path, body, ctype, secret
):
    from conftest import answer_each

    server = raw_server(answer_each(_plain(body, ctype)))
    path = tmp_path / "t.har"
    _, entry = await _recorded(path, server.url + "/token")
    assert secret.decode() not in path.read_text() and entry["_nbfetch"]["replayable"] is True
    async with AsyncClient(replay=path) as client:
        again = await client.fetch(server.url + "/token")
    assert again.body == body.replace(secret, b"*" * len(secret))
