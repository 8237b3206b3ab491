"""HTTP Digest access authentication (RFC 7616), ``qop=auth``: the challenge
parsed, the strongest algorithm chosen, the ``Authorization`` answer computed.

Pure: the client passes the cnonce in (random bytes from ``secrets``).

>>> auth = DigestAuth("Mufasa", "Circle of Life")
>>> auth
DigestAuth('Mufasa', '***')
>>> challenge = ('Digest realm="http-auth@example.org", qop="auth, auth-int",'
...     ' algorithm=SHA-256, nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",'
...     ' opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"')
>>> answer = auth.authorization([challenge], "GET", "/dir/index.html",
...     cnonce="f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ")
>>> 'response="753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"' in answer
True
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable
from urllib.parse import quote

from .errors import InvalidRequest

#: RFC 7616 section 3.3's algorithms this client answers, strongest first: a
#: server that offers several challenges gets the first of these it offers.
ALGORITHMS: dict[str, Callable] = {
    "SHA-256": hashlib.sha256,
    "SHA-256-SESS": hashlib.sha256,
    "MD5": hashlib.md5,
    "MD5-SESS": hashlib.md5,
}
_TOKEN = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_QUOTED = r'"(?:[^"\\]|\\.)*"'
#: One element of a WWW-Authenticate list: ``name=value`` or a bare token (an
#: auth-scheme, starting the next challenge), RFC 9110 section 11.6.1.
_ITEM = re.compile(rf"\s*(?:({_TOKEN})\s*=\s*({_TOKEN}|{_QUOTED})|({_TOKEN}=*))\s*,?")
#: Schemes and parameters read from all the WWW-Authenticate values of a
#: response: a real one has a few challenges of a few parameters each; past
#: this the rest is not parsed (it would be work on the event loop per byte).
MAX_CHALLENGE_ITEMS = 64


def parse_challenges(values: Iterable[str]) -> list[tuple[str, dict[str, str]]]:
    """Each challenge of the ``WWW-Authenticate`` field values as (scheme in
    lower case, {param name in lower case: value}); a token68 is skipped."""
    challenges: list[tuple[str, dict[str, str]]] = []
    budget = MAX_CHALLENGE_ITEMS
    for value in values:
        pos = 0
        while pos < len(value) and budget > 0:
            budget -= 1
            m = _ITEM.match(value, pos)
            if m is None or m.end() == pos:
                break  # not an auth-param list: what was parsed stands
            pos = m.end()
            name, raw, bare = m.groups()
            if bare is not None:
                if not bare.endswith("="):  # a token68 ("abc==") is no scheme
                    challenges.append((bare.lower(), {}))
                continue
            if challenges:
                if raw.startswith('"'):
                    raw = re.sub(r"\\(.)", r"\1", raw[1:-1])
                challenges[-1][1].setdefault(name.lower(), raw)
    return challenges


def _quote(value: str) -> str:
    """A quoted-string (RFC 9110 section 5.6.4)."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


class DigestAuth:
    """``auth=DigestAuth(user, password)``: answer a server's Digest challenge
    (RFC 7616: SHA-256, MD5 and their -sess variants, ``qop=auth``) once per
    hop (a retried attempt sends a fresh answer to the same challenge). A
    second 401 is the response. The password never leaves this object: only
    hashes of it are sent, and its repr masks it."""

    __slots__ = ("username", "_password")

    def __init__(self, username: str, password: str):
        if not isinstance(username, str) or not isinstance(password, str):
            raise InvalidRequest("DigestAuth takes a user name and a password (str)")
        if any(c in username for c in "\r\n\x00"):  # it is sent in a header field
            raise InvalidRequest("DigestAuth's user name has CR, LF or NUL in it")
        self.username = username
        self._password = password

    def __repr__(self) -> str:
        return f"DigestAuth({self.username!r}, '***')"

    def authorization(
        self, challenges: Iterable[str], method: str, uri: str, *, cnonce: str, nc: int = 1
    ) -> str | None:
        """The ``Authorization`` value answering the strongest Digest challenge
        among the ``WWW-Authenticate`` values, or None when none can be answered
        (no Digest, no realm or nonce, only unknown algorithms, only qop=auth-int)."""
        chosen = self.choose(challenges)
        return None if chosen is None else self.answer(chosen, method, uri, cnonce=cnonce, nc=nc)

    def choose(self, challenges: Iterable[str]) -> tuple[str, dict] | None:
        """The strongest Digest challenge this client can answer among the
        ``WWW-Authenticate`` values, as (algorithm, params), or None."""
        offered = {}
        for scheme, params in parse_challenges(challenges):
            algorithm = params.get("algorithm", "MD5").upper()  # MD5: RFC 7616 3.3
            qops = {q.strip().lower() for q in params.get("qop", "").split(",")}
            if (
                scheme == "digest"
                and algorithm in ALGORITHMS
                and "realm" in params
                and "nonce" in params
                and ("auth" in qops or "qop" not in params)
            ):
                offered.setdefault(algorithm, params)
        algorithm = next((a for a in ALGORITHMS if a in offered), None)
        return None if algorithm is None else (algorithm, offered[algorithm])

    def answer(
        self, chosen: tuple[str, dict], method: str, uri: str, *, cnonce: str, nc: int = 1
    ) -> str:
        """The ``Authorization`` value for the ``nc``-th request answering the
        challenge ``chosen`` (from ``choose()``). Every request with the same
        nonce needs a fresh ``cnonce`` and the next ``nc`` (RFC 7616 section
        3.4): a server refuses a replayed answer."""
        algorithm, params = chosen
        hash_ = ALGORITHMS[algorithm]

        def h(text: str) -> str:
            return hash_(text.encode("utf-8")).hexdigest()

        realm, nonce = params["realm"], params["nonce"]
        count = f"{nc:08x}"  # RFC 7616 section 3.4: 8 hex digits
        a1 = h(f"{self.username}:{realm}:{self._password}")
        if algorithm.endswith("-SESS"):  # RFC 7616 section 3.4.2
            a1 = h(f"{a1}:{nonce}:{cnonce}")
        a2 = h(f"{method}:{uri}")
        qop = "auth" if "qop" in params else None
        # RFC 7616 section 3.4.1; a server that offers no qop gets RFC 2069's form.
        response = h(f"{a1}:{nonce}:{count}:{cnonce}:{qop}:{a2}" if qop else f"{a1}:{nonce}:{a2}")
        fields = []
        if params.get("userhash", "").lower() == "true":  # RFC 7616 section 3.4.4
            fields += [f"username={_quote(h(f'{self.username}:{realm}'))}", "userhash=true"]
        elif self.username.isascii():
            fields.append(f"username={_quote(self.username)}")
        else:  # RFC 7616 section 3.4.4 and RFC 8187: username*
            fields.append(f"username*=UTF-8''{quote(self.username, safe='')}")
        fields += [
            f"realm={_quote(realm)}",
            f"uri={_quote(uri)}",
            f"algorithm={algorithm.replace('-SESS', '-sess')}",
            f"nonce={_quote(nonce)}",
        ]
        if qop:
            fields += [f"nc={count}", f"cnonce={_quote(cnonce)}", f"qop={qop}"]
        fields.append(f"response={_quote(response)}")
        if "opaque" in params:
            fields.append(f"opaque={_quote(params['opaque'])}")
        return "Digest " + ", ".join(fields)
