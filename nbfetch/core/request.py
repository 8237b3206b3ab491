"""The request model: what to send, validated before anything is sent.

>>> r = Request.build("POST", "http://127.0.0.1:8000/post", json={"a": 1})
>>> r.headers["content-type"], r.headers["content-length"], r.body
('application/json', '8', b'{"a": 1}')
"""

from __future__ import annotations

import base64
import json as jsonlib
from collections.abc import AsyncIterable, Mapping
from typing import Any
from urllib.parse import urlencode

from .errors import InvalidRequest
from .headers import Headers, HeaderSource
from .multipart import MultipartBody
from .protocol import build_request
from .redact import redact_url
from .urls import URL

BodySource = bytes | bytearray | memoryview | str | AsyncIterable[bytes] | None

#: RFC 9110 section 9.2.2: methods a client may retry automatically.
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS", "TRACE"})
#: Methods whose content has no defined meaning (RFC 9110 9.3.1, 9.3.2, 9.3.8):
#: a body on them is refused unless ``allow_body=True``.
NO_BODY_METHODS = frozenset({"GET", "HEAD", "TRACE"})
#: Methods that define a meaning for content: send Content-Length: 0 when empty
#: (RFC 9110 section 8.6).
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})

_TOKEN = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


def basic_auth(username: str, password: str) -> bytes:
    """``Authorization`` value for Basic auth: UTF-8 after Unicode Normalization
    Form C, as RFC 7617 section 2.1 requires for the "UTF-8" charset."""
    from unicodedata import normalize

    token = normalize("NFC", f"{username}:{password}").encode()
    return b"Basic " + base64.b64encode(token)


def _check_header(name: bytes, value: bytes, url: URL) -> None:
    if not name or any(chr(c) not in _TOKEN for c in name):
        raise InvalidRequest(f"invalid header name {name!r}", url=url)
    if b"\r" in value or b"\n" in value or b"\x00" in value:
        raise InvalidRequest(
            f"header {name.decode('latin-1')!r} has CR, LF or NUL in its value", url=url
        )


def _validated(method: str, url: URL, headers: Headers):
    """The h11 request (h11 validates method, target and every header field); when
    h11 refuses, say which header is wrong rather than h11's generic message."""
    try:
        return build_request(method, url.target, headers.raw)
    except InvalidRequest as exc:
        for name, _, value in headers._items:
            _check_header(name, value, url)
        raise exc.with_context(url) from None


def with_params(url: URL, params: Mapping[str, Any] | list[tuple[str, Any]]) -> URL:
    """``url`` with ``params`` appended to its query (form-encoded, lists repeat
    the name): ``{"q": "a b", "tag": ["x", "y"]}`` -> ``?q=a+b&tag=x&tag=y``."""
    if not isinstance(params, (Mapping, list, tuple)):
        raise InvalidRequest("params= takes a dict or a list of (name, value) pairs", url=url)
    extra = urlencode(params, doseq=True)
    return url.copy_with(query=f"{url.query}&{extra}" if url.query else extra) if extra else url


class Request:
    """A validated request. ``body`` is bytes, an async iterable of bytes, a
    ``MultipartBody`` (``files=``: framed when it is sent), or None."""

    __slots__ = ("method", "url", "headers", "body", "_h11")

    def __init__(
        self,
        method: str,
        url: URL,
        headers: Headers,
        body: bytes | AsyncIterable | MultipartBody | None,
    ):
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
        self._h11 = None

    @classmethod
    def build(
        cls,
        method: str,
        url: str | URL,
        *,
        headers: HeaderSource = None,
        default_headers: Headers | None = None,
        body: BodySource = None,
        json: Any = None,
        data: Mapping[str, Any] | None = None,
        files: Any = None,
        auth: tuple[str, str] | None = None,
        allow_body: bool = False,
        expect_continue: bool = False,
        params: Mapping[str, Any] | list[tuple[str, Any]] | None = None,
    ) -> Request:
        """Validate and assemble; raises ``InvalidRequest`` naming what is wrong."""
        url = URL.parse(url)
        if params:
            url = with_params(url, params)
        if not isinstance(method, str) or not method or any(c not in _TOKEN for c in method):
            raise InvalidRequest(f"invalid method {method!r}", url=url)
        method = method.upper()

        given = sum(x is not None for x in (body, json, data))
        if given > 1:
            raise InvalidRequest("pass only one of body=, json= and data=", url=url)
        content_type = None
        if files is not None:
            if body is not None or json is not None:
                raise InvalidRequest("files= goes with data= fields, not body= or json=", url=url)
            try:
                body = MultipartBody.build(data, files)
            except InvalidRequest as exc:
                raise exc.with_context(url) from None
            content_type = body.content_type
        elif json is not None:
            body = jsonlib.dumps(json, ensure_ascii=False).encode("utf-8")
            content_type = b"application/json"
        elif data is not None:
            if not isinstance(data, Mapping):
                raise InvalidRequest(
                    "data= takes a dict (form fields); use body= for bytes", url=url
                )
            body = urlencode(data, doseq=True).encode("ascii")
            content_type = b"application/x-www-form-urlencoded"
        elif isinstance(body, str):
            body = body.encode("utf-8")
        elif isinstance(body, (bytearray, memoryview)):
            body = bytes(body)
        elif body is not None and not isinstance(body, bytes) and not hasattr(body, "__aiter__"):
            raise InvalidRequest(
                f"body= takes bytes, str or an async iterable of bytes, not {type(body).__name__}",
                url=url,
            )
        if body is not None and method in NO_BODY_METHODS and not allow_body:
            raise InvalidRequest(
                f"a {method} request cannot carry a body (pass allow_body=True to send one anyway)",
                url=url,
            )

        h = Headers()
        h.add(b"Host", url.netloc.encode("ascii"))
        if default_headers is not None:
            h._items.extend(default_headers._items)
        if content_type is not None:
            h[b"Content-Type"] = content_type
        if url.username is not None and auth is None:
            auth = (url.username, url.password or "")
        if auth is not None:
            if not (isinstance(auth, tuple) and len(auth) == 2):
                raise InvalidRequest(
                    "auth= takes a (username, password) tuple or a nbfetch.DigestAuth", url=url
                )
            h[b"Authorization"] = basic_auth(*auth)
        if headers is not None:
            h.update(headers)
        if isinstance(body, MultipartBody):
            # The boundary is in our Content-Type; the framing is known only once
            # the files are open (framed()).
            for name, ours in (
                (b"content-type", [content_type]),
                (b"content-length", []),
                (b"transfer-encoding", []),
            ):
                if h.get_raw(name) != ours:
                    raise InvalidRequest(
                        f"files= sets {name.decode().title()} itself: do not pass it in headers=",
                        url=url,
                    )
        elif isinstance(body, bytes):
            if b"transfer-encoding" not in (k for _, k, _ in h._items):
                h[b"Content-Length"] = str(len(body)).encode("ascii")
        elif body is not None:
            if b"content-length" not in (k for _, k, _ in h._items):
                h[b"Transfer-Encoding"] = b"chunked"
        elif method in BODY_METHODS:
            h[b"Content-Length"] = b"0"
        if expect_continue and body is not None:
            h[b"Expect"] = b"100-continue"  # RFC 9110 section 10.1.1
        request = cls(method, url, h, body)
        request._h11 = _validated(method, url, h)
        return request

    def h11_request(self):
        return self._h11

    @property
    def idempotent(self) -> bool:
        return self.method in IDEMPOTENT_METHODS

    def framed(self, length: int | None) -> None:
        """Frame a ``files=`` body now that its length is known (it was measured
        when sent, so a file rewritten before a retry is framed as it is now):
        Content-Length, or chunked when a part's size is unknown."""
        h = self.headers
        for name in ("content-length", "transfer-encoding"):
            if name in h:
                del h[name]
        if length is None:
            h[b"Transfer-Encoding"] = b"chunked"
        else:
            h[b"Content-Length"] = str(length).encode("ascii")
        self._h11 = _validated(self.method, self.url, h)

    @property
    def replayable(self) -> bool:
        """Whether the body can be sent again (a retry or a 307/308 redirect):
        bytes, or ``files=`` whose files are paths or can seek back."""
        body = self.body
        return (
            body is None
            or isinstance(body, bytes)
            or (isinstance(body, MultipartBody) and body.replayable)
        )

    def redirected(
        self, url: URL, method: str, keep_body: bool, strip_credentials: bool
    ) -> Request:
        """The request for the next hop of a redirect (RFC 9110 section 15.4)."""
        h = self.headers.copy()
        h[b"Host"] = url.netloc.encode("ascii")
        if strip_credentials:
            # Credentials never travel to another origin (requests CVE-2018-18074,
            # urllib3 CVE-2018-20060 / CVE-2023-43804 / CVE-2024-37891, curl CVE-2022-27776).
            for name in ("authorization", "cookie", "proxy-authorization"):
                if name in h:
                    del h[name]
        body = self.body
        if not keep_body:
            body = None
            for name in (
                "content-length",
                "content-type",
                "transfer-encoding",
                "content-encoding",
                "expect",
            ):
                if name in h:
                    del h[name]
        if url.username is not None and not strip_credentials:
            h[b"Authorization"] = basic_auth(url.username, url.password or "")
        request = Request(method, url, h, body)
        request._h11 = _validated(method, url, h)
        return request

    def with_header(self, name: str | bytes, value: str | bytes) -> Request:
        """This request with the field ``name`` set to ``value`` (a Digest
        ``Authorization`` answering a challenge, a hop's ``Cookie``)."""
        h = self.headers.copy()
        h[name] = value
        request = Request(self.method, self.url, h, self.body)
        request._h11 = _validated(self.method, self.url, h)
        return request

    def __repr__(self) -> str:
        return f"<Request {self.method} {redact_url(self.url)}>"
