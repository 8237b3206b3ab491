"""files=: multipart/form-data uploads (RFC 7578) checked by a real server.

The upload server below parses each body as it streams in with werkzeug's
sans-IO MultipartDecoder (werkzeug comes with httpbin) and answers with every
part's name, filename, size and sha256, and how the body was framed.
"""

import asyncio
import bz2
import contextlib
import gzip
import hashlib
import io
import json
import lzma
import os
import socket
import ssl
import subprocess
import sys
import threading
import time
import zipfile

import h11
import pytest
from conftest import assert_timer_fired, wait_until
from werkzeug.sansio.multipart import Data, Epilogue, Field, File, MultipartDecoder, NeedData

import nbfetch
from nbfetch import AsyncClient
from nbfetch.core import multipart
from nbfetch.core.multipart import MultipartBody, form_param
from nbfetch.core.request import Request

# live (ipywidgets, IPython) is imported here, not by the first %%fetch inside a
# watched test: that import is set-up cost, not nbfetch blocking the loop.
from nbfetch.notebook import live, magics
from nbfetch.notebook.snapshot import FetchState, snapshot_html, upload_html
from nbfetch.text.options import parse_options

# Every fetch here runs under the watchdog: file reads stay off the loop.
pytestmark = [pytest.mark.anyio, pytest.mark.loop_watchdog]

MiB = 1024 * 1024


def upload_handler(conn, server):
    """One connection of the upload server. ``POST /upload`` answers with the
    parts as received; ``POST /307`` reads the body and redirects to /upload.
    Every complete body is appended to ``server.uploads``; a connection closed
    in the middle of a body counts in ``server.incomplete``."""
    h = h11.Connection(h11.SERVER)
    while True:
        try:
            event = h.next_event()
        except h11.RemoteProtocolError:  # closed in the middle of a body
            server.incomplete += 1
            return
        if event is h11.NEED_DATA:
            h.receive_data(conn.recv(256 * 1024))
            continue
        if isinstance(event, h11.ConnectionClosed):
            return
        if isinstance(event, h11.Request):
            headers = {k.decode(): v.decode() for k, v in event.headers}
            boundary = headers["content-type"].partition("boundary=")[2].encode()
            decoder = MultipartDecoder(boundary)
            parts, current, body_bytes, complete = [], None, 0, False
            target = event.target.decode()
        elif isinstance(event, (h11.Data, h11.EndOfMessage)):
            if isinstance(event, h11.Data):
                body_bytes += len(event.data)
                decoder.receive_data(event.data)
            else:
                decoder.receive_data(None)
            while not isinstance(ev := decoder.next_event(), NeedData):
                if isinstance(ev, (Field, File)):
                    current = {
                        "name": ev.name,
                        "filename": getattr(ev, "filename", None),
                        "content_type": ev.headers.get("content-type"),
                        "headers": dict(ev.headers),
                        "size": 0,
                        "sha": hashlib.sha256(),
                        "head": b"",
                    }
                    parts.append(current)
                elif isinstance(ev, Data):
                    current["size"] += len(ev.data)
                    current["sha"].update(ev.data)
                    if len(current["head"]) < 100:
                        current["head"] += ev.data[:100]
                elif isinstance(ev, Epilogue):
                    complete = True
                    break
            if isinstance(event, h11.Data):
                continue
            result = {
                "target": target,
                "framing": "chunked" if "transfer-encoding" in headers else "content-length",
                "content_length": headers.get("content-length"),
                "body_bytes": body_bytes,
                "complete": complete,
                "parts": [
                    {
                        **{k: v for k, v in p.items() if k not in ("sha", "head")},
                        "sha256": p["sha"].hexdigest(),
                        "head": p["head"][:100].decode("latin-1"),
                    }
                    for p in parts
                ],
            }
            server.uploads.append(result)
            if target == "/307":
                status, payload, extra = 307, b"", [("Location", "/upload")]
            else:
                status, payload = 200, json.dumps(result).encode()
                extra = [("Content-Type", "application/json")]
            length = ("Content-Length", str(len(payload)))
            reply = h11.Response(status_code=status, headers=[*extra, length])
            conn.sendall(
                h.send(reply) + h.send(h11.Data(data=payload)) + h.send(h11.EndOfMessage())
            )
            h.start_next_cycle()


@pytest.fixture
def upload_server(raw_server):
    server = raw_server(upload_handler)
    server.uploads = []
    server.incomplete = 0
    return server


def make_file(path, size: int) -> str:
    """Random bytes (no boundary can be predicted in them); returns their sha256."""
    digest = hashlib.sha256()
    with open(path, "wb") as f:
        left = size
        while left:
            block = os.urandom(min(MiB, left))
            f.write(block)
            digest.update(block)
            left -= len(block)
    return digest.hexdigest()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# -- encoding ---------------------------------------------------------------------------------
def test_names_and_filenames_are_escaped_as_browsers_and_httpx_do():
    assert form_param("name", 'a"b') == b'name="a%22b"'
    assert form_param("filename", "x\r\ny.txt") == b'filename="x%0D%0Ay.txt"'
    assert form_param("filename", "a\\b") == b'filename="a\\\\b"'
    assert form_param("filename", "données.csv") == 'filename="données.csv"'.encode()


def test_the_boundary_never_occurs_in_in_memory_parts():
    # A field that holds the first boundary drawn: the builder draws again.
    body = MultipartBody.build({"a": "--B--"}, None, boundary="B")
    assert body.boundary != "B" and len(body.boundary) == 32
    assert all(body.boundary.encode() not in c + h for h, c in body.parts)


def test_files_refuses_what_it_cannot_send(tmp_path):
    with open(tmp_path / "t.txt", "w") as text, pytest.raises(nbfetch.InvalidRequest, match="text"):
        Request.build("POST", "http://127.0.0.1/", files={"f": text})
    with pytest.raises(nbfetch.InvalidRequest, match="Content-Type itself"):
        Request.build(
            "POST", "http://127.0.0.1/", files={"f": b"x"}, headers={"Content-Type": "a/b"}
        )
    with pytest.raises(nbfetch.InvalidRequest, match="not body= or json="):
        Request.build("POST", "http://127.0.0.1/", files={"f": b"x"}, body=b"")


# -- against real servers -----------------------------------------------------------------------
async def test_fields_and_small_files_reach_httpbin(httpbin, tmp_path):
    path = tmp_path / "notes.txt"
    path.write_bytes(b"from disk\n")
    async with AsyncClient() as c:
        r = await c.fetch(
            httpbin.url + "/post",
            "POST",
            data={"a": "1", "tag": ["x", "y"], "n": 3},
            files=[
                ("f", ("a.txt", b"hello", "text/plain")),
                ("g", str(path)),
                ("h", io.BytesIO(b"in memory")),
            ],
        )
    got = r.json()
    assert got["form"] == {"a": "1", "tag": ["x", "y"], "n": "3"}
    assert got["files"] == {"f": "hello", "g": "from disk\n", "h": "in memory"}
    assert got["headers"]["Content-Type"].startswith("multipart/form-data; boundary=")
    assert got["headers"]["Content-Length"] == r.request.headers["content-length"]


async def test_secret_named_fields_are_masked_in_views_as_in_a_urlencoded_form(httpbin):
    async with AsyncClient() as c:
        r = await c.fetch(
            httpbin.url + "/post",
            "POST",
            data={"user": "ada", "password": "hunter2-s3cret"},
            files={"f": ("a.txt", b"x")},
        )
    assert r.json()["form"]["password"] == "hunter2-s3cret"  # the server echoes it
    html = snapshot_html(FetchState.of_response(r))
    assert "ada" in html and "hunter2-s3cret" not in html


async def test_parts_as_the_server_parses_them(upload_server, tmp_path):
    path = tmp_path / "report.csv"
    path.write_bytes(b"a,b\n1,2\n")
    async with AsyncClient() as c:
        r = await c.fetch(
            upload_server.url + "/upload",
            "POST",
            data=[("x\r\nX-Evil: 1", "v"), ("x", "w")],
            files={
                "csv": path,
                "odd": ('données "q" a\\b.bin', b"\x00\x01", None, {"X-Part": "1"}),
            },
        )
    got = r.json()
    assert got["complete"] and got["framing"] == "content-length"
    assert int(got["content_length"]) == got["body_bytes"]
    names = [(p["name"], p["filename"], p["content_type"]) for p in got["parts"]]
    assert names == [
        ("x%0D%0AX-Evil: 1", None, None),  # CR LF could not start a header line
        ("x", None, None),
        ("csv", "report.csv", "text/csv"),
        # werkzeug undoes the browsers' %22 in filenames: a round trip
        ("odd", 'données "q" a\\b.bin', "application/octet-stream"),
    ]
    assert all("x-evil" not in {k.lower() for k in p["headers"]} for p in got["parts"])
    assert got["parts"][3]["headers"]["X-Part"] == "1"
    assert got["parts"][2]["sha256"] == sha(b"a,b\n1,2\n")


async def test_content_length_when_sizes_are_known_chunked_otherwise(upload_server, tmp_path):
    path = tmp_path / "f.bin"
    digest = await asyncio.to_thread(make_file, path, 300_000)
    read_end, write_end = os.pipe()
    os.write(write_end, b"from a pipe")
    os.close(write_end)
    async with AsyncClient() as c:
        known = (await c.fetch(upload_server.url + "/upload", "POST", files={"f": path})).json()
        with open(read_end, "rb") as pipe:
            r = await c.fetch(upload_server.url + "/upload", "POST", files={"p": pipe})
    assert (
        known["framing"] == "content-length" and int(known["content_length"]) == known["body_bytes"]
    )
    assert known["parts"][0]["sha256"] == digest and known["parts"][0]["size"] == 300_000
    piped = r.json()
    assert piped["framing"] == "chunked" and piped["parts"][0]["sha256"] == sha(b"from a pipe")
    assert r.request.headers["transfer-encoding"] == "chunked"
    assert "content-length" not in r.request.headers


async def test_progress_events_count_up_to_the_total(upload_server, tmp_path):
    path = tmp_path / "f.bin"
    await asyncio.to_thread(make_file, path, 4 * MiB)
    async with AsyncClient() as c:
        r = await c.fetch(upload_server.url + "/upload", "POST", files={"f": path})
    progress = [e.details for e in r.events if e.name == "request.body_progress"]
    total = int(r.request.headers["content-length"])
    sent = [p["bytes"] for p in progress]
    assert sent == sorted(sent) and len(set(sent)) == len(sent)
    assert all(p["total"] == total for p in progress)
    # at most one per 1/256 of the total (and per 64 KiB), and the last sends it all
    assert 16 <= len(progress) <= 257 and sent[-1] == total
    assert [e.details for e in r.events if e.name == "request.body_sent"] == [{"bytes": total}]

    state = FetchState.of_response(r)
    bar = upload_html(state)
    assert "upload 4.0 MiB of 4.0 MiB" in bar and "width:100.0%" in bar
    assert bar in snapshot_html(state)


@pytest.fixture
def live_view():
    # Built outside the watched test body (the first widgets are set-up cost).
    return live.ResponseView("POST", "")


async def test_the_live_view_draws_the_upload_bar_while_it_runs(upload_server, tmp_path, live_view):
    path = tmp_path / "f.bin"
    await asyncio.to_thread(make_file, path, 4 * MiB)
    seen = []

    def trace(event):
        live_view.trace(event)
        if event.name == "request.body_progress" and not seen:
            live_view._render_all()  # what the throttled render shows at this point
            seen.append(live_view.progress_html.value)

    async with AsyncClient() as c:
        r = await c.fetch(upload_server.url + "/upload", "POST", files={"f": path}, trace=trace)
    live_view.attach_response(r)
    assert "nbfetch-upload" in seen[0] and "ETA" in seen[0] and "of 4.0 MiB" in seen[0]
    assert "upload 4.0 MiB of 4.0 MiB" in live_view.progress_html.value


@pytest.mark.parametrize("change", ["grows", "shrinks"])
async def test_a_file_that_changes_size_while_sent_fails_and_no_body_completes(
    upload_server, tmp_path, change
):
    path = tmp_path / "log.bin"
    await asyncio.to_thread(make_file, path, MiB)
    changed = []

    def trace(event):
        if event.name == "request.body_progress" and not changed:
            changed.append(event.details["bytes"])
            if change == "grows":
                with open(path, "ab") as f:
                    f.write(b"appended")
            else:
                os.truncate(path, 200_000)

    async with AsyncClient() as c:
        with pytest.raises(nbfetch.FetchError, match="changed size while it was sent") as info:
            await c.fetch(upload_server.url + "/upload", "POST", files={"f": path}, trace=trace)
    assert changed and info.value.phase == "send"
    assert "log.bin" in str(info.value) and "1,048,576 bytes" in str(info.value)
    assert upload_server.url in str(info.value)
    await wait_until(lambda: upload_server.incomplete == 1, what="the server saw a cut body")
    assert upload_server.uploads == []


async def test_a_307_replays_a_seekable_body_and_refuses_a_pipe(upload_server, tmp_path):
    path = tmp_path / "f.bin"
    digest = await asyncio.to_thread(make_file, path, 200_000)
    async with AsyncClient() as c:
        with open(path, "rb") as f:
            f.read(1000)  # sent from where the caller left it, on every hop
            r = await c.fetch(upload_server.url + "/307", "POST", files={"f": f})
            assert not f.closed  # the caller's file: nbfetch never closes it
        hops = [u["parts"][0]["sha256"] for u in upload_server.uploads]
        with open(path, "rb") as rest:
            rest.read(1000)
            assert hops == [sha(rest.read())] * 2
        assert r.status_code == 200 and r.json()["target"] == "/upload"
        by_path = await c.fetch(upload_server.url + "/307", "POST", files={"f": path})
        assert by_path.json()["parts"][0]["sha256"] == digest

        read_end, write_end = os.pipe()
        os.write(write_end, b"once only")
        os.close(write_end)
        needs = pytest.raises(nbfetch.RedirectError, match="307 redirect needs the body again")
        with open(read_end, "rb") as pipe, needs:
            await c.fetch(upload_server.url + "/307", "POST", files={"p": pipe})
    assert upload_server.uploads[-1]["framing"] == "chunked"


def open_fds_to(path) -> int:
    fds = "/proc/self/fd"
    count = 0
    for fd in os.listdir(fds):
        try:
            count += os.readlink(f"{fds}/{fd}") == str(path)
        except OSError:
            pass
    return count


async def test_cancel_mid_upload_closes_the_file_and_the_connection(upload_server, tmp_path):
    path = tmp_path / "big.bin"
    await asyncio.to_thread(make_file, path, 32 * MiB)
    task = None
    progressed = []

    def trace(event):
        if event.name == "request.body_progress":
            progressed.append(event.details["bytes"])
            if event.details["bytes"] >= 2 * MiB:
                task.cancel()

    async with AsyncClient() as c:
        task = asyncio.ensure_future(
            c.fetch(upload_server.url + "/upload", "POST", files={"f": path}, trace=trace)
        )
        with pytest.raises(asyncio.CancelledError):
            await task
        # A read running at the cancel closes the file when it returns.
        await wait_until(lambda: open_fds_to(path) == 0, what="the upload file closed")
        assert progressed[-1] < 32 * MiB and c._queue.active == 0 and not c._pool.idle
    await wait_until(lambda: upload_server.incomplete == 1, what="the server saw a cut body")
    assert upload_server.uploads == []


async def test_an_early_answer_to_expect_100_continue_sends_no_file_and_closes_it(
    raw_server, tmp_path
):
    path = tmp_path / "f.bin"
    await asyncio.to_thread(make_file, path, MiB)

    def handler(conn, server):
        head = b""
        while b"\r\n\r\n" not in head:  # the head only: the body is never read
            head += conn.recv(65536)
        server.received.append(head)
        conn.sendall(b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n")

    srv = raw_server(handler)
    async with AsyncClient() as c:
        r = await c.fetch(srv.url, "POST", files={"f": path}, expect_100_continue=True)
    assert r.status_code == 401 and open_fds_to(path) == 0
    assert b"expect: 100-continue" in srv.received[0].lower()
    sent = [e.details for e in r.events if e.name == "request.body_sent"]
    assert sent == [{"bytes": 0, "skipped": True}]


async def test_a_missing_file_or_a_fifo_fails_before_anything_is_sent(upload_server, tmp_path):
    async with AsyncClient() as c:
        with pytest.raises(nbfetch.InvalidRequest, match="cannot read upload file") as info:
            await c.fetch(upload_server.url + "/upload", "POST", files={"f": tmp_path / "none"})
    assert info.value.url.startswith(upload_server.url) and info.value.phase == "request"
    os.mkfifo(tmp_path / "fifo")  # open() would wait for a writer, on the loop
    async with AsyncClient() as c:
        with pytest.raises(nbfetch.InvalidRequest, match="not a regular file") as info:
            await c.fetch(upload_server.url + "/upload", "POST", files={"f": tmp_path / "fifo"})
    assert info.value.phase == "request"
    assert upload_server.connections == 0  # measured before connecting


def test_an_upload_under_trio(upload_server, tmp_path):
    import trio

    path = tmp_path / "f.bin"
    digest = make_file(path, 3 * MiB)

    async def main():
        async with AsyncClient() as c:
            return await c.fetch(upload_server.url + "/upload", "POST", files={"f": path})

    r = trio.run(main)
    assert r.json()["parts"][0]["sha256"] == digest
    assert any(e.name == "request.body_progress" for e in r.events)


def test_the_form_option_is_curls_minus_F(tmp_path):
    opts = parse_options(["http://h/", "-F", "a=1", "-F", f"f=@{tmp_path}/x.csv;type=text/plain"])
    assert opts.method == "POST"
    assert opts.fetch_kwargs["data"] == [("a", "1")]
    assert opts.fetch_kwargs["files"] == [("f", ("x.csv", tmp_path / "x.csv", "text/plain"))]
    with pytest.raises(nbfetch.InvalidRequest, match="NAME=VALUE"):
        parse_options(["http://h/", "-F", "novalue"])


async def test_fetch_cell_uploads_with_minus_F(upload_server, tmp_path):
    path = tmp_path / "data.csv"
    path.write_bytes(b"x,y\n")
    cell = f"POST {upload_server.url}/upload\n"
    r = await magics.fetch_cell(cell, f"-q -F kind=csv -F 'file=@{path};type=text/x-csv'")
    got = r.json()
    assert [(p["name"], p["filename"], p["content_type"], p["head"]) for p in got["parts"]] == [
        ("kind", None, None, "csv"),
        ("file", "data.csv", "text/x-csv", "x,y\n"),
    ]


# -- bounded memory ---------------------------------------------------------------------------
UPLOAD = r"""
import asyncio, json, sys, time
import nbfetch

def peak():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024

async def main(url, path):
    async with nbfetch.AsyncClient(request_timeout=None) as c:
        # Warm up: the worker thread, the code paths, the buffers of one upload.
        await c.fetch(url, "POST", files={"w": ("w.bin", b"x" * 100_000)})
        before, start = peak(), time.perf_counter()
        r = await c.fetch(url, "POST", data={"note": "big"}, files={"blob": path})
        seconds, growth = time.perf_counter() - start, peak() - before
    events = sum(e.name == "request.body_progress" for e in r.events)
    sent = r.request.headers["content-length"]
    print(json.dumps({"growth": growth, "seconds": seconds, "progress_events": events,
                      "server": r.json(), "sent": sent}))

asyncio.run(main(*sys.argv[1:]))
"""


@pytest.mark.timeout(240)
def test_a_200_mib_upload_arrives_intact_in_bounded_memory(upload_server, tmp_path):
    path = tmp_path / "200mib.bin"
    digest = make_file(path, 200 * MiB)
    out = subprocess.run(
        [sys.executable, "-c", UPLOAD, upload_server.url + "/upload", str(path)],
        capture_output=True,
        text=True,
        timeout=220,
        env={**os.environ, "PYTHONPATH": os.getcwd()},
    )
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    server = result["server"]
    assert server["complete"] and server["framing"] == "content-length"
    assert server["body_bytes"] == int(result["sent"]) == int(server["content_length"])
    note, blob = server["parts"]
    assert note["head"] == "big"
    assert blob["size"] == 200 * MiB and blob["sha256"] == digest
    print(
        f"200 MiB upload: client peak RSS growth {result['growth'] / MiB:.1f} MiB,"
        f" {result['seconds']:.1f} s, {result['progress_events']} progress events"
    )
    assert result["growth"] < 32 * MiB


# -- review of issue 17: reads that hang, early answers, many files, wrappers ----


class StuckShare:
    """nbfetch's open() of ``path`` (a regular file, stat'ed as such) gives a
    BufferedReader over an empty FIFO opened read-write: its read blocks in the
    kernel as on a hung network share, until ``release()`` writes to it."""

    def __init__(self, tmp_path, monkeypatch):
        self.path = tmp_path / "on-a-hung-share.bin"
        self.path.write_bytes(b"x" * 1000)
        fifo = tmp_path / "stuck.fifo"
        os.mkfifo(fifo)
        self.feed = os.open(fifo, os.O_RDWR)
        self.opened = []
        self.released = threading.Event()
        monkeypatch.setattr(multipart, "open", self._open, raising=False)
        # The old code's loop waits for this; it ends the read in any case.
        self.safety = threading.Timer(20, self.release)
        self.safety.start()

    def _open(self, file, mode="r", *args, **kwargs):
        assert os.fspath(file) == str(self.path) and mode == "rb"
        self.opened.append(os.fdopen(os.dup(self.feed), "rb"))
        return self.opened[-1]

    def release(self):
        if not self.released.is_set():
            self.released.set()
            os.write(self.feed, b"y" * 2000)

    def check(self, exc, elapsed):
        """The fetch ended at request_timeout while the read was stuck."""
        assert not self.released.is_set(), "the fetch ended only when the stuck read returned"
        assert_timer_fired(exc, elapsed, "request_timeout", "send", 0.5)
        assert self.opened and not self.opened[0].closed  # still being read
        self.release()

    def close(self):
        self.safety.cancel()
        self.release()
        os.close(self.feed)


@pytest.fixture
def stuck_share(tmp_path, monkeypatch):
    share = StuckShare(tmp_path, monkeypatch)
    yield share
    share.close()


async def test_a_read_stuck_in_the_kernel_times_out_and_the_loop_stays_free(
    upload_server, stuck_share
):
    """request_timeout ends the fetch while a read is stuck (closing the file on
    the loop would wait for the read's buffer lock), and the file is closed
    once the read returns."""
    async with AsyncClient() as c:
        start = time.monotonic()
        with pytest.raises(nbfetch.FetchTimeout) as info:
            await c.fetch(
                upload_server.url + "/upload",
                "POST",
                files={"f": stuck_share.path},
                request_timeout=0.5,
            )
        stuck_share.check(info.value, time.monotonic() - start)
    await wait_until(lambda: stuck_share.opened[0].closed, what="the file closed after its read")


def test_a_read_stuck_in_the_kernel_under_trio(upload_server, stuck_share):
    import trio

    async def main():
        async with AsyncClient() as c:
            start = trio.current_time()
            with pytest.raises(nbfetch.FetchTimeout) as info:
                await c.fetch(
                    upload_server.url + "/upload",
                    "POST",
                    files={"f": stuck_share.path},
                    request_timeout=0.5,
                )
            stuck_share.check(info.value, trio.current_time() - start)
        with trio.fail_after(5):
            while not stuck_share.opened[0].closed:
                await trio.sleep(0.005)

    trio.run(main)


def early_answer_handler(status: int, extra: bytes, linger: float):
    """Answers after the head, before reading the body (nginx's 413 for
    client_max_body_size), half-closes, then reads and discards for ``linger``
    seconds (a lingering close) before it closes."""

    def handler(conn, server):
        head = b""
        while b"\r\n\r\n" not in head:
            head += conn.recv(65536)
        server.received.append(head)
        if len(server.received) > 1:  # the retry or the redirect: a normal answer
            upload_handler_after(conn, server, head)
            return
        conn.sendall(
            b"HTTP/1.1 %d Early\r\n%sContent-Length: 5\r\nConnection: close\r\n\r\nearly"
            % (status, extra)
        )
        conn.shutdown(socket.SHUT_WR)
        conn.settimeout(0.2)
        end = time.monotonic() + linger
        while time.monotonic() < end:
            try:
                if not conn.recv(1 << 20):
                    break
            except TimeoutError:
                pass

    return handler


def upload_handler_after(conn, server, head: bytes):
    """The rest of a request whose head was read: the body counted, then 200."""
    h = h11.Connection(h11.SERVER)
    h.receive_data(head)
    size = 0
    while True:
        event = h.next_event()
        if event is h11.NEED_DATA:
            h.receive_data(conn.recv(1 << 20))
        elif isinstance(event, h11.Data):
            size += len(event.data)
        elif isinstance(event, h11.EndOfMessage):
            break
    server.bodies.append(size)
    reply = h11.Response(status_code=200, headers=[("Content-Length", "2")])
    conn.sendall(h.send(reply) + h.send(h11.Data(data=b"ok")) + h.send(h11.EndOfMessage()))


@pytest.mark.parametrize("kind", ["files", "bytes"])
async def test_an_answer_before_the_body_is_read_is_the_response(raw_server, tmp_path, kind):
    path = tmp_path / "big.bin"
    await asyncio.to_thread(make_file, path, 32 * MiB)
    srv = raw_server(early_answer_handler(413, b"", 5.0))
    srv.bodies = []
    body = {"files": {"f": path}} if kind == "files" else {"body": path.read_bytes()}
    async with AsyncClient() as c:
        r = await c.fetch(srv.url + "/up", "POST", **body)
        assert (r.status_code, r.body) == (413, b"early")
        assert not c._pool.idle  # the request was cut: never reused
    assert open_fds_to(path) == 0


@pytest.mark.parametrize("kind", ["files", "bytes"])
async def test_an_answer_that_came_before_the_send_failed_is_the_response(
    raw_server, tmp_path, kind
):
    """Over TLS as over TCP, the server's close ends the connection and the
    next write fails: the answer read before that is the response (the server
    here reads and discards, so no reset loses it)."""
    import trustme

    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_ctx)
    client_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ca.configure_trust(client_ctx)

    def handler(conn, server):
        tls = server_ctx.wrap_socket(conn, server_side=True)
        head = b""
        while b"\r\n\r\n" not in head:
            head += tls.recv(65536)
        tls.sendall(b"HTTP/1.1 413 Too Large\r\nContent-Length: 3\r\n\r\nbig")
        # A FIN after the answer (no close_notify). socket's own shutdown: the
        # SSLSocket's would drop the TLS session that the reads below still use.
        socket.socket.shutdown(tls, socket.SHUT_WR)
        with contextlib.suppress(OSError):
            while tls.recv(1 << 20):  # discard until the client closes
                pass

    srv = raw_server(handler)
    path = tmp_path / "big.bin"
    await asyncio.to_thread(make_file, path, 16 * MiB)
    body = {"files": {"f": path}} if kind == "files" else {"body": path.read_bytes()}
    url = srv.url.replace("http://", "https://")
    async with AsyncClient(verify=client_ctx) as c:
        r = await c.fetch(url, "POST", **body)
    assert (r.status_code, r.body) == (413, b"big")
    assert open_fds_to(path) == 0


@pytest.mark.parametrize(
    "status, extra",
    [(307, b"Location: /again\r\n"), (503, b"Retry-After: 0\r\n")],
    ids=["redirect", "retry"],
)
async def test_an_early_redirect_or_retry_sends_the_whole_body_again(
    raw_server, tmp_path, status, extra
):
    path = tmp_path / "f.bin"
    await asyncio.to_thread(make_file, path, 8 * MiB)
    srv = raw_server(early_answer_handler(status, extra, 5.0))
    srv.bodies = []
    retries = nbfetch.Retry(total=1, methods={"POST"}, backoff_factor=0)
    async with AsyncClient(retries=retries) as c:
        r = await c.fetch(srv.url + "/up", "POST", files={"f": path})
    assert (r.status_code, r.body) == (200, b"ok")
    assert len(srv.received) == 2 and srv.bodies == [int(r.request.headers["content-length"])]


def open_at_once(paths) -> int:
    """How many of ``paths`` this process holds open at one instant.

    Reading /proc/self/fd is not a snapshot: a file closed and the next one
    opened between two readlinks would both be seen. So the descriptors seen
    pointing at ``paths`` are read again: two that still point there were open
    together (each is opened once: open at both readings, so at every moment
    between them)."""
    fds = "/proc/self/fd"
    wanted = {str(p) for p in paths}
    seen = {}
    for fd in os.listdir(fds):
        try:
            link = os.readlink(f"{fds}/{fd}")
        except OSError:
            continue
        if link in wanted:
            seen[fd] = link
    still = 0
    for fd, link in seen.items():
        try:
            still += os.readlink(f"{fds}/{fd}") == link
        except OSError:
            pass
    return still


async def test_many_files_are_opened_one_at_a_time(raw_server, tmp_path):
    """Each path is opened when its part is sent and closed after it: an upload
    of more files than the descriptor limit (1,024 by default) works."""
    paths = [tmp_path / f"f{i}.txt" for i in range(60)]
    for p in paths:
        p.write_bytes(b"x" * 100)
    seen = []

    def handler(conn, server):
        h = h11.Connection(h11.SERVER)
        while True:
            event = h.next_event()
            if event is h11.NEED_DATA:
                # Between two reads, what the client holds open in tmp_path.
                seen.append(open_at_once(paths))
                h.receive_data(conn.recv(256))
            elif isinstance(event, h11.EndOfMessage):
                conn.sendall(
                    h.send(h11.Response(status_code=200, headers=[("Content-Length", "0")]))
                    + h.send(h11.EndOfMessage())
                )
                return

    srv = raw_server(handler)
    async with AsyncClient() as c:
        r = await c.fetch(srv.url, "POST", files=[("f", p) for p in paths])
    assert r.status_code == 200 and r.request.headers["content-length"].isdigit()
    assert len(seen) > 10 and max(seen) <= 1, seen


async def test_a_zip_member_is_measured_off_the_loop(upload_server, tmp_path):
    """Seeking a zip member to its end decompresses all of it: in the worker
    thread (the watchdog fails the test if it runs on the loop)."""
    archive = tmp_path / "a.zip"
    block = os.urandom(MiB)

    def write_zip() -> str:
        digest = hashlib.sha256()
        with (
            zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as z,
            z.open("x.bin", "w") as m,
        ):
            for _ in range(96):
                m.write(block)
                digest.update(block)
        return digest.hexdigest()

    digest = await asyncio.to_thread(write_zip)
    with zipfile.ZipFile(archive) as z, z.open("x.bin") as m:
        async with AsyncClient() as c:
            r = await c.fetch(upload_server.url + "/upload", "POST", files={"f": m})
    part = r.json()["parts"][0]
    assert r.json()["framing"] == "content-length" and part["size"] == 96 * MiB
    assert part["sha256"] == digest


@pytest.mark.parametrize("opener", [gzip.open, bz2.open, lzma.open])
async def test_compressed_file_objects_send_their_decompressed_bytes(
    upload_server, tmp_path, opener
):
    # Their fileno() is the compressed file's: its size is not what read() gives.
    path = tmp_path / "data.z"
    content = os.urandom(100_000) * 3

    def write():
        with opener(path, "wb") as f:
            f.write(content)

    await asyncio.to_thread(write)
    with opener(path, "rb") as f:
        async with AsyncClient() as c:
            r = await c.fetch(upload_server.url + "/upload", "POST", files={"f": f})
    part = r.json()["parts"][0]
    assert (part["size"], part["sha256"]) == (len(content), sha(content))
    assert r.json()["framing"] == "content-length"


@pytest.mark.parametrize(
    "content_type",
    ['text/plain\r\nContent-Disposition: form-data; name="is_admin"', "a\nb", b"text/plain"],
)
async def test_a_content_type_that_is_not_a_header_value_is_refused(upload_server, content_type):
    files = {"f": ("a.txt", b"data", content_type)}
    with pytest.raises(nbfetch.InvalidRequest, match="is not a media type"):
        MultipartBody.build({}, files)
    async with AsyncClient() as c:
        with pytest.raises(nbfetch.InvalidRequest, match="is not a media type"):
            await c.fetch(upload_server.url + "/upload", "POST", files=files)
        for header in ({"X\r\nY": "1"}, {"X": "a\r\nb"}, {"X": b"v"}):
            with pytest.raises(nbfetch.InvalidRequest, match="part header"):
                await c.fetch(
                    upload_server.url + "/upload", "POST", files={"f": ("a", b"", None, header)}
                )
    assert upload_server.uploads == []


async def test_a_file_name_that_is_not_utf8_is_refused_clearly(upload_server, tmp_path):
    # os.listdir decodes a Latin-1 name's bytes with surrogate escapes.
    (tmp_path / "caf\xe9.txt".encode("latin-1").decode("utf-8", "surrogateescape")).write_bytes(
        b"hello"
    )
    (name,) = os.listdir(tmp_path)
    async with AsyncClient() as c:
        with pytest.raises(nbfetch.InvalidRequest, match="not valid UTF-8 text") as info:
            await c.fetch(upload_server.url + "/upload", "POST", files={"f": tmp_path / name})
        assert "pathlib.Path(path)" in str(info.value)
        # Named by the caller, it goes.
        files = {"f": ("cafe.txt", tmp_path / name)}
        r = await c.fetch(upload_server.url + "/upload", "POST", files=files)
    assert r.json()["parts"][0]["filename"] == "cafe.txt"


async def test_an_empty_file_that_grows_after_it_was_measured_fails(upload_server, tmp_path):
    path = tmp_path / "log.txt"
    path.write_bytes(b"")

    def trace(event):  # after the head (framed as empty), before the part is read
        if event.name == "request.headers_sent":
            with open(path, "ab") as f:
                f.write(b"appended")

    async with AsyncClient() as c:
        with pytest.raises(nbfetch.FetchError, match="changed size while it was sent"):
            await c.fetch(upload_server.url + "/upload", "POST", files={"f": path}, trace=trace)
    await wait_until(lambda: upload_server.incomplete == 1, what="the server saw a cut body")
    assert upload_server.uploads == []
