"""nbfetch.replay() given what a recording file may hold: a browser's HAR that
keeps credentials, malformed or hostile entries, large files and pieces, and
the record and match_body modes. Every failure is a ``ReplayError`` naming
the entry; nothing of the recording's secrets is shown; the loop is not held."""

import asyncio
import base64
import json
import re
import tracemalloc

import pytest
from loopwatch import watch

import nbfetch
from nbfetch import AsyncClient
from nbfetch.client import replay as replay_module
from nbfetch.drivers.synthetic import SyntheticStream

pytestmark = pytest.mark.anyio

URL = "http://127.0.0.1:9/x"  # never connected to: a replay opens no socket


def har_entry(url=URL, method="GET", response=None, request=None, **extra):
    entry = {
        "request": request or {"method": method, "url": url, "headers": []},
        "response": response or {"status": 200, "headers": [], "content": {"text": "hi"}},
    }
    entry.update(extra)
    return entry


def wire_entry(url=URL, pieces=(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi",), **custom):
    fields = {
        "version": 1,
        "wire": [base64.b64encode(p).decode() for p in pieces],
        "wire_times": [0.0] * len(pieces),
        "complete": True,
        "replayable": True,
    }
    fields.update(custom)
    return har_entry(url, _nbfetch=fields)


def har(*entries):
    return {"log": {"version": "1.2", "entries": list(entries)}}


async def fetch_from(recording, url=URL, **options):
    async with AsyncClient(replay=recording) as client:
        return await client.fetch(url, **options)


# -- 1. a miss: no secret shown, bounded work, a hit is a lookup ------------------------
async def test_a_miss_does_not_show_the_recordings_credentials():
    # A browser's HAR (or record(redact=False)) keeps passwords and API keys.
    recorded = "https://alice:hunter2pw@api.example/v1/items?api_key=AKIA1234SECRET"
    with pytest.raises(nbfetch.ReplayMissError) as info:
        await fetch_from(har(har_entry(recorded)), "https://api.example/v1/itemz")
    message = str(info.value)
    assert "hunter2pw" not in message and "AKIA1234SECRET" not in message
    assert "closest recorded: GET https://***@api.example/v1/items?api_key=***" in message


@pytest.fixture(scope="module")
def many():
    """20,000 entries on one origin (built outside the watched test bodies)."""
    url = "http://127.0.0.1:9/api/v1/resource/{0}/detail?page={0}&sort=name"
    return har(*(har_entry(url.format(i)) for i in range(20_000)))


async def test_a_miss_among_many_entries_does_not_hold_the_loop(many):
    async with AsyncClient(replay=many) as client:
        await client.fetch("http://127.0.0.1:9/api/v1/resource/7/detail?page=7&sort=name")
        # difflib over every entry held the loop 3.7 s; now a bounded few
        # of the same method and origin are compared.
        async with watch():
            with pytest.raises(nbfetch.ReplayMissError) as info:
                await client.fetch("http://127.0.0.1:9/api/v2/other")
    assert "closest recorded: GET http://127.0.0.1:9/api/v1/resource/" in str(info.value)


async def test_a_miss_on_another_origin_names_the_recorded_origins():
    with pytest.raises(nbfetch.ReplayMissError, match=r"nothing recorded for GET http://other:80"):
        await fetch_from(har(har_entry()), "http://other/x")


async def test_a_hit_compares_only_the_entries_of_its_method_and_place(many, monkeypatch):
    compared = []
    original = replay_module._Key.matches

    def counting(self, live):
        compared.append(self)
        return original(self, live)

    monkeypatch.setattr(replay_module._Key, "matches", counting)
    r = await fetch_from(many, "http://127.0.0.1:9/api/v1/resource/42/detail?sort=name&page=42")
    assert r.body == b"hi"
    assert len(compared) == 1  # was 20,000: a scan of every entry per fetch


# -- 2. malformed and hostile entries: a ReplayError naming the entry ------------------
BAD_ENTRIES = {
    "_nbfetch a string": ({**har_entry(), "_nbfetch": "x"}, "_nbfetch field is a str"),
    "_nbfetch a list": ({**har_entry(), "_nbfetch": [1]}, "_nbfetch field is a list"),
    "error a string": (wire_entry(error="boom", pieces=()), "_nbfetch.error is a str"),
    "wire not a list": (
        {**har_entry(), "_nbfetch": {"wire": "SGk=", "replayable": True}},
        "wire is not a list",
    ),
    "wire bad base64": (
        {**har_entry(), "_nbfetch": {"wire": ["!!!!"], "replayable": True}},
        "wire piece 0 is not base64",
    ),
    "wire_times infinite": (wire_entry(wire_times=[float("inf")]), "wire_times"),
    "content.text an int": (
        har_entry(response={"status": 200, "headers": [], "content": {"text": 5}}),
        "content.text is an int",
    ),
    "content a list": (
        har_entry(response={"status": 200, "headers": [], "content": []}),
        "content is a list",
    ),
    "header name an int": (
        har_entry(response={"status": 200, "headers": [{"name": 1, "value": "v"}], "content": {}}),
        "header 0 is not a name and a value",
    ),
    "header value with CRLF": (
        har_entry(
            response={
                "status": 200,
                "headers": [{"name": "X", "value": "a\r\nSet-Cookie: z=1"}],
                "content": {},
            }
        ),
        "not valid HTTP",
    ),
    "statusText an int": (
        har_entry(response={"status": 200, "statusText": 5, "headers": [], "content": {}}),
        "statusText is an int",
    ),
    "base64 text that is not": (
        har_entry(
            response={
                "status": 200,
                "headers": [],
                "content": {"text": "!!", "encoding": "base64"},
            }
        ),
        "content.text is not base64",
    ),
    "no response": ({"request": {"method": "GET", "url": URL}}, "no response object"),
}


@pytest.mark.parametrize("name", list(BAD_ENTRIES))
async def test_a_malformed_entry_fails_with_a_replay_error_naming_it(name):
    entry, says = BAD_ENTRIES[name]
    with pytest.raises(nbfetch.ReplayError) as info:
        await fetch_from(har(har_entry("http://127.0.0.1:9/other"), entry))
    message = str(info.value)
    assert f"GET {URL} (entry 1)" in message
    assert says in message


@pytest.mark.parametrize(
    ("status", "says"),
    [
        (0, "status is 0: no response was received"),
        (99, "not an HTTP status"),
        (100, "interim (1xx)"),
        (101, "interim (1xx)"),
        (1000, "not an HTTP status"),
        (1e300, "not an HTTP status"),
        ("abc", "is not a number"),
    ],
)
async def test_a_status_without_a_response_is_not_replayable(status, says):
    # A browser writes status 0 for a blocked or failed request; h11 cannot
    # send anything outside 200-999 as a final response.
    recording = har(har_entry(response={"status": status, "headers": [], "content": {}}))
    with pytest.raises(nbfetch.ReplayError, match="cannot be replayed: .*" + re.escape(says)):
        await fetch_from(recording)


async def test_one_unreplayable_entry_does_not_refuse_the_others():
    blocked = har_entry("http://127.0.0.1:9/ads", response={"status": 0, "headers": []})
    r = await fetch_from(har(blocked, har_entry()))
    assert (r.status_code, r.body) == (200, b"hi")


async def test_an_injected_header_line_is_never_sent():
    # Not even as a header of its own: the head is refused whole.
    value = "a\r\nSet-Cookie: z=1"
    response = {"status": 200, "headers": [{"name": "X", "value": value}], "content": {}}
    with pytest.raises(nbfetch.ReplayError):
        await fetch_from(har(har_entry(response=response)))


@pytest.mark.parametrize(
    ("kind", "says"), [("cancelled", "was cancelled"), ("incomplete", "had not finished")]
)
async def test_an_unfinished_recorded_exchange_is_a_clear_error(kind, says):
    # What the recorder writes for a hop cancelled, or still running when it stopped.
    error = {"type": kind, "phase": "body", "message": "m"}
    for entry in (wire_entry(pieces=(), error=error), wire_entry(error=error, complete=False)):
        with pytest.raises(nbfetch.ReplayError, match=f"cannot be replayed: the exchange {says}"):
            await fetch_from(har(entry))


@pytest.mark.parametrize(
    ("entry", "says"),
    [
        (None, "entry 0 of the recording is null"),
        ({"request": None}, "entry 0 of the recording has no request object"),
        (har_entry(request={"method": 1, "url": URL}), "its method 1 is not one"),
        (har_entry(request={"method": "GET", "url": 7}), "its url is an int"),
        (har_entry(request={"method": "GET", "url": None}), "its url is null"),
    ],
)
async def test_an_entry_that_cannot_be_matched_refuses_the_file(entry, says):
    with pytest.raises(nbfetch.ReplayError, match=says):
        await fetch_from(har(entry))


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("[" * 200_000 + "]" * 200_000, "nests too deeply"),
        ("[1, 2]", "not a HAR log"),
        ('"x"', "not a HAR log"),
        ('{"log": {"entries": 5}}', "not a HAR log"),
        (b"\xff\xfe{\x00", "is not a HAR file"),
    ],
    ids=["deeply nested", "a list", "a string", "entries an int", "not UTF-8"],
)
def test_a_file_that_is_not_a_har_is_a_replay_error(tmp_path, text, says):
    path = tmp_path / "hostile.har"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(nbfetch.ReplayError, match=says):
        nbfetch.Replay(path)


async def test_a_bad_file_is_said_at_the_first_fetch_inside_a_loop(tmp_path):
    path = tmp_path / "broken.har"
    path.write_text("[" * 200_000 + "]" * 200_000)
    replayer = nbfetch.Replay(path)  # inside a loop: parsed at the first fetch
    for _ in range(2):  # and said again to each
        with pytest.raises(nbfetch.ReplayError, match="nests too deeply"):
            await fetch_from(replayer)
    with pytest.raises(nbfetch.ReplayError, match="cannot read"):
        nbfetch.Replay(tmp_path / "missing.har")


# -- 3. large files and pieces do not hold the loop --------------------------------------
@pytest.fixture(scope="module")
def large_file(tmp_path_factory):
    """A recording of 60,000 small entries (~16 MB of JSON): parsing and
    indexing it on the loop took over 100 ms of its CPU."""
    path = tmp_path_factory.mktemp("large") / "large.har"
    headers = [{"name": f"X-Header-{i}", "value": "v" * 20} for i in range(8)]
    entries = [
        har_entry(
            f"http://127.0.0.1:9/item/{i}?page={i}",
            response={"status": 200, "headers": headers, "content": {"text": f"{i}"}},
        )
        for i in range(60_000)
    ]
    path.write_text(json.dumps(har(*entries)))
    return path


@pytest.mark.parametrize(
    "text",
    [
        "{}",
        ' {"log": {}} ',
        '{"log": {"entries": []}}',
        '{"z": null, "log":{"entries":[1, {"a":[1,2]} ,"x"],"version":"1.2"}}',
        '\n{\n "log" : {\n  "entries" : [ {"request": {"method": "GET"}} ]\n }\n}\n',
        '{"log": []}',
        '{"log": {"entries": {"a": 1}}}',
        '{"a": 1, "a": 2}',
        "[1, 2]",
        '{"log": {"entries": [{"_nbfetch": {"wire": ["aGk=", "" ], "events": [{"n": 1}]},'
        ' "response": {"status": 200}}, {"_nbfetch": null}, {"_nbfetch": {"wire": 5}}]}}',
    ],
)
def test_a_recording_is_parsed_as_json_parses_it(text):
    # Entry by entry (the loop can take the GIL between two), to the same result.
    assert replay_module._parse(text) == json.loads(text)


@pytest.mark.parametrize(
    "text",
    [
        "{",
        '{"log": {"entries": [{"_nbfetch": {"wire": ["a" "b"]}}]}}',
        '{"log": {"entries": [1,]}}',
        '{"log": {"entries": [1 2]}}',
        '{"a" 1}',
        '{"a": 1} x',
        "",
    ],
)
def test_a_recording_that_is_not_json_is_refused_as_json_refuses_it(text):
    with pytest.raises(json.JSONDecodeError):
        json.loads(text)
    with pytest.raises(json.JSONDecodeError):
        replay_module._parse(text)


async def test_a_large_recording_is_read_off_the_loop(large_file):
    async with watch(), AsyncClient(replay=large_file) as client:
        first, second = await asyncio.gather(
            client.fetch("http://127.0.0.1:9/item/59999?page=59999"),
            client.fetch("http://127.0.0.1:9/item/3?page=3"),
        )
    assert (first.body, second.body) == (b"59999", b"3")


@pytest.fixture(scope="module")
def one_big_piece():
    size = 48 * 1024**2
    head = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size
    return size, har(wire_entry(pieces=(head + b"y" * size,)))


async def test_one_large_recorded_piece_is_decoded_in_slices(one_big_piece):
    size, recording = one_big_piece
    async with watch():
        r = await fetch_from(recording)
    assert len(r.body) == size and r.body[-1:] == b"y"


async def test_a_limited_read_of_a_large_piece_does_not_copy_its_rest():
    # rate_limit reads a piece in small steps: each step copied the rest.
    size, step = 16 * 1024**2, 64 * 1024
    piece = b"z" * size

    async def answer(request):
        yield piece

    from nbfetch.drivers.auto import current_driver

    stream = SyntheticStream(current_driver(), answer)
    stream.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    stream.limit_reads(step)
    tracemalloc.start()
    try:
        got = 0
        while got < size:
            data = await stream.receive(5)
            assert len(data) <= step
            got += len(data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert got == size
    assert peak < size // 4  # a copy of the rest was the piece's size again


# -- 4. unmatched="record" for one client -------------------------------------------------
async def test_a_clients_replay_in_record_mode_appends_what_it_sent(demo, tmp_path):
    path = tmp_path / "s.har"
    async with AsyncClient() as client:
        with nbfetch.record(path):
            await client.fetch(demo.url + "/get?old=1")
    replayer = nbfetch.Replay(path, unmatched="record")
    async with AsyncClient(replay=replayer) as client, AsyncClient() as other:
        assert (await client.fetch(demo.url + "/get?old=1")).status_code == 200  # replayed
        assert (await client.fetch(demo.url + "/get?new=1")).status_code == 200  # live
        await other.fetch(demo.url + "/get?other=1")  # not this replay's: not appended
    replayer.stop()
    urls = [e["request"]["url"] for e in json.loads(path.read_text())["log"]["entries"]]
    assert urls == [demo.url + "/get?old=1", demo.url + "/get?new=1"]
    assert (replayer.answered, replayer.passed) == (1, 1)
    demo.reset_stats()
    async with AsyncClient(replay=path) as client:  # now from the file
        assert (await client.fetch(demo.url + "/get?new=1")).json()["args"] == {"new": "1"}
    assert demo.stats["requests"] == 0


# -- 5. match_body and values masked because another request sent them -------------------
async def test_match_body_matches_a_body_holding_another_requests_credential(demo, tmp_path):
    path = tmp_path / "p.har"
    token = "Zm9vYmFyYmF6cXV4"
    async with AsyncClient() as client:
        with nbfetch.record(path):
            await client.fetch(demo.url + "/anything/1", "POST", json={"q": token})
            # Another request sends the same string as a credential: the
            # recording masks it everywhere, the first body too.
            await client.fetch(demo.url + "/get", headers={"Authorization": f"Bearer {token}"})
    recorded = json.loads(path.read_text())["log"]["entries"][0]["request"]["postData"]["text"]
    assert token not in recorded
    replayer = nbfetch.Replay(path, match_body=True)
    r = await fetch_from(replayer, demo.url + "/anything/1", method="POST", json={"q": token})
    assert r.status_code == 200
    with pytest.raises(nbfetch.ReplayMissError):  # the rest of the body still counts
        await fetch_from(replayer, demo.url + "/anything/1", method="POST", json={"p": token})


def test_concurrent_first_fetches_under_trio_share_one_load(tmp_path):
    trio = pytest.importorskip("trio")
    path = tmp_path / "t.har"
    path.write_text(json.dumps(har(har_entry(URL + "/a"), har_entry(URL + "/b"))))
    loads = []
    original = nbfetch.Replay._load

    def counted(self):
        loads.append(1)
        original(self)

    async def main():
        bodies = {}
        async with AsyncClient(replay=path) as client:

            async def one(url):
                bodies[url] = (await client.fetch(url)).body

            async with trio.open_nursery() as nursery:
                nursery.start_soon(one, URL + "/a")
                nursery.start_soon(one, URL + "/b")
        return bodies

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(nbfetch.Replay, "_load", counted)
        bodies = trio.run(main)
    assert bodies == {URL + "/a": b"hi", URL + "/b": b"hi"}
    assert loads == [1]  # the second fetch waited for the first one's load
