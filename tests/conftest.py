"""Shared fixtures: the demo server, a scriptable raw-socket server, anyio, and the
loop watchdog for modules marked ``loop_watchdog`` (tests/loopwatch.py).

Every server listens on 127.0.0.1 only and is stopped by the fixture itself.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import os
import select
import socket
import threading
import time
from collections.abc import Callable

import loopwatch
import pytest

from nbfetch.demo import DemoServer
from nbfetch.demo import squid as demo_squid
from nbfetch.demo.squid import squid_missing


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "loop_watchdog: run each async test under tests/loopwatch.py's watch(): it fails"
        " when the event loop was blocked for more than 100 ms of CPU",
    )


@pytest.hookimpl(wrapper=True)
def pytest_pyfunc_call(pyfuncitem):
    """Wrap a marked coroutine test in ``loopwatch.watch()``, on the test's own
    loop and only while the test body runs (fixtures set up outside it)."""
    original = pyfuncitem.obj
    if not (
        pyfuncitem.get_closest_marker("loop_watchdog") and inspect.iscoroutinefunction(original)
    ):
        return (yield)

    @functools.wraps(original)
    async def watched(**kwargs):
        async with loopwatch.watch():
            await original(**kwargs)

    pyfuncitem.obj = watched
    try:
        return (yield)
    finally:
        pyfuncitem.obj = original


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.fixture(scope="session")
def demo_server():
    server = DemoServer().start()
    yield server
    server.stop()


@pytest.fixture
def own_demo():
    """A demo server of this test's own, for tests that count the sockets to it
    (``client_sockets_to``): the session's server is shared with every other
    test's clients, whose keep-alive sockets would be counted too."""
    with DemoServer().start() as server:
        yield server


@pytest.fixture(scope="module")
def server():
    """A demo server for one module: the kernel tests count its requests
    (``stats``), which another module's traffic must not disturb."""
    s = DemoServer().start()
    yield s
    s.stop()


@pytest.fixture
def demo(demo_server):
    """The session's demo server, idle and with its counters reset for this test.

    A request an earlier test cancelled may still be sleeping in the server
    (``/delay``, ``/drip``); counting it would inflate this test's in-flight peak.
    """

    deadline = time.monotonic() + 15
    while demo_server.stats["in_flight"] and time.monotonic() < deadline:
        time.sleep(0.01)
    assert demo_server.stats["in_flight"] == 0, "the demo server is still busy"
    demo_server.reset_stats()
    return demo_server


class RawServer:
    """A TCP server on 127.0.0.1 (or another ``host`` of 127.0.0.0/8) whose every
    connection runs ``handler(sock, server)`` in a thread: for exact wire bytes and
    misbehaving servers. ``received`` holds what each connection read;
    ``connections`` counts them."""

    def __init__(
        self, handler: Callable[[socket.socket, RawServer], None], host: str = "127.0.0.1"
    ):
        self.handler = handler
        self.sock = socket.create_server((host, 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.url = f"http://{host}:{self.port}"
        self.connections = 0
        self.received: list[bytes] = []
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._socks: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            self.connections += 1
            self._socks.append(conn)
            t = threading.Thread(target=self._run, args=(conn,), daemon=True)
            self._threads.append(t)
            t.start()

    def _run(self, conn: socket.socket) -> None:
        conn.settimeout(10)
        try:
            self.handler(conn, self)
        except OSError:
            pass
        finally:
            conn.close()

    def read_request(self, conn: socket.socket) -> bytes:
        """Read one request head (and a Content-Length body) from ``conn``."""
        data = b""
        while b"\r\n\r\n" not in data:
            piece = conn.recv(65536)
            if not piece:
                break
            data += piece
        head, _, rest = data.partition(b"\r\n\r\n")
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                n = int(line.split(b":")[1])
                while len(rest) < n:
                    piece = conn.recv(65536)
                    if not piece:
                        break
                    rest += piece
        self.received.append(head + b"\r\n\r\n" + rest)
        return head

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        for s in self._socks:
            try:
                s.close()
            except OSError:
                pass
        self.sock.close()
        for t in self._threads:
            t.join(2)


@pytest.fixture
def raw_server():
    """``raw_server(handler)`` starts a RawServer; all are closed after the test."""
    servers: list[RawServer] = []

    def start(handler, host: str = "127.0.0.1"):
        server = RawServer(handler, host)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


async def wait_until(predicate, timeout: float = 5.0, what: str = "condition") -> None:
    """Poll ``predicate`` on the running loop until true; fail after ``timeout``."""
    import asyncio

    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.005)


#: Clocks may differ by this much between the test's and the loop's reading.
CLOCK_EPSILON = 0.005


def assert_timer_fired(
    exc, elapsed: float, timeout: str, phase: str, seconds: float, before: float | None = None
) -> None:
    """A timeout test's assertion: ``exc`` (a FetchTimeout) came from the named timer
    in the named phase, after at least its ``seconds``, and ``before`` a bound that
    only catches a timer that did not work (default: 5x the setting, at least 2 s
    more). Never a tight margin: CI machines are slower and loaded."""
    if before is None:
        before = max(5 * seconds, seconds + 2)
    assert (exc.timeout, exc.phase, exc.seconds) == (timeout, phase, seconds), exc
    assert seconds - CLOCK_EPSILON <= elapsed < before, (elapsed, seconds, before)


@pytest.fixture
def stalled_connect():
    """A listening socket whose accept queue is full: a new connect never completes."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(0)
    port = srv.getsockname()[1]
    fillers = []
    for _ in range(4):
        s = socket.socket()
        s.setblocking(False)
        try:
            s.connect(("127.0.0.1", port))
        except BlockingIOError:
            pass
        fillers.append(s)
    # The queue is full once the first filler is connected (the rest wait in
    # SYN_SENT): wait for that, not for a fixed time.
    _, writable, _ = select.select([], fillers[:1], [], 10)
    assert writable and not fillers[0].getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    yield f"http://127.0.0.1:{port}/"
    for s in [*fillers, srv]:
        s.close()


def _client_sockets(port: int):
    """The kernel's table rows of sockets connected (or connecting) *to* ``port``
    that a process still holds open. A socket closed by its process but still
    finishing its TCP shutdown (FIN_WAIT, TIME_WAIT) has inode 0 there: skipped."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    fields = line.split()
                    if int(fields[2].rsplit(":", 1)[1], 16) == port and fields[9] != "0":
                        yield fields
        except FileNotFoundError:
            continue


def client_sockets_to(port: int) -> int:
    """Client sockets to a test server's ``port`` that a process still holds open."""
    return sum(1 for _ in _client_sockets(port))


def socket_held(local_port: int, port: int) -> bool:
    """Whether the one client socket from ``local_port`` to ``port`` is still
    held open: exact where ``client_sockets_to`` is not (a socket another test
    leaked to an earlier server on the same port number counts there)."""
    return any(int(f[1].rsplit(":", 1)[1], 16) == local_port for f in _client_sockets(port))


async def cancel_as_step_finishes(fetch_task: asyncio.Task, step: str) -> None:
    """Cancel ``fetch_task`` in the loop pass after its inner task running
    ``step`` (a coroutine name: ``create_connection``, ``start_tls``) finished
    and before the fetch resumed: ``await inner`` then raises CancelledError and
    the inner task's result (a connected transport) has no owner.

    A callback re-armed with ``call_soon`` runs once per loop pass; the pass in
    which it first sees the inner task done is always before the fetch's wakeup,
    whichever order the two were queued in that pass (see the proof in the
    body). It fails the test if the window was never hit, so the test cannot
    pass without exercising the race.
    """
    loop = asyncio.get_running_loop()
    seen: set[asyncio.Task] = set()
    hit = loop.create_future()

    def watch():
        seen.update(t for t in asyncio.all_tasks(loop) if t.get_coro().__name__ == step)
        finished = [t for t in seen if t.done()]
        if finished and not fetch_task.done():
            # Either this callback ran after the inner task's last step in this
            # pass (the fetch's wakeup is queued for the next pass), or before it
            # in the previous pass (then this callback was queued ahead of the
            # wakeup in this one). Either way the fetch has not resumed yet.
            fetch_task.cancel()
            hit.set_result(not finished[0].cancelled())
        elif fetch_task.done():
            hit.set_result(False)
        else:
            loop.call_soon(watch)

    loop.call_soon(watch)
    assert await hit, f"never cancelled between {step}'s end and the fetch resuming"


def client_unread_bytes(port: int) -> int:
    """Bytes the kernel holds for client sockets to ``port`` that their process
    has not read yet (rx_queue in the kernel's tables)."""
    return sum(int(fields[4].split(":")[1], 16) for fields in _client_sockets(port))


def assert_timing_sane(timing) -> None:
    """No phase is negative, and the phases add up to the total. (The sum holds
    by construction; a negative phase is how a wrong milestone order shows.)"""
    phases = timing.phases()
    assert all(v is None or v >= 0 for v in phases.values()), phases
    assert timing.total >= 0 and abs(sum(v or 0 for v in phases.values()) - timing.total) < 1e-9


def reply(conn: socket.socket, data: bytes, *, per_byte: bool = False) -> None:
    """Send ``data``, optionally one byte per send (each its own TCP segment)."""
    if per_byte:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for i in range(len(data)):
            conn.sendall(data[i : i + 1])
    else:
        conn.sendall(data)


def answer_each(data: bytes):
    """A RawServer handler that answers every request of a keep-alive
    connection with ``data``."""

    def handler(conn: socket.socket, server: RawServer) -> None:
        while server.read_request(conn):
            reply(conn, data)

    return handler


def idle_connections(client) -> int:
    """Connections waiting in ``client``'s keep-alive pool."""
    return sum(len(conns) for conns in client._pool.idle.values())


# -- proxies (issue 17, item 1): a real squid from Debian -----------------------
# A developer's own proxy settings must not route the suite's traffic (names
# such as demo.test would go to that proxy; loopback goes direct anyway). The
# proxy tests set what they need with monkeypatch; kernels inherit the cleared
# environment.
for _name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
    os.environ.pop(_name, None)
    os.environ.pop(_name.lower(), None)


def need_squid() -> None:
    """Skip without squid locally; in CI (CI=true, where .ci/run installs it) fail."""
    reason = squid_missing()
    if reason is None:
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason}: .ci/run installs it, so CI must have it")
    pytest.skip(f"{reason}: apt-get install squid")


class Squid(demo_squid.Squid):
    async def logged(self, before: int, count: int) -> list[tuple[str, str, str, str]]:
        """The entries after the first ``before``, once there are ``count``:
        squid logs a transaction when it ends, which may be after our reply."""
        await wait_until(lambda: len(self.entries()) >= before + count, 10, "squid's log")
        return self.entries()[before:]


@pytest.fixture(scope="module")
def squid():
    """A squid without auth; its names: ``origin.test`` (127.0.0.1)."""
    need_squid()
    proxy = Squid(hosts=["origin.test"]).start()
    yield proxy
    proxy.stop()


@pytest.fixture(scope="module")
def squid_auth():
    """A squid that wants Basic credentials ``alice`` / ``s3cret``."""
    need_squid()
    proxy = Squid("alice", "s3cret", hosts=["origin.test"]).start()
    yield proxy
    proxy.stop()


# -- Corporate TLS (issue 17): mitmproxy, a TLS-intercepting proxy with its own CA --
#
# mitmproxy pins h11<=0.14, cryptography<44.1, Brotli<=1.1 (nbfetch needs h11>=0.16,
# brotli>=1.2), so it lives in a venv of its own that .ci/run makes
# (.ci/mitmproxy-venv); NBFETCH_MITMDUMP names another mitmdump.


def mitmdump_path() -> str:
    """The mitmdump to run; in CI (CI=true) a missing one fails, elsewhere it skips."""
    import os
    import shutil
    from pathlib import Path

    venv = Path(__file__).resolve().parent.parent / ".ci" / "mitmproxy-venv" / "bin" / "mitmdump"
    for candidate in (os.environ.get("NBFETCH_MITMDUMP"), str(venv), shutil.which("mitmdump")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    reason = "mitmdump not found: .ci/run installs it into .ci/mitmproxy-venv"
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)


class MitmProxy:
    """A running mitmdump: ``port`` it listens on (127.0.0.1), ``ca`` the path of
    its CA certificate (PEM), ``output`` its log lines so far; ``stop()`` by PID."""

    def __init__(self, process, port: int, ca: str, output: list[str]):
        self.process, self.port, self.ca, self.output = process, port, ca, output

    def stop(self) -> None:
        import os
        import signal

        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(10)
            except Exception:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait(10)


def start_mitmdump(args: list[str], confdir, timeout: float = 45.0) -> MitmProxy:
    """Start mitmdump with ``args`` (a ``--mode``, options) on a free port of
    127.0.0.1, its CA made at first start in ``confdir``; returns once it listens.
    The caller stops it (``stop()``), e.g. in a fixture's teardown."""
    import os
    import re
    import signal
    import subprocess
    from pathlib import Path

    command = [mitmdump_path(), "--set", f"confdir={confdir}"]
    command += ["--listen-host", "127.0.0.1", "--listen-port", "0", *args]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace"
    )
    output: list[str] = []
    listening = threading.Event()

    def read() -> None:  # drains the pipe for the process's whole life
        for line in process.stdout:
            output.append(line.rstrip("\n"))
            if re.search(r"listening at 127\.0\.0\.1:\d+", line):
                listening.set()
        listening.set()  # exited

    threading.Thread(target=read, daemon=True).start()
    if not listening.wait(timeout) or process.poll() is not None:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(10)
        raise AssertionError("mitmdump did not start:\n" + "\n".join(output[-20:]))
    port = int(re.search(r"listening at 127\.0\.0\.1:(\d+)", "\n".join(output)).group(1))
    ca = Path(confdir) / "mitmproxy-ca-cert.pem"
    assert ca.is_file(), f"mitmdump made no CA in {confdir}"
    return MitmProxy(process, port, str(ca), output)


# -- JupyterLite (issue 20): the `python -m nbfetch.lite prepare` cache -----------
# tests/test_lite.py builds a site from it and tests/test_pyodide.py runs its
# Pyodide under Node. .ci/run prepares it into .ci/lite-cache (online, once).


def lite_cache():
    """The prepared cache: ``NBFETCH_LITE_CACHE``, ``.ci/lite-cache``, or the
    command's default (``~/.cache/nbfetch-lite``). Missing: a skip, but in CI
    (CI=true), where .ci/run prepares it, a failure."""
    from pathlib import Path

    from nbfetch.lite import deps

    ci_cache = Path(__file__).resolve().parent.parent / ".ci" / "lite-cache"
    given = os.environ.get("NBFETCH_LITE_CACHE")
    candidates = [Path(given)] if given else [ci_cache, deps.default_cache()]
    for cache in candidates:
        # hashes.json too: an older cache has the marker without it (.ci/run
        # prepares such a cache again).
        if deps.is_prepared(cache) and (cache / deps.HASHES).is_file():
            return cache
    reason = (
        f"no prepared JupyterLite cache ({', '.join(map(str, candidates))}):"
        " run `python -m nbfetch.lite prepare --cache .ci/lite-cache` (online, once)"
    )
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason}; .ci/run prepares it, so CI must have it")
    pytest.skip(reason)
