"""The small interface between the client layer and an event loop.

The client layer never imports asyncio (or trio): everything it needs from a loop
goes through a ``Driver``: open a TCP connection, send and receive bytes, start
TLS, close, resolve a name or run a blocking call off the loop, read the clock, and a one-shot ``Signal``
to wait on (the max_clients queue). Timeouts are part of each waiting call, so
they never depend on which task is current (nest-asyncio2 patches that).
"""

from __future__ import annotations

import ssl
from collections.abc import Callable
from typing import Protocol, TypeVar

T = TypeVar("T")


class IOTimeout(Exception):
    """A driver-level wait ran out of time; the client layer names the phase."""


class ReadPaused(Exception):
    """``receive()`` was waiting when ``pause_reading()`` was called: it gave up
    without taking any byte (none is lost); call it again after resuming."""


def unique_addresses(infos) -> list[tuple[int, tuple]]:
    """getaddrinfo results as [(family, sockaddr)], each address once, in order."""
    seen, out = set(), []
    for family, _, _, _, sockaddr in infos:
        key = (family, sockaddr[:2])
        if key not in seen:
            seen.add(key)
            out.append((family, sockaddr))
    return out


class Stream(Protocol):
    """One TCP (or TLS) connection."""

    async def receive(self, timeout: float | None) -> bytes | memoryview:
        """Bytes from the peer; ``b""`` once it has closed. Raises ``IOTimeout``
        when nothing arrives within ``timeout`` seconds, ``OSError`` on a reset.
        The result may be a view of the connection's read buffer, valid until
        the next ``receive()``: copy what you keep (h11 copies what it is fed)."""

    def write(self, data: bytes) -> None:
        """Queue bytes to send (never blocks; see ``drain``)."""

    async def drain(self, timeout: float | None) -> None:
        """Wait until the write buffer is below the high-water mark."""

    async def start_tls(
        self, context: ssl.SSLContext, server_hostname: str | None, timeout: float | None
    ) -> dict:
        """Upgrade to TLS; returns {"version", "cipher", "alpn"}."""

    def close(self) -> None:
        """Close at once (idempotent); never waits."""

    def idle(self) -> None:
        """The connection now waits in the pool: let go of what reading needed
        (buffers), so an idle connection costs little memory."""

    def is_stale(self) -> bool:
        """True when an idle connection can no longer be used: closed by the peer,
        or bytes arrived that nobody asked for."""

    def addresses(self) -> tuple[object, object]:
        """(local address, peer address)."""

    def pause_reading(self) -> None:
        """Read nothing more from the socket until ``resume_reading()``: the
        kernel's receive buffer fills, the TCP window closes and the peer's
        sends block (RFC 9293 section 3.8.6). A ``receive()`` waiting now
        raises ``ReadPaused`` (its timeout stops with it)."""

    def resume_reading(self) -> None:
        """Read again after ``pause_reading()``."""

    def limit_reads(self, max_bytes: int | None) -> None:
        """Paced reads (a download-rate limit): from now on each read from the
        socket takes at most ``max_bytes`` and nothing is read ahead of
        ``receive()``, so the bytes nobody asked for stay in the kernel (and
        the TCP window closes). ``None``: read as before."""


class Signal(Protocol):
    """A one-shot flag a task can wait on with a timeout."""

    def set(self) -> None: ...

    def is_set(self) -> bool: ...

    async def wait(self, timeout: float | None) -> None:
        """Return once set; raise ``IOTimeout`` after ``timeout`` seconds."""


class Driver(Protocol):
    name: str
    #: Whether ``Stream.start_tls`` works on a stream that is already TLS (an
    #: https:// proxy's tunnel to an https:// origin).
    tls_in_tls: bool

    def monotonic(self) -> float: ...

    async def resolve(self, host: str, port: int, timeout: float | None) -> list[tuple[int, tuple]]:
        """getaddrinfo off the loop: [(family, sockaddr), ...] for TCP."""

    async def connect(
        self, family: int, sockaddr: tuple, timeout: float | None, local_address: str | None = None
    ) -> Stream:
        """TCP to ``sockaddr``, from ``local_address`` (an IP) when given."""

    async def wait_for(self, awaitable, timeout: float | None):
        """Await ``awaitable`` (e.g. a user-supplied resolver); ``IOTimeout`` after ``timeout``."""

    async def run_sync(self, fn: Callable[[], T], timeout: float | None) -> T:
        """Call the blocking ``fn()`` in a worker thread while the loop runs on;
        ``IOTimeout`` after ``timeout`` (the thread then finishes on its own)."""

    async def sleep(self, seconds: float) -> None: ...

    async def gather(self, awaitables: list) -> list:
        """Await all of ``awaitables`` concurrently; their results in order.
        The first to raise cancels the others, which end before it propagates
        (a trio nursery's rule, on both loops: nothing is left running)."""

    def signal(self) -> Signal: ...
