"""Opening a connection: resolving (``hostname_mapping``, a custom resolver),
TCP to each address in turn, through a proxy the TLS to an https:// proxy and
the ``CONNECT`` tunnel, the TLS handshake, and the TLS context.

One ``connect_timeout`` budget covers all of it, from ``resolve.start`` to
``tls.done``, as curl's ``--connect-timeout`` (the tunnel included, as curl's).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from contextvars import ContextVar
from typing import TYPE_CHECKING

from ..core.errors import ConnectError, InvalidRequest, ProxyError, TLSError
from ..core.proxies import Proxy, Tunnel, is_loopback_address
from ..core.urls import URL
from ..drivers.base import Driver, IOTimeout
from .context import FetchContext
from .hostnames import HostnameMapping, ip_family
from .pool import Connection, Pool
from .tls import Trust, explain_failure, ssl_context_for

if TYPE_CHECKING:
    import ssl


#: True in a task that must reach loopback only (a load run's workers set it):
#: every address, resolved or mapped, is checked right before its connect, so
#: neither a resolver, DNS nor a rebinding answer can lead a load elsewhere.
#: A context variable rather than an option: it reaches the connector without
#: a change to any signature between the load run and here.
LOOPBACK_ONLY: ContextVar[bool] = ContextVar("nbfetch_loopback_only", default=False)


def ssl_errors() -> tuple[type[BaseException], ...]:
    import ssl

    return (ssl.SSLError, ssl.CertificateError)


class Connector:
    """Opens the connections of one client; holds its TLS context."""

    def __init__(
        self,
        driver: Driver,
        pool: Pool,
        *,
        mapping: HostnameMapping,
        resolver: Callable | None,
        local_address: str | None,
        verify,
        cert,
        trust_env: bool = True,
        max_header_bytes: int,
    ):
        self.driver = driver
        self.pool = pool
        self.mapping = mapping
        self.resolver = resolver
        self.local_address = local_address
        self.verify = verify
        self.cert = cert
        self.trust = Trust.of(verify, cert, trust_env)  # SSL_CERT_FILE/DIR read now
        self.max_header_bytes = max_header_bytes
        self._ssl_context: ssl.SSLContext | None = None
        self._ssl_building = None  # a driver Signal while a worker thread builds it

    async def connect(
        self, url: URL, key: tuple, ctx: FetchContext, proxy: Proxy | None = None
    ) -> Connection:
        """A new connection to ``url``'s origin (``key``), TLS included for https;
        through ``proxy``: to the proxy, and for https through a tunnel."""
        # One connect_timeout from resolve.start to tls.done, as curl's
        # --connect-timeout: DNS, every address tried and the handshake share it.
        budget = ctx.deadline_in(ctx.connect_timeout)
        if proxy is None:
            conn = await self._open(url, key, ctx, budget)
        else:
            conn = await self._open_proxied(url, key, ctx, budget, proxy)
        if url.scheme == "https":
            await self._start_tls(conn, url, ctx, budget, tunneled=proxy is not None)
        conn.pool = self.pool  # from now on its closing is counted by the pool
        return conn

    async def _open_proxied(
        self, url: URL, key: tuple, ctx: FetchContext, budget: float | None, proxy: Proxy
    ) -> Connection:
        """A connection to ``proxy`` (TLS for an https:// one) and, for an https
        target, the tunnel to ``url``'s origin."""
        try:
            conn = await self._open(proxy.url, key, ctx, budget, proxy)
        except ConnectError as exc:
            # Unreachable is a ProxyError; a TLSError (the proxy's own certificate) stays one.
            raise (TLSError if isinstance(exc, TLSError) else ProxyError)(
                f"proxy {proxy.display}: {exc.message}", phase=exc.phase, hint=exc.hint
            ) from None
        if url.scheme == "https":
            if proxy.tls and not getattr(self.driver, "tls_in_tls", True):
                conn.abort()
                raise ProxyError(
                    f"proxy {proxy.display} is https:// and the URL too: TLS inside TLS needs"
                    " Python 3.11+ with asyncio (or the trio driver); use an http:// proxy URL",
                    phase="tunnel",
                )
            await self._tunnel(conn, url, proxy, ctx, budget)
        return conn

    async def _open(
        self,
        url: URL,
        key: tuple,
        ctx: FetchContext,
        budget: float | None,
        proxy: Proxy | None = None,
    ) -> Connection:
        """TCP to ``url``'s host (TLS too when it is an https:// proxy)."""
        rec, driver = ctx.recorder, self.driver
        host, port = url.hostname, url.port
        if ip_family(host) is not None:
            addresses = [(ip_family(host), (host, port))]  # an IP literal: nothing to resolve
        else:
            start: dict = {"host": host, "port": port}
            if self.mapping:
                host, port = self.mapping.apply(host, port)
                if (host, port) != (url.hostname, url.port):
                    start["mapped_to"] = (host, port)  # Tornado's OverrideResolver
            rec.emit("resolve.start", start)
            family = ip_family(host)
            if family is not None:
                addresses = [(family, (host, port))]
            else:
                timeout = ctx.step_timeout(ctx.connect_timeout, "connect_timeout", budget)
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

        if LOOPBACK_ONLY.get():
            for _family, sockaddr in addresses:
                if not is_loopback_address(sockaddr[0]):
                    raise InvalidRequest(
                        f"{url.hostname} resolves to {sockaddr[0]}, not loopback: refused"
                        " before connecting (a load run reaches loopback only unless"
                        " allow_remote=True)"
                    )
        errors = []
        for tried, (family, sockaddr) in enumerate(addresses):
            start = {"address": sockaddr[0], "port": sockaddr[1]}
            if proxy is not None:
                start["proxy"] = proxy.display
            rec.emit("connect.start", start)
            wait = ctx.step_timeout(ctx.connect_timeout, "connect_timeout", budget)
            # Each address gets an equal share of what is left, so one that never
            # answers leaves time for the next (as curl splits its budget).
            others = len(addresses) - tried - 1
            share = None if wait is None else wait / (others + 1)
            try:
                stream = await driver.connect(family, sockaddr, share, self.local_address)
                break
            except IOTimeout:
                if others:
                    errors.append(f"{sockaddr[0]} port {sockaddr[1]}: no answer in {share:.3g} s")
                    continue
                raise ctx.timeout_error("connect") from None
            except OSError as exc:
                reason = os.strerror(exc.errno) if exc.errno else str(exc)
                errors.append(f"{sockaddr[0]} port {sockaddr[1]}: {reason}")
        else:
            raise ConnectError("cannot connect: " + "; ".join(errors), phase="connect")

        conn = Connection(stream, key, self.max_header_bytes)
        rec.emit("connect.done", {"local": conn.local, "remote": conn.remote})
        if proxy is not None and proxy.tls:
            await self._start_tls(conn, url, ctx, budget, proxy)
        return conn

    async def _tunnel(
        self, conn: Connection, url: URL, proxy: Proxy, ctx: FetchContext, budget: float | None
    ) -> None:
        """``CONNECT host:port`` (RFC 9110 section 9.3.6); after its 2xx the
        connection carries the origin's bytes (TLS to the origin follows)."""
        rec = ctx.recorder
        tunnel = Tunnel(proxy, url.hostname, url.port)
        rec.emit("tunnel.start", {"proxy": proxy.display, "target": tunnel.authority})
        try:
            conn.stream.write(tunnel.request_bytes())
            answered = False
            while not answered:
                timeout = ctx.step_timeout(ctx.connect_timeout, "connect_timeout", budget)
                answered = tunnel.receive(await conn.stream.receive(timeout))
            tunnel.established()
        except IOTimeout:
            conn.abort()
            raise ctx.timeout_error("tunnel") from None
        except OSError as exc:
            conn.abort()
            raise ProxyError(
                f"proxy {proxy.display}: connection broken during CONNECT: {exc}", phase="tunnel"
            ) from None
        except BaseException:
            conn.abort()
            raise
        rec.emit(
            "tunnel.done",
            {"proxy": proxy.display, "status": tunnel.status, "reason": tunnel.reason},
        )

    async def _start_tls(
        self,
        conn: Connection,
        url: URL,
        ctx: FetchContext,
        budget: float | None,
        proxy: Proxy | None = None,
        tunneled: bool = False,
    ) -> None:
        """TLS to ``url``'s host: the origin (``tunneled``: through a proxy's
        CONNECT), or an https:// ``proxy`` (whose handshake is not the
        origin's: ``conn.tls`` stays the origin's)."""
        server_hostname = None if ip_family(url.hostname) else url.hostname
        start = {"server_hostname": server_hostname or url.hostname}
        if proxy is not None:
            start["proxy"] = proxy.display
        ctx.recorder.emit("tls.start", start)
        try:
            context = await self._ssl_context_off_loop(ctx, budget)
            info = await conn.stream.start_tls(
                context,
                url.hostname,
                ctx.step_timeout(ctx.connect_timeout, "connect_timeout", budget),
            )
        except IOTimeout:
            conn.abort()
            raise ctx.timeout_error("tls") from None
        except ssl_errors() as exc:
            conn.abort()
            left = ctx.step_timeout(ctx.connect_timeout, "connect_timeout", budget)
            # Through a tunnel, conn.remote is the proxy: a direct probe of it
            # would not reach the origin the handshake reached.
            address = None if tunneled else conn.remote
            message = await explain_failure(
                exc, url.hostname, self.trust, self.driver, address, server_hostname, left
            )
            raise TLSError(message, phase="tls") from None
        except OSError as exc:
            conn.abort()
            raise TLSError(f"TLS handshake failed: {exc}", phase="tls") from None
        except BaseException:  # cancelled while the context was built or in the handshake
            conn.abort()
            raise
        if proxy is None:
            conn.tls = info
        ctx.recorder.emit("tls.done", info)

    async def _ssl_context_off_loop(self, ctx: FetchContext, budget: float | None):
        """``ssl_context()`` built in a worker thread, so the loop never waits for
        the CA bundles; concurrent first fetches wait for the same build."""
        driver = self.driver
        while self._ssl_context is None:
            timeout = ctx.step_timeout(ctx.connect_timeout, "connect_timeout", budget)
            building = self._ssl_building
            if building is not None:
                await building.wait(timeout)
                continue  # built, or the build failed and this fetch tries its own
            self._ssl_building = building = driver.signal()
            try:
                await driver.run_sync(self.ssl_context, timeout)
            finally:
                self._ssl_building = None
                building.set()
        return self._ssl_context

    def ssl_context(self) -> ssl.SSLContext:
        """The TLS context: system CAs plus certifi's when installed (or
        SSL_CERT_FILE/SSL_CERT_DIR with ``trust_env``); or as ``verify``.

        Built on first use (fetches build it in a worker thread). With the defaults
        (``verify=True``, no ``cert``) it is one context per process, shared by
        every such client: do not change it; pass ``verify=`` your own instead."""
        if self._ssl_context is None:
            self._ssl_context = ssl_context_for(self.trust)
        return self._ssl_context


def refuse_unless_loopback(conn, url) -> None:
    """Under ``LOOPBACK_ONLY``, a pooled connection about to be reused must be
    to a loopback address too: one opened by other code through the same
    client (or still connecting when the load run began) was never checked.
    It is closed, and the fetch refused."""
    remote = conn.remote[0] if isinstance(conn.remote, tuple) else conn.remote
    if remote is not None and is_loopback_address(str(remote)):
        return
    conn.close("refused: not loopback")
    raise InvalidRequest(
        f"the pooled connection to {url.hostname} is to {remote}, not loopback: refused"
        " (a load run reaches loopback only unless allow_remote=True)",
        url=url,
    )
