"""What nbfetch never writes as text: the one place that knows what is secret.

Every writer of text (``str`` and ``repr`` of a ``URL``, ``FetchError``, event
reprs, HAR, ``events_frame``, the notebook views, the CLI, log records) goes
through these functions, so a new kind of secret is added here once.

* Userinfo (``user:password@``) in a URL is shown as ``***@``, never as text.
  The user name goes too: tokens are often passed as the user name
  (``https://TOKEN@host/``). The marker stays so a reader sees that credentials
  were sent. The parsed ``URL`` keeps the real userinfo: Basic auth is built from
  it, and only its text forms are redacted.
* Query parameters whose names mark them as credentials (``api_key``,
  ``token``, ``signature``, ... : ``is_secret_name``) are shown as ``name=***``.
* ``SENSITIVE_HEADERS`` hold credentials: their values are hidden in exports
  (HAR), in ``Headers`` reprs and in the notebook views unless the caller asks
  to keep them.
* ``Secrets`` remembers the values a request sent (credentials in headers,
  userinfo, secret query values) and scrubs them from any text, whatever
  carries them: a server that echoes the request (``/get``) cannot make a saved
  notebook show them.

>>> redact_url("http://user:secret@[bad/x")         # one the parser rejects, too
'http://***@[bad/x'
>>> redact_url("http://127.0.0.1/get?page=2&api_key=abc123")
'http://127.0.0.1/get?page=2&api_key=***'
>>> redact_header("Authorization", "Basic dXNlcjpzZWNyZXQ=")
'Basic ***'
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import unquote_plus

REDACTED = "***"

#: Header fields whose values are credentials (RFC 9110 11.6.2, 11.7.2; RFC 6265).
SENSITIVE_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie"})
#: Header fields whose values are URLs: their userinfo is redacted wherever shown.
URL_HEADERS = frozenset({"location", "content-location", "referer"})


#: Words that, as a query parameter's name or a part of it (``X-Api-Key``,
#: ``access_token``, ``sig``), mark its value as a credential.
SECRET_NAME_WORDS = frozenset(
    {
        "token",
        "key",
        "apikey",
        "secret",
        "password",
        "passwd",
        "pwd",
        "signature",
        "sig",
        "auth",
        "credential",
        "credentials",
        "session",
        "sessionid",
    }
)
_NAME_WORDS = re.compile(r"[A-Za-z][a-z]*|[0-9]+")
# A query parameter: RFC 3986 section 3.4 leaves its syntax to the application;
# "&" (or ";") separated name=value pairs are the HTML form convention.
_QUERY_PAIR = re.compile(r"([^&;=#]*)=([^&;#]*)")


def is_secret_name(name: str) -> bool:
    """Whether a parameter called ``name`` holds a credential: one of its words
    (split at ``_``, ``-``, ``.`` and camelCase) is in ``SECRET_NAME_WORDS``.

    >>> [is_secret_name(n) for n in ("api_key", "X-Amz-Signature", "accessToken", "keyword")]
    [True, True, True, False]
    """
    words = [w.lower() for w in _NAME_WORDS.findall(unquote_plus(name))]
    return any(w in SECRET_NAME_WORDS for w in words) or "".join(words) in SECRET_NAME_WORDS


def _redact_query(text: str) -> str:
    before, q, rest = text.partition("?")
    if not q:
        return text
    query, hash_, fragment = rest.partition("#")

    def mask(m: re.Match) -> str:
        name, value = m.group(1), m.group(2)
        return f"{name}={REDACTED}" if value and is_secret_name(name) else m.group(0)

    return f"{before}?{_QUERY_PAIR.sub(mask, query)}{hash_}{fragment}"


def redact_url(url: object) -> str:
    """The text of ``url`` (a ``URL`` or any string, valid or not) with its
    userinfo replaced by ``***`` and the values of secret-named query
    parameters (``is_secret_name``) too."""
    return _redact_query(_redact_userinfo(str(url)))


def _redact_userinfo(text: str) -> str:
    scheme, sep, rest = text.partition("://")
    if not sep:
        scheme, rest = "", text  # no scheme: the parser reads it as an authority
    # RFC 3986 section 3.2: the authority ends at the first "/", "?" or "#".
    end = min((i for i in map(rest.find, "/?#") if i != -1), default=len(rest))
    authority = rest[:end]
    at = authority.rfind("@")
    if at == -1:
        if "@" not in rest or not _bad_port(authority):
            return text
        # "user:pa/ss@host": a password with an unencoded "/", "?" or "#" ends
        # the authority early, so the parser saw the port "pa" and refused it.
        at = rest.rfind("@")
    return f"{scheme}{sep}{REDACTED}@{rest[at + 1 :]}"


def _bad_port(authority: str) -> bool:
    if authority.startswith("["):  # an IPv6 literal has colons of its own
        return False
    _, colon, port = authority.rpartition(":")
    return bool(colon) and not port.isdigit()


def redact_header(name: str, value: str, hidden: frozenset[str] = SENSITIVE_HEADERS) -> str:
    """``value`` as text may show it: the credentials of a header in ``hidden``
    are replaced (the authentication scheme stays: ``Basic ***``), and the
    userinfo of a URL-valued header is always redacted."""
    lowered = name.lower()
    if lowered in hidden:
        if lowered in ("authorization", "proxy-authorization"):
            scheme, space, _ = value.strip().partition(" ")
            return f"{scheme} {REDACTED}" if space else REDACTED
        return REDACTED
    if lowered in URL_HEADERS:
        return redact_url(value)
    return value


def redact_headers(
    items: Iterable[tuple[str, str]], hidden: frozenset[str] = SENSITIVE_HEADERS
) -> list[tuple[str, str]]:
    """``redact_header`` over (name, value) pairs."""
    return [(name, redact_header(name, value, hidden)) for name, value in items]


#: Shorter values are not scrubbed from text: "1" or "on" would mask half a page.
MIN_SECRET_LENGTH = 4


class Secrets:
    """The secret values one request sent, to scrub from text shown or saved.

    >>> s = Secrets()
    >>> s.add_url("http://u:hunter22@127.0.0.1/get?api_key=abc123")
    >>> s.add_headers([("Authorization", "Bearer tok-9f8e")])
    >>> s.scrub('{"args": {"api_key": "abc123"}, "Authorization": "Bearer tok-9f8e"}')
    '{"args": {"api_key": "***"}, "Authorization": "Bearer ***"}'
    """

    __slots__ = ("_pattern", "_values")

    def __init__(self) -> None:
        self._values: set[str] = set()
        self._pattern: re.Pattern | None = None

    def __bool__(self) -> bool:
        return bool(self._values)

    def add(self, value: str) -> None:
        """Scrub ``value`` (if it is long enough to mean something) from now on."""
        value = value.strip()
        if len(value) >= MIN_SECRET_LENGTH and value not in self._values:
            self._values.add(value)
            # Longest first, so a value that contains another is masked whole.
            alternatives = sorted(self._values, key=len, reverse=True)
            self._pattern = re.compile("|".join(map(re.escape, alternatives)))

    def add_url(self, url: object) -> None:
        """The userinfo and the secret query values of ``url`` (text or ``URL``)."""
        username, password = getattr(url, "username", None), getattr(url, "password", None)
        text = str(url) if username is None else ""
        if text:  # a string: take its userinfo apart the way the parser does
            rest = text.partition("://")[2] or text
            end = min((i for i in map(rest.find, "/?#") if i != -1), default=len(rest))
            userinfo, at, _ = rest[:end].rpartition("@")
            if at:
                username, _, password = userinfo.partition(":")
        for part in (username, password):
            if part:
                self.add(part)
                self.add(unquote_plus(part))
        query = getattr(url, "query", None)
        if query is None:
            query = str(url).partition("?")[2].partition("#")[0]
        for m in _QUERY_PAIR.finditer(query):
            if is_secret_name(m.group(1)) and m.group(2):
                self.add(m.group(2))
                self.add(unquote_plus(m.group(2)))

    def add_headers(self, items: Iterable[tuple[str, str]]) -> None:
        """The credentials of the ``SENSITIVE_HEADERS`` among ``items``: the
        whole value and, for ``Authorization``, the part after the scheme; each
        cookie value of a ``Cookie`` header (RFC 6265 section 4.2.1)."""
        for name, value in items:
            lowered = name.lower()
            if lowered in ("authorization", "proxy-authorization"):
                self.add(value.strip().partition(" ")[2] or value)
            elif lowered == "cookie":
                for pair in value.split(";"):
                    self.add(pair.partition("=")[2])
            elif lowered == "set-cookie":
                self.add(value.partition(";")[0].partition("=")[2])

    def scrub(self, text: str) -> str:
        """``text`` with every remembered value replaced by ``***``."""
        if self._pattern is None or not text:
            return text
        return self._pattern.sub(REDACTED, text)
