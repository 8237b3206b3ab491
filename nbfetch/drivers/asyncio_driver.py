"""The asyncio driver (the default; in a notebook, the kernel's own loop).

Built on ``asyncio.BufferedProtocol`` rather than streams: the transport reads
into a buffer the connection owns and reuses (``recv_into``: no new bytes object
per read), and the bytes go straight to a waiting ``receive()`` as a view of that
buffer (no StreamReader buffer, no extra copy). Bytes that arrive while nobody
waits are copied out and queued, and the transport pauses above a high-water
mark so a slow consumer applies backpressure to the server (TCP flow control).
The transport also stops while the reader paused (``pause_reading``) and, with
paced reads (``limit_reads``: a download-rate limit), whenever no ``receive()``
waits: each read is then one bounded ``recv_into`` asked for by the reader.

Timeouts are timers (``loop.call_later``) that fail the awaited future, never
``asyncio.wait_for`` / ``asyncio.timeout``: those look up the current task, which
nest-asyncio2 can change under a nested ``run_until_complete``.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import sys
import threading
import time

from .base import IOTimeout, ReadPaused, unique_addresses

#: Above this many buffered, unread bytes the transport stops reading.
HIGH_WATER = 4 * 1024 * 1024

#: The read buffer starts small (most responses are small) and doubles, up to
#: READ_MAX, each time a read fills it: a bulk body is then read in large
#: pieces, so each byte costs fewer passes through the loop and the parser.
READ_MIN = 16 * 1024
READ_MAX = 512 * 1024

#: The larger read buffers of connections now idle or closed, for the next bulk
#: read of any connection (which then grows to one at once): at most this many
#: bytes in all, per process. An idle connection keeps no buffer of its own.
FREE_BYTES = 4 * 1024 * 1024


class _FreeBuffers:
    __slots__ = ("lock", "size", "views")

    def __init__(self) -> None:
        self.lock = threading.Lock()  # loops in several threads share it
        self.views: list[memoryview] = []
        self.size = 0

    def give(self, view: memoryview | None) -> None:
        if view is None or len(view) <= READ_MIN:
            return
        with self.lock:
            if self.size + len(view) <= FREE_BYTES:
                self.views.append(view)
                self.size += len(view)

    def take(self, at_least: int) -> memoryview | None:
        """The largest free buffer of at least ``at_least`` bytes, or None."""
        with self.lock:
            best = -1
            for i, view in enumerate(self.views):
                if len(view) >= at_least and (best < 0 or len(view) > len(self.views[best])):
                    best = i
            if best < 0:
                return None
            view = self.views.pop(best)
            self.size -= len(view)
            return view


_FREE = _FreeBuffers()


def _fail_with_timeout(fut: asyncio.Future) -> None:
    if not fut.done():
        fut.set_exception(IOTimeout())


class _Protocol(asyncio.BufferedProtocol):
    __slots__ = (
        "loop",
        "transport",
        "buffer",
        "buffered",
        "eof",
        "exc",
        "waiter",
        "reading_paused",
        "user_paused",
        "read_max",
        "transport_paused",
        "write_paused",
        "drain_waiter",
        "read_view",
        "spare",
        "lent",
    )

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.buffer: list[bytes] = []
        self.buffered = 0
        self.eof = False
        self.exc: BaseException | None = None
        self.waiter: asyncio.Future | None = None
        self.reading_paused = False  # above the high-water mark
        self.user_paused = False  # Stream.pause_reading()
        self.read_max: int | None = None  # Stream.limit_reads()
        self.transport_paused = False  # what the transport was last told
        self.write_paused = False
        self.drain_waiter: asyncio.Future | None = None
        # Two buffers: the one the transport reads into next, and at most one
        # lent to the reader (valid until its next receive(), see below).
        self.read_view: memoryview | None = None
        self.spare: memoryview | None = None
        self.lent: memoryview | None = None

    def connection_made(self, transport):
        self.transport = transport

    def get_buffer(self, sizehint: int) -> memoryview:
        view = self.read_view
        if view is None:
            view = self.read_view = memoryview(bytearray(READ_MIN))
        limit = self.read_max
        if limit is not None and len(view) > limit:
            return view[:limit]  # the same memory: buffer_updated() reads it from 0
        return view

    def set_reading(self) -> None:
        """Tell the transport whether to read: not above the high-water mark,
        not while the reader paused, and with paced reads only while a
        ``receive()`` waits."""
        transport = self.transport
        if transport is None:
            return
        stop = (
            self.reading_paused
            or self.user_paused
            or (self.read_max is not None and self.waiter is None)
        )
        if stop != self.transport_paused:
            self.transport_paused = stop
            if stop:
                transport.pause_reading()
            else:
                transport.resume_reading()

    def buffer_updated(self, nbytes: int) -> None:
        view = self.read_view
        waiter = self.waiter
        if waiter is not None and not self.buffer and not waiter.done():
            # Lend the bytes to the pending receive() without copying them; the
            # transport reads into the other buffer until the reader is done.
            self.waiter = None
            self.lent = view
            self.read_view = self._next_buffer(len(view), nbytes == len(view))
            waiter.set_result(view[:nbytes])
            if self.read_max is not None:
                self.set_reading()  # paced: the next read waits for the next receive()
            return
        if nbytes == len(view) and len(view) < READ_MAX:
            grown = _FREE.take(2 * len(view)) or memoryview(bytearray(2 * len(view)))
            self.read_view = grown
        self._queue(bytes(view[:nbytes]))
        _FREE.give(view if self.read_view is not view else None)

    def _next_buffer(self, size: int, filled: bool) -> memoryview:
        if filled and size < READ_MAX:
            _FREE.give(self.spare)
            self.spare = None
            return _FREE.take(2 * size) or memoryview(bytearray(2 * size))
        spare, self.spare = self.spare, None
        if spare is not None and len(spare) == size:
            return spare
        return memoryview(bytearray(size))

    def data_received(self, data: bytes) -> None:
        # Not called for a BufferedProtocol by asyncio's own transports; kept
        # for transports that only know the plain Protocol interface.
        waiter = self.waiter
        if waiter is not None and not self.buffer and not waiter.done():
            self.waiter = None
            waiter.set_result(data)
            return
        self._queue(data)

    def _queue(self, data: bytes) -> None:
        self.buffer.append(data)
        self.buffered += len(data)
        if self.buffered > HIGH_WATER and not self.reading_paused:
            self.reading_paused = True
            self.set_reading()
        self._wake()

    def release_lent(self) -> None:
        """The reader is done with the bytes last lent to it: their buffer is
        the spare again."""
        lent, self.lent = self.lent, None
        if lent is not None and lent is not self.read_view:
            self.spare = lent

    def eof_received(self):
        self.eof = True
        self._wake()
        # Close the transport; we never half-close. A server that answered an
        # upload early (a 413) and closed has its answer read all the same
        # (Exchange.send_request), and the rest of the body, which it would
        # discard, is not sent.
        return False

    def connection_lost(self, exc):
        self.eof = True
        self.exc = exc
        # The buffers go with the connection, not with this object (which a
        # reference cycle may keep until the garbage collector runs); the one
        # lent to the reader stays its own until its next receive().
        _FREE.give(self.read_view)
        _FREE.give(self.spare)
        self.read_view = self.spare = None
        # The transport is gone: never close or abort it again (asyncio's own
        # close() then fails inside the loop with an AttributeError).
        self.transport = None
        self._wake()
        waiter, self.drain_waiter = self.drain_waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def pause_writing(self):
        self.write_paused = True

    def resume_writing(self):
        self.write_paused = False
        waiter, self.drain_waiter = self.drain_waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _wake(self):
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


class AsyncioStream:
    """A connection on an asyncio transport; see ``drivers.base.Stream``."""

    __slots__ = ("_deadline", "_timer", "loop", "proto")

    def __init__(self, proto: _Protocol):
        self.proto = proto
        self.loop = proto.loop
        self._deadline: float | None = None
        self._timer: asyncio.TimerHandle | None = None

    def _take_buffer(self) -> bytes:
        """The oldest buffered piece. One at a time: joining them would copy
        every byte once more before h11 copies it into its own buffer."""
        p = self.proto
        data = p.buffer.pop(0) if len(p.buffer) > 1 else p.buffer.pop()
        limit = p.read_max
        if limit is not None and len(data) > limit:
            # Read before the limit was set: handed out in paced pieces too
            # (views of the piece, no copy; the rest stays first in line).
            view = memoryview(data)
            p.buffer.insert(0, view[limit:])
            data = view[:limit]
        p.buffered -= len(data)
        if p.reading_paused and p.buffered <= HIGH_WATER // 2:
            p.reading_paused = False
            p.set_reading()
        return data

    async def receive(self, timeout: float | None) -> bytes | memoryview:
        """See ``drivers.base.Stream.receive``. The result may be a view of the
        connection's read buffer: it is valid until the next ``receive()``."""
        p = self.proto
        if p.lent is not None:
            p.release_lent()
        while True:
            if p.buffer:
                return self._take_buffer()
            if p.eof:
                if p.exc is not None:
                    raise p.exc if isinstance(p.exc, OSError) else OSError(str(p.exc))
                return b""
            if p.user_paused:
                raise ReadPaused()
            fut = self.loop.create_future()
            p.waiter = fut
            if p.read_max is not None:
                p.set_reading()  # paced: this receive() asks for one read
            if timeout is None:
                self._deadline = None
            else:
                # One timer per connection, re-armed lazily: a read that ends
                # before its deadline leaves the timer be, and when it fires it
                # checks the current deadline (no heap push/cancel per read).
                deadline = self.loop.time() + timeout
                self._deadline = deadline
                timer = self._timer
                if timer is None or timer.when() > deadline:
                    if timer is not None:
                        timer.cancel()
                    self._timer = self.loop.call_at(deadline, self._on_timer)
            try:
                data = await fut
            finally:
                if p.waiter is fut:
                    p.waiter = None
                    if p.read_max is not None:
                        p.set_reading()
            if data is not None:
                return data

    def _on_timer(self) -> None:
        self._timer = None
        fut = self.proto.waiter
        deadline = self._deadline
        if fut is None or fut.done() or deadline is None:
            return  # no read is waiting: the next one arms a new timer
        if self.loop.time() >= deadline:
            fut.set_exception(IOTimeout())
        else:
            self._timer = self.loop.call_at(deadline, self._on_timer)

    def write(self, data: bytes) -> None:
        transport = self.proto.transport
        if transport is None or transport.is_closing():
            raise ConnectionResetError("connection closed")
        transport.write(data)

    async def drain(self, timeout: float | None) -> None:
        p = self.proto
        if p.eof and p.exc is not None:
            raise p.exc if isinstance(p.exc, OSError) else OSError(str(p.exc))
        if not p.write_paused:
            return
        fut = self.loop.create_future()
        p.drain_waiter = fut
        timer = None if timeout is None else self.loop.call_later(timeout, _fail_with_timeout, fut)
        try:
            await fut
        finally:
            if timer is not None:
                timer.cancel()
        if p.eof:
            raise ConnectionResetError("connection closed while sending")

    async def start_tls(self, context: ssl.SSLContext, server_hostname, timeout):
        p = self.proto
        transport = await _with_timeout(
            self.loop,
            self.loop.start_tls(
                p.transport,
                p,
                context,
                server_hostname=server_hostname,
                # our own timer below bounds it; asyncio's default is 60 s
                ssl_handshake_timeout=None if timeout is None else timeout + 1,
            ),
            timeout,
            orphan=lambda tls_transport: tls_transport.abort(),
        )
        p.transport = transport
        obj = transport.get_extra_info("ssl_object")
        cipher = obj.cipher() if obj is not None else None
        return {
            "version": obj.version() if obj is not None else None,
            "cipher": cipher[0] if cipher else None,
            "alpn": obj.selected_alpn_protocol() if obj is not None else None,
        }

    def close(self) -> None:
        self._stop_timer()
        transport = self.proto.transport
        if transport is not None:
            transport.close()

    def abort(self) -> None:
        """Close without flushing (after an error or a cancel)."""
        self._stop_timer()
        transport = self.proto.transport
        if transport is not None:
            transport.abort()

    def _stop_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def idle(self) -> None:
        """In the pool, waiting: the larger read buffers go to the free list (a
        bulk read left two of up to 512 KiB); two of the smallest size are kept
        (32 KiB), for the next response. Made anew, each would cost an
        allocation and the zeroing of its 16 KiB at every request (callgrind,
        64 concurrent small GETs: 34K of ~690K instructions per request)."""
        p = self.proto
        read_view, spare, lent = p.read_view, p.spare, p.lent
        p.lent = None
        if lent is not None:  # the reader is done with what was lent
            if spare is None:
                spare = lent
            elif read_view is None:
                read_view = lent
            else:
                _FREE.give(lent)
        if read_view is not None and len(read_view) != READ_MIN:
            _FREE.give(read_view)
            read_view = None
        if spare is not None and len(spare) != READ_MIN:
            _FREE.give(spare)
            spare = None
        p.read_view, p.spare = read_view, spare

    def is_stale(self) -> bool:
        p = self.proto
        return p.eof or bool(p.buffer) or p.transport is None or p.transport.is_closing()

    def addresses(self):
        t = self.proto.transport
        if t is None:
            return (None, None)
        return (t.get_extra_info("sockname"), t.get_extra_info("peername"))

    def pause_reading(self) -> None:
        """See ``drivers.base.Stream.pause_reading``. Over TLS, asyncio's SSL
        layer still reads up to its own buffer (256 KiB) before it stops the
        socket."""
        p = self.proto
        p.user_paused = True
        p.set_reading()
        fut, p.waiter = p.waiter, None
        if fut is not None and not fut.done():
            fut.set_exception(ReadPaused())

    def resume_reading(self) -> None:
        p = self.proto
        p.user_paused = False
        p.set_reading()

    def limit_reads(self, max_bytes: int | None) -> None:
        p = self.proto
        p.read_max = max_bytes
        p.set_reading()


async def _with_timeout(loop, coro, timeout: float | None, orphan=None):
    """Await ``coro`` as a task, cancelled by a timer after ``timeout`` seconds.

    ``orphan(result)`` disposes of a result nobody will receive: when the caller
    is cancelled in the loop pass after the task finished but before the caller
    resumed, ``await task`` raises CancelledError and the task's result (a
    connected transport) would otherwise stay open with no owner.
    """
    task = loop.create_task(coro)
    fired = False

    def expire():
        nonlocal fired
        fired = True
        task.cancel()

    timer = None if timeout is None else loop.call_later(timeout, expire)
    try:
        return await task
    except asyncio.CancelledError:
        finished = task.done() and not task.cancelled() and task.exception() is None
        if orphan is not None and finished:
            orphan(task.result())
        if fired:
            raise IOTimeout() from None
        raise
    finally:
        if timer is not None:
            timer.cancel()
        if not task.done():
            task.cancel()


class _Signal:
    __slots__ = ("loop", "fut")

    def __init__(self, loop):
        self.loop = loop
        self.fut = loop.create_future()

    def set(self) -> None:
        if not self.fut.done():
            self.fut.set_result(None)

    def is_set(self) -> bool:
        return self.fut.done() and not self.fut.cancelled()

    async def wait(self, timeout: float | None) -> None:
        if self.fut.done():
            return
        waiter = self.loop.create_future()
        self.fut.add_done_callback(lambda f: waiter.done() or waiter.set_result(None))
        timer = (
            None if timeout is None else self.loop.call_later(timeout, _fail_with_timeout, waiter)
        )
        try:
            await waiter
        finally:
            if timer is not None:
                timer.cancel()


class AsyncioDriver:
    """Runs on whatever asyncio loop is running (the kernel's, in a notebook)."""

    name = "asyncio"
    # start_tls on a TLS transport (an https:// proxy's tunnel): 3.11+ (bpo-37179).
    tls_in_tls = sys.version_info >= (3, 11)

    monotonic = staticmethod(time.monotonic)

    async def resolve(self, host: str, port: int, timeout: float | None) -> list[tuple[int, tuple]]:
        loop = asyncio.get_running_loop()
        # loop.getaddrinfo runs socket.getaddrinfo in the default executor, as
        # Tornado's DefaultExecutorResolver does: the loop never blocks on DNS.
        infos = await _with_timeout(
            loop, loop.getaddrinfo(host, port, type=socket.SOCK_STREAM), timeout
        )
        return unique_addresses(infos)

    async def connect(
        self, family: int, sockaddr: tuple, timeout: float | None, local_address: str | None = None
    ) -> AsyncioStream:
        loop = asyncio.get_running_loop()
        host, port = sockaddr[0], sockaddr[1]
        local = (local_address, 0) if local_address else None
        _transport, proto = await _with_timeout(
            loop,
            loop.create_connection(
                lambda: _Protocol(loop), host, port, family=family, local_addr=local
            ),
            timeout,
            orphan=lambda connected: connected[0].abort(),
        )
        return AsyncioStream(proto)

    async def wait_for(self, awaitable, timeout: float | None):
        return await _with_timeout(asyncio.get_running_loop(), awaitable, timeout)

    async def run_sync(self, fn, timeout: float | None):
        # The loop's default executor, as getaddrinfo above.
        return await _with_timeout(asyncio.get_running_loop(), asyncio.to_thread(fn), timeout)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    async def gather(self, awaitables: list) -> list:
        tasks = [asyncio.ensure_future(a) for a in awaitables]
        try:
            return list(await asyncio.gather(*tasks))
        except BaseException:
            # asyncio.gather leaves the others running when one raises (it
            # cancels them only when it is cancelled itself).
            for task in tasks:
                task.cancel()
            if tasks:
                await asyncio.wait(tasks)
            raise

    def signal(self) -> _Signal:
        return _Signal(asyncio.get_running_loop())
