"""Proxies, as pure logic: the proxy URL, the environment's proxies and
``NO_PROXY``, the absolute-form request and the ``CONNECT`` exchange.

No sockets and no clock: ``client/connect.py`` opens the connections and feeds
the bytes. The environment is passed in (``EnvProxies.from_environ(os.environ)``).

* ``http://`` targets go to the proxy in absolute-form (RFC 9112 section
  3.2.2) with ``Proxy-Authorization`` added for that hop only;
* ``https://`` targets go through a ``CONNECT host:port`` tunnel (RFC 9110
  section 9.3.6), TLS to the origin inside it.

Loopback targets (``localhost``, ``*.localhost``, 127.0.0.0/8, ``::1``) never
use a proxy from the *environment*: the proxy's loopback is not ours (a
corporate proxy would connect to itself), and a Jupyter user's local servers
(and every test of this project) must keep working when ``HTTP_PROXY`` is set.
Go's net/http does the same; curl, requests and httpx send them to the proxy
unless ``NO_PROXY`` names them. An explicit ``proxy=`` is used for every target,
loopback included (how a debugging proxy on localhost is used).

>>> env = EnvProxies.from_environ({"HTTPS_PROXY": "http://u:pw@proxy:3128", "NO_PROXY": ".corp"})
>>> env.proxy_for(URL.parse("https://example.org/")).display
'http://proxy:3128'
>>> env.proxy_for(URL.parse("https://wiki.corp/")) is None
True
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping

import h11

from .errors import InvalidRequest, ProxyError
from .protocol import build_request
from .request import Request, basic_auth
from .urls import URL

#: Bound on a CONNECT response head (status line and headers), bytes.
MAX_TUNNEL_HEAD = 16 * 1024


class Proxy:
    """A proxy server: ``http://[user:password@]host:port`` or ``https://...``.

    ``display`` names it without credentials (errors, events, views);
    ``authorization`` is the ``Proxy-Authorization`` value (Basic, RFC 9110
    section 11.7.2 with RFC 7617) or None. Compared by every field, so a pool
    never hands one user's tunnel to another."""

    __slots__ = ("url", "authorization")

    def __init__(self, url: str | URL, source: str = "proxy="):
        try:
            parsed = URL.parse(url if "://" in str(url) else f"http://{url}")
        except InvalidRequest as exc:
            raise InvalidRequest(f"{source}: invalid proxy URL: {exc.message}") from None
        if parsed.path not in ("", "/") or parsed.query:
            raise InvalidRequest(
                f"{source}: a proxy URL is scheme://[user:password@]host:port, without a path"
            )
        self.url = parsed
        self.authorization = (
            basic_auth(parsed.username, parsed.password or "")
            if parsed.username is not None
            else None
        )

    @property
    def display(self) -> str:
        """``scheme://host:port``: never the user name or password."""
        return f"{self.url.scheme}://{self.url.host}:{self.url.port}"

    @property
    def tls(self) -> bool:
        return self.url.scheme == "https"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Proxy) and self.url == other.url

    def __hash__(self) -> int:
        return hash(self.url)

    def __repr__(self) -> str:
        return f"Proxy({self.display!r})"


def as_proxy(value: object, source: str = "proxy=") -> Proxy | None:
    """``proxy=`` as given: a URL string, a ``URL``, a ``Proxy`` or None."""
    if value is None or isinstance(value, Proxy):
        return value
    if isinstance(value, (str, URL)):
        return Proxy(value, source)
    raise InvalidRequest(f"{source} takes a proxy URL string, not {type(value).__name__}")


# -- NO_PROXY --------------------------------------------------------------------
_LOOPBACK_V4 = ipaddress.ip_network("127.0.0.0/8")


def _ip(host: str):
    if not (host[:1].isdigit() or ":" in host):
        return None  # a name: no address parse (and its exception) per fetch
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def is_loopback(host: str) -> bool:
    """``localhost``, a ``.localhost`` name (RFC 6761 section 6.3), 127.0.0.0/8, ::1.

    A name is judged by its spelling, not by where it resolves (a resolver or
    DNS may send ``api.localhost`` anywhere): what must not leave loopback
    checks each resolved address with ``is_loopback_address`` as well."""
    host = host.lower().rstrip(".")
    if host == "localhost" or host.endswith(".localhost"):
        return True
    return is_loopback_address(host)


def is_loopback_address(address: str) -> bool:
    """An IP address in 127.0.0.0/8, ``::1`` or ``::ffff:127.x.y.z``; a name,
    even ``localhost``, is not."""
    ip = _ip(address)
    if ip is None:
        return False
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback or (ip.version == 4 and ip in _LOOPBACK_V4)


class NoProxy:
    """A ``NO_PROXY`` list, as curl reads it (and CIDR, as curl 7.86+):

    ``*`` alone: no target uses the proxy; ``example.com`` or ``.example.com``:
    that host and every name under it (not ``notexample.com``); an IP address;
    a CIDR range (``10.0.0.0/8``, ``fd00::/8``); any entry with ``:port``
    applies to that port only. Entries are separated by commas or spaces, and
    compared without case."""

    __slots__ = ("everything", "names", "networks")

    def __init__(self, text: str | None):
        self.everything = False
        self.names: list[tuple[str, int | None]] = []
        self.networks: list[tuple[object, int | None]] = []
        for entry in (text or "").replace(",", " ").split():
            self._add(entry.lower())

    def _add(self, entry: str) -> None:
        if entry == "*":
            self.everything = True
            return
        port = None
        host = entry
        if entry.startswith("["):  # [::1]:8080
            close = entry.find("]")
            host, rest = entry[1:close], entry[close + 1 :]
            if rest.startswith(":") and rest[1:].isdigit():
                port = int(rest[1:])
        elif entry.count(":") == 1:  # host:port (more colons: a bare IPv6 address)
            name, _, port_text = entry.partition(":")
            if port_text.isdigit():
                host, port = name, int(port_text)
        try:
            self.networks.append((ipaddress.ip_network(host, strict=False), port))
            return
        except ValueError:
            pass
        host = host.lstrip("*").lstrip(".").rstrip(".")  # "*.corp" and ".corp" mean "corp"
        if host:
            self.names.append((host, port))

    def matches(self, url: URL) -> bool:
        """Whether ``url`` goes direct."""
        if self.everything:
            return True
        host = url.hostname.lower().rstrip(".")
        port = url.port
        ip = _ip(host)
        if ip is not None:
            return any(
                ip.version == net.version and ip in net and p in (None, port)
                for net, p in self.networks
            )
        return any(
            (host == name or host.endswith("." + name)) and p in (None, port)
            for name, p in self.names
        )

    def __bool__(self) -> bool:
        return self.everything or bool(self.names or self.networks)


def _env(environ: Mapping[str, str], name: str) -> str | None:
    """``name`` from ``environ``, the lower-case spelling first (as curl,
    requests and httpx do); an empty value counts as unset."""
    for key in (name.lower(), name.upper()):
        if key == "HTTP_PROXY" and "REQUEST_METHOD" in environ:
            # httpoxy (CVE-2016-5385): under CGI, HTTP_PROXY is the client's
            # "Proxy:" request header, not a setting. urllib and curl ignore it too.
            continue
        value = environ.get(key)
        if value and value.strip():
            return value.strip()
    return None


class EnvProxies:
    """The proxies of the environment (``trust_env=True``): ``HTTP_PROXY``,
    ``HTTPS_PROXY``, ``ALL_PROXY`` (for both schemes when the scheme's own is
    unset) and ``NO_PROXY``, each in upper or lower case.

    A value nbfetch cannot use (``socks5://``) is an ``InvalidRequest`` naming
    the variable when a target would use it: going direct instead would bypass
    a proxy the user relies on."""

    __slots__ = ("by_scheme", "no_proxy", "_parsed")

    def __init__(self, by_scheme: dict[str, tuple[str, str]], no_proxy: NoProxy):
        self.by_scheme = by_scheme  # scheme -> (variable, value)
        self.no_proxy = no_proxy
        self._parsed: dict[str, Proxy | InvalidRequest] = {}

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> EnvProxies:
        by_scheme = {}
        every = _env(environ, "ALL_PROXY")
        for scheme in ("http", "https"):
            name = f"{scheme.upper()}_PROXY"
            value = _env(environ, name)
            if value is not None:
                by_scheme[scheme] = (name, value)
            elif every is not None:
                by_scheme[scheme] = ("ALL_PROXY", every)
        return cls(by_scheme, NoProxy(_env(environ, "NO_PROXY")))

    def __bool__(self) -> bool:
        return bool(self.by_scheme)

    def proxy_for(self, url: URL) -> Proxy | None:
        chosen = self.by_scheme.get(url.scheme)
        if chosen is None or is_loopback(url.hostname) or self.no_proxy.matches(url):
            return None
        proxy = self._parsed.get(url.scheme)
        if proxy is None:
            proxy = self._parsed[url.scheme] = _env_proxy(*chosen)
        if isinstance(proxy, InvalidRequest):
            raise InvalidRequest(proxy.message, url=url)
        return proxy


def _env_proxy(name: str, value: str) -> Proxy | InvalidRequest:
    """The proxy of variable ``name``, or the error to raise when it is used."""
    scheme = value.partition("://")[0].lower() if "://" in value else "http"
    if scheme not in ("http", "https"):
        return InvalidRequest(
            f"{name} is a {scheme}:// proxy: nbfetch speaks to http:// and https://"
            " proxies only (pass proxy=... or trust_env=False)"
        )
    try:
        return Proxy(value, name)
    except InvalidRequest as exc:
        return exc


# -- on the wire -----------------------------------------------------------------
def absolute_form(request: Request, proxy: Proxy) -> Request:
    """``request`` as sent to a forwarding proxy: the absolute URI as target
    (RFC 9112 section 3.2.2; Host is still sent) and this proxy's
    ``Proxy-Authorization``, which belongs to this hop only (RFC 9110 section
    11.7.2): the request itself (its headers, the events, a redirect's next
    hop) never holds it."""
    target = f"{request.url.scheme}://{request.url.netloc}{request.url.target}"
    raw = request.headers.raw
    if proxy.authorization is not None:
        raw = [*raw, (b"Proxy-Authorization", proxy.authorization)]
    hop = Request(request.method, request.url, request.headers, request.body)
    hop._h11 = build_request(request.method, target, raw)
    return hop


class Tunnel:
    """One ``CONNECT host:port`` exchange (RFC 9110 section 9.3.6): the bytes
    to send, then the proxy's answer fed in until its head is complete.

    >>> t = Tunnel(Proxy("http://127.0.0.1:3128"), "example.org", 443)
    >>> t.request_bytes().split(b"\\r\\n")[:2]
    [b'CONNECT example.org:443 HTTP/1.1', b'Host: example.org:443']
    >>> t.receive(b"HTTP/1.1 200 Connection established\\r\\n\\r\\n")
    True
    """

    __slots__ = ("proxy", "authority", "_h11", "_start", "status", "reason")

    def __init__(self, proxy: Proxy, host: str, port: int):
        self.proxy = proxy
        # RFC 9112 section 3.2.3: authority-form, an IPv6 literal in brackets.
        self.authority = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        self._h11 = h11.Connection(h11.CLIENT, max_incomplete_event_size=MAX_TUNNEL_HEAD)
        self._start = b""  # the answer's first bytes, to bound its head
        self.status: int | None = None
        self.reason = ""

    def request_bytes(self) -> bytes:
        headers = [(b"Host", self.authority.encode("ascii"))]
        if self.proxy.authorization is not None:
            headers.append((b"Proxy-Authorization", self.proxy.authorization))
        head = self._h11.send(h11.Request(method="CONNECT", target=self.authority, headers=headers))
        return head + self._h11.send(h11.EndOfMessage())

    def receive(self, data: bytes) -> bool:
        """Feed the proxy's bytes (``b""`` when it closed); True once its final
        answer has come: ``established()`` raises unless it was a 2xx."""
        # h11 bounds an incomplete head only: a whole one may come in one read.
        if len(self._start) <= MAX_TUNNEL_HEAD:
            self._start += data[: MAX_TUNNEL_HEAD + 1 - len(self._start)]
            if len(self._start) > MAX_TUNNEL_HEAD and b"\r\n\r\n" not in self._start:
                raise ProxyError(
                    f"proxy {self.proxy.display}: the head of its answer to CONNECT is"
                    f" over {MAX_TUNNEL_HEAD // 1024} KiB",
                    phase="tunnel",
                )
        self._h11.receive_data(data)
        while True:
            try:
                event = self._h11.next_event()
            except h11.RemoteProtocolError as exc:
                if not data:  # closed mid-answer
                    raise self._closed() from None
                raise ProxyError(
                    f"proxy {self.proxy.display} sent an invalid answer to CONNECT: {exc}",
                    phase="tunnel",
                ) from None
            if event is h11.NEED_DATA and data:
                return False
            if isinstance(event, h11.InformationalResponse):
                continue  # RFC 9110 section 15.2: a 1xx before the final answer
            if isinstance(event, h11.Response):
                self.status = event.status_code
                self.reason = event.reason.decode("latin-1", "replace")
                return True
            raise self._closed()

    def _closed(self) -> ProxyError:
        return ProxyError(
            f"proxy {self.proxy.display} closed the connection before"
            f" answering CONNECT {self.authority}",
            phase="tunnel",
        )

    def established(self) -> None:
        """Raise ``ProxyError`` unless the proxy opened the tunnel: any 2xx
        (RFC 9110 section 9.3.6); 407 says the proxy wants credentials."""
        status = self.status
        if status is not None and 200 <= status < 300:
            if self._h11.trailing_data[0]:
                # The origin speaks only after our TLS ClientHello: bytes now are the proxy's.
                raise ProxyError(
                    f"proxy {self.proxy.display} sent data after opening the tunnel",
                    phase="tunnel",
                )
            return
        raise proxy_refused(self.proxy, status, self.reason, f"CONNECT {self.authority}")


def proxy_refused(
    proxy: Proxy, status: int | None, reason: str, what: str, phase: str = "tunnel"
) -> ProxyError:
    """The ``ProxyError`` of a proxy that answered ``status`` (407 or a refused CONNECT)."""
    text = f"{status} {reason}".strip() if status is not None else "no answer"
    if status == 407:
        hint = (
            "the proxy wants credentials: put them in the proxy URL"
            " (http://user:password@host:port)"
            if proxy.authorization is None
            else "the proxy refused these credentials: check the user name and password"
        )
    else:
        hint = "the proxy would not open a tunnel to that host and port (its access rules?)"
    return ProxyError(
        f"proxy {proxy.display} refused {what}: {text}", phase=phase, hint=hint, status=status
    )
