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
* ``SENSITIVE_HEADERS``, and fields with a secret name (``X-Api-Key``), hold
  credentials: their values are hidden in exports (HAR), in ``Headers`` reprs,
  in ``-i`` text and in the notebook views unless the caller asks to keep them.
* ``Secrets`` remembers the values a request sent (credentials in headers,
  userinfo, secret query values) and scrubs them from any text, whatever
  carries them: a server that echoes the request (``/get``) cannot make a saved
  notebook show them. Over-masking is the safe error: a secret "json" also
  masks "application/***".

Not recognised (send such secrets in a header named as one, or mask them
yourself): a secret in a URL path (``/hooks/T00/B00/XXXX``), in a header or
field with an ordinary name, in a body that is neither a form nor JSON, in a
form body over 64 KiB (echoed: its own text is masked by ``redact_pairs``), past the first MiB of a JSON body, under a secret-named
object of a JSON body over 64 KiB (``{"auth": {"user": ..., "pass": ...}}``), and
values under 4 characters in text other than URLs and headers.

>>> redact_url("http://user:secret@[bad/x")         # one the parser rejects, too
'http://***@[bad/x'
>>> redact_url("http://127.0.0.1/get?page=2&api_key=abc123")
'http://127.0.0.1/get?page=2&api_key=***'
>>> redact_header("Authorization", "Basic dXNlcjpzZWNyZXQ=")
'Basic ***'
"""

from __future__ import annotations

import binascii
import functools
import html
import json
import re
from base64 import b64decode
from collections.abc import Iterable
from itertools import pairwise
from urllib.parse import unquote, unquote_plus

REDACTED = "***"

#: Header fields whose values are credentials (RFC 9110 11.6.2, 11.7.2; RFC 6265).
SENSITIVE_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie"})
#: Header fields whose values are (or hold) URLs: their userinfo is redacted
#: wherever shown. Refresh is "0; url=..." (HTML's meta refresh as a header).
URL_HEADERS = frozenset({"location", "content-location", "referer", "refresh"})


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
        "jwt",
        "bearer",
    }
)
# Words of a name: an all-caps run (``ACCESS_TOKEN``, the ``API`` of ``APIKey``),
# a capitalised or lower-case word (``accessToken``), digits.
_NAME_WORDS = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")
# A query parameter: RFC 3986 section 3.4 leaves its syntax to the application;
# "&" (or ";") separated name=value pairs are the HTML form convention.
_QUERY_PAIR = re.compile(r"([^?&;=#]*)=([^&;#]*)")


def is_secret_name(name: str) -> bool:
    """Whether a parameter called ``name`` holds a credential: one of its words
    (split at ``_``, ``-``, ``.`` and camelCase; a plural too), or all of them
    run together, is in ``SECRET_NAME_WORDS``.

    >>> [is_secret_name(n) for n in ("api_key", "X-Amz-Signature", "ACCESS_TOKEN", "keyword")]
    [True, True, True, False]
    """
    words = [w.lower() for w in _NAME_WORDS.findall(unquote(name))]
    candidates = {*words, "".join(words)}  # "ApiKey" is "apikey" too
    candidates |= {w[:-1] for w in candidates if w.endswith("s")}  # plurals: "tokens"
    return not candidates.isdisjoint(SECRET_NAME_WORDS)


#: Words that, in the name of a field of a server's JSON, mark a credential
#: (``access_token``, ``client_secret``, ``apiKey``, ``Set-Cookie``). Narrower
#: than ``SECRET_NAME_WORDS``: a response's ``key`` is a Jira issue, its
#: ``session`` a state, its ``keys`` a JWKS, and masking their values (the word
#: "Bearer" of ``token_type``) would mask the same text all over the page.
CREDENTIAL_WORDS = frozenset(
    {"token", "password", "passwd", "pwd", "secret", "signature", "cookie"}
    | {"authorization", "credential", "jwt", "sid", "sessionid"}
    | {"apikey", "accesskey", "privatekey", "secretkey"}
)
#: A last word that makes a field describe a credential rather than hold it:
#: ``token_type``, ``expires_in``, ``password_expires_at``, ``token_url``.
DESCRIPTOR_WORDS = frozenset(
    {"type", "kind", "name", "at", "in", "expires", "expiry", "url", "uri", "ttl"}
    | {"length", "count", "hint", "required", "policy", "scope", "scopes"}
)


def is_credential_field(name: str) -> bool:
    """Whether a field ``name`` of a server's JSON holds a credential: one of
    its words (a plural too), or two neighbours run together (``api_key``,
    ``session_id``), is in ``CREDENTIAL_WORDS``, and its last word is not in
    ``DESCRIPTOR_WORDS``.

    >>> [is_credential_field(n) for n in ("access_token", "apiKey", "token_type", "key")]
    [True, True, False, False]
    """
    words = [w.lower() for w in _NAME_WORDS.findall(name)]
    if not words or words[-1] in DESCRIPTOR_WORDS:
        return False
    candidates = {*words, *(a + b for a, b in pairwise(words))}
    candidates |= {w[:-1] for w in candidates if w.endswith("s")}  # "credentials"
    return not candidates.isdisjoint(CREDENTIAL_WORDS)


def _mask_pair(m: re.Match) -> str:
    name, value = m.group(1), m.group(2)
    return f"{name}={REDACTED}" if value and is_secret_name(name) else m.group(0)


def redact_pairs(text: str) -> str:
    """``name=value`` pairs (a query, a form body) with secret-named values masked.

    >>> redact_pairs("user=al&password=hunter2&x=1")
    'user=al&password=***&x=1'
    """
    return _QUERY_PAIR.sub(_mask_pair, text)


def _redact_query(text: str) -> str:
    # The fragment too: OAuth 2.0's implicit grant (RFC 6749 section 4.2.2)
    # returns "#access_token=..." there, and the browser's address is shown.
    cut = min((i for i in map(text.find, "?#") if i != -1), default=len(text))
    return text[:cut] + redact_pairs(text[cut:])


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
    """``value`` as text may show it: the credentials of a header in ``hidden``,
    or with a secret name (``X-Api-Key``, ``X-Auth-Token``) unless ``hidden`` is
    empty, are replaced (the authentication scheme stays: ``Basic ***``); a
    URL-valued header is shown as ``redact_url`` shows it, always."""
    lowered = name.lower()
    if lowered in hidden or (hidden and is_secret_name(name)):
        if lowered in ("authorization", "proxy-authorization"):
            scheme, space, _ = value.strip().partition(" ")
            return f"{scheme} {REDACTED}" if space else REDACTED
        return REDACTED
    if lowered in URL_HEADERS:
        # Shown (hidden empty): the query stays, userinfo never (the URL docs).
        return redact_url(value) if hidden else _redact_userinfo(value)
    return value


def redact_headers(
    items: Iterable[tuple[str, str]], hidden: frozenset[str] = SENSITIVE_HEADERS
) -> list[tuple[str, str]]:
    """``redact_header`` over (name, value) pairs."""
    return [(name, redact_header(name, value, hidden)) for name, value in items]


#: Shorter values are not scrubbed from text: "1" or "on" would mask half a page.
#: A longer value is masked wherever it occurs, inside other words too: a
#: password "json" also masks "application/***". Over-masking is the safe error.
MIN_SECRET_LENGTH = 4
#: A request body larger than this is not parsed for secret fields (a form or
#: JSON body with credentials is small; an upload is not parsed on the loop):
#: a bigger JSON body is searched for its ``"name": "value"`` members instead
#: (``MAX_JSON_PAIRS_SCANNED``).
MAX_BODY_SCANNED = 64 * 1024
#: At most this many bytes of a JSON request body too big to parse
#: (``MAX_BODY_SCANNED``) are searched for secret-named fields: a search, not
#: a parse, yet on the loop, for every fetch the network log or a recording
#: sees (16 MiB of JSON records took 0.15 s: past the 100 ms a loop may be
#: held; 1 MiB takes about 10 ms). Credentials come first in a body sent by
#: hand; a bulk upload's 2nd MiB is data.
MAX_JSON_PAIRS_SCANNED = 1024 * 1024
# A JSON member whose name is a plain word and whose value is a string, each
# bounded so that a long string is one linear pass, never a backtracking one:
# a name with escapes or past 128 characters is no secret name anyway, and a
# value past 64 KiB is not a credential sent by hand.
_MAX_NAME = 128
_JSON_PAIR = re.compile(
    rb'"([A-Za-z0-9_.$@-]{1,%d})"\s*:\s*"((?:[^"\\]|\\.){0,65536})"' % _MAX_NAME, re.DOTALL
)
#: The secret words no other one contains ("key" finds "apikey" too).
_NAME_ANCHORS = tuple(
    w.encode()
    for w in sorted(SECRET_NAME_WORDS)
    if not any(o != w and o in w for o in SECRET_NAME_WORDS)
)
# RFC 9110 section 11.4: credentials = auth-scheme [ token68 / #auth-param ].
_AUTH_PARAM = re.compile(r'([!#$%&\'*+.^_`|~0-9A-Za-z-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^,\s]*)')
#: auth-params that are credentials besides the secret-named ones: Digest's
#: response is a hash of the password (RFC 7616 section 3.4.1), open to guessing.
_SECRET_AUTH_PARAMS = frozenset({"response", "cnonce", "nonce"})


#: At most this many remembered forms of values a server fed (``served=True``:
#: its response headers, Locations, the secret fields of its JSON): a server
#: flooding secret-named parameters into Locations (1,500 fit in a 27 KB header)
#: or fields into a body reaches the bound, and then its later values are not
#: masked rather than the loop stalling on one alternation of thousands. What
#: the user supplies or sends (an environment's private values, credentials in
#: a request) is never bounded: a server must not be able to crowd out the
#: login token of a later request.
MAX_SECRET_FORMS = 1024
#: At most this many values from one JSON document (``add_json``): a response
#: with thousands of ``api_key`` fields is not allowed the whole bound.
MAX_JSON_SECRETS = 64


class Secrets:
    """The secret values one request sent, to scrub from text shown or saved.

    Values are the user's (the default) or a server's (``served=True``); only
    the server's are bounded (``MAX_SECRET_FORMS``, ``MAX_JSON_SECRETS``).

    >>> s = Secrets()
    >>> s.add_url("http://u:hunter22@127.0.0.1/get?api_key=abc123")
    >>> s.add_headers([("Authorization", "Bearer tok-9f8e")])
    >>> s.scrub('{"args": {"api_key": "abc123"}, "Authorization": "Bearer tok-9f8e"}')
    '{"args": {"api_key": "***"}, "Authorization": "Bearer ***"}'
    """

    __slots__ = ("_bytes_pattern", "_longest", "_pattern", "_served", "_values")

    def __init__(self) -> None:
        self._values: set[str] = set()  # the user's: unbounded
        self._served: set[str] = set()  # a server's, not also the user's: bounded
        # Compiled when first needed after a change, not on every add: a
        # Location with thousands of secret-named parameters is one compile,
        # not thousands (each add used to sort and recompile everything).
        self._pattern: re.Pattern | None = None
        self._bytes_pattern: re.Pattern | None = None
        self._longest: int | None = None

    def __bool__(self) -> bool:
        return bool(self._values or self._served)

    def add(self, value: str, served: bool = False) -> None:
        """Scrub ``value`` (if it is long enough to mean something) from now on,
        also as the text a JSON or HTML writer makes of it (an echo in a JSON
        body, a view's escaped HTML). ``served``: a server sent it (bounded)."""
        value = value.strip()
        if len(value) < MIN_SECRET_LENGTH:
            return
        # The JSON writers' forms of it are matched by the pattern itself, not
        # listed here: each character other than a letter or digit may be
        # written as a JSON escape ("\/" from PHP, "\u002b" from Go, "\u003d"
        # for base64's padding from Gson), and listing every mix would not end.
        forms = {value, html.escape(value), html.escape(value, False)}
        self._add_forms(forms, served)

    def _add_forms(self, forms: set[str], served: bool) -> None:
        if served:
            forms = forms - self._values - self._served
            room = MAX_SECRET_FORMS - len(self._served)
            if not forms or room <= 0:
                return
            # update() may bring a whole other bound: the longest forms first.
            self._served |= set(sorted(forms, key=len, reverse=True)[:room])
        else:
            forms = forms - self._values
            if not forms:
                return
            self._values |= forms
            self._served -= forms
        self._pattern = self._bytes_pattern = self._longest = None

    def update(self, other: Secrets) -> None:
        """Scrub what ``other`` scrubs too (a .http run's environment secrets in
        each of its fetches' views); its server-fed values stay bounded here."""
        self._add_forms(other._values, served=False)
        self._add_forms(other._served, served=True)

    def _add_encoded(self, value: str, served: bool = False) -> None:
        """A value from a URL: as written, and as a server decodes it (``%2B``
        is "+", and a form decoder reads "+" as a space)."""
        for form in (value, unquote(value), unquote_plus(value)):
            self.add(form, served)

    def add_url(self, url: object, served: bool = False) -> None:
        """The userinfo and the secret query and fragment values of ``url``
        (text or ``URL``); ``served``: a server's (a redirect's Location)."""
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
                self._add_encoded(part, served)
        query = getattr(url, "query", None)
        if query is None:
            query = str(url).partition("?")[2]
        fragment = getattr(url, "fragment", None) or ""
        self._add_pairs(f"{query}#{fragment}", served)

    def _add_pairs(self, text: str, served: bool = False) -> None:
        for m in _QUERY_PAIR.finditer(text):
            if m.group(2) and is_secret_name(m.group(1)):
                self._add_encoded(m.group(2), served)

    def add_headers(self, items: Iterable[tuple[str, str]], served: bool = False) -> None:
        """The credentials among header fields ``items``: for ``Authorization``
        the part after the scheme, Basic's password decoded, the values of
        auth-params (Digest, AWS ``Signature=``); each cookie value of a
        ``Cookie`` (RFC 6265 section 4.2.1) or ``Set-Cookie``; the value of a
        secret-named field (``X-Api-Key``, ``X-Auth-Token``). ``served``: a
        response's fields (bounded); the default is a request's."""
        for name, value in items:
            lowered = name.lower()
            if lowered in ("authorization", "proxy-authorization"):
                self._add_credentials(value.strip(), served)
            elif lowered == "cookie":
                for pair in value.split(";"):
                    self._add_cookie(pair, served)
            elif lowered == "set-cookie":
                self._add_cookie(value.partition(";")[0], served)
            elif is_secret_name(name):
                self.add(value, served)

    def _add_cookie(self, pair: str, served: bool) -> None:
        name, eq, value = pair.partition("=")
        value = value.strip() if eq else name.strip()
        self.add(value, served)
        if len(value) > 1 and value[0] == value[-1] == '"':  # RFC 6265 4.1.1 DQUOTE
            self.add(value[1:-1], served)

    def _add_credentials(self, value: str, served: bool) -> None:
        scheme, _, rest = value.partition(" ")
        rest = rest.strip()
        if not rest:  # no scheme: the whole value is the credential
            self.add(value, served)
            return
        self.add(rest, served)
        if scheme.lower() == "basic":
            # RFC 7617 section 2: base64 of user-id ":" password; a body may
            # echo the password decoded. The user name is not a secret, unless
            # it is all there is (a token as the user: "TOKEN:").
            try:
                decoded = b64decode(rest, validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                return
            user, _, password = decoded.partition(":")
            self.add(password or user, served)
            return
        for m in _AUTH_PARAM.finditer(rest):
            param, raw = m.group(1), m.group(2)
            if param.lower() in _SECRET_AUTH_PARAMS or is_secret_name(param):
                self.add(raw.strip('"'), served)

    def add_hops(self, response) -> None:
        """What each hop of ``response`` sent. A redirected request's URL is the
        server's Location (bounded, as ``served``: 1,500 secret-named parameters
        fit in one), its headers and body still the user's."""
        for i, hop in enumerate((*response.history, response)):
            self.add_request(hop.request, served=i > 0)

    def add_request(self, request, served: bool = False) -> None:
        """A ``Request``'s URL, headers and the secret fields of a form or JSON
        body; ``served``: its URL came from a server (a redirect's Location)."""
        self.add_url(request.url, served)
        self.add_headers(request.headers.items())
        body, ctype = request.body, request.headers.get("content-type", "")
        for name, value in getattr(body, "fields", ()):  # a files= body's data= fields
            if is_secret_name(name):
                self.add(value.decode("utf-8", errors="replace"))
        if not isinstance(body, bytes):
            return
        if ctype.startswith("application/x-www-form-urlencoded"):
            if len(body) <= MAX_BODY_SCANNED:
                self._add_pairs(body.decode("utf-8", errors="replace"))
        elif "json" in ctype:
            if len(body) <= MAX_BODY_SCANNED:
                try:
                    self._add_json(json.loads(body))
                    return
                except ValueError:  # not JSON after all: look for its pairs
                    pass
            self._add_json_pairs(body)

    def _add_json_pairs(self, body: bytes) -> None:
        """The string values of secret-named fields (``"password": "..."``) of
        a JSON body too big to parse on the loop, or not quite JSON: the first
        ``MAX_JSON_PAIRS_SCANNED`` bytes, at most ``MAX_SECRET_FORMS`` values.
        A field nested under a secret-named object or list is not found so."""
        head = body[:MAX_JSON_PAIRS_SCANNED]
        # A secret name holds one of the words: find each (a C-speed search;
        # one regex over every quote read 8 MB/s), then read the member around.
        lowered, starts, found = head.lower(), set(), 0
        for word in _NAME_ANCHORS:
            at = lowered.find(word)
            while at != -1 and found < MAX_SECRET_FORMS:
                start = lowered.rfind(b'"', max(at - _MAX_NAME, 0), at)
                m = _JSON_PAIR.match(head, start) if start != -1 else None
                if m and m.end(1) >= at + len(word) and start not in starts:
                    starts.add(start)
                    found += self._add_json_pair(m)
                at = lowered.find(word, at + len(word))

    def _add_json_pair(self, m: re.Match) -> bool:
        name, raw = m.group(1).decode("ascii"), m.group(2)
        if not is_secret_name(name):  # "keyword": a word inside another
            return False
        try:
            value = json.loads(b'"' + raw + b'"')
        except ValueError:  # a bad escape: mask it as sent
            value = raw.decode("utf-8", errors="replace")
        self.add(value)
        return True

    def add_json(self, value, served: bool = True) -> None:
        """The string values of a parsed JSON document's fields that hold
        credentials, at any depth. A server's by default (``{"access_token":
        ...}`` in a login's response): fields ``is_credential_field`` names, at
        most ``MAX_JSON_SECRETS``; the user's (a request body): every
        secret-named one (``is_secret_name``; over-masking is the safe error)."""
        found: list[str] = []
        named = is_credential_field if served else is_secret_name
        self._json_values(value, found, MAX_JSON_SECRETS if served else None, named)
        for v in found:
            self.add(v, served)

    def _add_json(self, value) -> None:
        """A request body's secret fields: the user's, unbounded."""
        self.add_json(value, served=False)

    def _json_values(self, value, found: list[str], limit, named, secret=False) -> None:
        """String values under ``named`` keys (``{"password": ...}``), at any depth."""
        if limit is not None and len(found) >= limit:
            return
        if isinstance(value, dict):
            for k, v in value.items():
                self._json_values(v, found, limit, named, secret or named(str(k)))
        elif isinstance(value, list):
            for v in value:
                self._json_values(v, found, limit, named, secret)
        elif secret and isinstance(value, str) and len(value.strip()) >= MIN_SECRET_LENGTH:
            found.append(value)

    def _alternatives(self) -> list[str]:
        # Longest first, so a value that contains another is masked whole.
        return sorted(self._values | self._served, key=len, reverse=True)

    def _source(self) -> str:
        """One pattern for every value, longest match first. A flat alternation
        tries every value at every position (5,000 user values took 2.7 s over
        120 KB); a prefix tree tries one branch per character."""
        values = self._alternatives()
        try:
            return _trie_pattern(values)
        except RecursionError:  # nested prefixes thousands deep: the flat form
            return "|".join("".join(map(_char_pattern, v)) for v in values)

    def _text_pattern(self) -> re.Pattern:
        if self._pattern is None:
            self._pattern = re.compile(self._source())
        return self._pattern

    def _utf8_pattern(self) -> re.Pattern:
        if self._bytes_pattern is None:
            # The text pattern spells no character class or quantifier over a
            # character outside ASCII (those are in groups), so its UTF-8 form
            # is the same pattern over bytes.
            self._bytes_pattern = re.compile(self._source().encode("utf-8"))
        return self._bytes_pattern

    @property
    def longest(self) -> int:
        """The length of the longest text a remembered value may be matched as
        (0 if none): its JSON escapes are longer than the value (``\\u002b``
        is six characters for one "+"). How far a window over text must reach
        back to see a value split across."""
        if self._longest is None:
            self._longest = max(map(_longest_match, self._values | self._served), default=0)
        return self._longest

    def scrub(self, text: str) -> str:
        """``text`` with every remembered value replaced by ``***``."""
        if not self or not text:
            return text
        return self._text_pattern().sub(REDACTED, text)

    def scrub_bytes(self, data: bytes) -> bytes:
        """``data`` with the UTF-8 form of every remembered value replaced by
        ``***``: a body shown as a hex dump must not spell a secret in hex."""
        if not self or not data:
            return data
        return self._utf8_pattern().sub(REDACTED.encode(), bytes(data))

    @property
    def longest_bytes(self) -> int:
        """``longest`` in UTF-8 bytes (the same number: an escape is never
        shorter than the UTF-8 of its character): how far a window over bytes
        must reach back to see a value split across."""
        return self.longest

    def holds_bytes(self, data: bytes) -> bool:
        """Whether ``data`` holds the UTF-8 form of a remembered value."""
        if not self or not data:
            return False
        return self._utf8_pattern().search(data) is not None

    def mask_bytes(self, data: bytes) -> bytes:
        """``data`` with the UTF-8 form of every remembered value replaced by
        as many ``*``: the length stays, so a recorded response's framing
        (Content-Length, chunk sizes) still holds (``nbfetch.record``)."""
        if not self or not data:
            return data
        return self._utf8_pattern().sub(lambda m: b"*" * len(m.group()), bytes(data))


#: RFC 8259 section 7: the two-character escapes a JSON string may use.
_JSON_SHORT_ESCAPES = {
    '"': '\\"',
    "\\": "\\\\",
    "/": "\\/",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
}


def _json_u_escape(char: str) -> str:
    """``char`` as ``\\uXXXX`` (a UTF-16 surrogate pair above U+FFFF), as text."""
    code = ord(char)
    if code > 0xFFFF:
        code -= 0x10000
        units = (0xD800 + (code >> 10), 0xDC00 + (code & 0x3FF))
    else:
        units = (code,)
    return "".join(f"\\u{u:04x}" for u in units)


@functools.lru_cache(maxsize=4096)  # a server may send any of 1.1M code points
def _char_pattern(char: str) -> str:
    """A regex for ``char`` as written, or, unless it is an ASCII letter or
    digit, as a JSON writer may escape it: ``\\/``, ``\\u002b`` or ``\\u002B``
    (RFC 8259 section 7 leaves the hex digits' case open)."""
    if char.isascii() and char.isalnum():
        return char
    forms = [re.escape(char)]
    if char in _JSON_SHORT_ESCAPES:
        forms.append(re.escape(_JSON_SHORT_ESCAPES[char]))
    escape = re.escape(_json_u_escape(char))
    forms.append(re.sub(r"[a-f]", lambda m: f"[{m[0]}{m[0].upper()}]", escape))
    return "(?:" + "|".join(forms) + ")"


_NOT_ALNUM = re.compile(r"[^A-Za-z0-9]")
_ASTRAL = re.compile("[\U00010000-\U0010ffff]")


def _longest_match(value: str) -> int:
    """The length of the longest text that ``_char_pattern`` matches for
    ``value``, in characters or in UTF-8 bytes alike: each character other
    than an ASCII letter or digit at most as ``\\uXXXX`` (six, at least its
    UTF-8 length), one above U+FFFF as a surrogate pair (twelve)."""
    return len(value) + 5 * len(_NOT_ALNUM.findall(value)) + 6 * len(_ASTRAL.findall(value))


def _trie_pattern(values: list[str]) -> str:
    """A regex matching any of ``values`` (non-empty), the longest where
    several match: their prefix tree, each node an alternation of
    one-character branches (``_char_pattern``), a node ending a value optional."""
    end = object()
    root: dict = {}
    for value in values:
        node = root
        for char in value:
            node = node.setdefault(char, {})
        node[end] = True

    def emit(node: dict) -> str:
        run = []
        while len(node) == 1 and end not in node:  # a chain: one run
            ((char, node),) = node.items()
            run.append(_char_pattern(char))
        branches = [
            _char_pattern(char) + emit(child) for char, child in node.items() if char is not end
        ]
        tail = ""
        if branches:
            tail = "(?:" + "|".join(branches) + ")" + ("?" if end in node else "")
        return "".join(run) + tail

    return emit(root)


def request_secrets(request) -> Secrets:
    """The ``Secrets`` of one ``Request`` (its URL, headers and body fields)."""
    secrets = Secrets()
    secrets.add_request(request)
    return secrets
