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
from contextlib import suppress
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._version import __version__
from ..core.decoders import AVAILABLE_ENCODINGS
from ..core.errors import (
    FetchError,
    InvalidRequest,
    NetworkError,
    RedirectError,
    TooManyRedirects,
)
from ..core.events import Subscriber
from ..core.headers import Headers, HeaderSource
from ..core.limits import Limits
from ..core.proxies import EnvProxies, Proxy, absolute_form, as_proxy, proxy_refused
from ..core.redact import redact_url, request_secrets
from ..core.redirects import is_followed, next_request
from ..core.request import Request
from ..core.urls import URL
from ..drivers.auto import current_driver
from ..drivers.base import Driver, IOTimeout
from .connect import Connector
from .context import FetchContext
from .exchange import Exchange, StaleConnection
from .hostnames import HostnameMapping, ip_family
from .pool import Connection, Pool
from .queue import MaxClientsQueue
from .recorder import Recorder
from .response import Response, StreamContext

if TYPE_CHECKING:
    import ssl

#: The phase a connection was opening in, after each of its events.
CANCELLED_IN = {"resolve.start": "resolve", "tunnel.start": "tunnel", "tls.start": "tls"}
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
        "proxy",
    }
)


def _headers_key(headers) -> tuple:
    if isinstance(headers, Headers):
        return tuple(headers._items)
    items = headers.items() if isinstance(headers, Mapping) else headers
    return tuple((name, value) for name, value in items)


class AsyncClient:
    """An HTTP/1.1 client with a keep-alive pool and a ``max_clients`` queue.

    Defaults (per fetch, overridable in ``fetch()``): ``connect_timeout=20`` s
    (Tornado's; one budget for DNS, every address tried and the TLS handshake, as
    curl's ``--connect-timeout``), ``read_timeout=60`` s of silence, ``request_timeout=300`` s for
    the whole fetch including the queue (aiohttp's total); ``queue_timeout=None``
    (the request_timeout bounds it); ``max_redirects=5``.

    Proxies: ``proxy="http://user:pw@host:port"`` (or ``https://``) for every
    fetch; else, with ``trust_env=True`` (the default, as requests and httpx),
    ``HTTP_PROXY`` / ``HTTPS_PROXY`` / ``ALL_PROXY`` and ``NO_PROXY`` as they
    were when the client was made, loopback targets always direct
    (``core/proxies.py`` says why). A fetch's ``proxy=`` overrides both
    (``proxy=None``: direct).

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
        proxy: str | URL | Proxy | None = None,
        trust_env: bool = True,
    ):
        self.driver = driver or current_driver()
        self.limits = limits or Limits()
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.request_timeout = request_timeout
        self.queue_timeout = queue_timeout
        self.follow_redirects = follow_redirects
        self.max_redirects = max_redirects
        self.decompress = decompress
        self.trace = trace
        self.continue_timeout = continue_timeout
        if local_address is not None and ip_family(local_address) is None:
            raise InvalidRequest(f"local_address must be an IP address, not {local_address!r}")
        self._queue = MaxClientsQueue(self.driver, max_clients)
        self._pool = Pool(self.driver, keepalive_expiry, max_connections_per_host)
        self._connector = Connector(
            self.driver,
            self._pool,
            mapping=HostnameMapping(dict(hostname_mapping or {})),
            resolver=resolver,
            local_address=local_address,
            verify=verify,
            cert=cert,
            max_header_bytes=self.limits.max_header_bytes,
        )
        self._prepared: dict[tuple, Request] = {}
        self._closed = False
        self.trust_env = trust_env
        self.proxy = as_proxy(proxy)
        # Read once, as httpx does: a fetch never re-reads the environment.
        env = EnvProxies.from_environ(os.environ) if trust_env and self.proxy is None else None
        self._proxies: Callable[[URL], Proxy | None] | None = None
        if self.proxy is not None:
            self._proxies = partial(_fixed, self.proxy)
        elif env:
            self._proxies = partial(_from_env, env, self._connector.mapping)
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

    # The connection settings live with the connector that uses them.
    @property
    def verify(self):
        return self._connector.verify

    @property
    def cert(self):
        return self._connector.cert

    @property
    def resolver(self):
        return self._connector.resolver

    @property
    def local_address(self) -> str | None:
        return self._connector.local_address

    @property
    def closed(self) -> bool:
        """Whether ``aclose()`` (or ``close()``) was called."""
        return self._closed

    @property
    def max_clients(self) -> int:
        return self._queue.limit

    # -- public API ----------------------------------------------------------------
    async def fetch(self, url: str | URL, method: str = "GET", **options: Any) -> Response:
        """Fetch ``url`` and read the whole body. See ``stream()`` for the options."""
        response = await self._open(url, method, options)
        try:
            await response.aread()
        finally:
            await response.aclose()
        return response

    async def download(
        self, url: str | URL, path: str | os.PathLike, method: str = "GET", **options: Any
    ) -> Response:
        """Stream the body (decoded) to the file ``path``; returns the Response
        (its ``path`` set, its body not kept in memory).

        Memory stays bounded whatever the size: ``max_body_size`` does not apply
        (``max_decoded_size`` still bounds a compressed body). The bytes go to a
        temporary file beside ``path``, written off the event loop, and renamed to
        ``path`` only when the whole body arrived; on an error, a cancellation or
        an HTTP error status (``HTTPStatusError``, nothing written) the temporary
        file is removed and ``path`` is left as it was. Takes ``stream()``'s options.
        """
        import secrets

        target = Path(path)
        if not target.name or target.is_dir():
            raise InvalidRequest(f"cannot write to {str(target)!r}: not a file name", url=url)
        # Beside the target (os.replace is atomic within one file system); the
        # name is cut so that it stays within NAME_MAX (255 bytes).
        part = target.with_name(f".{target.name[:200]}.{secrets.token_hex(4)}.part")
        try:  # a path that cannot be written fails here, before anything is sent
            file = open(part, "xb")  # noqa: SIM115 - closed below, on every path
        except OSError as exc:
            raise InvalidRequest(
                f"cannot write to {str(target)!r}: {exc.strerror}", url=url
            ) from None
        run = self.driver.run_sync
        try:
            async with self.stream(method, url, **options) as response:
                response.raise_for_status()
                async for data in response.aiter_bytes():
                    try:
                        await run(partial(file.write, data), None)
                    except OSError as exc:  # a full disk, a quota
                        raise FetchError(
                            f"cannot write to {str(target)!r}: {exc.strerror or exc}",
                            url=url,
                            phase="download",
                        ) from None
            try:
                await run(file.close, None)
                os.replace(part, target)
            except OSError as exc:
                raise FetchError(
                    f"cannot write to {str(target)!r}: {exc.strerror or exc}",
                    url=url,
                    phase="download",
                ) from None
        except BaseException:
            # close() waits for a write still running in its thread; it may
            # fail again (the disk is still full): the file goes all the same.
            with suppress(OSError):
                file.close()
            with suppress(OSError):
                os.unlink(part)
            raise
        response.path = target
        return response

    def stream(self, method: str, url: str | URL, **options: Any) -> StreamContext:
        """Send the request and read the head; the body is read as you iterate.

        Options: ``headers``, ``params`` (added to the query), ``body`` (bytes,
        str or async iterable of bytes),
        ``json``, ``data`` (form dict), ``auth=(user, password)``, ``allow_body``,
        ``connect_timeout``, ``read_timeout``, ``request_timeout``,
        ``queue_timeout``, ``follow_redirects``, ``max_redirects``, ``decompress``,
        ``expect_100_continue`` (send the body after ``100 Continue``),
        ``proxy`` (a proxy URL for this fetch, or None to go direct),
        ``on_headers(response)``, ``on_chunk(chunk)`` (a coroutine applies
        backpressure) and ``trace(event)``.
        """
        return StreamContext(lambda: self._open(url, method, options))

    # -- the fetch -------------------------------------------------------------------
    def _prepare(self, url, method: str, options: dict) -> tuple[Request, FetchContext, Any]:
        try:
            return self._prepare_checked(url, method, options)
        except InvalidRequest as exc:
            # Refused before anything was sent, before a recorder existed: the
            # trace subscribers still get the fetch's last event (a live view
            # waiting for one would wait for ever).
            trace = options.get("trace")
            subscribers = tuple(s for s in (self.trace, trace) if callable(s))
            if subscribers:
                Recorder(subscribers, 1).emit(
                    "error", {"phase": exc.phase, "type": type(exc).__name__, "message": str(exc)}
                )
            raise

    def _prepare_checked(self, url, method, options) -> tuple[Request, FetchContext, Any]:
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
        ctx.proxies = self._proxies
        if "proxy" in options:
            ctx.proxies = (
                None if options["proxy"] is None else partial(_fixed, as_proxy(options["proxy"]))
            )
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
                    url,  # a URL compares its credentials too (its str hides them)
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
        queue = self._queue
        rec.emit(
            "queued",
            {
                "method": request.method,
                "url": request.url,
                "active": queue.active,
                "waiting": len(queue.waiting),
                "max_clients": queue.limit,
            },
        )
        phase = "queue"
        try:
            if not queue.try_acquire():
                try:
                    await queue.acquire(ctx.step_timeout(ctx.queue_timeout, "queue_timeout"))
                except IOTimeout:
                    raise ctx.timeout_error("queue") from None
            ctx.slot_held = True
            rec.emit("dequeued", {"active": queue.active})
            phase = "request"
            response = await self._follow_redirects(request, ctx)
            if on_headers is not None:
                result = on_headers(response)
                if hasattr(result, "__await__"):
                    await result
            return response
        except BaseException as exc:
            if isinstance(exc, FetchError):
                exc.with_context(request.url, phase).scrub(request_secrets(request))
            ctx.note_failure(exc, getattr(exc, "phase", phase))
            if ctx.final is not None:
                ctx.final.fail(exc, "wait")
            self._release_slot(ctx)
            raise

    def _release_slot(self, ctx: FetchContext) -> None:
        if ctx.slot_held:
            ctx.slot_held = False
            self._queue.release()

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
            if not is_followed(status, location, ctx.follow_redirects):
                ctx.final = exchange
                return response
            if len(history) >= ctx.max_redirects:
                exchange.release()
                raise TooManyRedirects(
                    f"more than max_redirects={ctx.max_redirects} redirects", url=response.url
                )
            try:
                request = next_request(request, response.url, status, location)
            except RedirectError:
                exchange.release()
                raise
            exchange.redirected = True
            await response.read_redirect_body(self.limits.max_redirect_body)
            history.append(response)
            rec.new_hop()
            rec.emit(
                "redirect",
                {
                    "status": status,
                    "from": response.url,
                    "to": request.url,
                    "method": request.method,
                },
            )

    async def _send_hop(self, request: Request, ctx: FetchContext, history: list):
        retried = False
        # Chosen per hop: a redirect may lead to a NO_PROXY host or another scheme.
        proxy = ctx.proxies(request.url) if ctx.proxies is not None else None
        forwarded = proxy is not None and request.url.scheme == "http"
        sent = absolute_form(request, proxy) if forwarded else request
        while True:
            conn, reused = await self._connection_for(request.url, ctx, retried, proxy)
            exchange = Exchange(conn, sent, ctx, reused, self._on_release)
            phase = "send"
            try:
                await exchange.send_request()
                phase = "wait"
                response = await exchange.read_head(history)
                if forwarded and response.status_code == 407:
                    what = f"{request.method} {redact_url(request.url)}"
                    raise proxy_refused(proxy, 407, response.reason, what, "wait")
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
        self, url: URL, ctx: FetchContext, fresh: bool, proxy: Proxy | None = None
    ) -> tuple[Connection, bool]:
        # Through a proxy, (origin, proxy): a tunnel is to one origin, opened
        # with one proxy user's credentials.
        key = url.origin if proxy is None else (*url.origin, proxy)
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
                await pool.wait_for_host(key, ctx.step_timeout(None, "request_timeout"))
            except IOTimeout:
                raise ctx.timeout_error("queue") from None
            fresh = False
        pool.opening(key)
        try:
            return await self._connector.connect(url, key, ctx, proxy), False
        except BaseException as exc:
            pool.open_failed(key)
            if not isinstance(exc, Exception):
                # Cancelled: record where (errors carry their own phase).
                last = ctx.recorder.events[-1].name
                ctx.note_failure(exc, CANCELLED_IN.get(last, "connect"))
            raise

    def ssl_context(self) -> ssl.SSLContext:
        """The TLS context: system CAs plus certifi's when installed; or as ``verify``.

        Built on first use (fetches build it in a worker thread). With the defaults
        (``verify=True``, no ``cert``) it is one context per process, shared by
        every such client: do not change it; pass ``verify=`` your own instead."""
        return self._connector.ssl_context()


def _fixed(proxy: Proxy | None, url: URL) -> Proxy | None:
    """``proxy=``: the same proxy for every hop."""
    return proxy


def _from_env(env: EnvProxies, mapping: HostnameMapping, url: URL) -> Proxy | None:
    """The environment's proxy for ``url``; none for a name ``hostname_mapping``
    maps: it says where to connect, which a proxy (resolving names itself)
    would not honour."""
    if mapping and mapping.apply(url.hostname, url.port) != (url.hostname, url.port):
        return None
    return env.proxy_for(url)


__all__ = ["AsyncClient", "Limits"]
