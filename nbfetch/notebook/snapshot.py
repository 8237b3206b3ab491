"""One renderer for a fetch: the live view's panes, its final static snapshot and
the ``Response`` rich display all come from a ``FetchState`` and these functions.

``FetchState`` is fed the public events (live, as a ``trace=`` subscriber, or
replayed from ``Response.events``) and keeps bounded state: the last rows of
chunks and events with counts of the rest, running byte totals. The HTML uses
inline styles and theme colours only (``theme``), no script, so a saved
notebook, nbconvert and GitHub show it as it was. Everything a server sent is
escaped; URLs go through ``redact_url``, headers through ``redact_header`` and
all text through the fetch's ``Secrets`` unless ``show_secrets`` (D4).
"""

from __future__ import annotations

import base64
import html
import json
import time
from collections import deque

from ..core.events import PHASES, RUNNING_PHASE, Event, Timing
from ..core.redact import REDACTED, Secrets, redact_header, redact_url
from ..httpfile.jsonpath import MAX_JSON_DOCUMENT
from ..text.render import looks_textual
from . import theme

#: Events the waterfall is computed from (never the per-chunk ones).
MILESTONES = frozenset(
    {
        "queued",
        "dequeued",
        "resolve.start",
        "resolve.done",
        "connect.start",
        "connect.done",
        "tunnel.start",
        "tunnel.done",
        "tls.start",
        "tls.done",
        "connection.reused",
        "request.headers_sent",
        "request.body_sent",
        "response.informational",
        "response.headers",
        "response.done",
        "redirect",
        "retry",
        "error",
        "cancelled",
    }
)
FINAL = frozenset({"response.done", "error", "cancelled"})
#: A FetchError's phase as the waterfall's phase (a failed getaddrinfo is "dns").
ERROR_PHASE = {"resolve": "dns", "decode": "download", **{p: p for p in PHASES}}
#: Height of the scrolling tables (Chunks, Events, Body).
PANE_HEIGHT = "240px"
#: Rows of a table a saved snapshot keeps (the live view keeps 200).
SNAPSHOT_ROWS = 40


def human_bytes(n: float) -> str:
    """1023 B, 1.0 KiB, 97.7 KiB, 100.0 MiB: binary units, like tqdm's unit_scale."""
    if n < 1024:
        return f"{int(n):,} B"
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        n /= 1024
        if n < 1024 or unit == "TiB":
            return f"{n:.1f} {unit}"
    raise AssertionError("unreachable")


def human_seconds(s: float) -> str:
    """12 ms, 2.4 s, 1:05 (m:ss), like tqdm's elapsed and remaining."""
    if s < 1:
        return f"{s * 1000:.0f} ms"
    if s < 60:
        return f"{s:.1f} s"
    m, sec = divmod(int(s), 60)
    return f"{m}:{sec:02d}" if m < 60 else f"{m // 60}:{m % 60:02d}:{sec:02d}"


#: Body bytes shown at most in a notebook output.
MAX_PREVIEW = 20_000
MAX_IMAGE = 1_000_000
#: Larger JSON bodies are shown as text, not parsed and re-indented: parsing
#: 7 MB of JSON held the loop for about 2 s.
MAX_PRETTY_JSON = 256 * 1024
IMAGE_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp", "image/svg+xml")


def esc(value: object) -> str:
    return html.escape(str(value), quote=True)


HEXDUMP_BYTES = 256


def hexdump(data: bytes, limit: int = HEXDUMP_BYTES, size: int | None = None) -> str:
    lines = []
    for offset in range(0, min(len(data), limit), 16):
        row = data[offset : offset + 16]
        hexpart = " ".join(f"{b:02x}" for b in row)
        text = "".join(chr(b) if 32 <= b < 127 else "." for b in row)
        lines.append(f"{offset:08x}  {hexpart:<47}  {text}")
    size = len(data) if size is None else size
    if size > limit:
        lines.append(f"… {size:,} bytes in all")
    return "\n".join(lines)


def body_preview(response, secrets=None) -> tuple[str, str]:
    """(kind, text) for the body: kind is json, text, image, binary or empty.
    With ``secrets`` (a ``Secrets``), text is scrubbed before it is cut to
    ``MAX_PREVIEW`` (a secret across the cut would survive in part) and bytes
    before the hex dump (whose hex digits would spell it)."""
    if response.path is not None:
        return ("empty", f"(saved {response.decoded_bytes:,} bytes to {response.path})")
    try:
        body = response.body
    except Exception:
        return ("empty", "(the body has not been read)")
    if not body:
        return ("empty", "(empty body)")
    ctype = (response.headers.get("content-type") or "").split(";")[0].strip().lower()
    if ctype in IMAGE_TYPES and len(body) <= MAX_IMAGE:
        return ("image", f"data:{ctype};base64,{base64.b64encode(body).decode('ascii')}")
    if "json" in ctype and len(body) <= MAX_PRETTY_JSON:
        try:
            text = json.dumps(response.json(), indent=2, ensure_ascii=False)
            return ("json", _truncate(text, len(body), secrets))
        except ValueError:
            pass
    if ctype.startswith("text/") or "xml" in ctype or "json" in ctype or looks_textual(body):
        return ("text", _truncate(_head_text(response, body), len(body), secrets))
    if secrets is not None:
        body = _scrubbed_window(body, HEXDUMP_BYTES, 4 * secrets.longest, secrets.scrub_bytes)
    return ("binary", hexdump(body, size=len(response.body)))


def _scrubbed_window(data, keep: int, longest: int, scrub):
    """The first ``keep`` items of ``data`` scrubbed, without scanning all of it.

    The window scrubbed is ``keep + longest`` long, so a secret that straddles
    ``keep`` is inside it whole. If ``data`` goes on past the window, the last
    ``longest`` items of the scrubbed window may hold the start of a secret the
    window cut in two: they are dropped (scrubbing earlier secrets shortens the
    text and would pull them into the kept part)."""
    window = data[: keep + longest]
    scrubbed = scrub(window)
    if len(data) > len(window):
        scrubbed = scrubbed[: max(len(scrubbed) - longest, 0)]
    return scrubbed[:keep]


def _head_text(response, body: bytes) -> str:
    """The start of the body as text: only what a preview can show is decoded
    (4 bytes a character at most in UTF-8), so a 100 MiB body costs no more
    than a small one."""
    head = body[: 4 * MAX_PREVIEW + 1024]
    try:
        return head.decode(response.encoding, errors="replace")
    except LookupError:  # a charset Python does not know
        return head.decode("utf-8", errors="replace")


def _truncate(text: str, size: int, secrets=None) -> str:
    cut = len(text) > MAX_PREVIEW
    if secrets is not None:  # scrubbed before the cut, never all of 100 MiB
        text = _scrubbed_window(text, MAX_PREVIEW, secrets.longest, secrets.scrub)
    if not cut:
        return text
    return text[:MAX_PREVIEW] + f"\n… truncated: {size:,} bytes in all"


def add_body_secrets(secrets: Secrets, response) -> None:
    """Mask the string values of credential fields of a JSON response body
    (``access_token``, ``refresh_token``, ``id_token``, ``password``,
    ``api_key``, ...: ``is_credential_field``; not ``token_type`` or a Jira
    ``key``): the token a login returned is as
    much a credential in a saved notebook as one that was sent. Only bodies of
    at most ``MAX_JSON_DOCUMENT`` bytes are parsed (``json.loads`` holds the loop)."""
    if response.path is not None:
        return
    ctype = (response.headers.get("content-type") or "").split(";")[0].strip().lower()
    if "json" not in ctype:
        return
    try:
        body = response.body
    except Exception:  # not read (a stream): nothing to show either
        return
    if not body or len(body) > MAX_JSON_DOCUMENT:
        return
    try:
        secrets.add_json(json.loads(body))
    except (ValueError, RecursionError):  # not JSON, or nested deeper than Python recurses
        pass


class FetchState:
    """What the views know about one fetch, fed event by event; bounded."""

    MAX_CHUNK_ROWS = 200
    MAX_EVENT_ROWS = 200

    def __init__(self, method: str, url: object, *, show_secrets: bool = False, headers=()):
        self.method = method
        self.show_secrets = show_secrets
        self.secrets = Secrets()
        self.raw_url = str(url)
        self.secrets.add_url(url)
        self.request_headers: list[tuple[str, str]] = list(_items(headers))
        self.secrets.add_headers(self.request_headers)
        self.milestones: list[Event] = []
        self.events_head: list[Event] = []
        self.events_tail: deque[Event] = deque(maxlen=self.MAX_EVENT_ROWS // 2)
        self.events_total = 0
        self.chunks: deque[tuple] = deque(maxlen=self.MAX_CHUNK_ROWS)
        self.chunk_count = 0
        self.chunk_bytes = 0
        self._last_chunk_offset = 0.0
        self.wire = 0
        self.decoded = 0
        self.expected: int | None = None
        self.status: tuple | None = None
        self.headers = None
        self.body_started: float | None = None
        self.start: float | None = None
        self.end: float | None = None
        #: None while running, then done, error, cancelled or interrupted.
        self.outcome: str | None = None
        self.error: dict | None = None
        self.response = None
        self.cancel_requested = False
        #: The URL of the current hop after a redirect.
        self.url_override = None
        #: What ``cookies.stored`` stored, over every hop (bounded), with values.
        self.cookies_stored: list[dict] = []
        #: The ``??`` assertions of a .http request (``Assertion``) and, once
        #: checked, their results (``AssertionResult``); None: not a checked request.
        self.assertions: list | None = None
        self.checks: list | None = None
        #: What was asked for (a ``FetchOptions``), for "Copy as"; else it is
        #: read from the Response, or from the method, URL and headers.
        self.options = None
        #: Under Pyodide (client/browser.py): what the ``browser.*`` events
        #: said; the head and the chunks are then reconstructed from the
        #: browser's Response, not read off a wire.
        self.browser: dict | None = None
        self.browser_timing: dict | None = None
        #: An upload of this hop from request.body_progress: [bytes sent, total
        #: or None, first event's time, body_sent's time] (None for a body sent
        #: in one write).
        self.upload: list | None = None
        #: Paused by the reader now (response.paused, response.resumed), and
        #: the seconds it was paused before.
        self.paused = False
        self.paused_seconds = 0.0

    @classmethod
    def of_response(cls, response, *, show_secrets: bool = False) -> FetchState:
        """The state of a finished fetch, replayed from its recorded events."""
        first = response.history[0].request if response.history else response.request
        state = cls(
            first.method, first.url, show_secrets=show_secrets, headers=first.headers.items()
        )
        state.secrets.add_hops(response)  # URLs, headers, secret body fields
        add_body_secrets(state.secrets, response)
        for event in response.events:
            state.feed(event)
        state.url_override = response.url
        state.response = response
        if state.outcome is None:
            state.outcome = "done"
        return state

    @property
    def url(self) -> str:
        url = self.raw_url if self.url_override is None else str(self.url_override)
        return url if self.show_secrets else redact_url(url)

    @property
    def finished(self) -> bool:
        return self.outcome is not None

    def feed(self, event: Event) -> bool:
        """Take one event; True when it ends the fetch."""
        name = event.name
        if self.start is None:
            self.start = event.time
        self.events_total += 1
        if len(self.events_head) < self.MAX_EVENT_ROWS // 2:
            self.events_head.append(event)
        else:
            self.events_tail.append(event)
        if name in MILESTONES:
            self.milestones.append(event)
        d = event.details
        if name == "response.data":
            self.decoded += d["bytes"]
            self.wire = d["wire_bytes"]
        elif name == "response.chunk":
            gap = event.offset - self._last_chunk_offset if self.chunk_count else event.offset
            self._last_chunk_offset = event.offset
            self.chunk_count += 1
            self.chunk_bytes += d["size"]
            self.chunks.append((d["index"], d["size"], event.offset, gap, d["extensions"]))
        elif name == "request.headers_sent":
            sent = d.get("headers")
            if sent is not None:
                self.request_headers = list(_items(sent))
                self.secrets.add_headers(self.request_headers)
            if d.get("url") is not None:  # after a redirect: the server's Location
                self.secrets.add_url(d["url"], served=self.url_override is not None)
        elif name == "request.body_progress":
            if self.upload is None:
                self.upload = [0, d["total"], event.time, None]
            self.upload[0] = d["bytes"]
        elif name == "request.body_sent" and self.upload is not None:
            self.upload[0], self.upload[3] = d["bytes"], event.time
        elif name == "response.headers":
            self.status = (d["status"], d["reason"], d["http_version"])
            self.headers = d["headers"]
            # RFC 9110 9.3.2, 15.3.5, 15.4.5: a HEAD, 204 or 304 has no body,
            # whatever Content-Length says (it describes the GET's body).
            no_body = self.method == "HEAD" or d["status"] in (204, 304)
            self.expected = None if no_body else d["content_length"]
            self.wire = self.decoded = 0
            self.body_started = event.time
            # What the server sets (Set-Cookie, a secret-named field) is as
            # secret as what we sent: a body may repeat it.
            self.secrets.add_headers(_items(d["headers"]), served=True)
        elif name == "browser.request":
            self.browser = {}
        elif name == "browser.response":
            self.browser = dict(d)
            if d.get("redirected"):
                self.url_override = d["url"]
                self.secrets.add_url(d["url"], served=True)
        elif name == "browser.timing":
            self.browser_timing = dict(d)
        elif name == "cookies.stored":
            self._stored_cookies(d["cookies"])
        elif name == "response.paused":
            self.paused = True
        elif name == "response.resumed":
            self.paused = False
            self.paused_seconds += d["paused"]
        elif name == "redirect":
            self.url_override = d["to"]
            self.secrets.add_url(d["to"], served=True)
            self.chunks.clear()
            self.chunk_count = self.chunk_bytes = 0
            # The next hop has no status yet: a failure there is not the 3xx's.
            self.status = self.headers = self.expected = self.upload = None
            self.wire = self.decoded = 0
        if name not in FINAL or self.finished or (name == "response.done" and d.get("redirected")):
            return False
        self.end = event.time
        if name == "response.done":
            self.outcome = "done"
        elif name == "error":
            self.outcome, self.error = "error", dict(d)
        else:
            self.end_cancelled(d.get("phase"))
        return True

    MAX_COOKIE_ROWS = 50

    def _stored_cookies(self, cookies: list[dict]) -> None:
        # The event holds no values (events never do); the hop's Set-Cookie
        # fields do, for a view asked to show secrets.
        values = {}
        for field_name, field in _items(self.headers):
            if field_name.lower() == "set-cookie":
                name, _, rest = field.partition("=")
                values[name.strip()] = rest.partition(";")[0].strip()
        room = self.MAX_COOKIE_ROWS - len(self.cookies_stored)
        self.cookies_stored += [{**c, "value": values.get(c["name"], "")} for c in cookies[:room]]

    def end_cancelled(self, phase: str | None) -> None:
        """Cancelled by the view's Cancel (or ``cancel()``), else interrupted
        from outside (Kernel → Interrupt, a cancelled cell or task)."""
        self.outcome = "cancelled" if self.cancel_requested else "interrupted"
        self.error = {"type": self.outcome, "phase": phase}

    def fail(self, exc: BaseException) -> None:
        """End in the error state of ``exc`` (an exception raised before or
        outside the events: an invalid URL, a bad %fetch argument)."""
        if self.finished:
            return
        self.end = time.perf_counter()
        self.outcome = "error"
        self.error = {
            "type": type(exc).__name__,
            "message": getattr(exc, "message", None) or str(exc) or type(exc).__name__,
            "phase": getattr(exc, "phase", None),
        }

    # -- derived -----------------------------------------------------------------------
    def timing(self, now: float | None = None) -> tuple[list[tuple[str, float, bool]], float]:
        """The current hop's phases as (name, seconds, running) and the total.

        The phases that ended come from ``Timing``; the time after the last
        milestone belongs to the failed phase (the error's own), or to the
        phase under way (growing until ``now`` while the fetch runs)."""
        hop = self.milestones
        starts = [i for i, e in enumerate(hop) if starts_hop(e)]
        hop_events = hop[starts[-1] :] if starts else hop
        fetch_start = hop[0].time if hop else (self.start or time.perf_counter())
        ended = [e for e in hop_events if e.name not in ("error", "cancelled")]
        timing = Timing(ended, fetch_start)
        phases = [(name, v, False) for name, v in timing.phases().items() if v is not None]
        cursor = timing.end if timing.end is not None else fetch_start
        stop = self.end if self.finished else (now or time.perf_counter())
        if self.outcome != "done" and stop is not None and stop > cursor:
            phase = None
            if self.error is not None:
                phase = ERROR_PHASE.get(self.error.get("phase") or "")
            if phase is None:
                last = max(
                    (e for e in ended if e.name in RUNNING_PHASE),
                    key=lambda e: e.time,
                    default=None,
                )
                phase = RUNNING_PHASE[last.name] if last is not None else "queue"
            tail = stop - cursor
            merged = dict((n, v) for n, v, _ in phases)
            merged[phase] = merged.get(phase, 0.0) + tail
            phases = [
                (n, merged[n], n == phase and not self.finished) for n in PHASES if n in merged
            ]
            cursor = stop
        return phases, max(cursor - fetch_start, 0.0)

    def scrub(self, text: str) -> str:
        return text if self.show_secrets else self.secrets.scrub(text)

    def esc(self, value: object) -> str:
        """``value`` as HTML text: scrubbed of this fetch's secrets, then escaped.
        Never the other way round: scrubbing finished HTML could cut a secret
        that a server planted to match markup (``break-all">``) out of an
        attribute, and the escaped forms of a value are not the value."""
        return esc(self.scrub(str(value)))

    def header(self, name: str, value: str) -> str:
        if self.show_secrets:
            return redact_header(name, value, hidden=frozenset())
        return redact_header(name, value)


def starts_hop(event: Event) -> bool:
    """A redirect, or a retry of the policy (the retry of a stale keep-alive
    connection, without an attempt number, stays within its hop)."""
    return event.name == "redirect" or (event.name == "retry" and "attempt" in event.details)


def attempt_colour(status: int | None) -> str:
    """An earlier attempt's bar: its status's colour (an error's without one)."""
    return theme.status_colour(status) if status else theme.ERROR


#: The bar of a wait between attempts: stripes.
WAIT_COLOUR = (
    f"repeating-linear-gradient(45deg,{theme.PHASE_COLOURS['redirect']} 0 4px,transparent 4px 8px)"
)


def attempt_rows(
    state: FetchState, now: float | None = None
) -> list[tuple[str, float, float, str]]:
    """The earlier attempts of a retried fetch and the waits after them, as
    (label, start, end, colour), times in seconds since the fetch started: one
    waterfall bar each, in place of the one ``redirect`` bar of the earlier
    hops. Empty for a fetch that was never retried."""
    ms = state.milestones
    if not any(starts_hop(e) and e.name == "retry" for e in ms):
        return []
    origin, rows = ms[0].time, []
    begin, status, wait = origin, None, None
    for e in ms:
        if wait is not None:  # the next attempt's first event ends the wait
            rows.append((wait, begin - origin, e.time - origin, WAIT_COLOUR))
            begin, wait = e.time, None
        if e.name == "response.headers":
            status = e.details["status"]
        elif starts_hop(e):
            if e.name == "redirect":
                label = f"redirect {status}"
            else:  # after "status 503", "ConnectError: ...", "401: answering ..."
                why = status or e.details["reason"].split(":")[0]
                label = f"attempt {e.details['attempt'] - 1} · {why}"
            rows.append((label, begin - origin, e.time - origin, attempt_colour(status)))
            begin, status = e.time, None
            if e.name == "retry":
                wait = f"wait {e.details.get('delay') or 0:.3g} s"
    if wait is not None:  # waiting still (or cancelled while waiting)
        stop = state.end if state.finished else (now or time.perf_counter())
        rows.append((wait, begin - origin, max(stop, begin) - origin, WAIT_COLOUR))
    return rows


def _items(headers):
    if headers is None:
        return []
    return headers.items() if hasattr(headers, "items") else headers


# -- pieces -----------------------------------------------------------------------------
def status_html(state: FetchState) -> str:
    target = f"<code>{state.esc(state.method)} {state.esc(state.url)}</code>"
    dim = f"color:{theme.FG_DIM}"
    if state.status:
        code, reason, version = state.status
        head = f'<b style="color:{theme.status_colour(code)}">{code} {state.esc(reason)}</b>'
        tail = f' <span style="{dim}">{state.esc(version)}</span>'
    elif state.finished:
        colour = theme.ERROR if state.outcome == "error" else theme.WARN
        head, tail = f'<b style="color:{colour}">{state.esc(state.outcome)}</b>', ""
    else:
        current = state.milestones[-1].name if state.milestones else "starting"
        head, tail = f'<b style="{dim}">{state.esc(current)}…</b>', ""
    if state.status and state.outcome == "error":
        # A cancel or an interrupt is said once, by the line under the status
        # ("cancelled during download (by the Cancel button)"), not here too.
        tail += f' <b style="color:{theme.ERROR}">error</b>'
    if state.paused and not state.finished:
        tail += f' <b class="nbfetch-paused" style="color:{theme.WARN}">paused</b>'
    if state.browser is not None:
        tail += (
            f' <span style="{dim}" title="{esc(BROWSER_NOTE)}">'
            "· browser fetch(): head and chunks reconstructed</span>"
        )
    return f'<div style="color:{theme.FG}">{head} {target}{tail}</div>'


#: What the views say of a fetch the browser made (client/browser.py).
BROWSER_NOTE = (
    "Made by the browser's fetch() (Pyodide): the status line and headers are those"
    " the browser shows (cross-origin: only the CORS-safelisted and exposed ones),"
    " the chunks are the pieces it handed over, redirects it followed are hidden,"
    " and what it sent (its own headers, HTTP version) is not known."
)


def error_html(state: FetchState) -> str:
    e = state.error
    if e is None:
        return ""
    phase = e.get("phase")
    where = f" during <b>{state.esc(phase)}</b>" if phase else ""
    if state.outcome in ("cancelled", "interrupted"):
        how = "by the Cancel button" if state.outcome == "cancelled" else "from outside the view"
        return f'<div style="color:{theme.WARN}"><b>{state.outcome}</b>{where} ({how})</div>'
    message = str(e.get("message") or "")
    # FetchError's str() ends in " [phase] (url)": the view shows those apart.
    if phase and f" [{phase}]" in message:
        message = message[: message.rindex(f" [{phase}]")]
    hint = e.get("hint")  # FetchError.hint: what to try
    hint = f'<div style="color:{theme.FG_DIM}">hint: {state.esc(hint)}</div>' if hint else ""
    return (
        f'<div style="color:{theme.ERROR}"><b>{state.esc(e.get("type"))}</b>{where}: '
        f"{state.esc(message)}</div>{hint}"
    )


def progress_html(state: FetchState, *, live: bool, now: float | None = None) -> str:
    """A bar and a tqdm-like line: size, of total, rate, elapsed, ETA.

    A known length draws a solid bar of the fraction received. An unknown one
    draws stripes (sliding while live): it never looks complete before the end."""
    now = now or time.perf_counter()
    expected, wire = state.expected, state.wire
    colour = {"done": theme.OK, "error": theme.ERROR}.get(state.outcome or "", theme.INFO)
    if state.outcome in ("cancelled", "interrupted"):
        colour = theme.WARN
    track = (
        f"display:inline-block;vertical-align:middle;width:240px;height:10px;"
        f"background:{theme.BG_RAISED};border:1px solid {theme.BORDER};overflow:hidden"
    )
    if expected:
        fraction = min(wire / expected, 1.0)
        fill = f'<div style="width:{fraction * 100:.1f}%;height:100%;background:{colour}"></div>'
        kind = "determinate"
    else:
        stripes = f"repeating-linear-gradient(45deg,{colour} 0 6px,transparent 6px 12px)"
        if live and not state.finished:
            fill = (
                f'<div class="nbfetch-slide" style="width:35%;height:100%;background:{stripes};'
                'animation:nbfetch-slide 1.2s ease-in-out infinite alternate"></div>'
                "<style>@keyframes nbfetch-slide{from{margin-left:0}to{margin-left:65%}}</style>"
            )
        else:
            fill = f'<div style="width:100%;height:100%;background:{stripes}"></div>'
        kind = "indeterminate"
    parts = [human_bytes(wire) + (f" of {human_bytes(expected)}" if expected else "")]
    if state.decoded != wire:
        parts.append(f"{human_bytes(state.decoded)} decoded")
    if state.chunk_count:
        n = state.chunk_count
        parts.append(f"{n:,} chunk{'' if n == 1 else 's'}")
    if state.body_started is not None:
        stop = state.end if state.finished and state.end else now
        elapsed = max(stop - state.body_started, 1e-9)
        if wire:
            parts.append(f"{human_bytes(wire / elapsed)}/s")
        parts.append(human_seconds(elapsed))
        if state.paused_seconds:
            parts.append(f"paused {human_seconds(state.paused_seconds)}")
        if expected and not state.finished and wire and not state.paused:
            parts.append(f"ETA {human_seconds(max(expected - wire, 0) / (wire / elapsed))}")
    line = " · ".join(parts)
    return (
        f'<div style="font-size:12px;color:{theme.FG_DIM}">'
        f'<span class="nbfetch-bar nbfetch-{kind}" style="{track}">{fill}</span> '
        f'<span style="font-family:{theme.MONO}">{state.esc(line)}</span></div>'
    )


def upload_html(state: FetchState, *, now: float | None = None) -> str:
    """The upload's bar (a body sent in pieces: files=, a large or streamed
    body): sent of total, rate, ETA; stripes when the total is unknown. Empty
    for a body sent in one write."""
    if state.upload is None:
        return ""
    sent, total, start, end = state.upload
    colour = theme.OK if end is not None else theme.INFO
    if state.outcome in ("error", "cancelled", "interrupted") and end is None:
        colour = theme.ERROR if state.outcome == "error" else theme.WARN
    track = (
        f"display:inline-block;vertical-align:middle;width:240px;height:10px;"
        f"background:{theme.BG_RAISED};border:1px solid {theme.BORDER};overflow:hidden"
    )
    if total:
        width = f"{min(sent / total, 1.0) * 100:.1f}%"
        fill = f'<div style="width:{width};height:100%;background:{colour}"></div>'
    else:
        stripes = f"repeating-linear-gradient(45deg,{colour} 0 6px,transparent 6px 12px)"
        fill = f'<div style="width:100%;height:100%;background:{stripes}"></div>'
    stop = end or (state.end if state.finished and state.end else now or time.perf_counter())
    elapsed = max(stop - start, 1e-9)
    parts = ["upload " + human_bytes(sent) + (f" of {human_bytes(total)}" if total else "")]
    parts += [f"{human_bytes(sent / elapsed)}/s", human_seconds(elapsed)]
    if total and end is None and not state.finished and sent:
        parts.append(f"ETA {human_seconds(max(total - sent, 0) / (sent / elapsed))}")
    return (
        f'<div class="nbfetch-upload" style="font-size:12px;color:{theme.FG_DIM}">'
        f'<span class="nbfetch-bar" style="{track}">{fill}</span> '
        f'<span style="font-family:{theme.MONO}">{state.esc(" · ".join(parts))}</span></div>'
    )


def waterfall_html(state: FetchState, now: float | None = None) -> str:
    phases, total = state.timing(now)
    attempts = attempt_rows(state, now)
    if attempts:
        total = max(total, attempts[-1][2])
    end = max(total, 1e-6)
    rows, start = [], 0.0
    # Inline padding: JupyterLab's rendered-HTML tables pad every cell by 0.5em.
    cell = "padding:1px 8px 1px 0;text-align:left"
    if attempts:
        rows = [_attempt_row(*attempt, end, cell) for attempt in attempts]
        start = attempts[-1][2]
        # The earlier hops are drawn one bar each; while the fetch waits for
        # its next attempt (or when it ended waiting), the wait is the last bar.
        ms = state.milestones
        last = max(i for i, e in enumerate(ms) if starts_hop(e))
        waiting = ms[last].name == "retry" and all(
            e.name in ("error", "cancelled") for e in ms[last + 1 :]
        )
        phases = [] if waiting else [p for p in phases if p[0] != "redirect"]
    for name, value, running in phases:
        left, width = start / end * 100, max(value / end * 100, 0.3)
        label = f"{value * 1000:.1f} ms" + (" …" if running else "")
        rows.append(
            f'<tr><td style="{cell}">{name}</td>'
            f'<td class="nbfetch-track" style="width:360px;min-width:120px;padding:0;'
            f'background:{theme.BG_RAISED}">'
            f'<div style="margin-left:{left:.2f}%;width:{width:.2f}%;height:12px;'
            f'background:{theme.PHASE_COLOURS[name]}"></div></td>'
            f'<td style="text-align:right;padding:1px 0 1px 8px;font-family:{theme.MONO}">'
            f"{label}</td></tr>"
        )
        start += value
    shown = f"{total * 1000:.1f} ms" if state.finished else "…"
    rows.append(
        f'<tr><td style="{cell}"><b>total</b></td><td></td>'
        f'<td style="text-align:right;font-family:{theme.MONO}">{shown}</td></tr>'
    )
    return (
        f'<table class="nbfetch-waterfall" style="font-size:12px;color:{theme.FG};'
        f'border-collapse:collapse">{"".join(rows)}</table>'
    ) + browser_timing_html(state)


def browser_timing_html(state: FetchState) -> str:
    """Under Pyodide: the phases the browser hides from nbfetch's own events,
    as its Resource Timing entry gave them (when it did)."""
    if state.browser is None:
        return ""
    t = state.browser_timing
    dim = f"color:{theme.FG_DIM};font-size:12px"
    if t is None:
        return (
            f'<div style="{dim}">DNS, connect and TLS are done by the browser and not'
            " visible here (no Resource Timing entry)</div>"
        )
    parts = [
        f"{label} {t[key] * 1000:.1f} ms"
        for key, label in (
            ("dns", "DNS"),
            ("connect", "connect"),
            ("tls", "TLS"),
            ("request_to_first_byte", "request → first byte"),
        )
        if t.get(key) is not None
    ]
    if t.get("protocol"):
        parts.append(f"protocol {state.esc(t['protocol'])}")
    return f'<div style="{dim}">browser Resource Timing: {" · ".join(parts) or "none"}</div>'


def _attempt_row(label: str, t0: float, t1: float, colour: str, end: float, cell: str) -> str:
    """One bar of an earlier attempt, or of the wait before the next."""
    left, width = t0 / end * 100, max((t1 - t0) / end * 100, 0.3)
    return (
        f'<tr class="nbfetch-attempt"><td style="{cell}">{esc(label)}</td>'
        f'<td class="nbfetch-track" style="width:360px;min-width:120px;padding:0;'
        f'background:{theme.BG_RAISED}">'
        f'<div style="margin-left:{left:.2f}%;width:{width:.2f}%;height:12px;'
        f'background:{colour}"></div></td>'
        f'<td style="text-align:right;padding:1px 0 1px 8px;font-family:{theme.MONO}">'
        f"{(t1 - t0) * 1000:.1f} ms</td></tr>"
    )


def _table(header: list[str], rows: list[str], numeric: set[int], note: str = "") -> str:
    # text-align inline, not align=: JupyterLab's CSS right-aligns every table cell.
    th = "".join(
        f'<th style="text-align:{"right" if i in numeric else "left"};position:sticky;top:0;'
        f'background:{theme.BG_RAISED}">{h}</th>'
        for i, h in enumerate(header)
    )
    return (
        f'<div style="color:{theme.FG};font-size:12px">{note}'
        f'<div style="max-height:{PANE_HEIGHT};overflow:auto;border:1px solid {theme.BORDER}">'
        f'<table style="font-family:{theme.MONO};font-size:12px;white-space:nowrap;'
        f'border-spacing:12px 0"><thead><tr>{th}</tr></thead><tbody>{"".join(rows)}</tbody></table>'
        "</div></div>"
    )


def _row(cells: list[str], numeric: set[int]) -> str:
    return (
        "<tr>"
        + "".join(
            f'<td style="text-align:{"right" if i in numeric else "left"};padding:0 6px">{c}</td>'
            for i, c in enumerate(cells)
        )
        + "</tr>"
    )


def headers_html(state: FetchState) -> str:
    def table(title: str, items) -> str:
        rows = "".join(
            f'<tr><td style="text-align:left;font-weight:600;padding-right:1em;'
            f'vertical-align:top">{state.esc(n)}</td>'
            f'<td style="text-align:left;word-break:break-all">{state.esc(state.header(n, v))}</td></tr>'
            for n, v in items
        )
        return (
            f'<div style="color:{theme.FG_DIM};margin-top:4px">{title}</div>'
            f'<table style="font-family:{theme.MONO};font-size:12px;color:{theme.FG}">{rows}</table>'
        )

    parts = []
    if state.request_headers:
        parts.append(table("Request headers", state.request_headers))
    parts.append(cookies_html(state))
    if state.headers is not None:
        parts.append(table("Response headers", state.headers.items()))
    trailers = getattr(state.response, "trailers", None)
    if trailers is not None and len(trailers):
        parts.append(table("Trailers", trailers.items()))
    if not parts:
        return f'<span style="color:{theme.FG_DIM}">no headers yet</span>'
    return "".join(parts)


def cookies_html(state: FetchState) -> str:
    """The cookies this hop sent and those the fetch stored: values as ``***``
    unless ``show_secrets`` (a cookie is a credential)."""

    def value(v: str) -> str:
        return state.esc(v) if state.show_secrets else REDACTED

    sent = [
        pair.strip().partition("=")
        for n, v in state.request_headers
        if n.lower() == "cookie"
        for pair in v.split(";")
    ]
    parts = []
    # text-align inline: JupyterLab's CSS right-aligns every table cell.
    style = f"font-family:{theme.MONO};font-size:12px;color:{theme.FG};text-align:left"
    if sent:
        rows = "".join(f"<tr><td>{state.esc(n)}</td><td>{value(v)}</td></tr>" for n, _, v in sent)
        parts.append(
            f'<div style="color:{theme.FG_DIM};margin-top:4px">Cookies sent</div>'
            f'<table style="{style}">{rows}</table>'
        )
    if state.cookies_stored:
        rows = "".join(
            f"<tr><td>{state.esc(c['name'])}</td><td>{value(c['value'])}</td>"
            f"<td>{state.esc(c['domain'])}</td><td>{state.esc(c['path'])}</td>"
            f"<td>{state.esc(c['flags'])}</td>"
            f"<td>{_expiry(c['expires'])}</td></tr>"
            for c in state.cookies_stored
        )
        parts.append(
            f'<div style="color:{theme.FG_DIM};margin-top:4px">Cookies stored</div>'
            f'<table style="{style}"><tr>'
            + "".join(
                f'<th style="text-align:left;padding-right:1em">{h}</th>'
                for h in ("name", "value", "domain", "path", "flags", "expires")
            )
            + f"</tr>{rows}</table>"
        )
    return "".join(parts)


def _expiry(expires: float | None) -> str:
    if expires is None:
        return "session"
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(expires))


def framing(state: FetchState) -> str:
    """How the body was framed, when it had no chunks (RFC 9112 section 6.3)."""
    if state.status is None:
        return "no response yet"
    if state.expected is not None:
        return f"not chunked: a Content-Length body, {state.expected:,} bytes"
    if not state.finished:
        return "no chunks yet"
    if state.outcome == "done":
        return f"not chunked: {state.wire:,} bytes read until the connection closed"
    return "no chunks received"


def chunks_html(state: FetchState, limit: int | None = None) -> str:
    if not state.chunk_count:
        return f'<span style="color:{theme.FG_DIM}">{state.esc(framing(state))}</span>'
    numeric = {0, 1, 2, 3}
    rows = [
        _row(
            [
                f"{i:,}",
                f"{size:,}",
                f"{off * 1000:.1f}",
                f"{gap * 1000:.1f}",
                state.esc(";".join(n if v is None else f"{n}={v}" for n, v in ext)),
            ],
            numeric,
        )
        for i, size, off, gap, ext in list(state.chunks)[-(limit or len(state.chunks)) :]
    ]
    shown = len(rows)
    n, total = state.chunk_count, state.chunk_bytes
    note = (
        f"last {shown} of {n:,} chunks, {total:,} bytes in all"
        if shown < n
        else f"{n:,} chunks, {total:,} bytes"
    )
    if state.browser is not None:
        note += " · the browser's pieces, not the server's chunks (its framing is hidden)"
    return _table(["#", "size", "at (ms)", "gap (ms)", "extensions"], rows, numeric, note)


def events_html(state: FetchState, limit: int | None = None) -> str:
    def row(e: Event) -> str:
        return _row(
            [
                f"{e.offset * 1000:.3f}",
                state.esc(e.name),
                state.esc(e.describe(skip=("headers", "trailers"))),
            ],
            {0},
        )

    half = (limit or state.MAX_EVENT_ROWS) // 2
    head, tail = state.events_head[:half], list(state.events_tail)[-half:]
    rows = [row(e) for e in head]
    hidden = state.events_total - len(head) - len(tail)
    if hidden > 0:
        rows.append(f'<tr><td></td><td colspan="2">{hidden:,} more events</td></tr>')
    rows += [row(e) for e in tail]
    return _table(["ms", "event", "details"], rows, {0}, f"{state.events_total:,} events")


def body_html(state: FetchState) -> str:
    if state.response is None:
        text = "the body arrives with the response" if not state.finished else "no body"
        return f'<span style="color:{theme.FG_DIM}">{text}</span>'
    kind, text = body_preview(state.response, None if state.show_secrets else state.secrets)
    if kind == "image":
        return f'<img src="{esc(text)}" style="max-width:400px;max-height:{PANE_HEIGHT}">'
    return (
        f'<pre style="max-height:{PANE_HEIGHT};overflow:auto;font-size:12px;margin:0;'
        f'color:{theme.FG}">{state.esc(text)}</pre>'
    )


def checks_table(checks, esc_text) -> str:
    """``AssertionResult``\\ s as a table: ✓ or ✗, the assertion as written, and
    what was found (the message, for a failed one). ``esc_text`` scrubs and
    escapes (the actual values may be echoed secrets)."""
    rows = []
    for check in checks:
        mark, colour = ("✓", theme.OK) if check.passed else ("✗", theme.ERROR)
        written = check.assertion.text.strip()
        written = written[2:].strip() if written.startswith("??") else written
        found = check.actual if check.passed else check.message
        rows.append(
            f'<tr class="nbfetch-check nbfetch-check-{"passed" if check.passed else "failed"}">'
            f'<td style="text-align:left;color:{colour};font-weight:700">{mark}</td>'
            f'<td style="text-align:left;font-family:{theme.MONO}">{esc_text(written)}</td>'
            f'<td style="text-align:left;color:{theme.FG_DIM if check.passed else theme.ERROR}">'
            f"{esc_text(found)}</td></tr>"
        )
    return (
        f'<table class="nbfetch-checks" style="font-size:12px;color:{theme.FG};margin:0;'
        f'border-spacing:8px 1px">{"".join(rows)}</table>'
    )


def checks_summary(checks) -> str:
    """ "✓ 3 checks passed", "✗ 1 of 3 checks failed"."""
    failed = sum(1 for c in checks if not c.passed)
    n = len(checks)
    noun = "check" if n == 1 else "checks"
    return f"✗ {failed} of {n} {noun} failed" if failed else f"✓ {n} {noun} passed"


def checks_line(state: FetchState) -> str:
    """Under the status line: "✓ 3 checks passed" or "✗ 1 of 3 checks failed"."""
    if not state.checks:
        return ""
    failed = any(not c.passed for c in state.checks)
    return (
        f'<div class="nbfetch-checks-summary" style="color:{theme.ERROR if failed else theme.OK};'
        f'font-weight:600">{esc(checks_summary(state.checks))}</div>'
    )


def checks_html(state: FetchState) -> str:
    """The Checks tab: each ``??`` assertion of the request and its result."""
    if state.checks is None:
        pending = len(state.assertions or ())
        text = f"{pending} to check when the response is in" if pending else "no checks"
        return f'<span style="color:{theme.FG_DIM}">{text}</span>'
    if not state.checks:
        return f'<span style="color:{theme.FG_DIM}">no checks</span>'
    failed = any(not c.passed for c in state.checks)
    return (
        f'<div style="color:{theme.ERROR if failed else theme.OK};font-weight:600">'
        f"{esc(checks_summary(state.checks))}</div>{checks_table(state.checks, state.esc)}"
    )


#: Characters of one "Copy as" text kept in an output (each is there twice:
#: shown, and in its button).
MAX_COPY = 20_000
#: "Copy as": (label, the text maker's name, its library argument).
COPY_AS = (
    ("curl", "to_curl", None),
    (".http", "to_http", None),
    ("Python (nbfetch)", "to_python", "nbfetch"),
    ("Python (httpx)", "to_python", "httpx"),
    ("Python (requests)", "to_python", "requests"),
)
COPY_BUTTON = (
    # navigator.clipboard from the button's own click (a user gesture, as the
    # Clipboard API requires); the text is a data attribute: no script in it.
    '<button class="nbfetch-copy" data-text="{text}" title="copy to the clipboard" '
    'onclick="navigator.clipboard.writeText(this.dataset.text).then('
    "() => {{ this.textContent = 'Copied'; }}, "
    "() => {{ this.textContent = 'Copy failed'; }})\">{label}</button>"
)


def request_options(state: FetchState):
    """The request as ``FetchOptions``: as asked for, else as sent."""
    from ..text import code
    from ..text.options import FetchOptions

    if state.options is not None:
        return state.options
    if state.response is not None:
        return code.options_from_response(state.response)
    headers = {"headers": list(state.request_headers)} if state.request_headers else {}
    return FetchOptions(url=state.raw_url, method=state.method, fetch_kwargs=headers)


def copy_texts(state: FetchState) -> list[tuple[str, str]]:
    """(label, text) for each "Copy as" form; masked unless ``show_secrets``
    (the text makers mask credentials, the fetch's ``Secrets`` the rest)."""
    from ..text import code

    options = request_options(state)
    body = options.fetch_kwargs.get("body")
    if isinstance(body, (bytes, str)) and len(body) > MAX_COPY:
        # Not written out five times into the saved notebook (nor built on the loop).
        note = f"# a {len(body):,}-byte body: too large to copy from here; see nbfetch.text.code"
        return [(label, note) for label, _, _ in COPY_AS]
    out = []
    for label, maker, library in COPY_AS:
        args = (options, library) if library else (options,)
        try:
            text = getattr(code, maker)(*args, show_secrets=state.show_secrets)
        except ValueError as exc:  # a request the form cannot express
            text = f"# cannot be written as {label}: {exc}"
        text = state.scrub(text)
        if len(text) > MAX_COPY:
            text = f"# {len(text):,} characters as {label}: too long to keep in the notebook"
        out.append((label, text))
    return out


def copy_html(state: FetchState) -> str:
    """The "Copy as" tab: each form in a ``<pre>`` with a Copy button."""
    parts = []
    for label, text in copy_texts(state):
        parts.append(
            f'<div style="margin-top:4px;color:{theme.FG_DIM}">{esc(label)} '
            f"{COPY_BUTTON.format(text=esc(text), label='Copy')}</div>"
            f'<pre class="nbfetch-copy-text" style="font-size:12px;margin:0;max-height:120px;'
            f'overflow:auto;color:{theme.FG}">{esc(text)}</pre>'
        )
    return f'<div class="nbfetch-copy-as">{"".join(parts)}</div>'


def history_html(state: FetchState) -> str:
    r = state.response
    if r is None:
        return ""
    return "".join(
        f'<div style="color:{theme.FG_DIM}">{state.esc(e.request.method)} '
        f"{state.esc(e.url if state.show_secrets else redact_url(e.url))} → "
        f"{e.status_code} {state.esc(e.reason)} → "
        f"{state.esc(state.header('location', e.headers.get('location', '')))}</div>"
        for e in r.history
    )


# -- the whole ------------------------------------------------------------------------------
def snapshot_html(state: FetchState) -> str:
    """The static view of a finished fetch: what a saved notebook shows."""
    n_headers = len(state.request_headers) + (len(state.headers) if state.headers else 0)

    def section(title: str, body: str, open_: bool = False) -> str:
        return (
            f'<details{" open" if open_ else ""}><summary style="cursor:pointer">{title}'
            f"</summary>{body}</details>"
        )

    # Only what the fetch got to: a URL refused before anything was sent is
    # its status and error lines, not a page of empty sections.
    responded = state.status is not None
    parts = [
        f'<div class="nbfetch-response" style="font-family:{theme.UI_FONT};font-size:13px;'
        f'color:{theme.FG}">',
        history_html(state),
        status_html(state),
        error_html(state),
        checks_line(state),
        upload_html(state),
    ]
    if responded:
        parts.append(progress_html(state, live=False))
    if state.timing()[0]:
        parts.append(section("Timing", waterfall_html(state), open_=True))
    if n_headers:
        parts.append(section(f"Headers ({n_headers})", headers_html(state)))
    if responded:
        parts.append(section(f"Chunks ({state.chunk_count:,})", chunks_html(state, SNAPSHOT_ROWS)))
    if state.events_total:
        parts.append(section(f"Events ({state.events_total:,})", events_html(state, SNAPSHOT_ROWS)))
    if responded:
        parts.append(section("Body", body_html(state), open_=state.response is not None))
    if state.checks is not None or state.assertions is not None:
        failed = any(not c.passed for c in state.checks or ())
        parts.append(
            section(
                f"Checks ({len(state.assertions or state.checks or ())})",
                checks_html(state),
                open_=failed,
            )
        )
    parts.append(section("Copy as", copy_html(state)))
    parts.append("</div>")
    return "".join(parts)


def snapshot_text(state: FetchState) -> str:
    """One line, as a terminal would show the fetch."""
    if state.status:
        code, reason, version = state.status
        head = f"{version} {code} {reason}"
    else:
        head = state.outcome or "running"
    _, total = state.timing()
    parts = [f"{head}  {state.method} {state.url}", human_bytes(state.wire)]
    if state.chunk_count:
        parts.append(f"{state.chunk_count:,} chunks")
    parts.append(human_seconds(total))
    if state.status and state.outcome != "done":
        parts.append(state.outcome or "running")
    if state.outcome == "error" and state.error:
        parts.append(str(state.error.get("type")))
    if state.checks:
        parts.append(checks_summary(state.checks))
    if state.browser is not None:
        parts.append("browser fetch (reconstructed)")
    lines = [" · ".join(parts)]
    lines += [f"  ✗ {c.message}" for c in state.checks or () if not c.passed]
    return state.scrub("\n".join(lines))
