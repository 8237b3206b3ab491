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
  would drop it silently. A header a browser may replace (User-Agent:
  Chromium sends its own) is listed in ``may_be_ignored``; a max_redirects
  other than the browser's 20 is said not to be applied (max_redirects=0 is:
  a redirected response fails). A URL's credentials go as the
  ``Authorization: Basic`` nbfetch made, the URL without them (fetch()
  refuses a URL with credentials).
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
  no socket event is invented. When the page's Resource Timing buffer is
  full, ``missing`` says so.

fetch() hides the connection: connect_timeout bounds the wait for the head
(with read_timeout). The request is buffered whole (at most 64 MiB, refused
before sending when its size is known). Cancel, every timeout and every error
(a head h11 refuses) abort the browser's fetch (``AbortController``): one left
running would hold one of the browser's few connections to the origin.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import h11

from .._version import __version__
from ..core.decoders import AVAILABLE_ENCODINGS
from ..core.errors import (
    ConnectError,
    FetchTimeout,
    InvalidRequest,
    NetworkError,
    ProtocolError,
    RedirectError,
)
from ..core.urls import URL
from ..drivers.base import IOTimeout
from ..drivers.synthetic import MAX_REQUEST_BYTES, SyntheticRequest, SyntheticStream

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
#: How many redirects a browser's fetch() follows before it fails (Fetch
#: standard, HTTP-redirect fetch step 5); it does not say how many it followed.
BROWSER_MAX_REDIRECTS = 20
#: Headers a page may set that a browser may still replace (measured:
#: Chromium sends its own User-Agent whatever the page sets; Firefox sends
#: the page's).
MAY_BE_IGNORED = frozenset({"user-agent"})


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


def rejected_error(
    name: str,
    message: str,
    url: str,
    page_origin: str | None,
    *,
    body: bool,
    redirect: str = "follow",
):
    """The FetchError for a rejected ``fetch()`` (or body read). A TypeError is
    all a script learns of a network failure *and* of a CORS refusal (the
    browser hides which, by design): cross-origin, CORS is the likely cause.
    The redirects the browser follows are hidden too: a same-origin URL may
    have redirected to another origin, too often, or to a non-http URL."""
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
    redirects = (
        (
            f"; or it redirected (the browser follows redirects and hides them) to another"
            " origin that does not allow CORS, more than"
            f" {BROWSER_MAX_REDIRECTS} times, or to a URL that is not http(s)"
        )
        if redirect == "follow" and name == "TypeError"
        else ""
    )
    return ConnectError(
        f"{what}: the server could not be reached (down, refused, or a name that does not"
        f" resolve){redirects}; the browser's console says which",
    )


#: RFC 9112 section 4: reason-phrase = *( HTAB / SP / VCHAR / obs-text ).
_REASON_CHARS = frozenset(range(0x20, 0x7F)) | frozenset(range(0x80, 0x100)) | {0x09}


def head_reason(text: str) -> str:
    """The browser's statusText as a reason phrase: latin-1 (a character a
    browser cannot have given, as Node's U+FFFD for an undecodable byte,
    becomes "?": the reason is informational, RFC 9112 section 4), and
    ProtocolError for a control character (CR/LF would add header lines to
    the head nbfetch rebuilds)."""
    raw = text.encode("latin-1", "replace")
    if not _REASON_CHARS.issuperset(raw):
        raise ProtocolError(f"the browser's status text {text!r} has a control character")
    return raw.decode("latin-1")


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
        try:
            return await self._step()
        except BaseException:
            # Whatever ends this answer early (a head h11 refuses, a rejected
            # read, a timeout's cancellation) aborts the browser's fetch: one
            # left running holds one of the browser's few connections per
            # origin (Chromium: 6) until its server ends it.
            self.cancel()
            raise

    def cancel(self) -> None:
        if not self._done:
            self._done = True
            self._fetch.abort()

    def _emit(self, name: str, details: dict) -> None:
        self._ctx.recorder.emit(name, {"transport": "browser", "reconstructed": True, **details})

    async def _start(self, url: str, redirect: str) -> BrowserHead:
        """fetch() until the head. It hides the connection, so connect_timeout
        bounds this wait too (with read_timeout, which the stream applies):
        an unreachable host fails after connect_timeout, as on a socket."""
        from ..drivers.browser import FetchRejected

        ctx, request = self._ctx, self._request
        started = self._fetch.start(
            url, request.method, self._passed, request.body or None, redirect
        )
        try:
            return await ctx.driver.wait_for(started, ctx.connect_timeout)
        except IOTimeout:
            raise FetchTimeout(
                f"connect_timeout={ctx.connect_timeout}s expired (in a browser it bounds the"
                " wait for the response head: fetch() hides the connection)",
                url=ctx.url,
                phase="wait",
                timeout="connect_timeout",
                seconds=ctx.connect_timeout,
            ) from None
        except FetchRejected as exc:
            raise rejected_error(
                exc.name, exc.message, url, self._fetch.page_origin(), body=False, redirect=redirect
            ) from None

    async def _head(self) -> bytes:
        request, ctx, hop = self._request, self._ctx, self._hop
        # fetch() refuses a URL with credentials; nbfetch already made them
        # an Authorization: Basic header (passed), so the URL goes without.
        url = str(hop.url.copy_with(username=None, password=None))
        redirect = "follow" if ctx.follow_redirects else "manual"
        details: dict[str, Any] = {
            "headers_passed": [name for name, _ in self._passed],
            "left_to_browser": self._left,
            "redirect": redirect,
            "note": "the browser adds its own headers (Host, User-Agent, Accept-Encoding,"
            " Origin, Cookie...) and chooses HTTP/1.1, 2 or 3: what it sent is not known",
        }
        ignored = [name for name, _ in self._passed if name in MAY_BE_IGNORED]
        if ignored:
            details["may_be_ignored"] = ignored
            details["may_be_ignored_note"] = (
                "a browser may send its own value instead (Chromium does for User-Agent)"
            )
        if not ctx.decompress:
            details["decompress"] = "the browser decodes the body whatever decompress= says"
        if ctx.follow_redirects and ctx.max_redirects != BROWSER_MAX_REDIRECTS:
            details["max_redirects"] = (
                f"max_redirects={ctx.max_redirects} is not applied: the browser follows up to"
                f" {BROWSER_MAX_REDIRECTS} redirects and does not say how many it followed"
                + (
                    " (a redirected response fails, as at least one was followed)"
                    if ctx.max_redirects < 1
                    else ""
                )
            )
        if hop.url.username is not None:
            details["userinfo"] = "sent as Authorization: Basic, the URL without it"
        self._emit("browser.request", details)
        head = await self._start(url, redirect)
        if head.type == "opaqueredirect":
            raise RedirectError(
                "the server answered with a redirect, which a browser hides from scripts"
                " (status and Location) with follow_redirects=False",
                phase="wait",
            )
        if head.redirected and ctx.follow_redirects and ctx.max_redirects < 1:
            raise RedirectError(
                f"more than max_redirects={ctx.max_redirects} redirects: the browser followed"
                f" at least one (it does not say how many) to {URL.parse(head.url)}",
                url=ctx.url,
            )
        headers, removed = reconstructed_head(head)
        response: dict[str, Any] = {
            "url": URL.parse(head.url) if head.url else hop.url,
            "redirected": head.redirected,
            "type": head.type,
            "removed": removed,
        }
        if "content-encoding" in removed:
            response["decoded_by_browser"] = removed["content-encoding"]
        if head.type == "cors":
            response["hidden"] = (
                "cross-origin: only the CORS-safelisted headers"
                f" ({', '.join(SAFELISTED_RESPONSE_HEADERS)}) and those the server"
                " lists in Access-Control-Expose-Headers are visible"
            )
        if head.redirected:
            self.final_url = response["url"]
            response["note"] = (
                "the browser followed the redirects itself: only the final URL is known"
            )
        self._emit("browser.response", response)
        try:
            wire = request.respond(head.status, headers, reason=head_reason(head.status_text))
        except h11.LocalProtocolError as exc:
            raise ProtocolError(f"the browser's response cannot be framed: {exc}") from None
        except UnicodeError:
            # A browser's header values are ByteStrings (one byte per
            # character): a character above U+00FF is none a server sent.
            raise ProtocolError(
                "the browser's response head has a character that is not a byte"
            ) from None
        self._step = self._body if head.has_body and request.method != "HEAD" else self._end
        return wire

    async def _body(self) -> bytes:
        from ..drivers.browser import FetchRejected

        while True:  # a stream may hand over empty pieces: skip them
            try:
                piece = await self._fetch.read()
            except FetchRejected as exc:
                raise rejected_error(
                    exc.name, exc.message, str(self._hop.url), None, body=True
                ) from None
            if piece is None:
                return await self._end()
            if piece:
                break
        try:
            return self._request.data(piece)
        except h11.LocalProtocolError as exc:  # a 204/304 the browser gave a body
            raise ProtocolError(f"the browser's body cannot be framed: {exc}") from None

    async def _end(self) -> bytes:
        timing = timing_details(self._fetch.timing(), self._hop.url.scheme == "https")
        if timing is not None:
            self._emit("browser.timing", {"source": "Resource Timing", **timing})
        else:
            missing = getattr(self._fetch, "timing_missing", None)
            if missing:
                self._emit("browser.timing", {"source": "Resource Timing", "missing": missing})
        end = self._request.end()
        self._done = True
        return end


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
    # SyntheticStream holds the request whole; known sizes are refused here,
    # before anything is read (a streamed body of unknown size fails as it
    # passes the bound).
    length = request.headers.get("content-length") or ""
    size = int(length) if length.isdigit() else None
    if isinstance(request.body, bytes):
        size = len(request.body)
    if size is not None and size > MAX_REQUEST_BYTES:
        raise InvalidRequest(
            f"a browser upload is buffered whole (fetch() takes the body at once):"
            f" at most {MAX_REQUEST_BYTES // 1024**2} MiB, this one is {size:,} bytes",
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
