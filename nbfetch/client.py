"""``AsyncClient``: the max_clients queue, the keep-alive pool, resolving,
connecting, TLS, redirects, timeouts and limits around the exchange of one hop.

>>> async with AsyncClient(max_clients=10) as client:             # doctest: +SKIP
...     r = await client.fetch("http://127.0.0.1:8000/get")
...     async with client.stream("GET", "http://127.0.0.1:8000/stream/5") as s:
...         async for chunk in s.aiter_chunks():
...             print(chunk.size, chunk.offset)
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from ._version import __version__
from .core.decoders import AVAILABLE_ENCODINGS
from .core.headers import Headers, HeaderSource
from .core.models import Request
from .core.urls import URL
from .drivers.base import Driver, IOTimeout
from .errors import (
    ConnectError,
    FetchError,
    FetchTimeout,
    InvalidRequest,
    NetworkError,
    RedirectError,
    TLSError,
    TooManyRedirects,
)
from .events import Recorder, Subscriber
from .exchange import Exchange, StaleConnection
from .pool import Connection, Pool, Slots
from .resolver import HostnameMapping, ip_family
from .response import Response

if TYPE_CHECKING:
    import ssl

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
#: The phase a connection was opening in, after each of its events.
CANCELLED_IN = {"resolve.start": "resolve", "tls.start": "tls"}
#: Every option ``fetch()`` and ``stream()`` accept.
FETCH_OPTIONS = frozenset(
    {
        "headers",
        "body",
        "json",
        "data",
        "params",
        "auth",
        "allow_body",
        "on_headers",
        "on_chunk",
        "trace",
        "decompress",
        "connect_timeout",
        "read_timeout",
        "request_timeout",
        "queue_timeout",
        "follow_redirects",
        "max_redirects",
        "expect_100_continue",
    }
)


def _headers_key(headers) -> tuple:
    if isinstance(headers, Headers):
        return tuple(headers._items)
    items = headers.items() if isinstance(headers, Mapping) else headers
    return tuple((name, value) for name, value in items)


_UNSET: Any = object()


class Limits:
    """Bounds on what a server can make nbfetch hold. ``None`` means no bound.

    ``max_header_bytes`` (status line + header block, 64 KiB), ``max_headers``
    (header fields in one response, 256), ``max_body_size`` (a buffered fetch's
    decoded body, 1 GiB), ``max_decoded_size`` (decoded bytes of any body,
    streams included: decompression bombs, 1 GiB), ``max_encodings`` (chained
    Content-Encodings, 3), ``max_informational`` (1xx responses before the final
    one, 16), ``max_redirect_body`` (a redirect body read to keep its connection;
    larger ones drop it, 1 MiB), ``max_recorded_events`` (per-chunk events kept
    in ``r.events``; later ones still reach ``trace`` subscribers live and are
    counted in ``response.done``'s ``events_dropped``, 20,000).
    """

    __slots__ = (
        "max_body_size",
        "max_decoded_size",
        "max_encodings",
        "max_header_bytes",
        "max_headers",
        "max_informational",
        "max_recorded_events",
        "max_redirect_body",
    )

    def __init__(
        self,
        *,
        max_header_bytes: int = 64 * 1024,
        max_headers: int = 256,
        max_body_size: int | None = 1024**3,
        max_decoded_size: int | None = 1024**3,
        max_encodings: int = 3,
        max_informational: int = 16,
        max_redirect_body: int = 1024 * 1024,
        max_recorded_events: int | None = 20_000,
    ):
        self.max_header_bytes = max_header_bytes
        self.max_headers = max_headers
        self.max_body_size = max_body_size
        self.max_decoded_size = max_decoded_size
        self.max_encodings = max_encodings
        self.max_informational = max_informational
        self.max_redirect_body = max_redirect_body
        self.max_recorded_events = max_recorded_events

    def __repr__(self) -> str:
        return "Limits(" + ", ".join(f"{n}={getattr(self, n)!r}" for n in self.__slots__) + ")"


class FetchContext:
    """The per-fetch settings and state shared by every hop of one fetch."""

    __slots__ = (
        "recorder",
        "driver",
        "url",
        "deadline",
        "connect_timeout",
        "continue_timeout",
        "expect_100_continue",
        "read_timeout",
        "request_timeout",
        "queue_timeout",
        "decompress",
        "on_chunk",
        "limits",
        "follow_redirects",
        "max_redirects",
        "final",
        "slot_held",
        "failed",
        "_armed",
    )

    def __init__(self, driver: Driver, recorder: Recorder, url: URL, limits: Limits):
        self.driver = driver
        self.recorder = recorder
        self.url = url
        self.limits = limits
        self.deadline: float | None = None
        self.final: Exchange | None = None
        self.slot_held = False
        self.failed = False
        self._armed: tuple[str, float | None] = ("", None)

    def arm(self, seconds: float | None, name: str) -> float | None:
        """The time to wait for one step: the phase's own timeout or what is left
        of request_timeout, whichever is shorter. Remembers which one it was."""
        deadline = self.deadline
        if deadline is not None:
            left = deadline - self.driver.monotonic()
            if seconds is None or left < seconds:
                self._armed = ("request_timeout", self.request_timeout)
                return left if left > 0 else 0.0
        self._armed = (name, seconds)
        return seconds

    def timeout_error(self, phase: str) -> FetchTimeout:
        name, seconds = self._armed
        return FetchTimeout(
            f"{name}={seconds}s expired", url=self.url, phase=phase, timeout=name, seconds=seconds
        )

    def note_failure(self, exc: BaseException, phase: str) -> None:
        """Record the ``error`` (or ``cancelled``) event, once per fetch."""
        if self.failed:
            return
        self.failed = True
        if isinstance(exc, Exception):
            self.recorder.emit(
                "error",
                {
                    "phase": getattr(exc, "phase", phase),
                    "type": type(exc).__name__,
                    "message": str(exc),
                },
            )
        else:  # CancelledError (asyncio), Cancelled (trio), KeyboardInterrupt
            self.recorder.emit("cancelled", {"phase": phase, "type": type(exc).__name__})


def ssl_errors() -> tuple[type[BaseException], ...]:
    import ssl

    return (ssl.SSLError, ssl.CertificateError)


def _default_driver() -> Driver:
    """The driver of the loop we run in: trio inside ``trio.run``, else asyncio."""
    import sys

    trio = sys.modules.get("trio")
    if trio is not None:
        try:
            trio.lowlevel.current_task()
        except RuntimeError:
            pass  # trio is imported but not running here
        else:
            from .drivers.trio_driver import TrioDriver

            return TrioDriver()
    from .drivers.asyncio_driver import AsyncioDriver

    return AsyncioDriver()


class _StreamContext:
    """``async with client.stream(...) as r``: the response, released on exit."""

    __slots__ = ("_opener", "_response")

    def __init__(self, opener):
        self._opener = opener
        self._response: Response | None = None

    async def __aenter__(self) -> Response:
        self._response = await self._opener()
        return self._response

    async def __aexit__(self, *exc_info) -> None:
        if self._response is not None:
            await self._response.aclose()


class AsyncClient:
    """An HTTP/1.1 client with a keep-alive pool and a ``max_clients`` queue.

    Defaults (per fetch, overridable in ``fetch()``): ``connect_timeout=20`` s
    (Tornado's), ``read_timeout=60`` s of silence, ``request_timeout=300`` s for
    the whole fetch including the queue (aiohttp's total); ``queue_timeout=None``
    (the request_timeout bounds it); ``max_redirects=5``.

    >>> async with AsyncClient(hostname_mapping={"demo.test": "127.0.0.1"}) as c:  # doctest: +SKIP
    ...     r = await c.fetch("http://demo.test:8000/get", headers={"X-A": "1"})
    """

    def __init__(
        self,
        *,
        max_clients: int = 10,
        max_connections_per_host: int | None = None,
        hostname_mapping: Mapping | None = None,
        verify: bool | str | ssl.SSLContext = True,
        cert: str | tuple[str, str] | None = None,
        headers: HeaderSource = None,
        user_agent: str | None = None,
        connect_timeout: float | None = 20.0,
        read_timeout: float | None = 60.0,
        request_timeout: float | None = 300.0,
        queue_timeout: float | None = None,
        follow_redirects: bool = True,
        max_redirects: int = 5,
        decompress: bool = True,
        keepalive_expiry: float | None = 15.0,
        continue_timeout: float = 1.0,
        resolver: Callable | None = None,
        local_address: str | None = None,
        limits: Limits | None = None,
        trace: Subscriber | None = None,
        driver: Driver | None = None,
    ):
        self.driver = driver or _default_driver()
        self.limits = limits or Limits()
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.request_timeout = request_timeout
        self.queue_timeout = queue_timeout
        self.follow_redirects = follow_redirects
        self.max_redirects = max_redirects
        self.decompress = decompress
        self.verify = verify
        self.cert = cert
        self.trace = trace
        self.continue_timeout = continue_timeout
        self.resolver = resolver
        if local_address is not None and ip_family(local_address) is None:
            raise InvalidRequest(f"local_address must be an IP address, not {local_address!r}")
        self.local_address = local_address
        self._mapping = HostnameMapping(dict(hostname_mapping or {}))
        self._slots = Slots(self.driver, max_clients)
        self._pool = Pool(self.driver, keepalive_expiry, max_connections_per_host)
        self._ssl_context: ssl.SSLContext | None = None
        self._prepared: dict[tuple, Request] = {}
        self._closed = False
        base = Headers(
            [
                ("User-Agent", user_agent or f"nbfetch/{__version__}"),
                ("Accept", "*/*"),
            ]
        )
        if headers is not None:
            base.update(headers)
        self.headers = base
        self._accept_encoding = ", ".join(AVAILABLE_ENCODINGS).encode("ascii")

    # -- lifecycle ---------------------------------------------------------------
    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc_info) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close every pooled connection. In-flight fetches finish on their own."""
        self.close()

    def close(self) -> None:
        """``aclose()`` for synchronous code (nothing in it waits)."""
        self._closed = True
        self._pool.close_all()

    @property
    def max_clients(self) -> int:
        return self._slots.limit

    # -- public API ----------------------------------------------------------------
    async def fetch(self, url: str | URL, method: str = "GET", **options: Any) -> Response:
        """Fetch ``url`` and read the whole body. See ``stream()`` for the options."""
        response = await self._open(url, method, options)
        try:
            await response.aread()
        finally:
            await response.aclose()
        return response

    def stream(self, method: str, url: str | URL, **options: Any) -> _StreamContext:
        """Send the request and read the head; the body is read as you iterate.

        Options: ``headers``, ``params`` (added to the query), ``body`` (bytes,
        str or async iterable of bytes),
        ``json``, ``data`` (form dict), ``auth=(user, password)``, ``allow_body``,
        ``connect_timeout``, ``read_timeout``, ``request_timeout``,
        ``queue_timeout``, ``follow_redirects``, ``max_redirects``, ``decompress``,
        ``expect_100_continue`` (send the body after ``100 Continue``),
        ``on_headers(response)``, ``on_chunk(chunk)`` (a coroutine applies
        backpressure) and ``trace(event)``.
        """
        return _StreamContext(lambda: self._open(url, method, options))

    # -- the fetch -------------------------------------------------------------------
    def _prepare(self, url, method: str, options: dict) -> tuple[Request, FetchContext, Any]:
        if self._closed:
            raise InvalidRequest("the client is closed", url=url)
        unknown = options.keys() - FETCH_OPTIONS
        if unknown:
            raise InvalidRequest(f"unknown option(s): {', '.join(sorted(unknown))}", url=url)
        get = options.get
        decompress = get("decompress", self.decompress)
        connect_timeout = get("connect_timeout", self.connect_timeout)
        read_timeout = get("read_timeout", self.read_timeout)
        request_timeout = get("request_timeout", self.request_timeout)
        queue_timeout = get("queue_timeout", self.queue_timeout)
        for name, value in (
            ("connect_timeout", connect_timeout),
            ("read_timeout", read_timeout),
            ("request_timeout", request_timeout),
            ("queue_timeout", queue_timeout),
        ):
            if value is not None and (not isinstance(value, (int, float)) or value <= 0):
                raise InvalidRequest(
                    f"{name} must be a positive number of seconds or None", url=url
                )
        request = self._request_for(url, method, options, decompress)
        trace = get("trace")
        subscribers = (self.trace, trace) if self.trace and trace else (self.trace or trace,)
        ctx = FetchContext(
            self.driver,
            Recorder(subscribers if subscribers[0] else (), self.limits.max_recorded_events),
            request.url,
            self.limits,
        )
        ctx.connect_timeout = connect_timeout
        ctx.read_timeout = read_timeout
        ctx.request_timeout = request_timeout
        ctx.queue_timeout = queue_timeout
        ctx.decompress = decompress
        ctx.on_chunk = get("on_chunk")
        ctx.expect_100_continue = bool(get("expect_100_continue")) and request.body is not None
        ctx.continue_timeout = self.continue_timeout
        ctx.follow_redirects = get("follow_redirects", self.follow_redirects)
        ctx.max_redirects = get("max_redirects", self.max_redirects)
        if request_timeout is not None:
            ctx.deadline = self.driver.monotonic() + request_timeout
        return request, ctx, get("on_headers")

    def _request_for(self, url, method: str, options: dict, decompress: bool) -> Request:
        """The validated Request. Requests without a body are cached per URL, method
        and headers: a loop fetching the same URL builds and validates it once."""
        get = options.get
        body, json, data = get("body"), get("json"), get("data")
        key = None
        if body is None and json is None and data is None:
            headers = get("headers")
            params = get("params")
            try:
                key = (
                    str(url),
                    None if params is None else _headers_key(params),
                    method,
                    decompress,
                    get("auth"),
                    None if headers is None else _headers_key(headers),
                    tuple(self.headers._items),  # client.headers may have been changed
                )
                cached = self._prepared.get(key)
            except (TypeError, ValueError):  # unhashable or malformed: no caching
                key, cached = None, None
            if cached is not None:
                return cached
        default_headers = self.headers
        if decompress and self._accept_encoding:
            default_headers = default_headers.copy()
            default_headers.add(b"Accept-Encoding", self._accept_encoding)
        request = Request.build(
            method,
            url,
            headers=get("headers"),
            default_headers=default_headers,
            body=body,
            json=json,
            data=data,
            auth=get("auth"),
            allow_body=get("allow_body", False),
            expect_continue=bool(get("expect_100_continue")),
            params=get("params"),
        )
        if key is not None and not get("expect_100_continue") and not get("allow_body"):
            if len(self._prepared) >= 256:
                self._prepared.clear()
            self._prepared[key] = request
        return request

    async def _open(self, url, method: str, options: dict) -> Response:
        request, ctx, on_headers = self._prepare(url, method, options)
        rec = ctx.recorder
        slots = self._slots
        rec.emit(
            "queued",
            {
                "method": request.method,
                "url": request.url,
                "active": slots.active,
                "waiting": len(slots.waiting),
                "max_clients": slots.limit,
            },
        )
        phase = "queue"
        try:
            if not slots.try_acquire():
                try:
                    await slots.acquire(ctx.arm(ctx.queue_timeout, "queue_timeout"))
                except IOTimeout:
                    raise ctx.timeout_error("queue") from None
            ctx.slot_held = True
            rec.emit("dequeued", {"active": slots.active})
            phase = "request"
            response = await self._follow_redirects(request, ctx)
            if on_headers is not None:
                result = on_headers(response)
                if hasattr(result, "__await__"):
                    await result
            return response
        except BaseException as exc:
            if isinstance(exc, FetchError):
                exc.with_context(request.url, phase)
            ctx.note_failure(exc, getattr(exc, "phase", phase))
            if ctx.final is not None:
                ctx.final.fail(exc, "wait")
            self._release_slot(ctx)
            raise

    def _release_slot(self, ctx: FetchContext) -> None:
        if ctx.slot_held:
            ctx.slot_held = False
            self._slots.release()

    def _on_release(self, exchange: Exchange, reusable: bool) -> None:
        if reusable and not self._closed:
            self._pool.put(exchange.conn)
        elif reusable:
            exchange.conn.close()
        ctx = exchange.ctx
        if exchange is ctx.final:
            self._release_slot(ctx)

    async def _follow_redirects(self, request: Request, ctx: FetchContext) -> Response:
        history: list[Response] = []
        rec = ctx.recorder
        while True:
            exchange, response = await self._send_hop(request, ctx, history)
            status = response.status_code
            location = response.headers.get("location")
            if not ctx.follow_redirects or status not in REDIRECT_STATUSES or location is None:
                ctx.final = exchange
                return response
            if len(history) >= ctx.max_redirects:
                exchange.release()
                raise TooManyRedirects(
                    f"more than max_redirects={ctx.max_redirects} redirects", url=response.url
                )
            try:
                target = response.url.join(location.strip())
            except InvalidRequest as exc:
                exchange.release()
                raise RedirectError(
                    f"cannot follow redirect to {location!r}: {exc.message}", url=response.url
                ) from None
            method = request.method
            keep_body = True
            # RFC 9110 15.4.4: 303 means GET (or HEAD); 15.4.2/15.4.3: 301 and 302
            # turn POST into GET, as every browser does. 307/308 keep both.
            if (status == 303 and method != "HEAD") or (status in (301, 302) and method == "POST"):
                method, keep_body = "GET", False
            if keep_body and not request.replayable:
                exchange.release()
                raise RedirectError(
                    f"{status} redirect needs the body again, but it was a stream", url=response.url
                )
            await self._drain_redirect_body(exchange, response)
            history.append(response)
            rec.new_hop()
            rec.emit(
                "redirect", {"status": status, "from": response.url, "to": target, "method": method}
            )
            request = request.redirected(
                target, method, keep_body, strip_credentials=target.origin != request.url.origin
            )

    async def _drain_redirect_body(self, exchange: Exchange, response: Response) -> None:
        """Read a redirect's body to reuse its connection; never decode it (a bomb
        in a 3xx costs nothing), and drop the connection if it is large."""
        exchange.decoder = None
        limit = self.limits.max_redirect_body
        parts, size = [], 0
        while True:
            piece = await exchange.next_piece()
            if piece is None:
                break
            size += len(piece[0])
            if size > limit:
                exchange.release()
                return
            parts.append(piece[0])
        response._body = b"".join(parts)
        response._consumed = True

    async def _send_hop(self, request: Request, ctx: FetchContext, history: list):
        retried = False
        while True:
            conn, reused = await self._connection_for(request.url, ctx, fresh=retried)
            exchange = Exchange(conn, request, ctx, reused, self._on_release)
            phase = "send"
            try:
                await exchange.send_request()
                phase = "wait"
                response = await exchange.read_head(history)
                return exchange, response
            except StaleConnection as exc:
                conn.abort()
                if not retried and request.idempotent and request.replayable:
                    retried = True
                    ctx.recorder.emit("retry", {"reason": f"stale keep-alive connection: {exc}"})
                    continue
                raise NetworkError(
                    f"server closed the keep-alive connection: {exc}", phase=phase
                ) from None
            except BaseException as exc:
                exchange.fail(exc, phase)
                raise

    async def _connection_for(
        self, url: URL, ctx: FetchContext, fresh: bool
    ) -> tuple[Connection, bool]:
        key = url.origin
        pool = self._pool
        while True:
            if not fresh:
                conn = pool.take(key)
                if conn is not None:
                    ctx.recorder.emit(
                        "connection.reused",
                        {"requests": conn.requests, "local": conn.local, "remote": conn.remote},
                    )
                    return conn, True
            if pool.may_open(key):
                break
            # max_connections_per_host: wait for one of this origin's connections.
            try:
                await pool.wait_for_host(key, ctx.arm(None, "request_timeout"))
            except IOTimeout:
                raise ctx.timeout_error("queue") from None
            fresh = False
        pool.opening(key)
        try:
            return await self._connect(url, key, ctx), False
        except BaseException as exc:
            pool.open_failed(key)
            if not isinstance(exc, Exception):
                # Cancelled: record where (errors carry their own phase).
                last = ctx.recorder.events[-1].name
                ctx.note_failure(exc, CANCELLED_IN.get(last, "connect"))
            raise

    async def _connect(self, url: URL, key: tuple, ctx: FetchContext) -> Connection:
        rec, driver = ctx.recorder, self.driver
        host, port = url.hostname, url.port
        if ip_family(host) is not None:
            addresses = [(ip_family(host), (host, port))]  # an IP literal: nothing to resolve
        else:
            start: dict = {"host": host, "port": port}
            if self._mapping:
                host, port = self._mapping.apply(host, port)
                if (host, port) != (url.hostname, url.port):
                    start["mapped_to"] = (host, port)  # Tornado's OverrideResolver
            rec.emit("resolve.start", start)
            family = ip_family(host)
            if family is not None:
                addresses = [(family, (host, port))]
            else:
                timeout = ctx.arm(ctx.connect_timeout, "connect_timeout")
                try:
                    if self.resolver is not None:
                        addresses = await driver.wait_for(self.resolver(host, port), timeout)
                    else:
                        addresses = await driver.resolve(host, port, timeout)
                except IOTimeout:
                    raise ctx.timeout_error("resolve") from None
                except OSError as exc:
                    raise ConnectError(f"cannot resolve {host!r}: {exc}", phase="resolve") from None
                if not addresses:
                    raise ConnectError(f"no address found for {host!r}", phase="resolve")
            rec.emit("resolve.done", {"host": host, "addresses": [a[1][0] for a in addresses]})

        errors = []
        for family, sockaddr in addresses:
            rec.emit("connect.start", {"address": sockaddr[0], "port": sockaddr[1]})
            try:
                stream = await driver.connect(
                    family,
                    sockaddr,
                    ctx.arm(ctx.connect_timeout, "connect_timeout"),
                    self.local_address,
                )
                break
            except IOTimeout:
                raise ctx.timeout_error("connect") from None
            except OSError as exc:
                reason = os.strerror(exc.errno) if exc.errno else str(exc)
                errors.append(f"{sockaddr[0]} port {sockaddr[1]}: {reason}")
        else:
            raise ConnectError("cannot connect: " + "; ".join(errors), phase="connect")

        conn = Connection(stream, key, self.limits.max_header_bytes)
        rec.emit("connect.done", {"local": conn.local, "remote": conn.remote})
        if url.scheme == "https":
            await self._start_tls(conn, url, ctx)
        conn.pool = self._pool  # from now on its closing is counted by the pool
        return conn

    async def _start_tls(self, conn: Connection, url: URL, ctx: FetchContext) -> None:
        server_hostname = None if ip_family(url.hostname) else url.hostname
        ctx.recorder.emit("tls.start", {"server_hostname": server_hostname or url.hostname})
        try:
            context = self._ssl_context
            if context is None:
                # Loading the CA certificates costs ~100 ms of CPU (more for a large
                # bundle): done in a thread, once per client, so the loop runs on.
                context = await self.driver.run_in_thread(self.ssl_context)
            info = await conn.stream.start_tls(
                context, url.hostname, ctx.arm(ctx.connect_timeout, "connect_timeout")
            )
        except IOTimeout:
            conn.abort()
            raise ctx.timeout_error("tls") from None
        except ssl_errors() as exc:
            conn.abort()
            reason = (
                getattr(exc, "verify_message", None) or getattr(exc, "reason", None) or str(exc)
            )
            raise TLSError(f"TLS handshake failed: {reason}", phase="tls") from None
        except OSError as exc:
            conn.abort()
            raise TLSError(f"TLS handshake failed: {exc}", phase="tls") from None
        except BaseException:
            conn.abort()  # cancelled mid-handshake: the socket goes with it
            raise
        conn.tls = info
        ctx.recorder.emit("tls.done", info)

    def ssl_context(self) -> ssl.SSLContext:
        """The TLS context: system CAs plus certifi's when installed; or as ``verify``."""
        if self._ssl_context is None:
            import ssl  # only https fetches pay for it

            verify = self.verify
            if isinstance(verify, ssl.SSLContext):
                ctx = verify
            else:
                ctx = ssl.create_default_context(cafile=verify if isinstance(verify, str) else None)
                if verify is True:
                    try:
                        import certifi

                        ctx.load_verify_locations(certifi.where())
                    except ImportError:
                        pass
                elif verify is False:
                    ctx.check_hostname = False
                    ctx.verify_mode = ssl.CERT_NONE
                ctx.set_alpn_protocols(["http/1.1"])
                if self.cert is not None:
                    if isinstance(self.cert, tuple):
                        ctx.load_cert_chain(*self.cert)
                    else:
                        ctx.load_cert_chain(self.cert)
            self._ssl_context = ctx
        return self._ssl_context


__all__ = ["AsyncClient", "Limits", "FetchContext"]
