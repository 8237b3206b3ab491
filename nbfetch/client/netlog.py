"""The network log of the process: every fetch, whatever client made it
(``nbfetch.fetch``, an ``AsyncClient``, ``%fetch``, ``fetch_many``, a ``.http``
run), as a bounded ring of summaries, fed by a ``client/observe.py`` observer.

>>> import nbfetch
>>> nbfetch.network_log.enable()                  # a script: off until asked
>>> r = nbfetch.fetch_sync("http://127.0.0.1:8000/get")    # doctest: +SKIP
>>> nbfetch.network_log.rows()[0]["status"]                   # doctest: +SKIP
200

**When it records.** On from the moment nbfetch is imported inside IPython (a
Jupyter kernel, the IPython shell): a notebook's log shows every fetch of the
kernel. Off in plain scripts until ``nbfetch.network()`` or
``nbfetch.network_log.enable()``. ``NBFETCH_NETWORK_LOG=0`` in the environment
keeps it off everywhere, ``=1`` turns it on in scripts too;
``network_log.disable()`` stops it, ``network_log.clear()`` forgets what it holds.

**What it keeps.** The last ``size`` fetches (500 by default), newest first,
each a summary: method, URL, status, sizes, timing marks, the request and
response ``Headers`` (a head of more than ``MAX_HEADERS`` fields, with a
value longer than ``MAX_HEADER_VALUE`` characters or more than
``MAX_HEAD_CHARS`` in all, is copied cut to those bounds; the detail shows at
most as much of either), the first ``PREVIEW_BYTES +
PREVIEW_MARGIN`` bytes of the decoded body (the detail shows the first
``PREVIEW_BYTES``, as text or a hex dump) and at most ``MAX_EVENTS`` events
(the body events only counted). No ``Response``, no body beyond those bytes
(``python benchmarks/netlog.py memory`` measures what a ring holds).

**Secrets are redacted on output, not on entry.** Recording is kept cheap, so
an entry holds what the fetch already had, unredacted: the request's URL and
``Headers`` as sent (``Authorization``, ``Cookie``, userinfo and query
included), the response's ``Headers``, the first ``PREVIEW_BYTES +
PREVIEW_MARGIN`` bytes of the decoded body and the milestone events; only the
request body preview is scrubbed at once (the body itself is not kept). These
stay in the process's memory, as the fetch's own objects do, until the entry
leaves the ring. Every text the log gives out is made from them when asked,
through ``core.redact``: URLs through ``redact_url``, header values through
``redact_header`` (``Authorization: Basic ***``, ``Cookie: ***``,
``Set-Cookie: ***``), and every text (the body preview, event details, error
messages, the reason) scrubbed of the values the request sent and the
credentials the response set (``Secrets``). So rows, details, ``text()``, the
HAR export, the reprs and the views never show a credential; the log has no
unredacted output. An unredacted HAR of one fetch is ``r.to_har(redact=False)``
on its ``Response``.
"""

from __future__ import annotations

import codecs
import json
import os
import re
import weakref
from collections import deque
from collections.abc import Callable, Iterable
from datetime import datetime, timezone

from ..core.events import PHASES, Event, Timing, detail_text
from ..core.headers import Headers
from ..core.redact import (
    REDACTED,
    SENSITIVE_HEADERS,
    URL_HEADERS,
    Secrets,
    is_secret_name,
    redact_header,
    redact_pairs,
    redact_url,
)
from . import observe
from .export import har_log, har_timings

DEFAULT_SIZE = 500
#: Decoded body bytes shown per entry, and the raw bytes read beyond them so a
#: secret across the cut is scrubbed whole before the preview is cut.
PREVIEW_BYTES = 4096
PREVIEW_MARGIN = 4096
#: Body bytes shown as a hex dump when the body is not text.
HEX_BYTES = 512
#: Events kept per entry as text (the last one, an error, always among them).
MAX_EVENTS = 64
#: Header fields kept per direction, and characters per value.
MAX_HEADERS = 64
MAX_HEADER_VALUE = 1024
#: Characters of header values one head keeps in all: with MAX_HEADERS, an
#: entry's two heads stay under 40 KiB whatever a server or a caller sends.
MAX_HEAD_CHARS = 16 * 1024
#: Characters of a request body shown (a form's secret fields masked).
REQUEST_PREVIEW = 1024

TEXT_TYPES = ("text/", "json", "xml", "javascript", "x-www-form-urlencoded", "csv", "yaml")
#: Body events: not kept as text (one per read or chunk), counted.
BODY_EVENTS = frozenset({"response.data", "response.chunk", "request.body_progress"})
#: The events an entry follows (the rest change nothing it keeps but wire_bytes).
FOLLOWED = frozenset(
    {
        "queued",
        "dequeued",
        "request.headers_sent",
        "response.headers",
        "response.informational",
        "redirect",
        "retry",
        "response.done",
        "connection.dropped",
        "error",
        "cancelled",
    }
)
#: Event details not shown as text (the headers are shown as tables).
HEADS = ("headers", "trailers")


class Entry:
    """One fetch's summary. Running, it follows the fetch's events; finished
    (``state`` done, failed, cancelled or dropped) it holds no Response, no
    connection and no body beyond the preview.

    Recording is kept cheap (a few attribute writes per event, a list filter at
    the end); the text of the detail (redacted headers, the scrubbed preview,
    the events' details) is made when first asked for, from what was kept: the
    request and response ``Headers``, the milestone events and the first body
    bytes. Every text it gives out is redacted (see the module docstring)."""

    __slots__ = (
        "__weakref__",
        "_sent",
        "_ctx",
        "_content_type",
        "_events",
        "_kept",
        "_final",
        "_log",
        "_raw",
        "_request_headers",
        "_response_headers",
        "_big_events",
        "_head_secrets",
        "_secrets",
        "_text",
        "_url",
        "decoded_bytes",
        "error",
        "_events_dropped",
        "host",
        "id",
        "marks",
        "method",
        "reason",
        "redirects",
        "request_body",
        "started",
        "state",
        "status",
        "t0",
        "version",
        "wire_bytes",
    )

    def __init__(self, log: NetworkLog, entry_id: int, request, ctx):
        self._log = log
        self._ctx = ctx  # running only: the recorder's events at the end
        self.id = entry_id
        self.method = request.method
        url = self._url = self._final = request.url
        self.host = f"{url.host}:{url.port}" if url.port is not None else url.host
        rec = ctx.recorder
        self.started = rec.wall  # wall clock: HAR's startedDateTime
        self.t0 = rec.start  # perf_counter: the common axis of the waterfall
        self.marks: dict[str, float] = {}
        self.state = "running"
        self.status: int | None = None
        self.reason = self.version = ""
        self._content_type: str | None = ""  # None: read from the headers when asked
        self.error: dict | None = None
        self.wire_bytes = self.decoded_bytes = self.redirects = self._events_dropped = 0
        self._request_headers = request.headers  # the last hop's as sent, once sent
        self._response_headers = None
        # The events hold a head larger than the kept copies (cut, a 1xx head,
        # big trailers): they are filtered at the end, not kept as they are.
        self._big_events = False
        self._head_secrets: Secrets | None = None  # of a head kept cut
        self._events: list = []
        self._kept = True  # _events already holds only what is shown (see _finish)
        self._raw = bytearray()
        self._secrets: Secrets | None = None  # made when first needed
        self._text: str | None = None  # the redacted URL, made once
        self._sent: Secrets | None = None
        self.request_body: dict | None = None
        body = request.body
        if body is not None:  # the body's secret fields, while the body is at hand
            # (and, after a redirect, what the earlier hops sent)
            self._sent = Secrets()
            self._sent.add_request(request)
            if isinstance(body, bytes) and body:
                self.request_body = self._request_body(
                    body, request.headers.get("content-type", "")
                )

    # -- following the fetch ----------------------------------------------------------
    def __call__(self, event) -> None:
        """The fetch's trace subscriber."""
        name = event.name
        if name not in FOLLOWED:  # most events (every body event): one set test
            if name == "response.data":
                self.wire_bytes = event.details.get("wire_bytes", self.wire_bytes)
        elif name == "queued" or name == "dequeued":
            self.marks.setdefault(name, event.time)
        elif name == "request.headers_sent":
            self.marks["sent"] = event.time
            d = event.details
            self._final = d.get("url", self._final)
            headers = d.get("headers", self._request_headers)
            if _too_big(headers):
                self._keep_head_secrets(headers.items(), served=False)
                headers, self._big_events = _bounded(headers), True
            self._request_headers = headers
        elif name == "response.headers":
            self.marks["headers"] = event.time
            d = event.details
            self.status, self.reason = d.get("status"), d.get("reason", "")
            self.version = d.get("http_version", "")
            headers = self._response_headers = d.get("headers")
            self._content_type = "" if headers is None else None
            if headers is not None and _too_big(headers):
                # Read from the whole head: the bounded copy may leave them out.
                self._content_type = headers.get("content-type", "")
                self._keep_head_secrets(
                    [i for i in headers.items() if not _plain(i[0])], served=True
                )
                self._response_headers, self._big_events = _bounded(headers), True
        elif name == "redirect" or (name == "retry" and "attempt" in event.details):
            # The next hop starts: its marks, headers and body are the ones shown.
            marks = self.marks
            marks["hop"] = event.time
            for mark in ("sent", "headers", "end"):
                marks.pop(mark, None)
            # What this hop sent is scrubbed from the next ones' text too.
            if self._sent is None:
                self._sent = Secrets()
            self._sent.add_headers(self._request_headers.items())
            self._sent.add_url(self._final, served=self.redirects > 0)  # a Location
            self.redirects += name == "redirect"
            self.state, self.status = "running", None
            self._raw.clear()
        elif name == "response.informational":
            self._big_events = True  # a 1xx head (up to 16 of 64 KiB) is in the events
        elif name == "response.done":
            d = event.details
            trailers = d.get("trailers")
            if trailers and _too_big(trailers):
                self._big_events = True
            self.wire_bytes = d.get("wire_bytes", self.wire_bytes)
            self.decoded_bytes = d.get("decoded_bytes", self.decoded_bytes)
            if self._ctx is not None and self._ctx.final is not None:
                self._finish("done", event.time)
        elif name == "connection.dropped":
            # A stream closed with its body unread: the fetch ends here, unless it
            # was a redirect's body (then the next hop follows; no final yet).
            if self._ctx is not None and self._ctx.final is not None:
                self._finish("dropped", event.time)
        elif name == "error" or name == "cancelled":
            d = event.details
            self.error = {
                "type": d.get("type", name) if name == "error" else "cancelled",
                "phase": d.get("phase"),
                # A FetchError's message was scrubbed of the request's secrets
                # (client._open); bounded here, scrubbed again when shown.
                "message": str(d.get("message", ""))[:MAX_HEADER_VALUE],
            }
            self._finish("failed" if name == "error" else "cancelled", event.time)
        if self._log._listeners:
            self._log._changed()

    def _keep_head_secrets(self, items, served: bool) -> None:
        """The credentials of a head about to be kept cut (a 20 KB token cut
        to 1 KiB would be masked only in part where it shows up again)."""
        if self._head_secrets is None:
            self._head_secrets = Secrets()
        self._head_secrets.add_headers(list(items), served=served)

    def body(self, data) -> None:
        """The fetch's body tap: keeps the first bytes of the decoded body."""
        raw = self._raw
        room = PREVIEW_BYTES + PREVIEW_MARGIN - len(raw)
        if room > 0:
            raw += data[:room]

    def _finish(self, state: str, at: float) -> None:
        self.state = state
        self.marks["end"] = at
        ctx, self._ctx = self._ctx, None
        if ctx is None:
            return
        rec = ctx.recorder
        events = rec.events
        self._raw = bytes(self._raw)
        if (
            len(events) <= MAX_EVENTS
            and len(rec.hop_starts) == 1
            and not self._big_events  # else they hold heads larger than those kept
        ):
            # One hop, few events (a small GET: 8): the events' Headers are the
            # ones kept, so the events are kept as they are (a copy of the list:
            # the Response's own may change) and sorted out when first shown
            # (_shown_events); most entries are never looked at.
            self._events, self._kept = list(events), False
            self._events_dropped = rec.dropped
            return
        self._events = self._filtered(events, rec.dropped)

    def _filtered(self, events: list, dropped: int) -> list:
        """The events shown: no body events, at most MAX_EVENTS, their Headers
        left out (``events_dropped`` counts what is not kept)."""
        kept = [e for e in events if e.name not in BODY_EVENTS]
        if len(kept) > MAX_EVENTS:  # the first ones, and the end
            kept = [*kept[: MAX_EVENTS - 1], kept[-1]]
        # Their Headers are not kept twice (the last hop's are; the text of an
        # event leaves them out): a copy without them.
        self._events_dropped = len(events) - len(kept) + dropped
        return [
            Event(e.name, e.time, e.offset, {k: v for k, v in e.details.items() if k not in HEADS})
            if "headers" in e.details or "trailers" in e.details
            else e
            for e in kept
        ]

    def _shown_events(self) -> list:
        if not self._kept:
            self._events = self._filtered(self._events, self._events_dropped)
            self._kept = True
        return self._events

    @property
    def events_dropped(self) -> int:
        """Events not kept: the body events, and those past MAX_EVENTS."""
        if self.state != "running":
            self._shown_events()
        return self._events_dropped

    @property
    def content_type(self) -> str:
        """The response's Content-Type ("" before its head), read when asked."""
        if self._content_type is None:
            headers = self._response_headers
            self._content_type = "" if headers is None else headers.get("content-type", "")
        return self._content_type

    # -- text, made when asked ----------------------------------------------------------
    @property
    def url(self) -> str:
        """The URL the fetch was made with, redacted."""
        if self._text is None:
            self._text = redact_url(self._url)
        return self._text

    @property
    def final_url(self) -> str:
        """The last hop's URL (after redirects), redacted."""
        return self.url if self._final is self._url else redact_url(self._final)

    def secrets(self) -> Secrets:
        """What to scrub from this fetch's text: the values the request sent
        (each hop's URL and headers, its body's secret fields) and the
        credentials the response set (Set-Cookie, secret-named fields, the
        credential fields of a JSON body)."""
        if self._secrets is not None and self.state != "running":
            return self._secrets
        secrets = Secrets()
        if self._sent is not None:
            secrets.update(self._sent)
        secrets.add_url(self._url)
        secrets.add_url(self._final, served=self._final is not self._url)
        secrets.add_headers(self._request_headers.items())
        if self._head_secrets is not None:
            secrets.update(self._head_secrets)
        if self._response_headers is not None:
            secrets.add_headers(
                [i for i in self._response_headers.items() if not _plain(i[0])], served=True
            )
        raw = self._raw
        ctype = self.content_type
        if (
            raw
            and "json" in ctype
            and len(raw) >= self.decoded_bytes
            and _MAY_HOLD_CREDENTIALS.search(raw)
        ):
            # A login's answer: its credential fields ({"access_token": ...}).
            try:
                secrets.add_json(json.loads(raw))
            except ValueError:
                pass
        self._secrets = secrets
        return secrets

    def _scrub(self, text: str) -> str:
        return self.secrets().scrub(text)

    @property
    def request_headers(self) -> list[tuple[str, str]]:
        return self._headers(self._request_headers) if self.marks.get("sent") else []

    @property
    def response_headers(self) -> list[tuple[str, str]]:
        return [] if self._response_headers is None else self._headers(self._response_headers)

    @property
    def request_cookies(self) -> list[str]:
        if not self.marks.get("sent"):
            return []
        return _cookie_names(self._request_headers.get_list("cookie"), False)

    @property
    def response_cookies(self) -> list[str]:
        if self._response_headers is None:
            return []
        return _cookie_names(self._response_headers.get_list("set-cookie"), True)

    def _headers(self, headers) -> list[tuple[str, str]]:
        """At most MAX_HEADERS fields, values redacted, scrubbed and cut."""
        items = headers.items()
        kept = []
        for name, value in items[:MAX_HEADERS]:
            if not _plain(name):
                value = redact_header(name, value)
            value = self._scrub(value)
            if len(value) > MAX_HEADER_VALUE:
                value = value[: MAX_HEADER_VALUE - 1] + "…"
            kept.append((name, value))
        if len(items) > MAX_HEADERS:
            kept.append(("…", f"{len(items) - MAX_HEADERS} more fields not kept"))
        return kept

    def events(self) -> list[dict]:
        """The fetch's events (body events counted in ``events_dropped``), their
        details as redacted text."""
        events = self._shown_events()
        if self._ctx is not None:  # running: what happened so far
            events = [
                e for e in self._ctx.recorder.events[:MAX_EVENTS] if e.name not in BODY_EVENTS
            ]
        return [
            {"offset": e.offset, "name": e.name, "details": self._event_text(e)} for e in events
        ]

    def _event_text(self, event) -> str:
        text = ", ".join(
            f"{k}={self.url if v is self._url else detail_text(v)}"
            for k, v in event.details.items()
            if k not in HEADS and v is not None
        )
        text = self._scrub(text)
        return text if len(text) <= MAX_HEADER_VALUE else text[: MAX_HEADER_VALUE - 1] + "…"

    def timing(self) -> dict[str, float | None] | None:
        """The phases of the last hop and the total (None while running)."""
        if self.state == "running" or not self._events:
            return None
        events = self._shown_events()
        starts = [
            i
            for i, e in enumerate(events)
            if e.name == "redirect" or (e.name == "retry" and "attempt" in e.details)
        ]
        hop = events[starts[-1] :] if starts else events
        return Timing(hop, events[0].time).as_dict()

    def _safe_preview(self) -> tuple[bytes, bool]:
        """The first body bytes, scrubbed, and whether the body goes on past them."""
        raw = bytes(self._raw)
        cut = self.state == "running" or self.decoded_bytes > len(raw)
        secrets = self.secrets()
        if raw and secrets:
            raw = secrets.scrub_bytes(raw)
            if cut:
                # A secret cut by the end of what was kept is not matched by
                # scrub: what remains of it lies in the last longest-1 bytes.
                raw = raw[: max(len(raw) - max(secrets.longest - 1, 0), 0)]
        return raw[:PREVIEW_BYTES], cut or len(raw) > PREVIEW_BYTES

    def body_preview(self) -> tuple[str, str]:
        """(kind, text) of the body's first bytes: ``text``, ``hex`` or ``empty``."""
        data, cut = self._safe_preview()
        if not data:
            return "empty", ""
        text = _decode(data, self.content_type.lower(), cut)
        if text is not None:
            return "text", text
        return "hex", _hexdump(data[:HEX_BYTES], max(self.decoded_bytes, len(data)))

    def _request_body(self, body: bytes, ctype: str) -> dict:
        text = body[:REQUEST_PREVIEW].decode("utf-8", errors="replace")
        if ctype.startswith("application/x-www-form-urlencoded"):
            text = redact_pairs(text)
        secrets = self._sent
        text = secrets.scrub(text)
        if len(body) > REQUEST_PREVIEW:
            text = text[: max(len(text) - max(secrets.longest - 1, 0), 0)]
        return {"size": len(body), "content_type": ctype, "text": text}

    # -- views of the entry ------------------------------------------------------------
    @property
    def elapsed(self) -> float | None:
        """Seconds from the start to the end (None while running)."""
        end = self.marks.get("end")
        return None if end is None else end - self.t0

    def status_text(self) -> str:
        if self.error is not None:
            return "cancelled" if self.state == "cancelled" else str(self.error["type"])
        if self.status is not None:
            return str(self.status)
        return "…"

    def error_text(self) -> dict | None:
        if self.error is None:
            return None
        return {**self.error, "message": self._scrub(self.error["message"])}

    def row(self) -> dict:
        """The summary as a dict: what a table row shows."""
        return {
            "id": self.id,
            "started": _iso(self.started),
            "method": self.method,
            "url": self.url,
            "host": self.host,
            "status": self.status,
            "reason": self._scrub(self.reason),
            "state": self.state,
            "error": self.error_text(),
            "size": self.wire_bytes,
            "decoded_size": self.decoded_bytes,
            "time": self.elapsed,
            "redirects": self.redirects,
            "content_type": self._scrub(self.content_type),
        }

    def detail(self) -> dict:
        """Everything kept of the fetch: the row, final URL, headers, body
        preview, timing phases and events."""
        kind, text = self.body_preview()
        return {
            **self.row(),
            "final_url": self.final_url,
            "http_version": self.version,
            "request_headers": self.request_headers,
            "response_headers": self.response_headers,
            "request_body": self.request_body,
            "preview_kind": kind,
            "preview": text,
            "timing": self.timing(),
            "events": self.events(),
            "events_dropped": self.events_dropped,
        }

    def searchable(self) -> str:
        error = self.error["type"] if self.error else ""
        return f"{self.method} {self.url} {self.status_text()} {self.reason} {error}".lower()

    def __repr__(self) -> str:
        return f"<Entry #{self.id} {self.method} {self.url} {self.status_text()}>"


class _Observer:
    """What ``observe.add_observer`` holds: a weak reference to the log."""

    __slots__ = ("log",)

    def __init__(self, log: NetworkLog):
        self.log = weakref.ref(log)

    def fetch_started(self, request, ctx):
        log = self.log()
        return None if log is None else log._started(request, ctx)


class NetworkLog:
    """The ring of the last ``size`` fetches' summaries (see the module docstring)."""

    def __init__(self, size: int = DEFAULT_SIZE):
        self._entries: deque[Entry] = deque(maxlen=size)
        self._next_id = 1
        self._remove: Callable[[], None] | None = None
        self._listeners: list[weakref.WeakMethod | Callable] = []

    # -- switching -----------------------------------------------------------------------
    @property
    def enabled(self) -> bool:
        return self._remove is not None

    @property
    def size(self) -> int:
        return self._entries.maxlen or 0

    @size.setter
    def size(self, size: int) -> None:
        if size < 1:
            raise ValueError("the network log keeps at least 1 fetch")
        self._entries = deque(self._entries, maxlen=size)

    def enable(self, size: int | None = None) -> NetworkLog:
        """Record every fetch from now on (``size``: how many are kept)."""
        if size is not None:
            self.size = size
        if self._remove is None:
            self._remove = observe.add_observer(_Observer(self))
        return self

    def disable(self) -> None:
        """Stop recording (what was recorded stays until ``clear()``)."""
        if self._remove is not None:
            self._remove()
            self._remove = None

    def clear(self) -> None:
        self._entries.clear()
        self._changed()

    # -- recording -----------------------------------------------------------------------
    def _started(self, request, ctx) -> Entry:
        entry = Entry(self, self._next_id, request, ctx)
        self._next_id += 1
        self._entries.append(entry)
        if ctx.body_taps is None:
            ctx.body_taps = []
        ctx.body_taps.append(entry.body)
        return entry

    def subscribe(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Call ``callback()`` after every change (keep it cheap: a view asks
        its throttle for a render). A bound method is held weakly: a closed
        view is not kept alive by the log. Returns the function that stops it."""
        try:
            ref: weakref.WeakMethod | Callable = weakref.WeakMethod(callback)  # type: ignore[arg-type]
        except TypeError:
            ref = callback
        self._listeners.append(ref)

        def remove() -> None:
            if ref in self._listeners:
                self._listeners.remove(ref)

        return remove

    def _changed(self) -> None:
        if not self._listeners:
            return
        for ref in tuple(self._listeners):
            callback = ref() if isinstance(ref, weakref.WeakMethod) else ref
            if callback is None:
                self._listeners.remove(ref)
                continue
            try:
                callback()
            except Exception:
                import logging

                logging.getLogger("nbfetch").exception("network log listener failed")

    # -- reading -------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self):
        """Newest first."""
        return reversed(tuple(self._entries))

    def entry(self, entry_id: int) -> Entry:
        for entry in self._entries:
            if entry.id == entry_id:
                return entry
        raise KeyError(f"fetch #{entry_id} is not in the network log (any more)")

    def entries(
        self, text: str | None = None, status: str | int | None = None, host: str | None = None
    ) -> list[Entry]:
        """The entries that match every filter given, newest first (see ``matches``)."""
        test = matcher(text, status, host)
        return [e for e in reversed(self._entries) if test(e)]

    def rows(self, text=None, status=None, host=None) -> list[dict]:
        return [e.row() for e in self.entries(text, status, host)]

    def frame(self, text=None, status=None, host=None):
        """The rows as a pandas DataFrame (pandas needed)."""
        try:
            import pandas as pd
        except ImportError:
            raise ImportError(
                "frame() needs pandas: pip install pandas; rows() needs nothing"
            ) from None
        return pd.DataFrame(self.rows(text, status, host))

    def detail(self, entry_id: int) -> dict:
        return self.entry(entry_id).detail()

    def hosts(self) -> list[str]:
        return sorted({e.host for e in self._entries})

    def to_har(self, ids: Iterable[int] | None = None, text=None, status=None, host=None) -> dict:
        """HAR 1.2 of the chosen entries (``ids``), else of those the filters
        match, oldest first as HAR lists them. Always redacted (see the module
        docstring)."""
        if ids is not None:
            wanted = set(ids)
            chosen = [e for e in self._entries if e.id in wanted]
        else:
            chosen = list(reversed(self.entries(text, status, host)))
        return har_log([har_entry(e) for e in chosen])

    def save_har(self, path, ids=None, text=None, status=None, host=None) -> int:
        """Write ``to_har`` to ``path``; returns the number of entries written."""
        har = self.to_har(ids, text, status, host)
        with open(path, "w", encoding="utf-8") as f:
            json.dump(har, f, indent=1)
        return len(har["log"]["entries"])

    def text(self, limit: int = 20) -> str:
        """A terminal's view: a line per fetch, newest first."""
        entries = list(self)
        lines = [
            f"network log: {len(entries)} of the last {self.size} fetches"
            f"{'' if self.enabled else ' (not recording)'}"
        ]
        for e in entries[:limit]:
            took = f"{e.elapsed * 1000:.0f} ms" if e.elapsed is not None else "…"
            lines.append(
                f"  #{e.id:<5} {e.method:<7} {e.status_text():>9} {e.wire_bytes:>9,} B {took:>9}  {e.url}"
            )
        if len(entries) > limit:
            lines.append(f"  … {len(entries) - limit} more")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return self.text()


def matcher(text=None, status=None, host=None) -> Callable[[Entry], bool]:
    """The test of the filters: ``text`` a case-insensitive substring of the
    method, URL, status or error; ``status`` an exact code (``404``), a class
    (``"4xx"``), ``"failed"``, ``"cancelled"``, ``"running"``, or several
    separated by commas; ``host`` the host, or host:port."""
    needle = text.strip().lower() if text else ""
    wanted = (
        [s.strip().lower() for s in str(status).split(",") if s.strip()]
        if status not in (None, "")
        else []
    )
    where = host.strip().lower() if host else ""

    def status_ok(e: Entry) -> bool:
        for w in wanted:
            if w in ("failed", "error", "errors"):
                if e.error is not None and e.state == "failed":
                    return True
            elif w == "cancelled":
                if e.state == "cancelled":
                    return True
            elif w in ("running", "pending"):
                if e.state == "running":
                    return True
            elif len(w) == 3 and w.endswith("xx") and w[0].isdigit():
                if e.status is not None and e.status // 100 == int(w[0]):
                    return True
            elif w.isdigit() and e.status == int(w):
                return True
        return False

    def test(e: Entry) -> bool:
        if where and where not in (e.host.lower(), e.host.rpartition(":")[0].lower()):
            return False
        if wanted and not status_ok(e):
            return False
        return not needle or needle in e.searchable()

    return test


def har_entry(e: Entry) -> dict:
    """A HAR entry from a summary (export.har_timings for the timings)."""
    phases = e.timing()
    timings, total = har_timings(_timing(phases or {}))
    kind, text = e.body_preview()
    content: dict = {"size": e.decoded_bytes, "mimeType": e._scrub(e.content_type)}
    if kind == "text":
        content["text"] = text
        if e.decoded_bytes > len(text.encode("utf-8")):
            content["comment"] = f"the first {PREVIEW_BYTES:,} bytes (nbfetch network log preview)"
    request: dict = {
        "method": e.method,
        "url": e.final_url,
        "httpVersion": "HTTP/1.1",
        "cookies": [{"name": n, "value": REDACTED} for n in e.request_cookies],
        "headers": [{"name": n, "value": v} for n, v in e.request_headers],
        "queryString": _query(e.final_url),
        "headersSize": -1,
        "bodySize": e.request_body["size"] if e.request_body else 0,
    }
    if e.request_body:
        request["postData"] = {
            "mimeType": e.request_body["content_type"],
            "text": e.request_body["text"],
        }
    location = next((v for n, v in e.response_headers if n.lower() == "location"), "")
    entry = {
        "startedDateTime": _iso(e.started),
        "time": total if phases else round((e.elapsed or 0) * 1000, 3),
        "request": request,
        "response": {
            "status": e.status or 0,
            "statusText": e._scrub(e.reason),
            "httpVersion": e.version or "HTTP/1.1",
            "cookies": [{"name": n, "value": REDACTED} for n in e.response_cookies],
            "headers": [{"name": n, "value": v} for n, v in e.response_headers],
            "content": content,
            "redirectURL": location,
            "headersSize": -1,
            "bodySize": e.wire_bytes,
        },
        "cache": {},
        "timings": timings,
        "_nbfetch": {"id": e.id, "state": e.state, "redirects": e.redirects, "url": e.url},
    }
    if e.error is not None:
        entry["_nbfetch"]["error"] = e.error_text()
    return entry


def _timing(phases: dict) -> Timing:
    timing = Timing.__new__(Timing)
    for name in (*PHASES, "total"):
        setattr(timing, name, phases.get(name))
    return timing


def _query(url: str) -> list[dict]:
    query = url.partition("?")[2].partition("#")[0]
    pairs = []
    for part in query.split("&") if query else ():
        name, _, value = part.partition("=")
        pairs.append({"name": name, "value": value})
    return pairs


def _cookie_names(values: list[str], set_cookie: bool) -> list[str]:
    """Cookie names (never values): of Cookie pairs, or each Set-Cookie's first
    pair (RFC 6265 section 4.1.1)."""
    names = []
    for value in values:
        pairs = [value.partition(";")[0]] if set_cookie else value.split(";")
        names += [p.partition("=")[0].strip() for p in pairs if p.strip()]
    return names[:MAX_HEADERS]


#: Header names known to be shown as they are (neither credentials, nor
#: secret-named, nor URLs): redact_header's word splitting, once per name.
_PLAIN_NAMES: dict[str, bool] = {}


def _plain(name: str) -> bool:
    plain = _PLAIN_NAMES.get(name)
    if plain is None:
        lowered = name.lower()
        plain = (
            lowered not in SENSITIVE_HEADERS
            and lowered not in URL_HEADERS
            and not is_secret_name(name)
        )
        if len(_PLAIN_NAMES) < 1024:  # names come from servers: bounded
            _PLAIN_NAMES[name] = plain
    return plain


#: Whether a JSON body is worth parsing for credential fields (is_credential_field).
_MAY_HOLD_CREDENTIALS = re.compile(
    rb"(?i)token|secret|passw|pwd|signature|cookie|authoriz|credential|jwt|sid|key"
)


def _too_big(headers: Headers) -> bool:
    """More than MAX_HEADERS fields, a value longer than MAX_HEADER_VALUE, or
    more than MAX_HEAD_CHARS in all."""
    if len(headers) > MAX_HEADERS:
        return True
    total = 0
    for _, _, value in headers._items:
        if len(value) > MAX_HEADER_VALUE:
            return True
        total += len(value)
    return total > MAX_HEAD_CHARS


def _bounded(headers: Headers) -> Headers:
    """A copy of a huge head within the bounds of ``_too_big`` (a server's
    64 KiB head, or a request's 20 KB value, is not kept whole in each of the
    ring's entries): the first fields, each value cut, until the budget is spent."""
    kept, budget = Headers(), MAX_HEAD_CHARS
    for name, value in headers.items()[:MAX_HEADERS]:
        if budget <= 0:
            break
        value = value[: min(MAX_HEADER_VALUE, budget)]
        kept.add(name, value)
        budget -= len(value)
    return kept


def _decode(raw: bytes, ctype: str, cut: bool) -> str | None:
    """The preview as text: a text type in its charset (bad bytes replaced),
    else only what is valid UTF-8 (a character cut at the end allowed); None:
    binary, shown as hex."""
    charset = "utf-8"
    for param in ctype.split(";")[1:]:
        name, _, value = param.strip().partition("=")
        if name.strip().lower() == "charset" and value:
            charset = value.strip().strip('"')
    try:
        codecs.lookup(charset)
    except LookupError:
        charset = "utf-8"
    if any(t in ctype for t in TEXT_TYPES):
        return raw.decode(charset, errors="replace")
    for end in (len(raw), len(raw) - 1, len(raw) - 2, len(raw) - 3) if cut else (len(raw),):
        try:
            return raw[:end].decode("utf-8")
        except UnicodeDecodeError:
            continue
    return None


def _hexdump(data: bytes, size: int) -> str:
    lines = []
    for offset in range(0, len(data), 16):
        row = data[offset : offset + 16]
        text = "".join(chr(b) if 32 <= b < 127 else "." for b in row)
        lines.append(f"{offset:08x}  {' '.join(f'{b:02x}' for b in row):<47}  {text}")
    if size > len(data):
        lines.append(f"… {size:,} bytes in all")
    return "\n".join(lines)


def _iso(wall: float) -> str:
    return datetime.fromtimestamp(wall, tz=timezone.utc).isoformat().replace("+00:00", "Z")


#: The process's network log (``nbfetch.network_log``).
network_log = NetworkLog()


def enable_by_default(interactive: bool) -> None:
    """At import: on inside IPython, off in scripts; ``NBFETCH_NETWORK_LOG``
    (0/off/false or 1/on/true) overrides both."""
    setting = os.environ.get("NBFETCH_NETWORK_LOG", "").strip().lower()
    if setting in ("0", "off", "false", "no"):
        return
    if interactive or setting in ("1", "on", "true", "yes"):
        network_log.enable()


__all__ = ["DEFAULT_SIZE", "Entry", "NetworkLog", "enable_by_default", "matcher", "network_log"]
