"""The trio driver: ``nbfetch.AsyncClient`` inside ``trio.run(...)``.

    async def main():
        async with nbfetch.AsyncClient() as client:      # picks this driver under trio
            r = await client.fetch("http://127.0.0.1:8000/get")
    trio.run(main)

Same interface as the asyncio driver (``drivers.base``): the client layer does
not know which loop it runs on. Timeouts are trio cancel scopes around each
wait, so a cancellation from outside (a nursery, ``fail_after``) still wins.
Bytes given to ``write()`` are sent on the next ``drain()`` or ``receive()``:
trio streams have no non-blocking write, and the client never reads a response
before its request is out. Nothing is read ahead of ``receive()``: while the
reader paused (``pause_reading``) no receive runs at all, and paced reads
(``limit_reads``) are receives of at most that many bytes.
"""

from __future__ import annotations

import socket
import ssl
import time
from inspect import signature

import trio

from .base import IOTimeout, ReadPaused, unique_addresses

RECEIVE_SIZE = 256 * 1024
# trio 0.23 renamed to_thread.run_sync's ``cancellable`` to ``abandon_on_cancel``.
_ABANDON = (
    "abandon_on_cancel"
    if "abandon_on_cancel" in signature(trio.to_thread.run_sync).parameters
    else "cancellable"
)


def _os_error(exc: BaseException) -> OSError:
    if isinstance(exc, OSError):
        return exc
    return ConnectionResetError(str(exc) or type(exc).__name__)


class TrioStream:
    __slots__ = (
        "_interrupted",
        "_paused",
        "_pending",
        "_receiving",
        "_size",
        "closed",
        "sock",
        "stream",
    )

    def __init__(self, stream: trio.SocketStream):
        self.stream: trio.abc.Stream = stream
        self.sock = stream.socket
        self._pending: list[bytes] = []
        self.closed = False
        self._paused = False
        self._size = RECEIVE_SIZE
        self._receiving: trio.CancelScope | None = None  # the receive() waiting
        self._interrupted: trio.CancelScope | None = None  # ... that pause_reading() cancelled

    async def _flush(self, timeout: float | None) -> None:
        if not self._pending:
            return
        data = b"".join(self._pending)
        self._pending.clear()
        with trio.move_on_after(timeout if timeout is not None else float("inf")) as scope:
            try:
                await self.stream.send_all(data)
            except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                raise _os_error(exc.__cause__ or exc) from None
        if scope.cancelled_caught:
            raise IOTimeout()

    async def receive(self, timeout: float | None) -> bytes:
        await self._flush(timeout)
        if self._paused:
            raise ReadPaused()
        with trio.move_on_after(timeout if timeout is not None else float("inf")) as scope:
            self._receiving = scope
            try:
                return await self.stream.receive_some(self._size)
            except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                raise _os_error(exc.__cause__ or exc) from None
            finally:
                self._receiving = None
        if self._interrupted is scope:
            # Cancelled by pause_reading(), not by its timeout: a cancelled
            # receive_some took no bytes (on TLS too, once the handshake is done).
            self._interrupted = None
            raise ReadPaused()
        if scope.cancelled_caught:
            raise IOTimeout()
        return b""  # pragma: no cover - unreachable

    def pause_reading(self) -> None:
        self._paused = True
        if self._receiving is not None:
            self._interrupted = self._receiving
            self._receiving.cancel()

    def resume_reading(self) -> None:
        self._paused = False

    def limit_reads(self, max_bytes: int | None) -> None:
        self._size = RECEIVE_SIZE if max_bytes is None else min(max_bytes, RECEIVE_SIZE)

    def write(self, data: bytes) -> None:
        if self.closed:
            raise ConnectionResetError("connection closed")
        self._pending.append(data)

    async def drain(self, timeout: float | None) -> None:
        await self._flush(timeout)

    async def start_tls(self, context: ssl.SSLContext, server_hostname, timeout):
        ssl_stream = trio.SSLStream(
            self.stream, context, server_hostname=server_hostname, https_compatible=True
        )
        with trio.move_on_after(timeout if timeout is not None else float("inf")) as scope:
            try:
                await ssl_stream.do_handshake()
            except trio.BrokenResourceError as exc:
                cause = exc.__cause__
                if isinstance(cause, (ssl.SSLError, ssl.CertificateError, OSError)):
                    raise cause from None
                raise ConnectionResetError(str(exc)) from None
        if scope.cancelled_caught:
            raise IOTimeout()
        self.stream = ssl_stream
        cipher = ssl_stream.cipher()
        return {
            "version": ssl_stream.version(),
            "cipher": cipher[0] if cipher else None,
            "alpn": ssl_stream.selected_alpn_protocol(),
        }

    def close(self) -> None:
        # Closing the socket is synchronous and immediate; for TLS this skips
        # close_notify, which HTTP/1.1 does not need (the framing says where
        # the body ends).
        if not self.closed:
            self.closed = True
            self.sock.close()

    abort = close

    def idle(self) -> None:
        pass  # each receive() returns bytes of its own: no buffer is kept

    def is_stale(self) -> bool:
        if self.closed:
            return True
        try:
            # A copy of the descriptor, peeked without blocking: b"" means the
            # server closed; any byte means it sent something nobody asked for.
            with socket.socket(fileno=socket.dup(self.sock.fileno())) as peek:
                peek.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
        except BlockingIOError:
            return False
        except OSError:
            return True
        return True  # EOF (b"") or unexpected bytes

    def addresses(self):
        try:
            return (self.sock.getsockname(), self.sock.getpeername())
        except OSError:
            return (None, None)


class _Signal:
    __slots__ = ("event",)

    def __init__(self):
        self.event = trio.Event()

    def set(self) -> None:
        self.event.set()

    def is_set(self) -> bool:
        return self.event.is_set()

    async def wait(self, timeout: float | None) -> None:
        with trio.move_on_after(timeout if timeout is not None else float("inf")):
            await self.event.wait()
        if not self.event.is_set():
            raise IOTimeout()


class TrioDriver:
    name = "trio"
    tls_in_tls = True  # an SSLStream wraps any stream, an SSLStream too

    monotonic = staticmethod(time.monotonic)

    async def resolve(self, host: str, port: int, timeout: float | None) -> list[tuple[int, tuple]]:
        async def lookup():
            return await trio.socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)

        infos = await self.wait_for(lookup(), timeout)
        return unique_addresses(infos)

    async def connect(
        self, family: int, sockaddr: tuple, timeout: float | None, local_address: str | None = None
    ) -> TrioStream:
        sock = trio.socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if local_address:
                await sock.bind((local_address, 0))
            with trio.move_on_after(timeout if timeout is not None else float("inf")) as scope:
                await sock.connect(sockaddr)
            if scope.cancelled_caught:
                raise IOTimeout()
        except BaseException:
            sock.close()
            raise
        return TrioStream(trio.SocketStream(sock))

    async def wait_for(self, awaitable, timeout: float | None):
        with trio.move_on_after(timeout if timeout is not None else float("inf")) as scope:
            return await awaitable
        if scope.cancelled_caught:
            raise IOTimeout()
        return None  # pragma: no cover - unreachable

    async def run_sync(self, fn, timeout: float | None):
        # Abandoned on timeout or cancel: the thread finishes on its own.
        return await self.wait_for(trio.to_thread.run_sync(fn, **{_ABANDON: True}), timeout)

    async def sleep(self, seconds: float) -> None:
        await trio.sleep(seconds)

    async def gather(self, awaitables: list) -> list:
        results: list = [None] * len(awaitables)

        async def run(index: int, awaitable) -> None:
            results[index] = await awaitable

        async with trio.open_nursery() as nursery:
            for index, awaitable in enumerate(awaitables):
                nursery.start_soon(run, index, awaitable)
        return results

    def signal(self) -> _Signal:
        return _Signal()
