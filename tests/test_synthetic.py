"""Fetches answered by Python code (client/observe.py openers, drivers/synthetic.py)
and the process-wide observers: the answer goes through the client's own h11
path, so events, limits, chunk framing and errors are those of a socket."""

import asyncio

import pytest
from conftest import idle_connections, wait_until

from nbfetch import AsyncClient
from nbfetch.client import observe
from nbfetch.core.errors import FetchTimeout, ProtocolError
from nbfetch.drivers.synthetic import SyntheticStream

pytestmark = [pytest.mark.anyio, pytest.mark.loop_watchdog]


class Opener:
    """Answers every hop with ``answer``; counts the streams it opened."""

    def __init__(self, answer, only=None):
        self.answer = answer
        self.only = only
        self.streams = []
        self.requests = []

    async def open(self, request, ctx):
        if self.only is not None and self.only not in str(request.url):
            return None
        stream = SyntheticStream(ctx.driver, self._answer, remote=("replay", 0))
        self.streams.append(stream)
        return stream

    def _answer(self, request):
        self.requests.append(request)
        return self.answer(request)


async def chunked_hello(request):
    yield request.respond(200, [("Content-Type", "text/plain")])
    for piece in (b"hello, ", b"synthetic ", b"world"):
        yield request.data(piece)
    yield request.end()


@pytest.fixture
def anyio_backend():
    return "asyncio"


async def test_an_opener_answers_through_h11_with_events_and_chunks():
    opener = Opener(chunked_hello)
    async with AsyncClient() as client:
        client.opener = opener
        r = await client.fetch("http://api.test/x?y=1", headers={"X-A": "1"})
        assert r.status_code == 200
        assert r.body == b"hello, synthetic world"
        assert r.headers["transfer-encoding"] == "chunked"
        names = [e.name for e in r.events]
        # No socket: no resolve/connect/TLS events are invented.
        assert not any(n.startswith(("resolve.", "connect.", "tls.")) for n in names)
        assert names.count("response.chunk") == 3
        seen = opener.requests[0]
        assert (seen.method, seen.target) == ("GET", "/x?y=1")
        assert seen.header("host") == "api.test"
        assert seen.header("x-a") == "1"
        # Never pooled: the next fetch to that origin gets a new synthetic stream.
        await client.fetch("http://api.test/x")
        assert len(opener.streams) == 2
        assert idle_connections(client) == 0


async def test_a_body_is_parsed_by_the_peer():
    async def echo(request):
        yield request.respond(200, [("Content-Length", str(len(request.body)))])
        yield request.data(request.body)
        yield request.end()

    opener = Opener(echo)
    async with AsyncClient() as client:
        client.opener = opener
        r = await client.fetch("http://api.test/p", "POST", json={"a": [1, 2]})
        assert r.json() == {"a": [1, 2]}
        r = await client.fetch(
            "http://api.test/p", "POST", body=b"x" * 5000, expect_100_continue=True
        )
        assert r.body == b"x" * 5000
        assert "response.informational" in [e.name for e in r.events]


async def test_recorded_bytes_are_checked_as_a_servers():
    async def bad_chunk(request):
        yield b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\n"

    async with AsyncClient() as client:
        client.opener = Opener(bad_chunk)
        with pytest.raises(ProtocolError):
            await client.fetch("http://api.test/")


async def test_a_close_delimited_answer_ends_at_the_answers_end():
    async def close_delimited(request):
        yield b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n"
        yield b"until "
        yield b"the end"

    async with AsyncClient() as client:
        client.opener = Opener(close_delimited)
        r = await client.fetch("http://api.test/")
        assert r.body == b"until the end"


async def test_a_silent_answer_times_out_by_the_read_timeout():
    async def silent(request):
        await asyncio.Event().wait()
        yield b""  # never reached

    async with AsyncClient() as client:
        client.opener = Opener(silent)
        with pytest.raises(FetchTimeout) as info:
            await client.fetch("http://api.test/", read_timeout=0.2)
        assert info.value.phase == "wait"


async def test_closing_the_stream_cancels_the_answer():
    cancelled = []

    class Endless:
        def __init__(self, request):
            self.request, self.started = request, False

        def __aiter__(self):
            return self

        async def __anext__(self):
            if not self.started:
                self.started = True
                return self.request.respond(200, [])
            await asyncio.sleep(0.01)
            return self.request.data(b"x" * 100)

        def cancel(self):
            cancelled.append(True)

    async with AsyncClient() as client:
        client.opener = Opener(Endless)
        async with client.stream("GET", "http://api.test/") as r:
            async for _ in r.aiter_bytes():
                break
        assert cancelled == [True]


async def test_an_opener_returning_none_goes_to_the_network(demo):
    async with AsyncClient() as client:
        client.opener = Opener(chunked_hello, only="api.test")
        r = await client.fetch(demo.url + "/get")
        assert r.json()["url"].endswith("/get")
        assert "connect.done" in [e.name for e in r.events]


async def test_push_opener_applies_to_every_client_until_removed():
    opener = Opener(chunked_hello)
    remove = observe.push_opener(opener)
    try:
        async with AsyncClient() as client:
            assert (await client.fetch("http://api.test/")).body == b"hello, synthetic world"
    finally:
        remove()
    assert observe.current_opener() is None


async def test_observers_see_every_fetch_its_events_and_bytes(demo):
    seen, events, wire, body = [], [], [], []

    class Watch:
        def fetch_started(self, request, ctx):
            seen.append(request.method)
            ctx.wire_taps = [lambda data: wire.append(bytes(data))]
            ctx.body_taps = [lambda data: body.append(bytes(data))]
            return events.append

    class Broken:
        def fetch_started(self, request, ctx):
            raise RuntimeError("an instrument's bug")

    removers = [observe.add_observer(Broken()), observe.add_observer(Watch())]
    try:
        async with AsyncClient() as client:
            r = await client.fetch(demo.url + "/bytes/3000?seed=1&chunk_size=700")
            await client.fetch(demo.url + "/get", "DELETE")
    finally:
        for remove in removers:
            remove()
    assert seen == ["GET", "DELETE"]
    assert events[0].name == "queued"
    assert [e.name for e in events].count("response.done") == 2
    raw = b"".join(wire)
    assert raw.startswith(b"HTTP/1.1 200 ")
    assert b"\r\n2bc\r\n" in raw  # the wire, chunk size lines included
    assert b"".join(body).startswith(r.body)
    assert observe.observers() == ()


async def test_a_failing_tap_is_dropped_and_the_fetch_goes_on(demo):
    class Tapper:
        def fetch_started(self, request, ctx):
            ctx.wire_taps = [self.fail]

        def fail(self, data):
            raise ValueError("bad tap")

    remove = observe.add_observer(Tapper())
    try:
        async with AsyncClient() as client:
            r = await client.fetch(demo.url + "/bytes/100")
    finally:
        remove()
    assert len(r.body) == 100


async def test_a_written_request_waits_for_its_body_before_the_answer():
    """The answer starts only once the request is complete; a stream that
    waits for the rest wakes when it is written."""
    from nbfetch.drivers.auto import current_driver

    stream = SyntheticStream(current_driver(), chunked_hello)
    stream.write(b"POST /u HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\nab")
    task = asyncio.ensure_future(stream.receive(5.0))
    await asyncio.sleep(0)
    assert not task.done()
    stream.write(b"cd")
    head = await task
    assert head.startswith(b"HTTP/1.1 200 ")
    await wait_until(lambda: True)
    stream.close()
    with pytest.raises(OSError):
        await stream.receive(1.0)


async def test_a_synthetic_answer_is_paced_by_rate_limit_and_pauses():
    """client/flow.py drives the Stream's pause_reading/limit_reads: a
    synthetic stream hands out at most the limited read size at a time."""

    async def big(request):
        yield request.respond(200, [("Content-Length", str(60_000))])
        yield request.data(b"z" * 60_000)  # one piece, larger than a limited read
        yield request.end()

    async with AsyncClient() as client:
        client.opener = Opener(big)
        sizes = []
        async with client.stream("GET", "http://api.test/", rate_limit=100_000) as r:
            r.pause()
            assert r.paused
            r.resume()
            async for piece in r.aiter_raw():
                sizes.append(len(piece))
        assert sum(sizes) == 60_000
        # max(1 KiB, rate x 0.1 s) = 10,000 bytes a read: never the whole piece at once.
        assert max(sizes) <= 10_000
        assert r.timing.download >= 0.3  # 50,000 bytes paced at 100 kB/s after the first read
