"""Cookies (RFC 6265): parsing ``Set-Cookie``, the storage policy, the ``Cookie``
header, and the Netscape ``cookies.txt`` format. Pure logic: the time comes from
the ``clock`` the jar is given (the client passes ``time.time``).

>>> t = [1000.0]
>>> jar = CookieJar(clock=lambda: t[0])
>>> jar.store("http://127.0.0.1/login", ["sid=abc; Path=/; Max-Age=60; HttpOnly"])
[Cookie(name='sid', domain='127.0.0.1', path='/', flags='HttpOnly')]
>>> jar.header_for("http://127.0.0.1/whoami")
CookieHeader(value='sid=abc', names=['sid'], dropped=0)
>>> t[0] += 61                     # Max-Age is over
>>> jar.header_for("http://127.0.0.1/whoami")
CookieHeader(value='', names=[], dropped=0)

The policy, as browsers apply it:

* A ``Domain`` attribute must domain-match the host (RFC 6265 section 5.3 step
  6) and must not be a public suffix (step 5; ``co.uk``, ``github.io``: the
  ``publicsuffixlist`` package, updated with Mozilla's list). Without one the
  cookie is host-only. An IP address only ever matches itself.
* ``Secure`` cookies are set and sent only over https, or to a loopback host
  (``localhost``, 127.0.0.0/8, ``::1``), which browsers treat as a secure
  context too (draft-ietf-httpbis-rfc6265bis section 5.7); an insecure origin
  cannot overwrite a Secure cookie (the same draft, section 5.7 step 16).
  The ``__Secure-`` and ``__Host-`` name prefixes are enforced (section 4.1.3).
* ``Max-Age`` wins over ``Expires`` (section 5.3 step 3); an expired cookie
  deletes the stored one. ``HttpOnly`` and ``SameSite`` are kept as data: a
  client without scripts or a "site for cookies" has nothing to apply them to.
* Bounds (every byte from a server is untrusted; section 6.1 asks for at least
  these): name plus value at most ``MAX_COOKIE_SIZE`` (4096) bytes, attribute
  values at most 1024 bytes, ``max_per_domain`` (50) cookies per domain,
  ``max_per_site`` (180, as Chrome) per registrable domain (a public suffix and
  one label: a deep host matches every parent domain, 50 each would add up),
  ``max_total`` (3000) in all; past a bound the least recently used cookie goes
  (section 5.3 step 12). A request's ``Cookie`` header carries at most
  ``MAX_COOKIE_HEADER`` (8 KiB) of the jar's cookies, the most specific first
  (host-only, then longer domains, then longer paths): servers refuse heads
  past 8-16 KiB, and a sibling subdomain's cookie bomb would lock a site out.
"""

from __future__ import annotations

import ipaddress
import math
import os
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import suppress
from functools import lru_cache
from typing import NamedTuple

from .urls import URL

#: RFC 6265 section 6.1: at least 4096 bytes per cookie; the draft's 4096 for
#: name plus value and 1024 per attribute value are what browsers enforce.
MAX_COOKIE_SIZE = 4096
MAX_ATTRIBUTE_SIZE = 1024
#: A cookie with more attributes is ignored: a real one has fewer than ten, and
#: each costs work on the event loop (a 64 KiB head of ``;;;;`` would be 64 Ki).
MAX_ATTRIBUTES = 32
#: An ``Expires`` value longer than this is no date (a real one has about 30
#: characters): the section 5.1.1 algorithm tries four patterns per token.
MAX_DATE_SIZE = 128
#: Section 6.1: at least 50 cookies per domain and 3000 in all.
MAX_PER_DOMAIN = 50
#: Per registrable domain (Chrome's 180): a host matches each of its parent
#: domains, and every one of them may hold MAX_PER_DOMAIN.
MAX_PER_SITE = 180
#: The jar's cookies in one request's Cookie header (name=value; ...), in bytes.
MAX_COOKIE_HEADER = 8192
MAX_TOTAL = 3000
#: Max-Age beyond this is cut to it (the draft's 400 days, section 5.5).
MAX_AGE_CAP = 400 * 24 * 3600

NETSCAPE_HEADER = "# Netscape HTTP Cookie File"
_HTTPONLY_PREFIX = "#HttpOnly_"  # curl's mark for an HttpOnly line

_suffixes = None
#: Concurrent first fetches each load the list in a worker thread: one builds
#: it, the others wait for it (each build is ~0.1 s of CPU under the GIL).
_suffixes_lock = threading.Lock()


def public_suffixes():
    """The public suffix list (loaded once per process, about 0.1 s: the client
    loads it in a worker thread before the first cookie that needs it)."""
    global _suffixes
    if _suffixes is None:
        with _suffixes_lock:
            if _suffixes is None:
                from publicsuffixlist import PublicSuffixList

                _suffixes = PublicSuffixList()
    return _suffixes


def needs_public_suffixes(url: URL) -> bool:
    """Whether storing cookies from ``url`` would load the list first (every
    host name needs it, for its registrable domain; an IP address does not)."""
    return _suffixes is None and not _is_ip(url.hostname.lower())


@lru_cache(maxsize=1024)
def registrable_domain(domain: str) -> str:
    """The public suffix of ``domain`` and one label more (``example.co.uk`` for
    ``a.b.example.co.uk``); an IP address, or a name that is a public suffix
    itself (``localhost``), is its own."""
    if _is_ip(domain):
        return domain
    return public_suffixes().privatesuffix(domain) or domain


#: One part of an IPv4 literal in inet_aton's forms (which getaddrinfo, curl
#: and the WHATWG URL parser accept): hex, octal or decimal.
_IPV4_PART = re.compile(r"0[xX][0-9a-fA-F]*|0[0-7]*|[1-9][0-9]*")


@lru_cache(maxsize=1024)
def ipv4_number(host: str) -> int | None:
    """The address of an IPv4 literal in any form inet_aton accepts
    (``127.0.0.1``, ``127.1``, ``127.000.0.1``, ``0x7f.0.0.1``, ``2130706433``;
    one trailing dot allowed), or None. A name such as ``127.1`` connects to
    127.0.0.1: treated as a host name, ``Domain=1`` would share its cookies
    with every ``*.1`` address."""
    parts = host.split(".")
    if len(parts) > 1 and not parts[-1]:
        parts.pop()
    if not 1 <= len(parts) <= 4 or not all(_IPV4_PART.fullmatch(p) for p in parts):
        return None
    numbers = [
        int(p[2:] or "0", 16) if p[:2] in ("0x", "0X") else int(p, 8 if p[0] == "0" else 10)
        for p in parts
    ]
    *head, last = numbers
    if any(n > 255 for n in head) or last >= 256 ** (5 - len(numbers)):
        return None
    number = last
    for i, n in enumerate(head):
        number += n << (24 - 8 * i)
    return number


@lru_cache(maxsize=1024)  # every hop asks of its host: parsing an address costs µs
def _is_ip(host: str) -> bool:
    if ":" not in host:
        return ipv4_number(host) is not None
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


@lru_cache(maxsize=1024)
def is_loopback(host: str) -> bool:
    """Whether ``host`` is this machine: ``localhost`` (and ``*.localhost``,
    RFC 6761 section 6.3), 127.0.0.0/8 (in any of inet_aton's forms) or ``::1``."""
    host = host.lower().rstrip(".")
    if host == "localhost" or host.endswith(".localhost"):
        return True
    number = ipv4_number(host)
    if number is not None:
        return number >> 24 == 127
    try:
        ip = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    mapped = getattr(ip, "ipv4_mapped", None)  # ::ffff:127.0.0.1 is 127.0.0.1
    return (mapped or ip).is_loopback


def domain_match(host: str, domain: str) -> bool:
    """RFC 6265 section 5.1.3: identical, or ``host`` ends with ``.domain`` and
    is a host name (not an IP address)."""
    return host == domain or (
        host.endswith(domain) and host[-len(domain) - 1] == "." and not _is_ip(host)
    )


def default_path(path: str) -> str:
    """RFC 6265 section 5.1.4: the request path up to its last ``/``."""
    if not path.startswith("/") or path.count("/") == 1:
        return "/"
    return path[: path.rindex("/")]


def path_match(request_path: str, cookie_path: str) -> bool:
    """RFC 6265 section 5.1.4."""
    if request_path == cookie_path:
        return True
    return request_path.startswith(cookie_path) and (
        cookie_path.endswith("/") or request_path[len(cookie_path)] == "/"
    )


# RFC 6265 section 5.1.1: the cookie-date algorithm (lenient, as browsers are).
_DELIMITER = re.compile(r"[\x09\x20-\x2f\x3b-\x40\x5b-\x60\x7b-\x7e]+")
_TIME = re.compile(r"(\d{1,2}):(\d{1,2}):(\d{1,2})(?:\D|$)")
_DAY = re.compile(r"(\d{1,2})(?:\D|$)")
_YEAR = re.compile(r"(\d{2,4})(?:\D|$)")
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")


def parse_cookie_date(text: str) -> float | None:
    """Seconds since the epoch (UTC) of an ``Expires`` value, or None."""
    if len(text) > MAX_DATE_SIZE:
        return None  # before the per-token work: a hostile value costs nothing
    found_time = day = month = year = None
    for token in _DELIMITER.split(text):
        if not token:
            continue
        if found_time is None and (m := _TIME.match(token)):
            found_time = tuple(int(g) for g in m.groups())
        elif day is None and (m := _DAY.match(token)):
            day = int(m.group(1))
        elif month is None and token[:3].lower() in _MONTHS:
            month = _MONTHS.index(token[:3].lower()) + 1
        elif year is None and (m := _YEAR.match(token)):
            year = int(m.group(1))
    if None in (found_time, day, month, year):
        return None
    if 70 <= year <= 99:
        year += 1900
    elif 0 <= year <= 69:
        year += 2000
    hour, minute, second = found_time
    if not 1 <= day <= 31 or year < 1601 or hour > 23 or minute > 59 or second > 59:
        return None
    # Days from the civil date (no datetime: it would refuse year 10000).
    y = year - (month <= 2)
    era, yoe = divmod(y, 400)
    doy = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    days = era * 146097 + (yoe * 365 + yoe // 4 - yoe // 100) + doy - 719468
    return float(days * 86400 + hour * 3600 + minute * 60 + second)


#: rfc6265bis section 5.6 step 2: a cookie with a control character is ignored
#: (and could not be sent again: h11 refuses them in a field value).
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


def _valid_pair(name: str, value: str) -> bool:
    """Whether a cookie's name and value can be stored and sent (the rule of
    the Set-Cookie path, for ``set()`` and cookies.txt too): a name without
    ``=``, ``;`` or whitespace, no control character (rfc6265bis 5.6 step 2),
    no ``;`` in the value (it would be a second cookie in the Cookie header:
    ``x; admin=1``), at most ``MAX_COOKIE_SIZE`` in all."""
    return (
        bool(name)
        and len(name) + len(value) <= MAX_COOKIE_SIZE
        and ";" not in value
        and not _CONTROL.search(value)
        and not _BAD_NAME.search(name)
    )


_BAD_NAME = re.compile(r"[\x00-\x20\x7f=;]")  # controls, space, and the separators


class Cookie:
    """One stored cookie (RFC 6265 section 5.3's fields). ``expires`` is seconds
    since the epoch, or None for a session cookie. Its repr never shows the value."""

    __slots__ = (
        "name",
        "value",
        "domain",
        "path",
        "expires",
        "host_only",
        "secure",
        "http_only",
        "same_site",
        "created",
    )

    def __init__(
        self,
        name: str,
        value: str,
        domain: str,
        path: str = "/",
        *,
        expires: float | None = None,
        host_only: bool = True,
        secure: bool = False,
        http_only: bool = False,
        same_site: str | None = None,
        created: float = 0.0,
    ):
        self.name = name
        self.value = value
        self.domain = domain
        self.path = path
        self.expires = expires
        self.host_only = host_only
        self.secure = secure
        self.http_only = http_only
        self.same_site = same_site
        self.created = created

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.domain, self.path, self.name)

    @property
    def flags(self) -> str:
        """``Secure``, ``HttpOnly``, ``SameSite=...``, as text."""
        flags = [f for f, on in (("Secure", self.secure), ("HttpOnly", self.http_only)) if on]
        if self.same_site:
            flags.append(f"SameSite={self.same_site}")
        return " ".join(flags)

    def describe(self) -> dict:
        """What an event may carry: everything but the value."""
        return {
            "name": self.name,
            "domain": self.domain,
            "path": self.path,
            "host_only": self.host_only,
            "flags": self.flags,
            "expires": self.expires,
        }

    def __repr__(self) -> str:
        return (
            f"Cookie(name={self.name!r}, domain={self.domain!r}, path={self.path!r}, "
            f"flags={self.flags!r})"
        )


def parse_set_cookie(
    header: str, url: URL, now: float, suffixes: Callable[[], object] = public_suffixes
) -> Cookie | None:
    """The cookie a ``Set-Cookie`` value sets for a response from ``url``
    (RFC 6265 sections 5.2 and 5.3), or None when the policy ignores it.
    An expired cookie (``Max-Age=0``) is returned: storing it deletes."""
    pair, _, rest = header.partition(";")
    name, eq, value = pair.partition("=")
    name, value = name.strip(" \t"), value.strip(" \t")
    if not eq or not _valid_pair(name, value):
        return None
    if rest.count(";") >= MAX_ATTRIBUTES:
        return None
    attrs: dict[str, str] = {}
    for av in rest.split(";") if rest else ():
        key, _, val = av.partition("=")
        key, val = key.strip(" \t").lower(), val.strip(" \t")
        if len(val) <= MAX_ATTRIBUTE_SIZE:
            attrs[key] = val  # the last of each wins (section 5.3 step 1)
    host = url.hostname.lower()
    expires = None
    if "max-age" in attrs and re.fullmatch(r"-?\d+", attrs["max-age"]):
        # Clamped both ways: -<400 digits> is no float; <= 0 means "expired now"
        # (rfc6265bis 5.6.2), and past the cap is the cap (5.5).
        expires = now + max(0, min(int(attrs["max-age"]), MAX_AGE_CAP))
    elif "expires" in attrs:
        expires = parse_cookie_date(attrs["expires"])
        if expires is not None:
            expires = min(expires, now + MAX_AGE_CAP)
    domain = attrs.get("domain", "").lstrip(".").lower()
    host_only = True
    if domain and _is_ip(host):
        if domain != host:
            return None  # an IP address only ever matches itself (5.1.3): host-only
    elif domain:
        if suffixes().is_public(domain):
            if domain != host:
                return None  # Domain=co.uk: for every site under it (step 5)
        elif not domain_match(host, domain):
            return None  # for another host (step 6)
        else:
            host_only = False
    path = attrs.get("path", "")
    if not path.startswith("/"):
        path = default_path(url.path)
    secure = "secure" in attrs
    if secure and not _secure(url):
        return None
    if name.startswith("__Secure-") and not secure:
        return None
    if name.startswith("__Host-") and not (secure and host_only and path == "/"):
        return None
    same_site = attrs.get("samesite")
    if same_site is not None:
        same_site = (
            same_site.capitalize() if same_site.lower() in ("strict", "lax", "none") else None
        )
    return Cookie(
        name,
        value,
        host if host_only else domain,
        path,
        expires=expires,
        host_only=host_only,
        secure=secure,
        http_only="httponly" in attrs,
        same_site=same_site,
        created=now,
    )


class CookieJar:
    """The cookies of a client: a mapping of names to values for reading
    (``jar["sid"]``, ``"sid" in jar``, ``dict(jar)``: the first cookie of that
    name when several domains or paths have one), ``cookies()`` for every stored
    ``Cookie``, ``set()``, ``delete()``, ``clear()``, ``save()`` and ``load()``
    of a Netscape ``cookies.txt`` (curl's and wget's format).

    ``clock()`` gives the time in seconds since the epoch."""

    def __init__(
        self,
        *,
        clock: Callable[[], float],
        max_per_domain: int = MAX_PER_DOMAIN,
        max_per_site: int = MAX_PER_SITE,
        max_total: int = MAX_TOTAL,
    ):
        self.clock = clock
        self.max_per_domain = max_per_domain
        self.max_per_site = max_per_site
        self.max_total = max_total
        # Least recently used first (section 5.3 step 12 evicts in that order);
        # the per-domain index finds a host's cookies without a scan of all.
        self._cookies: OrderedDict[tuple, Cookie] = OrderedDict()
        self._domains: dict[str, OrderedDict[tuple, None]] = {}
        self._sites: dict[str, OrderedDict[tuple, None]] = {}  # by registrable domain
        # Names of the Secure cookies: an insecure origin's cookie is checked
        # against these only (rfc6265bis 5.7 step 16), not against every cookie.
        self._secure: dict[str, set[tuple]] = {}

    # -- storing -------------------------------------------------------------------
    def store(self, url: str | URL, headers: Iterable[str]) -> list[Cookie]:
        """Apply the ``Set-Cookie`` values of a response from ``url``; the cookies
        stored (deletions, by an expired cookie, included)."""
        url = URL.parse(url) if isinstance(url, str) else url
        now = self.clock()
        if len(self._cookies) >= self.max_total:
            for key in [k for k, c in self._cookies.items() if _expired(c, now)]:
                self._remove(key)
        stored = []
        secure_origin = _secure(url)
        for header in headers:
            try:
                cookie = parse_set_cookie(header, url, now)
            except Exception:  # a server's cookie never fails the fetch:
                cookie = None  # whatever went wrong with it, it is ignored (5.2)
            if cookie is not None and self._add(cookie, now, secure_origin):
                stored.append(cookie)
        # Once per response, not per cookie: a flood of thousands stays linear.
        self._evict({c.domain for c in stored}, now)
        return stored

    def _add(self, cookie: Cookie, now: float, secure_origin: bool = True) -> bool:
        if not secure_origin and self._shadows_secure(cookie):
            return False
        old = self._cookies.get(cookie.key)
        if old is not None:
            cookie.created = old.created  # section 5.3 step 11.2
            self._remove(old.key)
        if _expired(cookie, now):
            return old is not None  # a deletion (section 5.3 step 11.3)
        self._cookies[cookie.key] = cookie
        self._domains.setdefault(cookie.domain, OrderedDict())[cookie.key] = None
        self._sites.setdefault(registrable_domain(cookie.domain), OrderedDict())[cookie.key] = None
        if cookie.secure:
            self._secure.setdefault(cookie.name, set()).add(cookie.key)
        return True

    def _shadows_secure(self, cookie: Cookie) -> bool:
        """rfc6265bis 5.7 step 16 ("leave Secure cookies alone"): from an insecure
        origin, no cookie may replace or shadow a Secure one of the same name
        whose domain domain-matches its domain (or the reverse) and whose path
        its path matches: a longer path would be sent first, a parent domain's
        to the same hosts."""
        for domain, path, _ in self._secure.get(cookie.name, ()):
            if (
                domain_match(domain, cookie.domain) or domain_match(cookie.domain, domain)
            ) and path_match(cookie.path, path):
                return True
        return False

    def _remove(self, key: tuple) -> None:
        del self._cookies[key]
        site = registrable_domain(key[0])
        del self._sites[site][key]
        if not self._sites[site]:
            del self._sites[site]
        secure = self._secure.get(key[2])
        if secure is not None:
            secure.discard(key)
            if not secure:
                del self._secure[key[2]]
        keys = self._domains[key[0]]
        del keys[key]
        if not keys:
            del self._domains[key[0]]

    def _evict(self, domains: Iterable[str], now: float) -> None:
        """Section 5.3 step 12: expired cookies first, then the least recently
        used of each of ``domains`` over its bound, of their registrable
        domains over theirs, then of all. Non-Secure cookies go before Secure
        ones (as Chrome): plain-http siblings flooding a site must not push out
        its Secure session cookie, and then set their own under its name."""
        domains = set(domains)
        for index, names, bound in (
            (self._domains, domains, self.max_per_domain),
            (self._sites, {registrable_domain(d) for d in domains}, self.max_per_site),
        ):
            for name in names:
                keys = index.get(name)
                if keys is None or len(keys) <= bound:
                    continue
                for key in [k for k in keys if _expired(self._cookies[k], now)]:
                    self._remove(key)
                keys = index.get(name)
                while keys and len(keys) > bound:
                    self._remove(self._least_recent(keys))
        while len(self._cookies) > self.max_total:
            self._remove(self._least_recent(self._cookies))

    def _least_recent(self, keys) -> tuple:
        """The least recently used non-Secure key of ``keys`` (in use order),
        or its least recently used Secure one when all are Secure."""
        cookies = self._cookies
        return next((k for k in keys if not cookies[k].secure), None) or next(iter(keys))

    def set(
        self,
        name: str,
        value: str,
        domain: str,
        path: str = "/",
        *,
        expires: float | None = None,
        secure: bool = False,
        http_only: bool = False,
        same_site: str | None = None,
        include_subdomains: bool = False,
    ) -> Cookie:
        """Store a cookie for ``domain`` (a host; with ``include_subdomains`` its
        subdomains too) as if a server had set it; bounded like the others."""
        if not isinstance(name, str) or not isinstance(value, str) or not _valid_pair(name, value):
            raise ValueError(
                f"invalid cookie {name!r}: a name without '=', ';' or whitespace, a value"
                f" without ';' or control characters, at most {MAX_COOKIE_SIZE} bytes in all"
            )
        if not domain or _CONTROL.search(domain + path) or any(c in domain for c in " \t;,"):
            raise ValueError(f"invalid cookie domain {domain!r} or path {path!r}")
        if not path.startswith("/") or ";" in path:
            raise ValueError(f"a cookie's path starts with '/' and has no ';', not {path!r}")
        if expires is not None and not _finite(expires):
            raise ValueError(f"expires= takes seconds since the epoch or None, not {expires!r}")
        cookie = Cookie(
            name,
            value,
            domain.lstrip(".").lower(),
            path,
            expires=expires,
            host_only=not include_subdomains,
            secure=secure,
            http_only=http_only,
            same_site=same_site,
            created=self.clock(),
        )
        self._add(cookie, cookie.created)
        self._evict([cookie.domain], cookie.created)
        return cookie

    # -- sending --------------------------------------------------------------------
    def matching(self, url: str | URL) -> list[Cookie]:
        """The cookies to send to ``url``, in section 5.4's order (longer paths
        first, then older first); marks them used."""
        url = URL.parse(url) if isinstance(url, str) else url
        now = self.clock()
        host = url.hostname.lower()
        secure = _secure(url)
        labels = host.split(".")
        candidates = [host] if _is_ip(host) else [".".join(labels[i:]) for i in range(len(labels))]
        found = []
        for domain in candidates:
            for key in list(self._domains.get(domain, ())):
                c = self._cookies[key]
                if _expired(c, now):
                    self._remove(key)
                elif (
                    (not c.host_only or c.domain == host)
                    and path_match(url.path or "/", c.path)
                    and (secure or not c.secure)
                ):
                    found.append(c)
        found.sort(key=lambda c: (-len(c.path), c.created))
        for c in found:
            self._cookies.move_to_end(c.key)
            self._domains[c.domain].move_to_end(c.key)
            self._sites[registrable_domain(c.domain)].move_to_end(c.key)
        return found

    def header_for(
        self, url: str | URL, extra: Mapping[str, str] | None = None, skip: Iterable[str] = ()
    ) -> CookieHeader:
        """``cookie_header()`` of the cookies ``matching(url)``."""
        return cookie_header(self.matching(url), extra, skip)

    # -- reading --------------------------------------------------------------------
    def cookies(self) -> list[Cookie]:
        """Every cookie that has not expired."""
        now = self.clock()
        return [c for c in self._cookies.values() if not _expired(c, now)]

    @property
    def empty(self) -> bool:
        """No cookie stored (expired ones included): the fast path of every hop."""
        return not self._cookies

    def __len__(self) -> int:
        return len(self.cookies())

    def __iter__(self) -> Iterator[str]:
        return iter(dict.fromkeys(c.name for c in self.cookies()))

    def __contains__(self, name: object) -> bool:
        return any(c.name == name for c in self.cookies())

    def __getitem__(self, name: str) -> str:
        for c in self.cookies():
            if c.name == name:
                return c.value
        raise KeyError(name)

    def get(self, name: str, default: str | None = None) -> str | None:
        try:
            return self[name]
        except KeyError:
            return default

    def keys(self) -> list[str]:
        return list(self)

    def items(self) -> list[tuple[str, str]]:
        return [(name, self[name]) for name in self]

    def delete(self, name: str, domain: str | None = None, path: str | None = None) -> int:
        """Remove the cookies called ``name`` (of ``domain`` and ``path`` if given);
        how many were removed."""
        keys = [
            k
            for k in self._cookies
            if k[2] == name and domain in (None, k[0]) and path in (None, k[1])
        ]
        for key in keys:
            self._remove(key)
        return len(keys)

    def clear(self, domain: str | None = None) -> None:
        """Remove every cookie, or those of ``domain``."""
        if domain is None:
            self._cookies.clear()
            self._domains.clear()
            self._sites.clear()
            self._secure.clear()
        else:
            for key in list(self._domains.get(domain.lower(), ())):
                self._remove(key)

    def __repr__(self) -> str:
        # Names only: values are credentials (core.redact).
        return f"<CookieJar {len(self)} cookies: {', '.join(self) or '-'}>"

    # -- cookies.txt --------------------------------------------------------------------
    def dumps(self) -> str:
        """The Netscape ``cookies.txt`` text (domain, subdomains, path, secure,
        expiry, name, value; session cookies with expiry 0, as curl writes them)."""
        lines = [
            NETSCAPE_HEADER,
            "# Written by nbfetch: it holds credentials, keep it private.",
            "",
        ]
        for c in self.cookies():
            domain = c.domain if c.host_only else f".{c.domain}"
            lines.append(
                "\t".join(
                    (
                        f"{_HTTPONLY_PREFIX if c.http_only else ''}{domain}",
                        "FALSE" if c.host_only else "TRUE",
                        c.path,
                        "TRUE" if c.secure else "FALSE",
                        str(int(c.expires or 0)),
                        c.name,
                        c.value,
                    )
                )
            )
        return "\n".join(lines) + "\n"

    def loads(self, text: str) -> int:
        """Add the cookies of a Netscape ``cookies.txt`` text (bounded like the
        others; malformed and expired lines skipped); how many were added."""
        now = self.clock()
        added = 0
        for line in text.splitlines():
            http_only = line.startswith(_HTTPONLY_PREFIX)
            if http_only:
                line = line[len(_HTTPONLY_PREFIX) :]
            elif line.startswith("#") or not line.strip():
                continue
            fields = line.rstrip("\r").split("\t")
            if len(fields) != 7 or not fields[4].isdigit() or not fields[5]:
                continue
            domain, subdomains, path, secure, expiry, name, value = fields
            if not _valid_pair(name, value) or not path.startswith("/") or ";" in path:
                continue
            if _CONTROL.search(domain + path):
                continue
            expires = float(expiry) or None  # 400 digits are inf: skipped, dumps() would fail
            if expires is not None and (expires <= now or not math.isfinite(expires)):
                continue
            cookie = Cookie(
                name,
                value,
                domain.lstrip(".").lower(),
                path,
                expires=expires,
                host_only=subdomains != "TRUE",
                secure=secure == "TRUE",
                http_only=http_only,
                created=now,
            )
            added += self._add(cookie, now)
            self._evict([cookie.domain], now)
        return added

    def save(self, path) -> None:
        """Write ``dumps()`` to ``path``, readable by its owner only (0600),
        atomically: a temporary file beside it (mkstemp makes it 0600 whatever
        the old file's mode was) replaces it only once fully written, so a
        failure leaves the old file as it was."""
        import tempfile  # only here: importing it costs ~5 ms

        text = self.dumps()
        fd, temporary = tempfile.mkstemp(
            dir=os.path.dirname(os.path.abspath(path)), prefix=".cookies-", suffix=".tmp"
        )
        try:
            with open(fd, "w", encoding="utf-8") as f:
                f.write(text)
            os.replace(temporary, path)
        except BaseException:
            with suppress(OSError):
                os.unlink(temporary)
            raise

    def load(self, path) -> int:
        """``loads()`` the file ``path``."""
        with open(path, encoding="utf-8") as f:
            return self.loads(f.read(16 * 1024 * 1024))


def _finite(value: object) -> bool:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an int past any float: no time either
        return False


def _expired(cookie: Cookie, now: float) -> bool:
    return cookie.expires is not None and cookie.expires <= now


def _secure(url: URL) -> bool:
    return url.scheme == "https" or is_loopback(url.hostname)


class CookieHeader(NamedTuple):
    """A ``Cookie`` header value, the names in it, and how many of the jar's
    matching cookies were left out to keep it within ``MAX_COOKIE_HEADER``."""

    value: str
    names: list[str]
    dropped: int


def _keep_first(c: Cookie) -> tuple:
    """Which cookies a bounded header keeps first: Secure, host-only, longer
    domains, longer paths (the sort is stable: older first among equals)."""
    return (not c.secure, not c.host_only, -len(c.domain), -len(c.path))


def cookie_header(
    cookies: Iterable[Cookie],
    extra: Mapping[str, str] | None = None,
    skip: Iterable[str] = (),
    limit: int = MAX_COOKIE_HEADER,
) -> CookieHeader:
    """A ``Cookie`` header value (RFC 6265 section 5.4) and the names in it:
    ``extra`` (a fetch's own ``cookies=``) first, then ``cookies`` whose names
    are neither in ``extra`` (its values win) nor in ``skip``, as many as fit in
    ``limit`` bytes, the most specific kept first (host-only, longer domains,
    longer paths, older: a parent domain's flood cannot push a host's own out),
    Secure ones before all others (plain-http siblings cannot crowd a site's
    Secure session cookie out of the header)."""
    skip = set(skip)
    pairs = []
    for name, value in (extra or {}).items():
        if name not in skip:
            skip.add(name)
            pairs.append((name, value))
    candidates = [c for c in cookies if c.name not in skip]
    room, kept = limit, set()
    for c in sorted(candidates, key=_keep_first):
        size = len(c.name) + len(c.value) + 3  # "; " and "="
        if size <= room:
            room -= size
            kept.add(c.key)
    pairs += [(c.name, c.value) for c in candidates if c.key in kept]  # section 5.4's order
    return CookieHeader(
        "; ".join(f"{n}={v}" for n, v in pairs), [n for n, _ in pairs], len(candidates) - len(kept)
    )


# RFC 6265 section 4.1.1: cookie-name is a token; cookie-octet excludes
# controls, whitespace, DQUOTE, comma, semicolon and backslash.
_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_VALUE = re.compile(r'"?[\x21\x23-\x2b\x2d-\x3a\x3c-\x5b\x5d-\x7e]*"?')


def checked_cookies(cookies: object) -> dict[str, str]:
    """``cookies`` (a mapping of names to values given by the caller) as a dict,
    or ``ValueError`` saying which one could not be sent: a ``;`` in a value
    would smuggle another cookie into the header."""
    if not isinstance(cookies, Mapping):
        raise ValueError(
            f"cookies= takes a mapping of names to values, not {type(cookies).__name__}"
        )
    checked = {}
    for name, value in cookies.items():
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise ValueError(f"invalid cookie name {name!r}")
        if not isinstance(value, str) or not _VALUE.fullmatch(value):
            raise ValueError(f"the value of cookie {name!r} has characters a cookie cannot hold")
        checked[name] = value
    return checked


def cookie_names(header: str) -> list[str]:
    """The names in a ``Cookie`` header value (RFC 6265 section 4.2.1)."""
    return [n.strip() for n, _, _ in (p.partition("=") for p in header.split(";")) if n.strip()]
