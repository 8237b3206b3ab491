"""What nbfetch never writes as text: the one place that knows what is secret.

Every writer of text (``str`` and ``repr`` of a ``URL``, ``FetchError``, event
reprs, HAR, ``events_frame``, the notebook views, the CLI, log records) goes
through these functions, so a new kind of secret is added here once.

* Userinfo (``user:password@``) in a URL is shown as ``***@``, never as text.
  The user name goes too: tokens are often passed as the user name
  (``https://TOKEN@host/``). The marker stays so a reader sees that credentials
  were sent. The parsed ``URL`` keeps the real userinfo: Basic auth is built from
  it, and only its text forms are redacted.
* ``SENSITIVE_HEADERS`` hold credentials: their values are hidden in exports
  (HAR) and in ``Headers`` reprs unless the caller asks to keep them.

>>> redact_url("http://user:secret@[bad/x")         # one the parser rejects, too
'http://***@[bad/x'
>>> redact_header("Authorization", "Basic dXNlcjpzZWNyZXQ=")
'Basic ***'
"""

from __future__ import annotations

from collections.abc import Iterable

REDACTED = "***"

#: Header fields whose values are credentials (RFC 9110 11.6.2, 11.7.2; RFC 6265).
SENSITIVE_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie"})
#: Header fields whose values are URLs: their userinfo is redacted wherever shown.
URL_HEADERS = frozenset({"location", "content-location", "referer"})


def redact_url(url: object) -> str:
    """The text of ``url`` (a ``URL`` or any string, valid or not) with its
    userinfo replaced by ``***``."""
    text = str(url)
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
