"""Under Pyodide (``sys.platform == "emscripten"``): the driver, and the small
bridge to the browser's ``fetch()`` that ``client/browser.py`` answers each hop
with (through ``SyntheticStream``, so the answer goes through the client's own
h11 path).

A browser page has no sockets and no threads: ``BrowserDriver`` is the asyncio
driver (Pyodide's loop is the browser's event loop) whose ``resolve`` and
``connect`` refuse, since every fetch goes through the browser, and whose
``run_sync`` runs the call in place (Pyodide's file system is in memory: a
``files=`` upload measures and reads its files without waiting on a disk).

``JSFetch`` is the only code here that touches ``js``; the client layer drives
it through ``start()`` / ``read()`` / ``abort()`` / ``timing()``, so what it
makes of the browser's Response can be tested without a browser.
"""

from __future__ import annotations

from typing import NamedTuple

from ..core.errors import ConnectError
from .asyncio_driver import AsyncioDriver
from .base import IOTimeout


class BrowserDriver(AsyncioDriver):
    """The asyncio driver without sockets or threads (see the module)."""

    name = "browser"

    async def resolve(self, host, port, timeout):
        raise ConnectError(
            "no sockets in a browser: fetches go through the browser's fetch()", phase="resolve"
        )

    async def connect(self, family, sockaddr, timeout, local_address=None):
        raise ConnectError(
            "no sockets in a browser: fetches go through the browser's fetch()", phase="connect"
        )

    async def wait_for(self, awaitable, timeout):
        """As the asyncio driver's, with a browser timer that is cleared: a
        cancelled ``call_later`` of Pyodide's loop stays scheduled in the
        browser until its time (measured: a cancelled 20 s timer kept Node
        alive for 20 s), so a timer per body piece would pile up for
        read_timeout seconds each."""
        if timeout is None:
            return await awaitable
        import asyncio

        import js
        from pyodide.ffi import create_proxy

        task = asyncio.ensure_future(awaitable)
        fired = False

        def expire():
            nonlocal fired
            fired = True
            task.cancel()

        callback = create_proxy(expire)
        timer = js.setTimeout(callback, max(timeout, 0.0) * 1000)
        try:
            return await task
        except asyncio.CancelledError:
            if fired:
                raise IOTimeout() from None
            raise
        finally:
            js.clearTimeout(timer)
            callback.destroy()
            if not task.done():
                task.cancel()

    async def run_sync(self, fn, timeout):
        # No threads to run it in; the calls nbfetch makes here (a files=
        # upload's stat and reads, a download's writes) are on Pyodide's
        # in-memory file system.
        return fn()


class BrowserHead(NamedTuple):
    """What a browser ``Response`` shows of the head."""

    status: int
    status_text: str
    #: As ``response.headers`` lists them: lower-case names, repeated fields
    #: joined with ", ", Set-Cookie never, and, cross-origin, only the
    #: CORS-safelisted ones and those the server exposes.
    headers: list[tuple[str, str]]
    url: str  # where the browser ended, after the redirects it followed
    redirected: bool
    type: str  # "basic" (same origin), "cors", "opaqueredirect" (redirect: "manual")
    has_body: bool


class FetchRejected(Exception):
    """The browser's fetch() promise was rejected: ``name`` is the JS error's
    (TypeError for a network failure or a CORS refusal, AbortError)."""

    def __init__(self, name: str, message: str):
        super().__init__(f"{name}: {message}")
        self.name = name
        self.message = message


def _rejected(exc: Exception) -> FetchRejected:
    # pyodide.ffi.JsException carries the JS error's name and message.
    name = getattr(exc, "name", None) or type(exc).__name__
    message = getattr(exc, "message", None) or str(exc)
    return FetchRejected(str(name), str(message))


class JSFetch:
    """One call of the browser's ``fetch()``, its body read piece by piece
    with ``getReader().read()`` (the pieces the browser chooses)."""

    def __init__(self) -> None:
        import js

        self._js = js
        self._controller = js.AbortController.new()
        _watch_timing_buffer(js)
        self._reader = None
        self._name = ""  # the URL as the browser serializes it: Resource Timing's name
        self._started = 0.0  # performance.now() when fetch() was called
        #: Why timing() found no entry, when it can say (the buffer is full).
        self.timing_missing: str | None = None

    @staticmethod
    def page_origin() -> str | None:
        """The origin of the page the kernel runs in (None outside a page: Node)."""
        import js

        location = getattr(js, "location", None)
        origin = getattr(location, "origin", None) if location is not None else None
        return str(origin) if origin else None

    async def start(
        self,
        url: str,
        method: str,
        headers: list[tuple[str, str]],
        body: bytes | None,
        redirect: str,
    ) -> BrowserHead:
        from pyodide.ffi import JsException, to_js

        js = self._js
        try:
            self._name = str(js.URL.new(url).href)
        except JsException:
            self._name = url  # fetch() rejects it below, with the browser's reason
        init = {
            "method": method,
            "headers": to_js([list(pair) for pair in headers]),
            "redirect": redirect,
            "signal": self._controller.signal,
            # nbfetch has no cache; the browser's would answer without a request.
            "cache": "no-store",
            "credentials": "same-origin",
        }
        if body:
            init["body"] = to_js(body)
        self._started = float(js.performance.now())
        try:
            response = await js.fetch(url, to_js(init, dict_converter=js.Object.fromEntries))
        except JsException as exc:
            raise _rejected(exc) from None
        body_stream = _value(response.body)
        if body_stream is not None:
            self._reader = body_stream.getReader()
        return BrowserHead(
            status=int(response.status),
            status_text=str(response.statusText),
            headers=[(str(pair[0]), str(pair[1])) for pair in response.headers.entries()],
            url=str(_value(response.url) or url),
            redirected=bool(response.redirected),
            type=str(response.type),
            has_body=body_stream is not None,
        )

    async def read(self) -> bytes | None:
        """The next piece of the body, or None at its end."""
        from pyodide.ffi import JsException

        if self._reader is None:
            return None
        try:
            result = await self._reader.read()
        except JsException as exc:
            raise _rejected(exc) from None
        if result.done:
            self._reader = None
            return None
        return result.value.to_bytes()

    def abort(self) -> None:
        self._controller.abort()

    def timing(self) -> dict | None:
        """This fetch's Resource Timing entry (milliseconds on the page's
        clock), or None when the browser has none (buffer full, not yet: then
        ``timing_missing`` says so when it can tell)."""
        performance = self._js.performance
        if not self._name or not hasattr(performance, "getEntriesByName"):
            return None
        entries = performance.getEntriesByName(self._name, "resource")
        starts = [float(entries[i].startTime) for i in range(int(entries.length))]
        chosen = pick_entry(starts, self._started)
        if chosen is None:
            count = int(performance.getEntriesByType("resource").length)
            # Full since this fetch started, or full once and still as large
            # (the event comes once per filling, not per entry dropped).
            if _buffer_full_at is not None and (
                _buffer_full_at >= self._started or count >= RESOURCE_TIMING_BUFFER
            ):
                self.timing_missing = (
                    f"the page's Resource Timing buffer is full ({count} entries; a browser"
                    f" keeps {RESOURCE_TIMING_BUFFER} by default) and took no entry for this"
                    " fetch: performance.setResourceTimingBufferSize() raises the limit,"
                    " performance.clearResourceTimings() empties the buffer"
                )
            return None
        entry = entries[chosen]
        return {name: _number(entry, name) for name in TIMING_FIELDS} | {
            "nextHopProtocol": str(_value(getattr(entry, "nextHopProtocol", "")) or "")
        }


#: The Resource Timing buffer's default size (Resource Timing Level 2:
#: 250 entries; past it the browser records no new entry).
RESOURCE_TIMING_BUFFER = 250
#: performance.now() when the page's buffer last refused an entry (its
#: ``resourcetimingbufferfull`` event), None before.
_buffer_full_at: float | None = None
_watching = False


def _watch_timing_buffer(js) -> None:
    """Listen once per page for the buffer-full event, so that timing() can say
    why a fetch has no entry rather than nothing."""
    global _watching
    if _watching:
        return
    _watching = True
    performance = js.performance
    if not hasattr(performance, "addEventListener"):
        return
    from pyodide.ffi import create_proxy

    def full(event) -> None:
        global _buffer_full_at
        _buffer_full_at = float(performance.now())

    # Kept for the page's life: one listener, never removed.
    performance.addEventListener("resourcetimingbufferfull", create_proxy(full))


def pick_entry(starts: list[float], started: float) -> int | None:
    """Which of the entries for this URL (their startTime) is this fetch's:
    the one that started closest to its fetch() call, not before it (1 ms of
    slack: the clocks are rounded); None when none did. Another fetch of the
    same URL, earlier or concurrent, has its own entry."""
    best = None
    for i, start in enumerate(starts):
        if start >= started - 1 and (
            best is None or abs(start - started) < abs(starts[best] - started)
        ):
            best = i
    return best


def _value(value):
    """A JS value, None for JS null and undefined (Pyodide gives ``jsnull``,
    a proxy of its own, for null: ``response.body`` of a HEAD, a 204 or an
    opaque redirect is null)."""
    if value is None:
        return None
    try:
        from pyodide.ffi import jsnull
    except ImportError:  # an older Pyodide: null was None
        return value
    return None if value is jsnull else value


#: The PerformanceResourceTiming fields nbfetch reads.
TIMING_FIELDS = (
    "startTime",
    "domainLookupStart",
    "domainLookupEnd",
    "connectStart",
    "secureConnectionStart",
    "connectEnd",
    "requestStart",
    "responseStart",
    "responseEnd",
    "encodedBodySize",
    "decodedBodySize",
)


def _number(entry, name: str) -> float:
    value = getattr(entry, name, None)
    return float(value) if value is not None else 0.0


__all__ = ["BrowserDriver", "BrowserHead", "FetchRejected", "JSFetch", "pick_entry"]
