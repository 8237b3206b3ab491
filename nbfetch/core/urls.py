"""URL parsing and validation for requests.

Only ``http`` and ``https`` are fetched. Hosts are lowercased and IDNA-encoded with
UTS #46 (the ``idna`` package, as requests and httpx use; the stdlib codec is IDNA
2003), IPv6 literals are checked, default ports are filled in, and the path and
query are percent-encoded where RFC 3986 requires it. Control characters (CR, LF,
NUL, TAB, ...) anywhere in a URL are refused before anything is resolved or sent:
they are how header injection through a URL starts (CPython CVE-2019-9740).
A URL's text forms (``str``, ``repr``) show userinfo as ``***@`` (``core.redact``);
the ``username`` and ``password`` attributes keep it for Basic auth. ``repr``
also masks secret query values (``?api_key=***``); ``str`` keeps them, so
``str(r.url)`` can build the next request.

>>> u = URL.parse("http://Bücher.example:8080/a b?q=ü#top")
>>> u.host, u.port, u.target
('xn--bcher-kva.example', 8080, '/a%20b?q=%C3%BC')
>>> URL.parse("localhost:8000/get").scheme      # no scheme: http, as curl does
'http'
>>> u = URL.parse("http://user:secret@127.0.0.1/")
>>> u, u.password
(URL('http://***@127.0.0.1/'), 'secret')
"""

from __future__ import annotations

import ipaddress
import re
from functools import lru_cache
from urllib.parse import quote, urljoin

from .errors import InvalidRequest
from .redact import REDACTED, redact_url

DEFAULT_PORTS = {"http": 80, "https": 443}

# RFC 3986 section 3.3 (pchar) and 3.4: characters kept as they are; every other
# character is percent-encoded as UTF-8. "%" is kept so already-encoded input is
# not encoded twice.
_PATH_SAFE = "/:@!$&'()*+,;=%~-._"
_QUERY_SAFE = _PATH_SAFE + "?"
_HOST_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-._")
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):")


def _has_control(text: str) -> bool:
    return any(ord(c) < 0x20 or ord(c) == 0x7F for c in text)


def _encode_host(host: str, url: str) -> str:
    if not host:
        raise InvalidRequest("URL has no host", url=url)
    if host.startswith("["):
        if not host.endswith("]"):
            raise InvalidRequest("unterminated IPv6 literal in URL", url=url)
        try:
            # Zone identifiers ("%eth0") are not allowed in URLs sent to a server.
            addr = ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            raise InvalidRequest(f"invalid IPv6 address {host!r} in URL", url=url) from None
        return f"[{addr.compressed}]"
    host = host.lower()
    if host.isascii():
        if not set(host) <= _HOST_CHARS:
            bad = sorted(set(host) - _HOST_CHARS)
            raise InvalidRequest(f"invalid character(s) {''.join(bad)!r} in host", url=url)
        if host.startswith("xn--") or ".xn--" in host:
            _idna_encode(host, url)  # validate the A-label
        return host
    return _idna_encode(host, url)


def _idna_encode(host: str, url: str) -> str:
    import idna  # lazily: only non-ASCII or punycode hosts pay for it

    try:
        return idna.encode(host, uts46=True).decode("ascii")
    except idna.IDNAError as exc:
        raise InvalidRequest(f"invalid internationalised host {host!r}: {exc}", url=url) from None


class URL:
    """A parsed, validated, normalised absolute http(s) URL. Immutable."""

    __slots__ = ("scheme", "host", "port", "path", "query", "fragment", "username", "password")

    scheme: str
    host: str
    port: int
    path: str
    query: str
    fragment: str
    username: str | None
    password: str | None

    @staticmethod
    def parse(url: str | URL) -> URL:
        """Parse and validate; raises ``InvalidRequest`` with the reason."""
        if isinstance(url, URL):
            return url
        if not isinstance(url, str):
            raise InvalidRequest(f"URL must be a str, not {type(url).__name__}")
        return _parse_cached(url)

    @property
    def origin(self) -> tuple[str, str, int]:
        """(scheme, host, port): what redirects compare and the pool is keyed by."""
        return (self.scheme, self.host, self.port)

    @property
    def target(self) -> str:
        """The request-target (origin-form, RFC 9112 section 3.2.1): path and query."""
        return f"{self.path}?{self.query}" if self.query else self.path

    @property
    def netloc(self) -> str:
        """host[:port], the port only when not the scheme's default: the Host header."""
        if self.port == DEFAULT_PORTS[self.scheme]:
            return self.host
        return f"{self.host}:{self.port}"

    @property
    def hostname(self) -> str:
        """The host without IPv6 brackets, as given to the resolver."""
        return self.host[1:-1] if self.host.startswith("[") else self.host

    def join(self, reference: str) -> URL:
        """Resolve a (possibly relative) reference such as a Location header."""
        if _has_control(reference):
            raise InvalidRequest(
                "URL contains a control character (CR, LF, NUL, TAB, ...)",
                url=repr(redact_url(reference)),
            )
        try:
            # Without this URL's userinfo: a relative reference does not inherit it
            # (same-origin hops keep the Authorization header instead).
            joined = urljoin(self._text(""), reference)
        except ValueError as exc:  # urllib refuses e.g. a malformed IPv6 literal
            raise InvalidRequest(f"invalid URL {redact_url(reference)!r}: {exc}") from None
        return URL.parse(joined)

    def copy_with(self, **changes: object) -> URL:
        u = object.__new__(URL)
        for name in URL.__slots__:
            object.__setattr__(u, name, changes.get(name, getattr(self, name)))
        return u

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("URL is immutable; use copy_with()")

    def _text(self, userinfo: str) -> str:
        out = f"{self.scheme}://{userinfo}{self.netloc}{self.target}"
        return f"{out}#{self.fragment}" if self.fragment else out

    def __str__(self) -> str:
        """The URL with its userinfo, if any, shown as ``***@``: never the credentials."""
        return self._text("" if self.username is None else f"{REDACTED}@")

    def __repr__(self) -> str:
        """Secret query values masked too (``redact_url``); ``str`` keeps them, as
        it is the URL a program fetches next (httpx's reprs mask, its str keeps)."""
        return f"URL({redact_url(self)!r})"

    def _key(self) -> tuple:
        return (self._text(""), self.username, self.password)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, str):
            try:
                other = URL.parse(other)
            except InvalidRequest:
                return False
        return isinstance(other, URL) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())


@lru_cache(maxsize=512)
def _parse_cached(text: str) -> URL:
    url = text.strip(" ")
    if _has_control(url):
        raise InvalidRequest(
            "URL contains a control character (CR, LF, NUL, TAB, ...)", url=repr(redact_url(url))
        )
    scheme, sep, rest = url.partition("://")
    if not sep:
        named = _SCHEME.match(url)
        if named and not url[named.end() :][:1].isdigit():
            # "data:...", "javascript:...", "mailto:...": a scheme, not host:port;
            # in "user:pw@host" it is a user name, not to be echoed.
            scheme = "" if "@" in url else f" {named.group(1).lower()!r}"
            raise InvalidRequest(f"unsupported URL scheme{scheme}: only http and https", url=url)
        # No scheme at all ("localhost:8000/x"): assume http, as curl does.
        scheme, rest = "http", url
    scheme = scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise InvalidRequest(f"unsupported URL scheme {scheme!r}: only http and https", url=url)

    # The authority ends at the first "/", "?" or "#" (RFC 3986 section 3.2).
    end = len(rest)
    for delim in "/?#":
        i = rest.find(delim)
        if i != -1 and i < end:
            end = i
    authority, remainder = rest[:end], rest[end:]

    username = password = None
    # rpartition: linear even for an authority made of thousands of "@".
    userinfo, at, hostport = authority.rpartition("@")
    if at:
        from urllib.parse import unquote

        user, colon, pw = userinfo.partition(":")
        username, password = unquote(user), (unquote(pw) if colon else None)
    if " " in hostport:
        raise InvalidRequest("URL host contains a space", url=url)

    if hostport.startswith("["):
        close = hostport.find("]")
        host = hostport[: close + 1] if close != -1 else hostport
        port_text = hostport[close + 1 :] if close != -1 else ""
        if port_text and not port_text.startswith(":"):
            raise InvalidRequest("unexpected text after the IPv6 literal", url=url)
        port_text = port_text[1:]
    else:
        host, _, port_text = hostport.partition(":")
    if port_text:
        if not port_text.isdigit() or not port_text.isascii() or not 0 < int(port_text) < 65536:
            if "@" in remainder:
                # Most likely "user:pa/ss@host": the "port" is part of a password.
                raise InvalidRequest(
                    "invalid port (percent-encode any '/', '?' or '#' in a user name or password)",
                    url=url,
                )
            raise InvalidRequest(f"invalid port {port_text!r}", url=url)
        port = int(port_text)
    else:
        port = DEFAULT_PORTS[scheme]

    remainder, _, fragment = remainder.partition("#")
    path, _, query = remainder.partition("?")

    u = object.__new__(URL)
    values = {
        "scheme": scheme,
        "host": _encode_host(host, url),
        "port": port,
        "path": quote(path, safe=_PATH_SAFE) or "/",
        "query": quote(query, safe=_QUERY_SAFE),
        "fragment": fragment,
        "username": username,
        "password": password,
    }
    for name, value in values.items():
        object.__setattr__(u, name, value)
    return u
