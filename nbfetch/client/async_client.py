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
import sys
import time
from collections.abc import Callable, Mapping
from contextlib import suppress
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._version import __version__
from ..core.auth import DigestAuth
from ..core.cookies import (
    CookieJar,
    checked_cookies,
    cookie_header,
    cookie_names,
    needs_public_suffixes,
    public_suffixes,
)
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
from ..core.redirects import REDIRECT_STATUSES, is_followed, next_request
from ..core.request import Request
from ..core.retry import Retry, attempts_error
from ..core.urls import URL
from ..drivers.auto import current_driver
from ..drivers.base import Driver, IOTimeout
from . import observe
from .connect import LOOPBACK_ONLY, Connector, refuse_unless_loopback
from .context import FetchContext
from .exchange import Exchange, StaleConnection, measure_upload
from .flow import Flow, checked_rate
from .hostnames import HostnameMapping, ip_family
from .pool import Connection, Pool
from .queue import MaxClientsQueue
from .recorder import Recorder
from .response import Response, StreamContext

if TYPE_CHECKING:
    import ssl

#: Under Pyodide (JupyterLite) there are no sockets: every client's hops go
#: through the browser's fetch() (client/browser.py), unless an opener of its
#: own or a pushed one (replay) answers them.
_BROWSER = None
if sys.platform == "emscripten":  # pragma: no cover - Pyodide only (tests/lite)
    from .browser import BrowserOpener

    _BROWSER = BrowserOpener()

#: The phase a connection was opening in, after each of its events.
CANCELLED_IN = {"resolve.start": "resolve", "tunnel.start": "tunnel", "tls.start": "tls"}
#: Every option ``fetch()`` and ``stream()`` accept.
FETCH_OPTIONS = frozenset(
    {
        "headers",
        "body",
        "json",
        "data",
        "files",
        "params",
        "auth",
        "cookies",
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
        "retries",
        "rate_limit",
    }
)


TIMEOUT_NAMES = ("connect_timeout", "read_timeout", "request_timeout", "queue_timeout")


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

    ``verify=``: True (the system CAs plus certifi's), False (no check), a CA file,
    a directory of hashed CA files, an ``ssl.SSLContext``, or ``"truststore"`` (the
    operating system's trust store: ``pip install 'nbfetch[truststore]'``). With
    ``trust_env=True`` and ``verify=True``, ``SSL_CERT_FILE`` / ``SSL_CERT_DIR``
    replace the default CAs; they are read when the client is made. With
    ``trust_env=False`` they are not read, except by OpenSSL itself under
    ``verify="truststore"`` on Linux (truststore uses OpenSSL's default paths there).
    ``cookies``: None (the default) keeps the cookies servers set in a new
    ``CookieJar``, as browsers and the sessions of requests, httpx and aiohttp
    do, so a login that sets a cookie on a redirect works; a ``CookieJar``
    (another client's ``client.cookies``) shares that one; ``False`` keeps none.
    A mapping of names to values starts a new jar and is sent with every fetch
    as the fetch's own ``cookies=`` are: a cookie without a domain is scoped to
    each fetch's origin, never sent to another after a redirect. The jar is
    ``client.cookies`` (None with ``cookies=False``).

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
        verify: bool | str | os.PathLike | ssl.SSLContext = True,
        cert: str | tuple[str, str] | None = None,
        trust_env: bool = True,
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
        retries: int | Retry | None = None,
        cookies: CookieJar | Mapping[str, str] | bool | None = None,
        replay: Any = None,
    ):
        if _BROWSER is not None:  # pragma: no cover - Pyodide only (tests/lite)
            from .browser import check_client

            check_client(
                {
                    "verify": verify,
                    "cert": cert,
                    "hostname_mapping": hostname_mapping,
                    "local_address": local_address,
                    "resolver": resolver,
                    "proxy": proxy,
                }
            )
        self.driver = driver or current_driver()
        # No retries unless asked (as httpx and aiohttp): a notebook user sees
        # the 503 at once, and a retry is never a surprise on a server's logs.
        self.retries = Retry.of(retries)
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
        self.trust_env = trust_env
        if local_address is not None and ip_family(local_address) is None:
            raise InvalidRequest(f"local_address must be an IP address, not {local_address!r}")
        self._queue = MaxClientsQueue(self.driver, max_clients)
        # As many idle connections per host as fetches can run at once: with a
        # lower cap, a burst of max_clients fetches to one host closes the
        # surplus as it ends and the next burst opens them again (a fixed 32
        # made 10,000 fetches at max_clients=64 open 1,596 connections).
        self._pool = Pool(
            self.driver, keepalive_expiry, max_connections_per_host, max_idle_per_host=max_clients
        )
        self._connector = Connector(
            self.driver,
            self._pool,
            mapping=HostnameMapping(dict(hostname_mapping or {})),
            resolver=resolver,
            local_address=local_address,
            verify=verify,
            cert=cert,
            trust_env=trust_env,
            max_header_bytes=self.limits.max_header_bytes,
        )
        self._prepared: dict[tuple, Request] = {}
        #: What answers this client's fetches instead of the network (replay,
        #: the browser's fetch): see client/observe.py. None: the process's
        #: innermost ``observe.push_opener`` one, if any.
        self.opener: observe.Opener | None = None
        if replay is not None:
            # replay=: a recording (a HAR path, a loaded HAR, a nbfetch.Replay)
            # answers this client's fetches (client/replay.py).
            from .replay import Replay

            self.opener = replay if isinstance(replay, Replay) else Replay(replay)
        self._valid_timeouts: tuple | None = None  # the last timeouts found valid
        self._closed = False
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
        self.default_cookies: dict[str, str] = {}
        if isinstance(cookies, CookieJar):
            self.cookies: CookieJar | None = cookies
        elif cookies is False:
            self.cookies = None
        elif cookies is None or cookies is True:
            self.cookies = CookieJar(clock=time.time)
        else:
            try:
                self.default_cookies = checked_cookies(cookies)
            except ValueError as exc:
                raise InvalidRequest(str(exc)) from None
            self.cookies = CookieJar(clock=time.time)

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

    def inspect(self, events: int = 200):
        """The pool and the ``max_clients`` queue now: per origin (and proxy)
        the idle and active connections with their ages and request counts,
        who waits for a connection and for how long, and the recent pool
        events ("opened", "reused", "went idle", "expired", "dropped as
        stale", "closed"). A plain data snapshot (``.as_dict()``); in a
        Jupyter kernel it displays as a live view that follows the pool until
        it is closed or the client is. Events are recorded from the first
        ``inspect()`` on (the last ``events`` of them): a client nobody
        inspects builds none."""
        from .inspect import inspect_client  # the inspector loads on first use

        return inspect_client(self, events)

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
        target = Path(path)
        if not target.name or target.is_dir():
            raise InvalidRequest(f"cannot write to {str(target)!r}: not a file name", url=url)
        # Beside the target (os.replace is atomic within one file system); the
        # name is cut so that it stays within NAME_MAX (255 bytes).
        import secrets  # imported on first use: it costs ~4 ms at import time

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
        ``json``, ``data`` (form dict), ``files`` (multipart/form-data upload with
        ``data`` as its fields: name -> path, binary file object, bytes or
        ``(filename, content[, content_type[, headers]])``, or a list of pairs;
        files are streamed from disk, ``request.body_progress`` events say how
        far), ``auth=(user, password)``, ``allow_body``,
        ``cookies`` (a mapping of names to values sent with this fetch only, to
        its origin and same-origin redirects; over the jar's of the same name;
        ``False``: this fetch neither sends a cookie nor stores one),
        ``connect_timeout``, ``read_timeout``, ``request_timeout``,
        ``queue_timeout``, ``follow_redirects``, ``max_redirects``, ``decompress``,
        ``expect_100_continue`` (send the body after ``100 Continue``),
        ``proxy`` (a proxy URL for this fetch, or None to go direct),
        ``retries`` (an int or a ``nbfetch.Retry``: statuses such as 503 and
        connect errors retried with backoff, each attempt a ``retry`` event),
        ``auth=nbfetch.DigestAuth(user, password)`` (answers a Digest 401 once),
        ``rate_limit`` (bytes per second: the response is read at most that
        fast, at the socket; ``response.rate_limit`` changes it, and
        ``response.pause()`` / ``resume()`` stop and restart the reading:
        ``client/flow.py``),
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
        if options and not FETCH_OPTIONS.issuperset(options):
            unknown = options.keys() - FETCH_OPTIONS
            raise InvalidRequest(f"unknown option(s): {', '.join(sorted(unknown))}", url=url)
        get = options.get
        decompress = get("decompress", self.decompress)
        connect_timeout = get("connect_timeout", self.connect_timeout)
        read_timeout = get("read_timeout", self.read_timeout)
        request_timeout = get("request_timeout", self.request_timeout)
        queue_timeout = get("queue_timeout", self.queue_timeout)
        timeouts = (connect_timeout, read_timeout, request_timeout, queue_timeout)
        if timeouts != self._valid_timeouts:  # checked when they change, not at every fetch
            for name, value in zip(TIMEOUT_NAMES, timeouts, strict=True):
                if value is not None and (not isinstance(value, (int, float)) or value <= 0):
                    raise InvalidRequest(
                        f"{name} must be a positive number of seconds or None", url=url
                    )
            self._valid_timeouts = timeouts
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
        try:
            ctx.retry = Retry.of(get("retries", self.retries))
        except InvalidRequest as exc:
            raise exc.with_context(request.url) from None
        auth = get("auth")
        if auth is not None and isinstance(auth, DigestAuth):
            ctx.digest = auth
        rate_limit = get("rate_limit")
        if rate_limit is not None:
            try:
                ctx.flow = Flow(ctx, checked_rate(rate_limit))
            except InvalidRequest as exc:
                raise exc.with_context(request.url) from None
        ctx.cookies = self.default_cookies
        cookies = get("cookies")
        if cookies is False:
            # One fetch outside the session (a .http file's "# @no-cookie-jar"):
            # no cookie is sent (the jar's, the client's seed) and none is stored.
            ctx.use_jar, ctx.cookies = False, {}
        elif cookies is not None:
            try:
                ctx.cookies = {**self.default_cookies, **checked_cookies(cookies)}
            except ValueError as exc:
                raise InvalidRequest(str(exc), url=request.url) from None
        if request_timeout is not None:
            ctx.deadline = self.driver.monotonic() + request_timeout
        openers = observe._openers
        ctx.opener = (
            self.opener if self.opener is not None else openers[-1] if openers else _BROWSER
        )
        return request, ctx, get("on_headers")

    def _request_for(self, url, method: str, options: dict, decompress: bool) -> Request:
        """The validated Request. Requests without a body are cached per URL, method
        and headers: a loop fetching the same URL builds and validates it once."""
        get = options.get
        body, json, data, files = get("body"), get("json"), get("data"), get("files")
        key = None
        if body is None and json is None and data is None and files is None:
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
        auth = get("auth")
        if isinstance(auth, DigestAuth):
            # An explicit auth= wins over the URL's userinfo (as in requests): a
            # Digest fetch never sends the password as Basic credentials.
            url, auth = URL.parse(url).copy_with(username=None, password=None), None
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
            files=files,
            auth=auth,
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
        if observe._observers:
            observe.started(request, ctx)
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
                    await queue.acquire(
                        ctx.step_timeout(ctx.queue_timeout, "queue_timeout"), request
                    )
                except IOTimeout:
                    raise ctx.timeout_error("queue") from None
            ctx.slot_held = True
            rec.emit("dequeued", {"active": queue.active})
            phase = "request"
            # The redirect loop, inline (one coroutine layer fewer per fetch).
            hop, history = request, []
            origin = request.url.origin
            while True:
                exchange, response = await self._attempts(hop, ctx, history, origin)
                status = response.status_code
                # Location is looked up only where it can matter (a 3xx to follow).
                location = (
                    response.headers.get("location")
                    if status in REDIRECT_STATUSES and ctx.follow_redirects
                    else None
                )
                if not is_followed(status, location, ctx.follow_redirects):
                    ctx.final = exchange
                    break
                if len(history) >= ctx.max_redirects:
                    exchange.release()
                    raise TooManyRedirects(
                        f"more than max_redirects={ctx.max_redirects} redirects", url=response.url
                    )
                try:
                    hop = next_request(hop, response.url, status, location)
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
                        "to": hop.url,
                        "method": hop.method,
                    },
                )
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
        if reusable and not self._closed and not exchange.conn.synthetic:
            self._pool.put(exchange.conn)
        elif reusable:
            exchange.conn.close("client closed")
        ctx = exchange.ctx
        if exchange is ctx.final:
            self._release_slot(ctx)

    async def _attempts(self, request: Request, ctx: FetchContext, history: list, origin):
        """One hop, tried again as ``ctx.retry`` says, and sent once more with
        the answer to a Digest challenge. Every attempt after the first starts
        a hop of the recorder with a ``retry`` event (attempt, reason, delay).
        Each attempt sends the jar's cookies of the moment and stores what its
        response set (a 503 or a 401 may set a cookie the next attempt needs)."""
        policy, digest = ctx.retry, ctx.digest
        reasons: list[str] = []  # why each earlier attempt was not the last
        retried = 0  # the policy's retries (a Digest answer is not one)
        challenge, answers = None, 0  # the Digest challenge answered, and how often
        while True:
            try:
                # ``request`` stays without the jar's cookies (each hop gets those of
                # its URL) and without a Digest answer (each attempt gets its own).
                sent = request
                if challenge is not None:
                    answers += 1
                    sent = self._digest_answer(request, ctx, challenge, answers)
                sent = self._with_cookies(sent, ctx, origin)
                exchange, response = await self._send_hop(sent, ctx, history)
            except FetchError as exc:
                delay = policy and policy.error_delay(exc, retries_done=retried)
                if delay is None or not self._fits(ctx, delay):
                    note = None
                    if delay is not None:
                        note = (
                            f"no attempt {len(reasons) + 2}: its wait of {delay:.3g} s"
                            f" would end after request_timeout={ctx.request_timeout}s"
                        )
                    if reasons or note:
                        attempts_error(exc, reasons, note)
                    raise
                retried += 1
                reason = f"{type(exc).__name__}: {exc.message}"
            else:
                # Until the response is handed on, this exchange holds a pooled
                # connection: whatever goes wrong (a bug included) must close it.
                try:
                    if self.cookies is not None and ctx.use_jar:  # else nothing to store
                        await self._store_cookies(response, ctx)
                    status = response.status_code
                    delay = None
                    if (
                        digest is not None
                        and status == 401
                        and request.replayable
                        # Credentials given for the fetch's origin, not where a redirect went.
                        and request.url.origin == ctx.url.origin
                    ):
                        challenge = digest.choose(response.headers.get_list("www-authenticate"))
                        if challenge is not None:
                            digest, delay = None, 0.0
                            reason = "401: answering the Digest challenge"
                    if delay is None and policy is not None:
                        delay = policy.status_delay(
                            request.method,
                            status,
                            response.headers.get("retry-after"),
                            now=time.time(),
                            retries_done=retried,
                            replayable=request.replayable,
                        )
                        retried += delay is not None
                        reason = f"status {status}"
                    if delay is None or not self._fits(ctx, delay):
                        return exchange, response
                    # Not the fetch's last hop; its connection goes back to the pool
                    # (or is closed) before the wait, not held through it.
                    exchange.redirected = True
                    await response.read_redirect_body(self.limits.max_redirect_body)
                except BaseException as exc:
                    exchange.fail(exc, "wait")  # a no-op once released
                    raise
            reasons.append(reason)
            ctx.recorder.new_hop()
            ctx.recorder.emit(
                "retry", {"attempt": len(reasons) + 1, "reason": reason, "delay": delay}
            )
            if delay:
                try:
                    await self.driver.sleep(delay)
                except BaseException as exc:  # cancelled while waiting: say so
                    ctx.note_failure(exc, "retry")
                    raise

    def _fits(self, ctx: FetchContext, delay: float) -> bool:
        """Whether a wait of ``delay`` leaves time for an attempt before the
        request_timeout: never sleep into the deadline only to fail there."""
        return ctx.deadline is None or self.driver.monotonic() + delay < ctx.deadline

    def _digest_answer(
        self, request: Request, ctx: FetchContext, challenge: tuple, nc: int
    ) -> Request:
        """``request`` with the ``nc``-th answer to a Digest ``challenge``: a
        fresh cnonce each time (RFC 7616 section 3.4), so a retried attempt
        is no replay a server would refuse."""
        from secrets import token_hex  # on first use: it costs ~4 ms at import time

        value = ctx.digest.answer(
            challenge, request.method, request.url.target, cnonce=token_hex(16), nc=nc
        )
        return request.with_header(b"Authorization", value.encode())

    def _with_cookies(self, request: Request, ctx: FetchContext, origin: tuple) -> Request:
        """``request`` with the ``Cookie`` header of its hop: the fetch's own
        cookies (on the first origin only, as a ``Cookie`` header of
        ``headers=`` is), then the jar's for this URL. A ``Cookie`` header
        given by the caller is kept, and its names win; one header in all
        (RFC 6265 section 5.4: at most one Cookie field)."""
        jar = self.cookies if ctx.use_jar else None
        own = ctx.cookies if request.url.origin == origin else None
        if not own and (jar is None or jar.empty):
            return request
        given = request.headers.get_list("cookie")
        value, names, dropped = cookie_header(
            jar.matching(request.url) if jar is not None else (),
            own,
            skip=[n for v in given for n in cookie_names(v)],
        )
        if not names:
            return request
        # A count of the cookies left out (MAX_COOKIE_HEADER), never their values.
        ctx.recorder.emit("cookies.sent", {"names": names, "dropped": dropped})
        return request.with_header("Cookie", "; ".join([*given, value]))

    async def _store_cookies(self, response: Response, ctx: FetchContext) -> None:
        """Store what the hop's ``Set-Cookie`` fields set (RFC 6265 section 5.3)."""
        keep = self.cookies is not None and ctx.use_jar
        values = response.headers.get_list("set-cookie") if keep else ()
        if not values:
            return
        if needs_public_suffixes(response.url):
            # The list takes ~0.1 s to load: off the loop, once per process.
            await self.driver.run_sync(public_suffixes, None)
        stored = self.cookies.store(response.url, values)
        ctx.recorder.emit(
            "cookies.stored",
            {
                # Names and attributes, never values; the last 50 (a flood is counted).
                "cookies": [c.describe() for c in stored[-50:]],
                "stored": len(stored),
                "ignored": len(values) - len(stored),
            },
        )

    async def _send_hop(self, request: Request, ctx: FetchContext, history: list):
        retried = False
        # Chosen per hop: a redirect may lead to a NO_PROXY host or another scheme.
        proxy = ctx.proxies(request.url) if ctx.proxies is not None else None
        forwarded = proxy is not None and request.url.scheme == "http"
        while True:
            # files= only: measured and framed before connecting, and before the
            # proxy's absolute form is built from the framed headers.
            if request.body is not None:  # (a bodyless hop skips the coroutine)
                await measure_upload(request, ctx)
            sent = absolute_form(request, proxy) if forwarded else request
            stream = None if ctx.opener is None else await ctx.opener.open(request, ctx)
            if stream is not None:
                # Answered by Python code (client/observe.py), as the origin
                # would answer: the request in origin form, never a proxy's.
                sent, reused = request, False
                conn = Connection(stream, request.url.origin, self.limits.max_header_bytes)
                conn.synthetic = True
            else:
                conn, reused = await self._connection_for(request, ctx, retried, proxy)
            conn.request = sent  # what client.inspect() says it serves
            exchange = Exchange(conn, sent, ctx, reused, self._on_release)
            phase = "send"
            try:
                await exchange.send_request()
                phase = "wait"
                response = await exchange.read_head(history)
                final_url = getattr(stream, "final_url", None)
                if final_url is not None:
                    # The browser followed redirects itself (client/browser.py):
                    # only where it ended is known.
                    response.url = final_url
                if forwarded and response.status_code == 407:
                    what = f"{request.method} {redact_url(request.url)}"
                    raise proxy_refused(proxy, 407, response.reason, what, "wait")
                return exchange, response
            except StaleConnection as exc:
                conn.abort("dropped as stale")
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
        self, request: Request, ctx: FetchContext, fresh: bool, proxy: Proxy | None = None
    ) -> tuple[Connection, bool]:
        url = request.url
        # Through a proxy, (origin, proxy): a tunnel is to one origin, opened
        # with one proxy user's credentials.
        key = url.origin if proxy is None else (*url.origin, proxy)
        pool = self._pool
        while True:
            if not fresh:
                conn = pool.take(key)
                if conn is not None:
                    if LOOPBACK_ONLY.get():
                        refuse_unless_loopback(conn, url)
                    ctx.recorder.emit(
                        "connection.reused",
                        {"requests": conn.requests, "local": conn.local, "remote": conn.remote},
                    )
                    return conn, True
            if pool.may_open(key):
                break
            # max_connections_per_host: wait for one of this origin's connections.
            try:
                await pool.wait_for_host(key, ctx.step_timeout(None, "request_timeout"), request)
            except IOTimeout:
                raise ctx.timeout_error("queue") from None
            fresh = False
        entry = pool.opening(key, request)
        try:
            conn = await self._connector.connect(url, key, ctx, proxy)
        except BaseException as exc:
            pool.open_failed(key, entry)
            if not isinstance(exc, Exception):
                # Cancelled: record where (errors carry their own phase).
                last = ctx.recorder.events[-1].name
                ctx.note_failure(exc, CANCELLED_IN.get(last, "connect"))
            raise
        pool.connected(conn, entry)
        return conn, False

    def ssl_context(self) -> ssl.SSLContext:
        """The TLS context: system CAs plus certifi's when installed (or
        SSL_CERT_FILE/SSL_CERT_DIR with ``trust_env``); or as ``verify``.

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
