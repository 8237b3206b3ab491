"""Run in Pyodide under Node.js by tests/test_pyodide.py (Node's global fetch
stands in for the browser's: same Response, ReadableStream and
AbortController). NBFETCH_DEMO is the demo server's URL. Prints one JSON line
per check: {"check": name, ...measured values}."""

import asyncio
import json
import os
import sys
import time

import nbfetch
from nbfetch import AsyncClient
from nbfetch.client.browser import BrowserOpener
from nbfetch.core.errors import ConnectError, FetchTimeout, InvalidRequest
from nbfetch.drivers.browser import JSFetch

DEMO = os.environ["NBFETCH_DEMO"]


def report(check, **values):
    print(json.dumps({"check": check, **values}, default=str), flush=True)


def names(r):
    return [e.name for e in r.events]


async def main():
    assert sys.platform == "emscripten"
    from nbfetch.drivers.auto import current_driver

    report("driver", name=type(current_driver()).__name__)

    # Latency: the shared client, a small JSON endpoint, 20 times.
    times = []
    for _ in range(20):
        t0 = time.perf_counter()
        r = await nbfetch.fetch(DEMO + "/get?x=1")
        times.append(time.perf_counter() - t0)
    assert r.status_code == 200 and r.json()["args"] == {"x": "1"}, r.body
    times.sort()
    report(
        "latency",
        median_ms=round(times[len(times) // 2] * 1000, 2),
        min_ms=round(times[0] * 1000, 2),
        max_ms=round(times[-1] * 1000, 2),
        events=names(r),
        timing=r.timing.as_dict(),
        resource_timing=next((e.details for e in r.events if e.name == "browser.timing"), None),
        http_version=r.http_version,
        transfer_encoding=r.headers.get("transfer-encoding"),
    )

    # A slow chunked body arrives piece by piece, while it streams.
    got, offsets = [], []
    async with AsyncClient() as client:
        t0 = time.perf_counter()
        async with client.stream("GET", DEMO + "/drip?numbytes=5&duration=1&chunks=5") as s:
            async for data in s.aiter_bytes():
                got.append(data)
                offsets.append(round(time.perf_counter() - t0, 3))
    report("drip", pieces=len(got), offsets=offsets, body=b"".join(got).decode())

    chunks = []
    r = await nbfetch.fetch(DEMO + "/stream/3", on_chunk=chunks.append)
    report(
        "on_chunk",
        chunks=len(chunks),
        sizes=[c.size for c in chunks],
        lines=len(r.text.splitlines()),
    )

    # Already decoded by the browser: no Content-Encoding left, not decoded twice.
    r = await nbfetch.fetch(DEMO + "/gzip")
    ev = next(e for e in r.events if e.name == "browser.response")
    report(
        "gzip",
        gzipped=r.json().get("gzipped"),
        content_encoding=r.headers.get("content-encoding"),
        decoded_by_browser=ev.details.get("decoded_by_browser"),
    )

    # Redirects: followed by the browser, the final URL only.
    r = await nbfetch.fetch(DEMO + "/redirect/2")
    report(
        "redirect",
        url=str(r.url),
        history=len(r.history),
        events=[e.name for e in r.events if e.name.startswith(("browser", "redirect"))],
    )

    # POST with a JSON body.
    r = await nbfetch.fetch(DEMO + "/post", "POST", json={"a": [1, 2]})
    report("post", json=r.json()["json"], status=r.status_code)

    # Forbidden header set by the caller: refused before anything is sent.
    try:
        await nbfetch.fetch(DEMO + "/get", headers={"Cookie": "a=1"})
    except InvalidRequest as exc:
        report("forbidden", error=str(exc))

    # Timeouts: the read timeout between pieces, then the request timeout.
    t0 = time.perf_counter()
    try:
        await nbfetch.fetch(DEMO + "/delay/5", read_timeout=0.5)
    except FetchTimeout as exc:
        report(
            "read_timeout",
            error=str(exc),
            after_s=round(time.perf_counter() - t0, 3),
            timeout=exc.timeout,
        )
    t0 = time.perf_counter()
    try:
        await nbfetch.fetch(DEMO + "/drip?numbytes=20&duration=5&chunks=20", request_timeout=1.0)
    except FetchTimeout as exc:
        report(
            "request_timeout",
            error=str(exc),
            after_s=round(time.perf_counter() - t0, 3),
            phase=exc.phase,
        )

    # Cancel: the task's cancellation aborts the browser's fetch (its
    # AbortController's signal says so).
    made = []

    def recording():
        made.append(JSFetch())
        return made[-1]

    async with AsyncClient() as client:
        client.opener = BrowserOpener(make_fetch=recording)
        pieces = []
        task = asyncio.ensure_future(
            client.fetch(DEMO + "/drip?numbytes=10&duration=10&chunks=10", on_chunk=pieces.append)
        )
        while not pieces:
            await asyncio.sleep(0.05)
        task.cancel()
        t0 = time.perf_counter()
        try:
            await task
        except asyncio.CancelledError:
            report(
                "cancel",
                after_s=round(time.perf_counter() - t0, 3),
                aborted=bool(made[0]._controller.signal.aborted),
                pieces_before=len(pieces),
            )

    # A refused port: a ConnectError.
    try:
        await nbfetch.fetch("http://127.0.0.1:9/", request_timeout=10)
    except ConnectError as exc:
        report("refused", error=str(exc), type=type(exc).__name__)

    # fetch_sync cannot block here.
    try:
        nbfetch.fetch_sync(DEMO + "/get")
    except InvalidRequest as exc:
        report("fetch_sync", error=str(exc))

    # download() and a files= upload: the driver's run_sync runs in place
    # (no threads), on Pyodide's in-memory file system.
    r = await nbfetch.download(DEMO + "/bytes/5000?seed=3", "/tmp/five.bin")
    with open("/tmp/five.bin", "rb") as f:
        saved = len(f.read())
    with open("/tmp/up.txt", "w") as f:
        f.write("uploaded from pyodide")
    up = await nbfetch.fetch(DEMO + "/post", "POST", files={"f": "/tmp/up.txt"})
    sent = up.json()
    report(
        "files",
        saved=saved,
        uploaded="uploaded from pyodide" in sent["data"],
        content_type=sent["headers"].get("content-type", "").split(";")[0],
    )

    # fetch_many
    results = await nbfetch.fetch_many([DEMO + f"/get?i={i}" for i in range(5)])
    report("fetch_many", statuses=[getattr(x, "status_code", repr(x)) for x in results])

    await review_findings(recording, made)


async def review_findings(recording, made):
    """The cases an adversarial review found failing (asserted here: a failure
    fails the run)."""
    # A null body (HEAD, 204, 304; Node's manual redirect is the 302 itself)
    # is Pyodide's jsnull, not None: no body to read.
    statuses = {}
    for method, path, follow in [
        ("HEAD", "/get", True),
        ("GET", "/status/204", True),
        ("GET", "/status/304", True),
        ("GET", "/redirect/1", False),
    ]:
        r = await nbfetch.fetch(DEMO + path, method, follow_redirects=follow)
        assert r.body == b"", (path, r.body)
        statuses[f"{method} {path}"] = r.status_code
    report("null_body", statuses=statuses)
    assert list(statuses.values()) == [200, 204, 304, 302], statuses

    # Credentials in the URL: fetch() refuses such a URL; they go as Basic auth.
    host = DEMO.split("://", 1)[1]
    r = await nbfetch.fetch(f"http://alice:s3cret@{host}/basic-auth/alice/s3cret")
    report("userinfo", status=r.status_code)
    assert r.status_code == 200, r.status_code

    # A UTF-8 filename in Content-Disposition, from a raw server in this Node process.
    raw = await raw_server(
        b"HTTP/1.1 200 OK\r\n"
        b'Content-Disposition: attachment; filename="r\xc3\xa9sum\xc3\xa9.pdf"\r\n'
        b"Content-Length: 2\r\nConnection: close\r\n\r\nok"
    )
    try:
        r = await nbfetch.fetch(raw.url)
    finally:
        raw.close()
    disposition = r.headers.get_raw("content-disposition")[0].decode()
    report("utf8_header", content_disposition=disposition)
    assert disposition == 'attachment; filename="résumé.pdf"', disposition

    # connect_timeout bounds the wait for the head (fetch() hides the
    # connection), and the browser's fetch is aborted.
    async with AsyncClient() as client:
        client.opener = BrowserOpener(make_fetch=recording)
        try:
            await client.fetch(DEMO + "/delay/5", connect_timeout=0.3, read_timeout=20)
        except FetchTimeout as exc:
            timeout = exc.timeout
        aborted = bool(made[-1]._controller.signal.aborted)
    report("connect_timeout", timeout=timeout, aborted=aborted)
    assert timeout == "connect_timeout" and aborted

    # Resource Timing: the entry is named by the browser's serialization of
    # the URL (a ' in a query is %27); Node adds it a little after the body's end.
    async with AsyncClient() as client:
        client.opener = BrowserOpener(make_fetch=recording)
        await client.fetch(DEMO + "/get?q=a'b")
    entry = await eventually(made[-1].timing)
    report("timing_name", found=entry is not None)
    assert entry is not None and entry["responseEnd"] > 0

    # A full buffer is said, not silent (the page's buffer: restored after).
    import js

    js.performance.setResourceTimingBufferSize(js.performance.getEntriesByType("resource").length)
    try:
        async with AsyncClient() as client:
            client.opener = BrowserOpener(make_fetch=recording)
            await client.fetch(DEMO + "/get?full=1")
        late = made[-1]
        await eventually(lambda: late.timing() or late.timing_missing)
    finally:
        js.performance.clearResourceTimings()
        js.performance.setResourceTimingBufferSize(250)
    report("timing_full", missing=late.timing_missing)
    assert late.timing_missing and "buffer is full" in late.timing_missing


async def eventually(probe, seconds=5.0):
    """probe() until it gives something, for at most ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        await asyncio.sleep(0.02)
    return None


class RawServer:
    def __init__(self, server, url):
        self.server, self.url = server, url

    def close(self):
        self.server.close()


async def raw_server(answer: bytes) -> RawServer:
    """A TCP server on 127.0.0.1 in this Node process that answers every
    request with the bytes ``answer`` and closes."""
    import js
    from pyodide.ffi import create_proxy, to_js

    net = js.process.getBuiltinModule("node:net")

    def on_connection(sock):
        # "readable", not "data": Pyodide cannot take the Node Buffer a
        # "data" listener is given.
        sock.once("readable", create_proxy(lambda: sock.end(to_js(answer))))

    server = net.createServer(create_proxy(on_connection))
    listening = asyncio.get_running_loop().create_future()
    server.listen(0, "127.0.0.1", create_proxy(lambda: listening.set_result(None)))
    await listening
    return RawServer(server, f"http://127.0.0.1:{server.address().port}/file")


await main()  # noqa: F704 - top-level await, as in a JupyterLite cell
