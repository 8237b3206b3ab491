"""End-to-end fetches against the embedded demo server."""

import asyncio
import gzip
import json

import pytest
from conftest import assert_timing_sane, idle_connections, wait_until

import nbfetch
from nbfetch import AsyncClient

pytestmark = [pytest.mark.anyio, pytest.mark.loop_watchdog]

PHASE_NAMES = ("redirect", "queue", "dns", "connect", "tls", "send", "wait", "download")


def names(r):
    return [e.name for e in r.events]


async def test_get_json_and_event_order(demo):
    async with AsyncClient() as c:
        r = await c.fetch(demo.url + "/get?x=1")
    assert (r.status_code, r.reason, r.http_version) == (200, "OK", "HTTP/1.1")
    assert r.json()["args"] == {"x": "1"}
    assert r.headers["content-type"] == "application/json"
    assert names(r) == [
        "queued",
        "dequeued",
        "connect.start",
        "connect.done",
        "request.headers_sent",
        "request.body_sent",
        "response.headers",
        "response.data",
        "response.done",
    ]
    offsets = [e.offset for e in r.events]
    assert offsets == sorted(offsets)


async def test_default_request_headers(demo):
    async with AsyncClient() as c:
        sent = (await c.fetch(demo.url + "/headers")).json()["headers"]
    assert sent["User-Agent"] == f"nbfetch/{nbfetch.__version__}"
    assert sent["Accept-Encoding"] == "gzip, deflate, br, zstd"
    assert sent["Host"] == demo.url.removeprefix("http://")


async def test_timing_phases_add_up_and_match_events(demo):
    async with AsyncClient() as c:
        r = await c.fetch(demo.url + "/chunked?sizes=5,5&delay=0.05")
    t = r.timing
    assert_timing_sane(t)
    ev = {e.name: e.time for e in r.events}
    assert t.connect == pytest.approx(ev["connect.done"] - ev["dequeued"], abs=1e-9)
    assert t.wait == pytest.approx(ev["response.headers"] - ev["request.body_sent"], abs=1e-9)
    assert t.download == pytest.approx(ev["response.done"] - ev["response.headers"], abs=1e-9)
    assert t.download >= 0.045  # the server waited 50 ms between the chunks
    assert t.dns is None and t.tls is None and t.redirect is None


async def test_wire_chunks_in_events_on_chunk_and_aiter_chunks(demo):
    url = demo.url + "/chunked?sizes=10,2000,7&ext=1&trailers=1"
    seen = []
    async with AsyncClient() as c:
        r = await c.fetch(url, on_chunk=seen.append)
        chunk_events = [e.details for e in r.events if e.name == "response.chunk"]
        assert [(d["index"], d["size"]) for d in chunk_events] == [(0, 10), (1, 2000), (2, 7)]
        assert chunk_events[2]["extensions"] == (("index", "2"), ("name", "chunk 2"))
        assert [(ch.index, ch.size, len(ch.data)) for ch in seen] == [
            (0, 10, 10),
            (1, 2000, 2000),
            (2, 7, 7),
        ]
        assert seen[1].data == b"b" * 2000 and seen[0].framed
        assert r.trailers["x-chunks"] == "3" and r.trailers["x-checksum"].startswith("sha256=")
        assert r.body == b"a" * 10 + b"b" * 2000 + b"c" * 7

        async with c.stream("GET", url) as s:
            chunks = [ch async for ch in s.aiter_chunks()]
    assert [ch.size for ch in chunks] == [10, 2000, 7]
    assert chunks[1].extensions == (("index", "1"), ("name", "chunk 1"))
    assert all(ch.offset > 0 for ch in chunks)
    assert [ch.offset for ch in chunks] == sorted(ch.offset for ch in chunks)


async def test_arrival_times_follow_the_server(demo):
    async with (
        AsyncClient() as c,
        c.stream("GET", demo.url + "/chunked?sizes=1,1,1&delay=0.1") as s,
    ):
        chunks = [ch async for ch in s.aiter_chunks()]
    assert [round(ch.gap, 1) for ch in chunks[1:]] == [0.1, 0.1]


async def test_coroutine_on_chunk_applies_backpressure(demo):
    # While the callback sleeps, nothing more is read: each chunk is delivered
    # only after the previous callback returned.
    log = []

    async def slow(chunk):
        log.append(("start", chunk.index))
        await asyncio.sleep(0.02)
        log.append(("end", chunk.index))

    async with AsyncClient() as c:
        r = await c.fetch(demo.url + "/stream/5", on_chunk=slow)
    assert log == [(k, i) for i in range(5) for k in ("start", "end")]
    assert len(r.body.splitlines()) == 5


async def test_stream_aiter_bytes_and_raw_under_gzip(demo):
    async with AsyncClient() as c:
        async with c.stream("GET", demo.url + "/gzip-stream/200") as s:
            decoded = b"".join([d async for d in s.aiter_bytes()])
        async with c.stream("GET", demo.url + "/gzip-stream/200") as s:
            raw = b"".join([d async for d in s.aiter_raw()])
    assert gzip.decompress(raw) == decoded
    assert decoded.count(b"\n") == 200
    assert s.wire_bytes == len(raw) == s.decoded_bytes  # aiter_raw decodes nothing


@pytest.mark.parametrize(
    "path,key", [("/gzip", "gzipped"), ("/deflate", "deflateped"), ("/brotli", "brped")]
)
async def test_compressed_bodies(demo, path, key):
    async with AsyncClient() as c:
        r = await c.fetch(demo.url + path)
    assert r.json()[key] is True
    assert r.wire_bytes < r.decoded_bytes == len(r.body)


async def test_decompress_false_keeps_the_wire_bytes(demo):
    async with AsyncClient() as c:
        r = await c.fetch(demo.url + "/gzip", decompress=False)
        sent = (await c.fetch(demo.url + "/headers", decompress=False)).json()["headers"]
    assert json.loads(gzip.decompress(r.body))["gzipped"] is True
    assert "Accept-Encoding" not in sent


async def test_request_bodies(demo):
    async def gen():
        for part in (b"ab", b"", "cd", b"ef"):
            yield part

    async with AsyncClient() as c:
        r = await c.fetch(demo.url + "/post", "POST", json={"é": [1, 2]})
        assert r.json()["json"] == {"é": [1, 2]}
        r = await c.fetch(demo.url + "/post", "POST", data={"a": "1", "b": ["2", "3"]})
        assert r.json()["form"] == {"a": "1", "b": "3"}
        assert r.json()["headers"]["Content-Type"] == "application/x-www-form-urlencoded"
        r = await c.fetch(demo.url + "/put", "PUT", body="text ü")
        assert r.json()["data"] == "text ü"
        r = await c.fetch(demo.url + "/post", "POST", body=gen())
        assert r.json()["data"] == "abcdef"
        assert r.json()["headers"]["Transfer-Encoding"] == "chunked"
        assert [e["bytes"] for e in r.events if e.name == "request.body_sent"] == [6]
        r = await c.fetch(demo.url + "/post", "POST")
        assert r.json()["headers"]["Content-Length"] == "0"
        big = bytes(range(256)) * 4096  # 1 MiB
        r = await c.fetch(
            demo.url + "/post",
            "POST",
            body=big,
            headers={"Content-Type": "application/octet-stream"},
        )
        assert r.json()["headers"]["Content-Length"] == str(len(big))


async def test_on_headers_sees_the_status_before_the_body(demo):
    seen = []
    async with AsyncClient() as c:
        r = await c.fetch(
            demo.url + "/drip?numbytes=3&duration=0.1&chunks=3",
            on_headers=lambda resp: seen.append((resp.status_code, resp.wire_bytes)),
        )
    assert seen == [(200, 0)] and r.body == b"***"


async def test_trace_sees_every_event_live_in_order(demo):
    live = []
    async with AsyncClient(trace=lambda e: live.append(("client", e.name))) as c:
        r = await c.fetch(demo.url + "/stream/2", trace=lambda e: live.append(("fetch", e.name)))
    assert [n for who, n in live if who == "fetch"] == names(r)
    assert [n for who, n in live if who == "client"] == names(r)


async def test_a_failing_trace_subscriber_does_not_break_the_fetch(demo, caplog):
    def bad(event):
        raise RuntimeError("observer bug")

    async with AsyncClient() as c:
        r = await c.fetch(demo.url + "/get", trace=bad)
    assert r.status_code == 200
    assert "observer bug" in caplog.text


async def test_redirects_history_and_timing(demo):
    async with AsyncClient() as c:
        r = await c.fetch(demo.url + "/redirect/3")
        assert r.url == demo.url + "/get"
        assert [h.status_code for h in r.history] == [302, 302, 302]
        assert str(r.history[0].url) == demo.url + "/redirect/3"
        assert names(r).count("redirect") == 3
        t = r.timing
        assert t.redirect > 0
        assert_timing_sane(t)
        assert r.history[0].timing.redirect is None
        r = await c.fetch(demo.url + "/redirect/2", follow_redirects=False)
        assert r.status_code == 302 and r.headers["location"] == "/redirect/1"
        with pytest.raises(nbfetch.TooManyRedirects, match="max_redirects=2") as exc:
            await c.fetch(demo.url + "/redirect/5", max_redirects=2)
        assert exc.value.url == demo.url + "/redirect/3"


@pytest.mark.parametrize(
    "status,method,expected",
    [
        (301, "POST", "GET"),
        (302, "POST", "GET"),
        (303, "PUT", "GET"),
        (307, "POST", "POST"),
        (308, "PUT", "PUT"),
        (302, "PUT", "PUT"),
    ],
)
async def test_redirect_method_and_body_rules(demo, status, method, expected):
    target = demo.url + "/anything"
    async with AsyncClient() as c:
        r = await c.fetch(
            f"{demo.url}/redirect-to?url={target}&status_code={status}", method, body=b"payload"
        )
    echo = r.json()
    assert echo["method"] == expected
    assert echo["data"] == ("payload" if expected != "GET" else "")


async def test_redirect_to_another_scheme_is_refused(demo):
    async with AsyncClient() as c:
        with pytest.raises(nbfetch.RedirectError, match="unsupported URL scheme 'file'") as exc:
            await c.fetch(demo.url + "/redirect-to?url=file:///etc/passwd")
    assert exc.value.phase == "redirect"


async def test_keep_alive_one_connection_for_many_fetches(demo):
    async with AsyncClient() as c:
        rs = [await c.fetch(demo.url + "/get") for _ in range(200)]
    assert demo.stats["connections"] == 1
    assert all("connection.reused" in names(r) for r in rs[1:])
    assert rs[1].timing.connect is None and rs[1].timing.dns is None


async def test_max_clients_queue(demo):
    async with AsyncClient(max_clients=2) as c:
        rs = await asyncio.gather(*[c.fetch(demo.url + "/delay/0.05") for _ in range(20)])
    assert demo.stats["max_in_flight"] == 2
    waited = [r for r in rs if r.timing.queue > 0.03]
    assert len(waited) >= 16
    assert all(r.status_code == 200 for r in rs)


async def test_hostname_mapping_and_resolve_events(demo):
    port = demo.port
    async with AsyncClient(hostname_mapping={"demo.test": "127.0.0.1"}) as c:
        r = await c.fetch(f"http://demo.test:{port}/headers")
    assert r.json()["headers"]["Host"] == f"demo.test:{port}"
    start = next(e for e in r.events if e.name == "resolve.start")
    assert start["mapped_to"] == ("127.0.0.1", port)
    assert r.timing.dns is not None


async def test_localhost_is_resolved_off_the_loop(demo):
    async with AsyncClient() as c:
        r = await c.fetch(f"http://localhost:{demo.port}/get")
    done = next(e for e in r.events if e.name == "resolve.done")
    assert "127.0.0.1" in done["addresses"] or "::1" in done["addresses"]


async def test_basic_auth_from_option_and_from_url(demo):
    async with AsyncClient() as c:
        assert (await c.fetch(demo.url + "/basic-auth/u/pé", auth=("u", "pé"))).json()[
            "authenticated"
        ]
        r = await c.fetch(demo.url.replace("http://", "http://u:p%C3%A9@") + "/basic-auth/u/pé")
        assert r.status_code == 200
        r = await c.fetch(demo.url + "/basic-auth/u/pé", auth=("u", "wrong"))
        assert r.status_code == 401
        with pytest.raises(nbfetch.HTTPStatusError, match="401 Unauthorized") as exc:
            r.raise_for_status()
        assert exc.value.response is r


async def test_connection_close_is_honoured(demo):
    async with AsyncClient() as c:
        for _ in range(3):
            assert (await c.fetch(demo.url + "/close")).status_code == 200
    assert demo.stats["connections"] == 3


async def test_head_and_status_codes(demo):
    async with AsyncClient() as c:
        r = await c.fetch(demo.url + "/get", "HEAD")
        assert r.status_code == 200 and r.body == b"" and int(r.headers["content-length"]) > 0
        r = await c.fetch(demo.url + "/status/418")
        assert (r.status_code, r.reason) == (418, "I'm a Teapot")
        assert not r.ok
        r = await c.fetch(demo.url + "/status/204")
        assert r.status_code == 204 and r.body == b""


async def test_large_body_streamed_in_pieces(demo):
    n = 20 * 1024 * 1024
    total = 0
    pieces = 0
    async with AsyncClient() as c, c.stream("GET", demo.url + f"/bytes/{n}") as s:
        assert s.content_length == n
        async for data in s.aiter_bytes():
            total += len(data)
            pieces += 1
    assert total == n and pieces > 1


async def test_max_body_size_for_buffered_fetches(demo):
    async with AsyncClient(limits=nbfetch.Limits(max_body_size=1000)) as c:
        with pytest.raises(nbfetch.TooLargeError, match="max_body_size=1000"):
            await c.fetch(demo.url + "/bytes/5000")
        with pytest.raises(nbfetch.TooLargeError, match="max_body_size=1000"):
            await c.fetch(demo.url + "/bytes/5000?chunk_size=100")
        assert (await c.fetch(demo.url + "/bytes/1000")).status_code == 200


async def test_connect_refused_names_url_and_phase():
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    async with AsyncClient() as c:
        with pytest.raises(nbfetch.ConnectError) as exc:
            await c.fetch(f"http://127.0.0.1:{port}/x")
    assert exc.value.phase == "connect"
    assert f"127.0.0.1:{port}/x" in str(exc.value)
    assert "refused" in str(exc.value).lower()


async def test_invalid_requests_send_nothing(demo):
    async with AsyncClient() as c:
        for kwargs in (
            {"headers": {"X": "a\r\nInjected: yes"}},
            {"headers": {"Bad Name": "v"}},
            {"method": "GE T"},
            {"body": b"x"},  # GET with a body
            {"json": 1, "body": b"x", "method": "POST"},
            {"read_timeout": -1},
            {"nonsense": 1},
        ):
            with pytest.raises(nbfetch.InvalidRequest):
                await c.fetch(demo.url + "/get", **kwargs)
    assert demo.stats["connections"] == 0
    assert issubclass(nbfetch.InvalidRequest, ValueError)


async def test_module_level_fetch_shares_one_client(demo):
    r1 = await nbfetch.fetch(demo.url + "/get")
    r2 = await nbfetch.fetch(demo.url + "/get")
    assert "connection.reused" in names(r2) and r1.status_code == 200
    assert nbfetch.default_client() is nbfetch.default_client()
    await nbfetch.default_client().aclose()


def test_fetch_sync_in_a_script(demo):
    r = nbfetch.fetch_sync(demo.url + "/get")
    assert r.status_code == 200 and r.json()["url"] == demo.url + "/get"


async def test_stream_closed_early_drops_the_connection(demo):
    async with AsyncClient() as c:
        async with c.stream("GET", demo.url + "/drip?numbytes=10&duration=1&chunks=10") as s:
            async for _ in s.aiter_raw():
                break
        # The caller closed the stream: the connection is dropped, nothing was cancelled.
        assert "connection.dropped" in names(s) and "cancelled" not in names(s)
        r = await c.fetch(demo.url + "/get")
        assert "connection.reused" not in names(r)
        assert c._queue.active == 0 and idle_connections(c) == 1


async def test_timing_of_a_failed_fetch_gives_the_time_to_the_running_phase(demo):
    from nbfetch.core.events import Timing

    events = []
    async with AsyncClient() as c:
        with pytest.raises(nbfetch.FetchTimeout):
            await c.fetch(
                demo.url + "/drip?numbytes=5&duration=5&chunks=5",
                read_timeout=0.3,
                trace=events.append,
            )
    t = Timing(events, events[0].time)
    assert t.download == pytest.approx(0.3, abs=0.06)  # the silence in the body
    assert_timing_sane(t)
    assert t.total == pytest.approx(events[-1].time - events[0].time)


async def test_params_are_added_to_the_query(demo):
    async with AsyncClient() as c:
        r = await c.fetch(demo.url + "/get?a=1", params={"q": "a b", "tag": ["x", "y"]})
        assert r.url.query == "a=1&q=a+b&tag=x&tag=y"
        assert r.json()["args"] == {"a": "1", "q": "a b", "tag": "y"}
        r2 = await c.fetch(demo.url + "/get", params=[("k", "ü")])
        assert r2.json()["args"] == {"k": "ü"}
        with pytest.raises(nbfetch.InvalidRequest, match="params="):
            await c.fetch(demo.url + "/get", params="k=v")


async def test_a_reader_cancelled_inside_stream_records_cancelled(demo):
    events = []
    async with AsyncClient() as c:

        async def read():
            async with c.stream(
                "GET", demo.url + "/drip?numbytes=10&duration=5&chunks=10", trace=events.append
            ) as s:
                async for _ in s.aiter_raw():
                    pass

        task = asyncio.ensure_future(read())
        await wait_until(lambda: any(e.name == "response.data" for e in events), what="data")
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    names = [e.name for e in events]
    assert "cancelled" in names and "connection.dropped" not in names


async def test_closing_a_generator_around_a_stream_is_not_a_cancel(demo):
    events = []
    async with AsyncClient() as c:

        async def pieces():
            async with c.stream(
                "GET", demo.url + "/drip?numbytes=10&duration=1&chunks=10", trace=events.append
            ) as s:
                async for piece in s.aiter_raw():
                    yield piece

        gen = pieces()
        async for _ in gen:
            break
        await gen.aclose()  # GeneratorExit inside the stream's context
    names = [e.name for e in events]
    assert "connection.dropped" in names and "cancelled" not in names
