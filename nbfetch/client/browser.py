"""The browser transport: under Pyodide (JupyterLite) every hop is answered by
the browser's ``fetch()``, turned back into HTTP/1.1 so that one code path
serves both worlds.

``BrowserOpener`` (a client/observe.py opener, every ``AsyncClient``'s default
under ``sys.platform == "emscripten"``) answers each hop through
``SyntheticStream``: the client writes its request as to a socket, the opener
calls ``fetch()`` with it, and the browser's Response becomes a status line and
header block (``respond()``) and a chunked body, one chunk per piece the
browser's ``ReadableStream`` hands over (``data()``). h11, events, Timing,
limits, ``on_chunk`` and the live views are those of a socket.

What the browser hides is said, not made up (``browser.*`` events, each with
``transport="browser"`` and ``reconstructed=True``):

* ``browser.request``: the headers passed to ``fetch()``, and the ones left to
  the browser (Host, Accept-Encoding, User-Agent, Cookie...: what it sent is
  not known). A *forbidden* header (Fetch standard, section 2.2.2) the caller
  set is refused with ``InvalidRequest`` before anything is sent: the browser
  would drop it silently.
* ``browser.response``: the URL the browser ended at (it follows redirects
  itself and shows none of the hops; ``Response.url`` is that final URL), the
  response type, what was taken out of the head because the browser already
  undid it (Content-Encoding: the body arrives decoded, so nbfetch must not
  decode it again; Content-Length of the encoded body; the framing).
  Cross-origin, only the CORS-safelisted headers and those the server lists
  in ``Access-Control-Expose-Headers`` are visible.
* ``browser.timing``: DNS, connect, TLS, request and response times from the
  Resource Timing API, when the browser gives them (zero cross-origin without
  ``Timing-Allow-Origin``: then None). ``Timing.dns/connect/tls`` stay None:
  no socket event is invented.

Cancel and every timeout close the stream, whose ``cancel()`` aborts the
browser's fetch (``AbortController``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import h11

from .._version import __version__
from ..core.decoders import AVAILABLE_ENCODINGS
from ..core.errors import ConnectError, InvalidRequest, NetworkError, ProtocolError, RedirectError
from ..core.urls import URL
from ..drivers.synthetic import SyntheticRequest, SyntheticStream

if TYPE_CHECKING:
    from ..core.request import Request
    from ..drivers.browser import BrowserHead
    from .context import FetchContext

#: Request headers a script cannot set (the Fetch standard's forbidden
#: request-header names, section 2.2.2); ``proxy-*`` and ``sec-*`` too.
FORBIDDEN_REQUEST_HEADERS = frozenset(
    {
        "accept-charset",
        "accept-encoding",
        "access-control-request-headers",
        "access-control-request-method",
        "connection",
        "content-length",
        "cookie",
        "cookie2",
        "date",
        "dnt",
        "expect",
        "host",
        "keep-alive",
        "origin",
        "referer",
        "set-cookie",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "via",
    }
)
FORBIDDEN_PREFIXES = ("proxy-", "sec-")
#: Methods fetch() refuses (Fetch standard: forbidden methods); also behind
#: the method-override headers.
FORBIDDEN_METHODS = frozenset({"CONNECT", "TRACE", "TRACK"})
METHOD_OVERRIDES = frozenset({"x-http-method", "x-http-method-override", "x-method-override"})

#: Response fields taken out of the reconstructed head: the browser already
#: undid them (decoding, de-chunking) or they describe its own connection.
#: The body is re-framed as chunked, one chunk per browser piece.
UNDONE_BY_BROWSER = frozenset(
    {
        "content-encoding",
        "content-length",
        "transfer-encoding",
        "connection",
        "keep-alive",
        "trailer",
        "upgrade",
    }
)
#: Visible cross-origin without Access-Control-Expose-Headers (Fetch standard:
#: CORS-safelisted response-header names).
SAFELISTED_RESPONSE_HEADERS = (
    "cache-control",
    "content-language",
    "content-length",
    "content-type",
    "expires",
    "last-modified",
    "pragma",
)

DEFAULT_USER_AGENT = f"nbfetch/{__version__}"
DEFAULT_ACCEPT_ENCODING = ", ".join(AVAILABLE_ENCODINGS)


def forbidden(name: str) -> bool:
    name = name.lower()
    return name in FORBIDDEN_REQUEST_HEADERS or name.startswith(FORBIDDEN_PREFIXES)


def _framing_default(request: Request, name: str, value: str) -> bool:
    """Whether ``name: value`` is what nbfetch itself added to ``request``."""
    if name == "host":
        return value == request.url.netloc
    if name == "accept-encoding":
        return value == DEFAULT_ACCEPT_ENCODING
    body = request.body
    if name == "content-length":
        if body is None:
            return value == "0"
        return not isinstance(body, bytes) or value == str(len(body))
    if name == "transfer-encoding":
        return value == "chunked" and not isinstance(body, bytes)
    if name == "expect":
        return value == "100-continue"
    return False


def split_headers(request: Request) -> tuple[list[tuple[str, str]], list[str]]:
    """The headers passed to ``fetch()``, and the names left to the browser
    (nbfetch's own defaults the browser sets itself). Raises ``InvalidRequest``
    for a forbidden header the caller set, and a forbidden method."""
    url = request.url
    if request.method in FORBIDDEN_METHODS:
        raise InvalidRequest(f"a browser cannot send a {request.method} request", url=url)
    passed: list[tuple[str, str]] = []
    left: list[str] = []
    for raw_b, name_b, value_b in request.headers._items:
        raw = raw_b.decode("latin-1")  # as the caller wrote it, for the messages
        name, value = name_b.decode("latin-1"), value_b.decode("latin-1")
        if name in METHOD_OVERRIDES and any(
            m.strip().upper() in FORBIDDEN_METHODS for m in value.split(",")
        ):
            raise InvalidRequest(f"a browser refuses {raw} naming CONNECT, TRACE or TRACK", url=url)
        if name == "user-agent" and value == DEFAULT_USER_AGENT:
            left.append("User-Agent")  # the browser's own, not nbfetch's
        elif not forbidden(name):
            passed.append((name, value))
        elif _framing_default(request, name, value):
            left.append(raw)
        else:
            raise InvalidRequest(
                f"a browser does not let a page set the {raw} header"
                " (a forbidden request header, Fetch standard section 2.2.2):"
                " it sets it itself; remove it from headers=",
                url=url,
            )
    return passed, left


def _origin(url: str) -> str | None:
    try:
        u = URL.parse(url)
    except Exception:
        return None
    port = "" if u.port == {"http": 80, "https": 443}.get(u.scheme) else f":{u.port}"
    return f"{u.scheme}://{u.host}{port}"


def rejected_error(name: str, message: str, url: str, page_origin: str | None, *, body: bool):
    """The FetchError for a rejected ``fetch()`` (or body read). A TypeError is
    all a script learns of a network failure *and* of a CORS refusal (the
    browser hides which, by design): cross-origin, CORS is the likely cause."""
    what = f"the browser's fetch() failed ({name}: {message})"
    if body:
        return NetworkError(f"{what} while reading the body", phase="download")
    cross = page_origin is not None and _origin(url) != page_origin
    if name == "TypeError" and cross:
        return ConnectError(
            f"{what}: {_origin(url)} is another origin than this page ({page_origin}),"
            " so the likely cause is CORS: the server must answer with"
            " Access-Control-Allow-Origin (and, for a request with custom headers"
            " or a method other than GET/HEAD/POST, answer the OPTIONS preflight);"
            " the browser's console says which",
            hint="the browser hides from scripts whether a fetch failed on CORS or on"
            " the network: look at the browser's developer console, or fetch a"
            " same-origin URL (a proxy on the page's own server)",
        )
    return ConnectError(
        f"{what}: the server could not be reached (down, refused, or a name that does not"
        " resolve); the browser's console says which",
    )


def reconstructed_head(head: BrowserHead) -> tuple[list[tuple[str, str]], dict[str, str]]:
    """The header block nbfetch parses, and what was taken out of it (see
    UNDONE_BY_BROWSER): name -> value as the browser showed it."""
    kept, removed = [], {}
    for name, value in head.headers:
        if name.lower() in UNDONE_BY_BROWSER:
            removed[name.lower()] = value
        else:
            kept.append((name, value))
    return kept, removed


def timing_details(entry: dict | None, secure: bool = True) -> dict[str, Any] | None:
    """Seconds per phase from a Resource Timing entry; None where the browser
    gave zero (cross-origin without Timing-Allow-Origin) and for TLS over
    plain http. A reused connection's DNS and connect take 0 s, truly."""
    if entry is None:
        return None

    def span(start: str, end: str) -> float | None:
        a, b = entry.get(start, 0.0), entry.get(end, 0.0)
        return (b - a) / 1000 if a > 0 and b >= a else None

    details = {
        "dns": span("domainLookupStart", "domainLookupEnd"),
        "connect": span("connectStart", "connectEnd"),
        "tls": span("secureConnectionStart", "connectEnd") if secure else None,
        "request_to_first_byte": span("requestStart", "responseStart"),
        "download": span("responseStart", "responseEnd"),
        "total": span("startTime", "responseEnd") if entry.get("responseEnd") else None,
        "protocol": entry.get("nextHopProtocol") or None,
        "encoded_body_size": int(entry.get("encodedBodySize") or 0) or None,
        "decoded_body_size": int(entry.get("decodedBodySize") or 0) or None,
    }
    if not any(v for k, v in details.items() if k != "protocol"):
        return None
    return details


class BrowserAnswer:
    """The answer to one hop (an async iterator of wire bytes for
    SyntheticStream); ``cancel()`` aborts the browser's fetch."""

    def __init__(
        self,
        request: SyntheticRequest,
        hop: Request,
        ctx: FetchContext,
        js_fetch,
        passed: list[tuple[str, str]],
        left: list[str],
    ):
        self._request = request
        self._hop = hop
        self._ctx = ctx
        self._fetch = js_fetch
        self._passed = passed
        self._left = left
        self._step = self._head
        self._done = False
        self.final_url: URL | None = None

    def __aiter__(self):
        return self

    async def __anext__(self) -> bytes:
        if self._done:
            raise StopAsyncIteration
        return await self._step()

    def cancel(self) -> None:
        if not self._done:
            self._done = True
            self._fetch.abort()

    def _emit(self, name: str, details: dict) -> None:
        self._ctx.recorder.emit(name, {"transport": "browser", "reconstructed": True, **details})

    async def _head(self) -> bytes:
        from ..drivers.browser import FetchRejected

        request, ctx = self._request, self._ctx
        url = str(self._hop.url)
        redirect = "follow" if ctx.follow_redirects else "manual"
        self._emit(
            "browser.request",
            {
                "headers_passed": [name for name, _ in self._passed],
                "left_to_browser": self._left,
                "redirect": redirect,
                **(
                    {}
                    if ctx.decompress
                    else {"decompress": "the browser decodes the body whatever decompress= says"}
                ),
                "note": "the browser adds its own headers (Host, User-Agent, Accept-Encoding,"
                " Origin, Cookie...) and chooses HTTP/1.1, 2 or 3: what it sent is not known",
            },
        )
        try:
            head = await self._fetch.start(
                url, request.method, self._passed, request.body or None, redirect
            )
        except FetchRejected as exc:
            self._done = True
            raise rejected_error(
                exc.name, exc.message, url, self._fetch.page_origin(), body=False
            ) from None
        if head.type == "opaqueredirect":
            self._done = True
            raise RedirectError(
                "the server answered with a redirect, which a browser hides from scripts"
                " (status and Location) with follow_redirects=False",
                phase="wait",
            )
        headers, removed = reconstructed_head(head)
        details: dict[str, Any] = {
            "url": URL.parse(head.url) if head.url else self._hop.url,
            "redirected": head.redirected,
            "type": head.type,
            "removed": removed,
        }
        if "content-encoding" in removed:
            details["decoded_by_browser"] = removed["content-encoding"]
        if head.type == "cors":
            details["hidden"] = (
                "cross-origin: only the CORS-safelisted headers"
                f" ({', '.join(SAFELISTED_RESPONSE_HEADERS)}) and those the server"
                " lists in Access-Control-Expose-Headers are visible"
            )
        if head.redirected:
            self.final_url = details["url"]
            details["note"] = (
                "the browser followed the redirects itself: only the final URL is known"
            )
        self._emit("browser.response", details)
        try:
            wire = request.respond(head.status, headers, reason=head.status_text)
        except h11.LocalProtocolError as exc:
            self._done = True
            raise ProtocolError(f"the browser's response cannot be framed: {exc}") from None
        self._step = self._body if head.has_body and request.method != "HEAD" else self._end
        return wire

    async def _body(self) -> bytes:
        from ..drivers.browser import FetchRejected

        try:
            piece = await self._fetch.read()
        except FetchRejected as exc:
            self._done = True
            raise rejected_error(
                exc.name, exc.message, str(self._hop.url), None, body=True
            ) from None
        if piece is None:
            return await self._end()
        if not piece:
            return await self._body()
        try:
            return self._request.data(piece)
        except h11.LocalProtocolError as exc:  # a 204/304 the browser gave a body
            self._done = True
            raise ProtocolError(f"the browser's body cannot be framed: {exc}") from None

    async def _end(self) -> bytes:
        self._done = True
        timing = timing_details(self._fetch.timing(), self._hop.url.scheme == "https")
        if timing is not None:
            self._emit("browser.timing", {"source": "Resource Timing", **timing})
        return self._request.end()


class BrowserStream(SyntheticStream):
    """A SyntheticStream that knows the URL its browser fetch ended at."""

    answer: BrowserAnswer | None = None

    @property
    def final_url(self) -> URL | None:
        return None if self.answer is None else self.answer.final_url


class BrowserOpener:
    """Answers every hop with the browser's fetch() (see the module)."""

    def __init__(self, make_fetch: Callable[[], Any] | None = None):
        if make_fetch is None:
            from ..drivers.browser import JSFetch

            make_fetch = JSFetch
        self._make_fetch = make_fetch

    async def open(self, request: Request, ctx: FetchContext) -> BrowserStream:
        check_fetch(request, ctx)
        passed, left = split_headers(request)
        stream: BrowserStream

        def answer(parsed: SyntheticRequest) -> BrowserAnswer:
            stream.answer = BrowserAnswer(parsed, request, ctx, self._make_fetch(), passed, left)
            return stream.answer

        stream = BrowserStream(ctx.driver, answer, remote=("browser", 0))
        return stream


def check_fetch(request: Request, ctx: FetchContext) -> None:
    """Refuse what a browser cannot do, before anything is sent."""
    url = request.url
    if url.scheme not in ("http", "https"):
        raise InvalidRequest(f"a browser fetches http and https URLs, not {url.scheme}", url=url)
    if ctx.cookies:
        raise InvalidRequest(
            "cookies= has no effect in a browser: it sends the page's own cookies"
            " (same-origin) and hides Set-Cookie from scripts; set them with"
            " document.cookie on the page's origin",
            url=url,
        )
    if ctx.proxies is not None and ctx.proxies(url) is not None:
        raise InvalidRequest(
            "a proxy (proxy= or HTTP(S)_PROXY) has no effect in a browser:"
            " it uses the browser's own proxy settings",
            url=url,
        )


#: AsyncClient settings a browser fetch cannot honour, with their defaults.
CLIENT_SETTINGS = {
    "verify": (True, "the browser checks certificates itself"),
    "cert": (None, "the browser chooses client certificates itself"),
    "hostname_mapping": (None, "the browser resolves names itself"),
    "local_address": (None, "the browser chooses the local address"),
    "resolver": (None, "the browser resolves names itself"),
    "proxy": (None, "the browser uses its own proxy settings"),
}


def check_client(settings: dict[str, Any]) -> None:
    """Refuse the AsyncClient settings that would have no effect in a browser
    (a clear error rather than a silently ignored setting)."""
    for name, value in settings.items():
        default, why = CLIENT_SETTINGS[name]
        if value != default and not (name == "hostname_mapping" and not value):
            raise InvalidRequest(f"{name}= has no effect in a browser: {why}")


__all__ = [
    "FORBIDDEN_REQUEST_HEADERS",
    "BrowserAnswer",
    "BrowserOpener",
    "BrowserStream",
    "check_client",
    "check_fetch",
    "forbidden",
    "rejected_error",
    "split_headers",
]
