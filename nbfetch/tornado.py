"""Tornado's ``AsyncHTTPClient`` on top of nbfetch: one line to switch.

    from tornado.httpclient import AsyncHTTPClient
    AsyncHTTPClient.configure("nbfetch.tornado.AsyncHTTPClient")

Tornado code keeps working unchanged (``HTTPRequest`` options,
``streaming_callback``, ``header_callback``, ``body_producer``, ``raise_error``,
``HTTPResponse`` fields), and gains keep-alive connections and a ``time_info``
filled from nbfetch's timing, which Tornado's simple client leaves empty.
``proxy_host`` / ``proxy_port`` / ``proxy_username`` / ``proxy_password``
go through an HTTP proxy (Basic auth; https URLs through a CONNECT tunnel).
Errors follow Tornado's conventions: ``HTTPTimeoutError`` and
``HTTPStreamClosedError`` (code 599), ``ValueError`` for invalid requests,
``ssl.SSLError`` for TLS failures. ``pip install nbfetch[tornado]``.
"""

from __future__ import annotations

import asyncio
import io
import socket
import ssl
import time
from collections import deque
from typing import Any

from tornado import httputil
from tornado.httpclient import AsyncHTTPClient as _TornadoAsyncHTTPClient
from tornado.httpclient import HTTPRequest, HTTPResponse
from tornado.log import gen_log
from tornado.simple_httpclient import HTTPStreamClosedError, HTTPTimeoutError

from .client import AsyncClient
from .core.errors import (
    DecodeError,
    FetchTimeout,
    InvalidRequest,
    NetworkError,
    ProtocolError,
    TLSError,
    TooLargeError,
)
from .core.limits import Limits
from .core.redact import redact_url

_CONNECT_PHASES = ("resolve", "connect", "tunnel", "tls")


class AsyncHTTPClient(_TornadoAsyncHTTPClient):
    """``tornado.httpclient.AsyncHTTPClient`` implemented with nbfetch.

    Constructor options as ``SimpleAsyncHTTPClient``: ``max_clients``,
    ``hostname_mapping``, ``max_buffer_size``, ``resolver``, ``defaults``,
    ``max_header_size``, ``max_body_size``.
    """

    def initialize(  # type: ignore[override]
        self,
        defaults: dict[str, Any] | None = None,
        max_clients: int = 10,
        hostname_mapping: dict | None = None,
        max_buffer_size: int = 104857600,
        resolver: Any = None,
        max_header_size: int | None = None,
        max_body_size: int | None = None,
    ) -> None:
        super().initialize(defaults=defaults)
        self.max_clients = max_clients
        self.hostname_mapping = hostname_mapping
        self.max_buffer_size = max_buffer_size
        self.tornado_resolver = resolver
        self.max_header_size = max_header_size
        self.max_body_size = max_body_size
        self._clients: dict[tuple, AsyncClient] = {}
        self._tasks: set[asyncio.Task] = set()

    def close(self) -> None:
        for client in self._clients.values():
            client.close()
        self._clients.clear()
        for task in list(self._tasks):
            task.cancel()
        super().close()

    # -- one nbfetch client per TLS / network configuration --------------------------------------
    def _client_for(self, request: HTTPRequest) -> AsyncClient:
        key = (
            id(request.ssl_options) if request.ssl_options is not None else None,
            request.validate_cert,
            request.ca_certs,
            request.client_cert,
            request.client_key,
            request.allow_ipv6,
            request.network_interface,
        )
        client = self._clients.get(key)
        if client is None:
            limit = self.max_body_size or self.max_buffer_size
            client = AsyncClient(
                max_clients=self.max_clients,
                hostname_mapping=self.hostname_mapping,
                verify=self._verify(request),
                cert=(request.client_cert, request.client_key) if request.client_cert else None,
                resolver=self._resolver(request),
                local_address=self._local_address(request.network_interface),
                limits=Limits(
                    max_header_bytes=self.max_header_size or 64 * 1024,
                    # measured on decompressed bytes for buffered fetches; a
                    # streaming_callback gets bounded pieces and no total cap
                    max_body_size=min(limit, self.max_buffer_size),
                    max_decoded_size=None,
                ),
                # Tornado has connect and request timeouts only.
                read_timeout=None,
                # Tornado's clients keep no cookies: a server fetching for many
                # users must not send one user's cookies on another's behalf.
                cookies=False,
            )
            self._clients[key] = client
        return client

    @staticmethod
    def _verify(request: HTTPRequest):
        options = request.ssl_options
        if isinstance(options, ssl.SSLContext):
            return options
        if isinstance(options, dict):
            from tornado.netutil import ssl_options_to_context

            return ssl_options_to_context(options, server_side=False)
        if not request.validate_cert:
            return False
        return request.ca_certs or True

    def _resolver(self, request: HTTPRequest):
        tornado_resolver = self.tornado_resolver
        if tornado_resolver is None and request.allow_ipv6 is not False:
            return None
        family = socket.AF_UNSPEC if request.allow_ipv6 is not False else socket.AF_INET

        async def resolve(host: str, port: int):
            if tornado_resolver is not None:
                found = await tornado_resolver.resolve(host, port, family)
            else:
                infos = await asyncio.get_running_loop().getaddrinfo(
                    host, port, family=family, type=socket.SOCK_STREAM
                )
                found = [(f, addr) for f, _, _, _, addr in infos]
            return [(f, addr) for f, addr in found if family == socket.AF_UNSPEC or f == family]

        return resolve

    @staticmethod
    def _local_address(interface: str | None) -> str | None:
        if interface is None:
            return None
        from .client.hostnames import ip_family

        if ip_family(interface) is None:
            raise ValueError(f"network_interface {interface!r} is not an IP address")
        return interface

    # -- fetch ---------------------------------------------------------------------------------
    def fetch_impl(self, request: HTTPRequest, callback) -> None:
        task = asyncio.ensure_future(self._run(request, callback))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, request: HTTPRequest, callback) -> None:
        original = getattr(request, "request", request)  # the HTTPRequest behind _RequestProxy
        start_wall, start = time.time(), time.monotonic()
        try:
            response = await self._fetch(request, original, start_wall, start)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            response = HTTPResponse(
                original,
                599,
                error=self._tornado_error(exc, request),
                request_time=time.monotonic() - start,
                start_time=start_wall,
            )
        callback(response)

    def _options(self, request: HTTPRequest) -> tuple[str, dict]:
        method = request.method
        body_expected = method in ("POST", "PATCH", "PUT")
        body_present = request.body is not None or request.body_producer is not None
        if not request.allow_nonstandard_methods and body_expected != body_present:
            # Tornado's own rule (simple_httpclient), kept for compatibility.
            negation = "not " if body_expected else ""
            raise ValueError(
                f"Body must {negation}be None for method {method}"
                " (unless allow_nonstandard_methods is true)"
            )
        given = request.headers
        pairs = list(given.get_all() if isinstance(given, httputil.HTTPHeaders) else given.items())
        # nbfetch validates every field (CR, LF, NUL: InvalidRequest, a ValueError)
        names = {name.lower() for name, _ in pairs}
        if request.user_agent:
            pairs = [(n, v) for n, v in pairs if n.lower() != "user-agent"]
            pairs.append(("User-Agent", request.user_agent))
        if request.decompress_response and "accept-encoding" not in names:
            pairs.append(("Accept-Encoding", "gzip"))
        if method == "POST" and "content-type" not in names:
            # Tornado's simple client sends form bodies unless told otherwise.
            pairs.append(("Content-Type", "application/x-www-form-urlencoded"))
        options: dict[str, Any] = {
            "headers": pairs,
            "follow_redirects": request.follow_redirects,
            "max_redirects": request.max_redirects if request.max_redirects is not None else 5,
            "decompress": request.decompress_response,
            "connect_timeout": request.connect_timeout or None,  # 0 means no timeout
            "request_timeout": request.request_timeout or None,
            "expect_100_continue": bool(request.expect_100_continue),
            "allow_body": True,  # Tornado's rule above decides
        }
        if request.auth_username is not None:
            if (request.auth_mode or "basic") != "basic":
                raise ValueError(f"unsupported auth_mode {request.auth_mode}")
            options["auth"] = (request.auth_username, request.auth_password or "")
        if request.proxy_host:
            options["proxy"] = _proxy_url(request)
        if request.body_producer is not None:
            options["body"] = _produced_body(request.body_producer)
        elif request.body is not None:
            options["body"] = request.body
        return method, options

    async def _fetch(self, request, original, start_wall: float, start: float) -> HTTPResponse:
        method, options = self._options(request)
        client = self._client_for(request)
        header_callback = request.header_callback
        if header_callback is not None:

            def on_headers(response) -> None:
                header_callback(
                    f"{response.http_version} {response.status_code} {response.reason}\r\n"
                )
                for name, value in response.headers.items():
                    header_callback(f"{name}: {value}\r\n")
                header_callback("\r\n")

            options["on_headers"] = on_headers
        streaming = request.streaming_callback
        if streaming is not None:
            async with client.stream(method, request.url, **options) as r:
                async for data in r.aiter_bytes():
                    result = streaming(data)
                    if hasattr(result, "__await__"):
                        await result  # a coroutine streaming_callback applies backpressure
            body = b""
        else:
            r = await client.fetch(request.url, method, **options)
            body = r.body
        if r.status_code == 204 and (r.content_length or 0) > 0:
            gen_log.info(
                "Malformed HTTP message from %s: Response with code 204 should not have body",
                redact_url(request.url),
            )
            raise HTTPStreamClosedError("Stream closed")
        return HTTPResponse(
            original,
            r.status_code,
            reason=r.reason,
            headers=httputil.HTTPHeaders(r.headers.items()),
            buffer=io.BytesIO(body),
            # A usable URL without the credentials (str() would give "***@").
            effective_url=str(r.url.copy_with(username=None, password=None)),
            request_time=time.monotonic() - start,
            start_time=start_wall,
            time_info=time_info(r.timing),
        )

    @staticmethod
    def _tornado_error(exc: Exception, request) -> BaseException:
        """nbfetch's errors in Tornado's terms."""
        if isinstance(exc, InvalidRequest):
            return exc  # a ValueError, passed through as Tornado does
        if isinstance(exc, FetchTimeout):
            if exc.phase == "queue":
                return HTTPTimeoutError("Timeout in request queue")
            if exc.phase in _CONNECT_PHASES:
                return HTTPTimeoutError("Timeout while connecting")
            return HTTPTimeoutError("Timeout during request")
        if isinstance(exc, TLSError):
            return ssl.SSLError(exc.message)
        if isinstance(exc, TooLargeError):
            decoded = exc.phase == "decode" or request.decompress_response
            what = "decompressed body" if decoded else "body"
            gen_log.warning(
                "Malformed HTTP message from %s: %s too large", redact_url(request.url), what
            )
            return HTTPStreamClosedError("Stream closed")
        if isinstance(exc, (ProtocolError, NetworkError, DecodeError)):
            gen_log.info("Malformed HTTP message from %s: %s", redact_url(request.url), exc.message)
            return HTTPStreamClosedError("Stream closed")
        return exc  # ConnectError and the rest: nbfetch's own, with URL and phase


def _proxy_url(request: HTTPRequest) -> str:
    """``proxy_host``, ``proxy_port``, ``proxy_username`` and ``proxy_password``
    as a proxy URL (Basic credentials, as Tornado's curl client sends by default)."""
    from urllib.parse import quote

    if not request.proxy_port:
        raise ValueError("proxy_host needs proxy_port")
    if (request.proxy_auth_mode or "basic") != "basic":
        raise ValueError(f"unsupported proxy_auth_mode {request.proxy_auth_mode}")
    host = request.proxy_host
    host = f"[{host}]" if ":" in host and not host.startswith("[") else host
    userinfo = ""
    if request.proxy_username:
        password = quote(request.proxy_password or "", safe="")
        userinfo = f"{quote(request.proxy_username, safe='')}:{password}@"
    return f"http://{userinfo}{host}:{int(request.proxy_port)}"


def _produced_body(body_producer):
    """Tornado's ``body_producer(write)`` as an async iterable of chunks.

    As Tornado's ``HTTP1Connection.write``, ``write()`` queues its chunk at once
    and returns a Future that resolves once the chunk is sent: a producer that
    awaits it gets backpressure, one that does not still has every chunk sent,
    in order (its chunks wait in memory, as in Tornado's write buffer).
    """

    async def chunks():
        loop = asyncio.get_running_loop()
        pending: deque[tuple[bytes, asyncio.Future]] = deque()
        wakeup = asyncio.Event()

        def write(chunk) -> asyncio.Future:
            if isinstance(chunk, str):
                chunk = chunk.encode("utf-8")
            elif not isinstance(chunk, (bytes, bytearray, memoryview)):
                raise TypeError(f"write() takes bytes, not {type(chunk).__name__}")
            future = loop.create_future()
            pending.append((bytes(chunk), future))
            wakeup.set()
            return future

        async def produce():
            result = body_producer(write)
            if result is not None:
                await result

        task = asyncio.ensure_future(produce())
        task.add_done_callback(lambda _: wakeup.set())
        try:
            while True:
                while pending:
                    chunk, future = pending[0]
                    yield chunk  # resumed once the exchange has sent it
                    pending.popleft()
                    if not future.done():
                        future.set_result(None)
                if task.done():
                    break
                wakeup.clear()
                await wakeup.wait()
            task.result()  # re-raise the producer's error, if any
        finally:
            task.cancel()
            for _, future in pending:
                future.cancel()  # not (all) sent: the request failed

    return chunks()


def time_info(timing) -> dict[str, float]:
    """curl-style cumulative ``time_info`` (seconds from the start) from nbfetch's Timing."""
    t = {name: value or 0.0 for name, value in timing.as_dict().items()}
    info = {"redirect": t["redirect"], "queue": t["redirect"] + t["queue"]}
    info["namelookup"] = info["queue"] + t["dns"]
    info["connect"] = info["namelookup"] + t["connect"]
    info["appconnect"] = info["connect"] + t["tunnel"] + t["tls"]  # a CONNECT tunnel first, as curl
    info["pretransfer"] = info["appconnect"]
    info["starttransfer"] = info["pretransfer"] + t["send"] + t["wait"]
    info["total"] = t["total"]
    return info
