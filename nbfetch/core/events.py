"""The lifecycle events of a fetch, and the Timing derived from them.

Every fetch records its events, always; ``trace=`` subscribers see each one as it
happens. Names are stable (tutorials, widgets and users depend on them)::

    queued, dequeued                      the max_clients queue (Tornado's self.queue)
    resolve.start, resolve.done           getaddrinfo off the loop, hostname_mapping
    connect.start, connect.done           the TCP connection
    tunnel.start, tunnel.done             the CONNECT tunnel through a proxy (https targets)
    tls.start, tls.done                   the TLS handshake (https; an https:// proxy's too)
    connection.reused                     a keep-alive connection from the pool
    request.headers_sent, request.body_sent
    request.body_progress                 bytes of a body sent in pieces so far, and its
                                          total (None: chunked); about 256 per upload
    response.informational                a 1xx response (100 Continue, 103 Early Hints)
    response.headers                      the status line and header block
    response.chunk                        one chunk as the server framed it (chunked bodies)
    response.data                         decoded body bytes handed to the caller
    response.done                         the body is complete
    response.paused, response.resumed     the reader paused the body (Response.pause():
                                          nothing is read from the socket); resumed
                                          carries {paused: seconds}. Timing.paused sums
                                          them (a part of download)
    cookies.sent, cookies.stored          cookie names sent (and how many the 8 KiB bound
                                          dropped); what Set-Cookie stored (never values)
    connection.dropped                    a connection closed with its body unread
                                          (a large redirect body, a stream closed early)
    redirect, retry, error, cancelled     cancelled: only when the caller cancelled
    retry: {attempt, reason, delay}       the next attempt of a retried fetch (a hop of
                                          its own, starting with the wait of delay s);
                                          {reason} alone: a stale keep-alive connection
                                          replaced within the hop

``Timing`` is derived from those events, never measured twice. Its phases are the
gaps between consecutive milestones, so they add up to ``total`` exactly::

    >>> r = await nbfetch.fetch(url)                          # doctest: +SKIP
    >>> r.timing.total == sum(p or 0 for p in r.timing.phases().values())   # doctest: +SKIP
    True

Time the reader kept the body paused is part of ``download`` (the phase under
way, as the clock saw it), so the phases still add up; ``Timing.paused`` says
how much of it was paused, and ``download - paused`` is the time the body took
to arrive.
"""

from __future__ import annotations

from collections.abc import Callable, Container

from .headers import Headers
from .redact import redact_url
from .urls import URL

PHASES = ("redirect", "queue", "dns", "connect", "tunnel", "tls", "send", "wait", "download")

#: The phase under way after each milestone: where the time goes when a fetch
#: ends without its next milestone (an error, a cancellation) or is still running.
RUNNING_PHASE = {
    "queued": "queue",
    "dequeued": "connect",
    "resolve.start": "dns",
    "resolve.done": "connect",
    "connect.start": "connect",
    "connect.done": "send",
    "tunnel.start": "tunnel",
    "tunnel.done": "tls",
    "tls.start": "tls",
    "tls.done": "send",
    "connection.reused": "send",
    "retry": "connect",
    "request.headers_sent": "send",
    "request.body_sent": "wait",
    "response.informational": "wait",
    "response.headers": "download",
    "redirect": "redirect",
}


class Event:
    """One lifecycle event: ``name``, ``time`` (monotonic seconds, ``perf_counter``),
    ``offset`` (seconds since the fetch started) and ``details`` (a dict)."""

    __slots__ = ("name", "time", "offset", "details")

    def __init__(self, name: str, time: float, offset: float, details: dict | None):
        self.name = name
        self.time = time
        self.offset = offset
        self.details = details if details is not None else {}

    def __getitem__(self, key: str):
        return self.details[key]

    def as_dict(self) -> dict:
        return {"name": self.name, "offset": self.offset, **self.details}

    def describe(self, skip: Container[str] = ()) -> str:
        """The details as ``key=value`` text a view or log may show: a URL (``str``
        keeps its secret query values) as ``redact_url`` shows it, Headers with
        their credentials hidden. ``skip`` leaves keys out (``headers``)."""
        return ", ".join(f"{k}={detail_text(v)}" for k, v in self.details.items() if k not in skip)

    def __repr__(self) -> str:
        # The reprs of URL and Headers details mask credentials (core.redact).
        details = ", ".join(f"{k}={v!r}" for k, v in self.details.items())
        return f"<Event +{self.offset * 1000:.3f}ms {self.name}{' ' + details if details else ''}>"


def detail_text(value: object) -> str:
    """An event detail as text, credentials masked (``Event.describe``)."""
    if isinstance(value, URL):
        return redact_url(value)
    if isinstance(value, Headers):
        return value.describe()
    return str(value)


Subscriber = Callable[[Event], object]


class Timing:
    """Phase durations in seconds (None where a phase did not happen).

    ``redirect`` (earlier hops: redirects, earlier attempts of a retried fetch
    and the waits between them), ``queue``, ``dns``, ``connect``, ``tunnel`` (the
    CONNECT through a proxy), ``tls``, ``send``,
    ``wait`` (time to first byte of the response head), ``download`` and ``total``
    — like curl's ``-w`` variables and the browser's Resource Timing.
    ``paused``: the part of ``download`` the reader kept the body paused
    (``Response.pause()``), or None; not a phase of its own.
    """

    __slots__ = (*PHASES, "total", "start", "end", "paused")

    def __init__(self, hop_events: list[Event], fetch_start: float):
        for name in self.__slots__:
            setattr(self, name, None)
        self.start = fetch_start
        if not hop_events:
            return
        marks: dict[str, float] = {}
        for e in hop_events:
            marks[e.name] = e.time  # the last occurrence wins (after a retry)
        first = hop_events[0].time
        if hop_events[0].name == "retry" and len(hop_events) > 1:
            # An attempt after the first: its hop starts with the retry event,
            # then the backoff wait; the attempt itself with the next event.
            first = hop_events[1].time
        if first > fetch_start and hop_events[0].name in ("redirect", "retry"):
            self.redirect = first - fetch_start
        cursor = first
        for phase, begin, end in (
            ("queue", "queued", "dequeued"),
            ("dns", None, "resolve.done"),
            ("connect", None, "connect.done"),
            # Through a proxy: CONNECT (and an https:// proxy's own handshake,
            # whose tls.done comes before tunnel.done) until the tunnel is open.
            ("tunnel", None, "tunnel.done"),
            ("tls", None, "tls.done"),
        ):
            if end in marks and (begin is None or begin in marks):
                setattr(self, phase, marks[end] - cursor)
                cursor = marks[end]
        if "request.body_sent" in marks:
            self.send = marks["request.body_sent"] - cursor
            cursor = marks["request.body_sent"]
        if "response.headers" in marks:
            self.wait = marks["response.headers"] - cursor
            cursor = marks["response.headers"]
        if "response.done" in marks:
            self.download = marks["response.done"] - cursor
            cursor = marks["response.done"]
        else:
            # Ended by an error or a cancellation: its time belongs to the phase
            # that was under way, so the phases still add up to the total.
            stop = marks.get("error", marks.get("cancelled"))
            if stop is not None and stop > cursor:
                # The last phase event before the end, not before the cursor: a
                # DNS failure comes after resolve.start, which no mark closed.
                last = max(
                    (e for e in hop_events if e.name in RUNNING_PHASE and e.time <= stop),
                    key=lambda e: e.time,
                    default=None,
                )
                phase = RUNNING_PHASE[last.name] if last is not None else "queue"
                if phase != "redirect":
                    setattr(self, phase, (getattr(self, phase) or 0.0) + stop - cursor)
                    cursor = stop
        self.end = cursor
        self.total = cursor - fetch_start
        if "response.paused" in marks:
            self.paused = _paused_time(hop_events, cursor)

    def phases(self) -> dict[str, float | None]:
        """The phases in order (without total)."""
        return {name: getattr(self, name) for name in PHASES}

    def as_dict(self) -> dict[str, float | None]:
        return {**self.phases(), "total": self.total}

    def __repr__(self) -> str:
        shown = self.as_dict() if self.paused is None else {**self.as_dict(), "paused": self.paused}
        parts = [
            f"{name}={value * 1000:.2f}ms" for name, value in shown.items() if value is not None
        ]
        return f"Timing({', '.join(parts)})"


def _paused_time(hop_events: list[Event], end: float) -> float:
    """Seconds between each response.paused and its response.resumed (or the
    hop's end, for a body closed or failed while paused), up to ``end``."""
    total, since = 0.0, None
    for e in hop_events:
        if e.name == "response.paused":
            since = e.time
        elif e.name == "response.resumed" and since is not None:
            total += min(e.time, end) - since
            since = None
    if since is not None and end > since:
        total += end - since
    return max(total, 0.0)
