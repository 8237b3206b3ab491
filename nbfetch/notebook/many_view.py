"""The live waterfall of ``fetch_many``: one row per fetch, DevTools-style bars.

Each row's bar is split into the phases a browser's network panel shows:
queued (waiting for a max_clients slot), connecting (DNS, TCP, TLS or a reused
connection), waiting (request sent, until the head arrives) and receiving (the
body). The columns are the part of the URL that differs between the rows,
Status, Time and Size; a time axis runs above the bars. Every row is an HTML
``<details>``: opened, it shows that fetch's status line, timing phases,
request and response headers and error, with no kernel needed (a saved notebook
too). ``view.view(i)`` is fetch ``i``'s own ``ResponseView``.

The whole chart is one HTML widget (the view is five widget models, however many
rows), re-rendered at most 20 times a second; the final render is exact. When
``fetch_many`` ends, the output it was displayed in becomes a static
``text/html`` + ``text/plain`` bundle and the widget models are closed (D1 of
issue 15: a saved notebook shows the final waterfall, a reload never says
"model not found").

Secrets are masked in everything shown (``core.redact``): URLs through
``redact_url``, header values through ``redact_header``, and each row's HTML
through its fetch's ``Secrets.scrub``; ``show_secrets=True`` reveals them.
"""

from __future__ import annotations

import math
import time

import ipywidgets as widgets

from ..core.events import Event, Timing
from ..core.redact import Secrets, redact_header, redact_url
from .snapshot import (
    MILESTONES,
    WAIT_COLOUR,
    attempt_colour,
    esc,
    human_bytes,
    human_seconds,
    starts_hop,
)
from .static_view import SettlesToStatic
from .theme import (
    BG_RAISED,
    BORDER,
    ERROR,
    FG,
    FG_DIM,
    FG_FAINT,
    MONO,
    PHASE_COLOURS,
    UI_FONT,
    status_colour,
)
from .throttle import Throttle

SEGMENTS = (
    ("queued", PHASE_COLOURS["queue"], "queued", "dequeued"),
    # "attempt": dequeued, or the start of the last attempt of a retried fetch.
    ("connecting", PHASE_COLOURS["connect"], "attempt", "request.headers_sent"),
    ("waiting", PHASE_COLOURS["wait"], "request.headers_sent", "response.headers"),
    ("receiving", PHASE_COLOURS["download"], "response.headers", "end"),
)
#: Rows drawn at most; the rest are counted in one line (their fetches still
#: run). A drawn row with its details is ~3.5 KB of saved output and ~0.15 ms of
#: rendering: 100 rows keep the final render near 15 ms and 350 KB.
MAX_ROWS = 100
#: Rows in the text/plain form (a terminal's screenful).
MAX_TEXT_ROWS = 20
#: Milestone events kept per row (a redirect chain adds ~12 per hop).
MAX_MILESTONES = 120
#: Characters of a row label; longer ones lose their middle.
LABEL_CHARS = 48
#: Column widths: label, status, time, size, waterfall (the rest).
COLUMNS = ("30%", "9%", "8%", "8%", "45%")


def middle_ellipsis(text: str, limit: int = LABEL_CHARS) -> str:
    if len(text) <= limit:
        return text
    keep = limit - 1
    return text[: keep - keep // 2] + "…" + text[len(text) - keep // 2 :]


def labels(urls: list[str]) -> list[str]:
    """What tells the rows apart: each URL without the prefix and suffix all
    share (cut at a "/", "?", "&" or "=" so a token is never split). One URL, or
    all the same: the path and query, the way DevTools names a request."""
    distinct = set(urls)
    if len(distinct) < 2:
        return [_path(u) for u in urls]
    first, last = min(distinct), max(distinct)
    p = 0
    while p < min(len(first), len(last)) and first[p] == last[p]:
        p += 1
    # back to just after a separator: "…/drip?i=" + "3" reads as "i=3", not "3"
    while p > 0 and first[p - 1] not in "/?&":
        p -= 1
    rev = [u[p:][::-1] for u in distinct]
    shortest = min(rev, key=len)
    s = 0
    while s < len(shortest) and all(r[s] == shortest[s] for r in rev):
        s += 1
    while s > 0 and shortest[s - 1] not in "/?&=":
        s -= 1
    out = []
    for u in urls:
        middle = u[p : len(u) - s] if s else u[p:]
        out.append(middle_ellipsis(middle or _path(u)))
    return out


def _path(url: str) -> str:
    rest = url.partition("://")[2] or url
    slash = rest.find("/")
    return middle_ellipsis(rest[slash:] if slash != -1 else rest)


def nice_ticks(span: float, count: int = 5) -> list[float]:
    """Axis ticks: 1, 2 or 5 times a power of ten, about ``count`` of them."""
    if span <= 0:
        return [0.0]
    raw = span / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    return [i * step for i in range(int(span / step) + 1)]


def tick_label(t: float) -> str:
    if t == 0:
        return "0"
    return f"{t * 1000:g} ms" if t < 1 else f"{t:g} s"


class _Row:
    __slots__ = (
        "attempts",
        "error",
        "marks",
        "milestones",
        "reason",
        "request_headers",
        "response_headers",
        "result",
        "secrets",
        "status",
        "version",
        "wire",
    )

    def __init__(self, url: str):
        self.marks: dict[str, float] = {}
        self.milestones: list[Event] = []
        #: Earlier attempts of a retried fetch and the waits after them:
        #: [label, start, end, colour]; a wait's end is None until the next
        #: attempt starts.
        self.attempts: list[list] = []
        self.status: int | None = None
        self.reason = self.version = ""
        self.error: dict | None = None
        self.wire = 0
        self.request_headers: list[tuple[str, str]] | None = None
        self.response_headers: list[tuple[str, str]] | None = None
        self.result = None
        self.secrets = Secrets()
        self.secrets.add_url(url)


class ManyView(SettlesToStatic, widgets.VBox):
    """Waterfall of many fetches; feed it with ``trace(index, event)``."""

    def __init__(
        self,
        urls: list[str],
        *,
        max_clients: int,
        throttle: float = 0.05,
        method: str = "GET",
        show_secrets: bool = False,
    ):
        self.raw_urls = list(urls)
        self.show_secrets = show_secrets
        self.urls = [str(u) if show_secrets else redact_url(u) for u in urls]
        self.labels = labels(self.urls)
        self.method = method
        self.max_clients = max_clients
        self.throttle = throttle
        self.rows = [_Row(str(u)) for u in urls]
        self.start: float | None = None
        self.finished = False
        self._display_id: str | None = None
        # A render's size grows with the rows: fewer renders for more rows keep
        # the comm traffic near 300 KB/s (100 rows: one render every 0.5 s).
        drawn = min(len(self.rows), MAX_ROWS)
        self._throttle = Throttle(self._render, max(throttle, drawn / 200))
        # One Layout and one Style for every model: 5 comm models in all.
        layout, style = widgets.Layout(), widgets.widget_string.HTMLStyle()
        self.summary = widgets.HTML(layout=layout, style=style)
        self.chart = widgets.HTML(layout=layout, style=style)
        super().__init__([self.summary, self.chart], layout=layout)
        self._render()

    # -- feeding -------------------------------------------------------------------------
    def trace(self, index: int, event: Event) -> None:
        row = self.rows[index]
        name = event.name
        if self.start is None or event.time < self.start:
            self.start = event.time
        if name in MILESTONES and len(row.milestones) < MAX_MILESTONES:
            row.milestones.append(event)
        d = event.details
        if row.attempts and row.attempts[-1][2] is None:  # a wait ends: the next attempt
            row.attempts[-1][2] = row.marks["attempt"] = event.time
        if name in ("queued", "dequeued", "request.headers_sent", "response.headers"):
            row.marks.setdefault(name, event.time)
        if name == "dequeued":
            row.marks.setdefault("attempt", event.time)
        if name == "request.headers_sent" and d.get("headers") is not None:
            row.request_headers = list(d["headers"].items())
            row.secrets.add_headers(row.request_headers)
        elif name == "response.data":
            row.wire = d.get("wire_bytes", row.wire + d["bytes"])
        elif name == "response.headers":
            row.status, row.reason, row.version = d["status"], d["reason"], d["http_version"]
            row.response_headers = list(d["headers"].items())
            row.wire = 0
        elif name == "redirect":  # the next hop's marks start again
            for mark in ("request.headers_sent", "response.headers"):
                row.marks.pop(mark, None)
        elif starts_hop(event):  # a retry: the attempt and the wait get bars of their own
            self._retried(row, event)
        elif name == "response.done":
            row.marks["end"] = event.time
        elif name == "error":
            row.marks["end"] = event.time
            row.error = {
                "type": d["type"],
                "message": d.get("message", ""),
                "phase": d.get("phase"),
            }
        elif name == "cancelled":  # "cancelled in phase download", said once
            row.marks["end"] = event.time
            row.error = {"type": "cancelled", "message": "", "phase": d.get("phase")}
        self._throttle.request()

    @staticmethod
    def _retried(row: _Row, event: Event) -> None:
        begin = row.marks.pop("attempt", event.time)
        why = row.status or event.details["reason"].split(":")[0]
        label = f"attempt {event.details['attempt'] - 1}: {why}"
        row.attempts.append([label, begin, event.time, attempt_colour(row.status)])
        wait = f"wait {event.details.get('delay') or 0:.3g} s"
        row.attempts.append([wait, event.time, None, WAIT_COLOUR])
        for mark in ("request.headers_sent", "response.headers"):
            row.marks.pop(mark, None)
        row.status = None

    def finish(self) -> None:
        """The final, exact render."""
        self.finished = True
        self._throttle.now()

    def attach_results(self, results: list) -> None:
        """The fetches' results (``Response`` or ``FetchError``), in input order:
        each row's request headers as sent come from its ``Response``. Drawn at
        the next render (``settle`` draws the final one)."""
        for row, result in zip(self.rows, results, strict=True):
            row.result = result
            if isinstance(result, BaseException) and row.error is None:
                # Refused before anything was sent (an invalid URL): no event
                # told the row, so the result does; it is not "queued".
                row.error = {
                    "type": type(result).__name__,
                    "message": getattr(result, "message", str(result)),
                    "phase": getattr(result, "phase", None),
                }
                row.marks.setdefault("end", self.start or time.perf_counter())
            request = getattr(result, "request", None)
            if request is not None and row.request_headers is None:
                row.request_headers = list(request.headers.items())
                row.secrets.add_headers(row.request_headers)
        self._throttle.request()

    def view(self, index: int):
        """Fetch ``index``'s own ``ResponseView`` (its events replayed): display
        it, or read its state from Python."""
        from .live import ResponseView

        row = self.rows[index]
        view = ResponseView(self.method, self.raw_urls[index], show_secrets=self.show_secrets)
        events = getattr(row.result, "events", None) or row.milestones
        for event in events:
            view.trace(event)
        if hasattr(row.result, "status_code"):
            view.attach_response(row.result)
        return view

    def result(self, index: int):
        """Fetch ``index``'s ``Response`` or ``FetchError`` (None while it runs)."""
        return self.rows[index].result

    def counts(self) -> dict[str, int]:
        done = sum(1 for r in self.rows if "end" in r.marks and r.error is None)
        failed = sum(1 for r in self.rows if r.error is not None)
        started = sum(1 for r in self.rows if "dequeued" in r.marks and "end" not in r.marks)
        queued = sum(1 for r in self.rows if "dequeued" not in r.marks and "end" not in r.marks)
        return {"done": done, "failed": failed, "in_flight": started, "queued": queued}

    # -- display: a static output when settled (static_view) ------------------------------
    def settle(self) -> None:
        """The end of the run: every output this view was displayed in becomes a
        static text/html + text/plain bundle, then the widget models close. A
        view never displayed as an output of its own (inside another widget, or
        only fed) stays a live widget with its final state."""
        self.finish()
        self._become_static((self.summary, self.chart, self, self.layout, self.summary.style))

    def html(self) -> str:
        """The whole view as one HTML fragment (inline styles, no script)."""
        return (
            f'<div class="nbfetch-many" style="font-family:{UI_FONT};color:{FG}">'
            f"{self.summary.value}{self.chart.value}</div>"
        )

    def text(self) -> str:
        """The way a terminal shows it: the summary, then a line per row."""
        lines = [self._summary_text()]
        width = max((len(label) for label in self.labels[:MAX_TEXT_ROWS]), default=0)
        for i, row in enumerate(self.rows[:MAX_TEXT_ROWS]):
            status, took, size = self._cells(row)
            lines.append(f"  {self.labels[i]:<{width}}  {status:>8}  {took:>8}  {size:>10}")
        if len(self.rows) > MAX_TEXT_ROWS:
            lines.append(f"  … {len(self.rows) - MAX_TEXT_ROWS} more")
        return self._scrub_all("\n".join(lines))

    # -- rendering -------------------------------------------------------------------------
    def _summary_text(self) -> str:
        c = self.counts()
        return (
            f"{len(self.rows)} fetches, max_clients={self.max_clients}: "
            f"{c['done']} done, {c['in_flight']} in flight, {c['queued']} queued, "
            f"{c['failed']} failed — {human_seconds(self._span(time.perf_counter()))}"
        )

    def _span(self, now: float) -> float:
        start = self.start if self.start is not None else now
        ends = [r.marks.get("end", now) for r in self.rows if r.marks]
        return max([e - start for e in ends] + [1e-6])

    def _cells(self, row: _Row) -> tuple[str, str, str]:
        """Status, Time and Size of a row, as text."""
        if row.error is not None:
            status = str(row.error["type"])
        elif row.status is not None:
            status = str(row.status)
        else:
            status = "…" if "dequeued" in row.marks else "queued"
        first = row.marks.get("queued", row.marks.get("dequeued"))
        took = human_seconds(row.marks["end"] - first) if "end" in row.marks and first else ""
        size = human_bytes(row.wire) if row.status is not None else ""
        return status, took, size

    def _esc(self, row: _Row, value: object) -> str:
        """``value`` as HTML text: scrubbed of the row's secrets, then escaped
        (never scrubbed as finished HTML: a server-planted secret could match
        markup and cut an attribute open)."""
        text = str(value)
        return esc(text if self.show_secrets else row.secrets.scrub(text))

    def _scrub_all(self, text: str) -> str:
        if self.show_secrets:
            return text
        for row in self.rows:
            text = row.secrets.scrub(text)
        return text

    def _render(self) -> None:
        now = time.perf_counter()
        start = self.start if self.start is not None else now
        span = self._span(now)
        legend = " ".join(
            f'<span style="color:{colour}">■</span> {label}' for label, colour, *_ in SEGMENTS
        )
        c = self.counts()
        self.summary.value = (
            f'<div style="font-size:12px;color:{FG}"><b>{len(self.rows)} fetches</b>, '
            f"max_clients={self.max_clients}: {c['done']} done, {c['in_flight']} in flight, "
            f"{c['queued']} queued, {c['failed']} failed — {human_seconds(span)} "
            f'<span style="font-size:11px;color:{FG_DIM};margin-left:1em">{legend}</span></div>'
        )
        parts = [self._axis(span)]
        for i, row in enumerate(self.rows[:MAX_ROWS]):
            parts.append(self._row_html(i, row, start, span, now))
        if len(self.rows) > MAX_ROWS:
            parts.append(
                f'<div style="color:{FG_DIM};padding:2px 4px">… {len(self.rows) - MAX_ROWS:,} '
                f"more fetches (not drawn; counted above)</div>"
            )
        self.chart.value = (
            f'<div class="nbfetch-waterfall" style="font-size:12px;width:100%;color:{FG}">'
            f"{''.join(parts)}</div>"
        )

    def _grid(self, cells: list[str], style: str = "") -> str:
        """One line of the five columns (a fixed-layout table: every line lines up)."""
        cols = "".join(f'<col style="width:{w}">' for w in COLUMNS)
        tds = "".join(cells)
        return (
            # margin and text-align: JupyterLab's rendered-HTML CSS centres tables
            # with a bottom margin and right-aligns cells.
            f'<table style="width:100%;margin:0;table-layout:fixed;border-collapse:collapse;'
            f'{style}">'
            f"<colgroup>{cols}</colgroup><tr>{tds}</tr></table>"
        )

    def _axis(self, span: float) -> str:
        ticks = "".join(
            f'<span style="position:absolute;left:{t / span * 100:.2f}%;top:0;height:100%;'
            f'border-left:1px solid {BORDER};padding-left:2px;white-space:nowrap">'
            f"{tick_label(t)}</span>"
            for t in nice_ticks(span)
            if t / span <= 0.92  # the last label must not overflow the cell
        )
        head = 'style="text-align:{};padding:2px 4px;font-weight:600"'
        return self._grid(
            [
                f"<td {head.format('left')}>Name</td>",
                f"<td {head.format('right')}>Status</td>",
                f"<td {head.format('right')}>Time</td>",
                f"<td {head.format('right')}>Size</td>",
                f'<td style="position:relative;height:16px;color:{FG_DIM};font-size:11px">'
                f"{ticks}</td>",
            ],
            f"border-bottom:1px solid {BORDER}",
        )

    def _attempt_bars(self, row: _Row, start: float, span: float, now: float) -> list[str]:
        """A bar per earlier attempt (its status's colour), a striped one per wait."""
        bars = []
        for label, t0, t1, colour in row.attempts:
            t1 = t1 if t1 is not None else row.marks.get("end", now)
            bars.append(
                f'<span class="nbfetch-attempt" title="{esc(label)}: {(t1 - t0) * 1000:.1f} ms"'
                f' style="position:absolute;left:{(t0 - start) / span * 100:.2f}%;'
                f"width:{max((t1 - t0) / span * 100, 0.2):.2f}%;height:10px;top:3px;"
                f'background:{colour}"></span>'
            )
        return bars

    def _row_html(self, i: int, row: _Row, start: float, span: float, now: float) -> str:
        bars = self._attempt_bars(row, start, span, now)
        for label, colour, begin, end in SEGMENTS:
            if begin not in row.marks:
                continue
            t0 = row.marks[begin]
            t1 = row.marks.get(end, row.marks.get("end", now))
            if t1 < t0:
                continue
            left = (t0 - start) / span * 100
            width = max((t1 - t0) / span * 100, 0.2)
            bars.append(
                f'<span title="{label}: {(t1 - t0) * 1000:.1f} ms" style="position:absolute;'
                f"left:{left:.2f}%;width:{width:.2f}%;height:10px;top:3px;"
                f'background:{colour}"></span>'
            )
        status, took, size = self._cells(row)
        if row.error is not None:
            colour = ERROR
        elif row.status is not None:
            colour = status_colour(row.status)
        else:
            colour = FG_FAINT
        cell = 'style="text-align:right;padding:1px 4px;white-space:nowrap;overflow:hidden"'
        line = self._grid(
            [
                f'<td style="text-align:left;padding:1px 4px;white-space:nowrap;overflow:hidden;'
                f'text-overflow:ellipsis;font-family:{MONO}" title="{self._esc(row, self.urls[i])}">'
                f'<span style="color:{FG_DIM}">▸</span> {self._esc(row, self.labels[i])}</td>',
                f'<td {cell}><span style="color:{colour}">{self._esc(row, status)}</span></td>',
                f"<td {cell}>{took}</td>",
                f"<td {cell}>{size}</td>",
                f'<td style="position:relative;height:16px;background:{BG_RAISED};padding:0">'
                f"{''.join(bars)}</td>",
            ]
        )
        return (
            f'<details class="nbfetch-many-row" style="border-bottom:1px solid {BORDER}">'
            f'<summary style="display:block;list-style:none;cursor:pointer">{line}</summary>'
            # Live, the chart is re-rendered (an open row would close again):
            # the details come with the final render.
            f"{self._details(i, row) if self.finished else ''}</details>"
        )

    def _details(self, i: int, row: _Row) -> str:
        """What a fetch's own view shows, as static HTML."""
        target = f"<code>{self._esc(row, self.method)} {self._esc(row, self.urls[i])}</code>"
        if row.status is not None:
            head = (
                f'<b style="color:{status_colour(row.status)}">{row.status} {self._esc(row, row.reason)}</b>'
                f' {target} <span style="color:{FG_DIM}">{self._esc(row, row.version)}</span>'
            )
        else:
            head = f'<b style="color:{FG_DIM}">{"failed" if row.error else "pending"}</b> {target}'
        parts = [f"<div>{head}</div>"]
        if row.error is not None:
            e = row.error
            phase = f" in phase <b>{self._esc(row, e['phase'])}</b>" if e.get("phase") else ""
            parts.append(
                f'<div style="color:{ERROR}"><b>{self._esc(row, e["type"])}</b>{phase}'
                f"{': ' + self._esc(row, e['message']) if e['message'] else ''}</div>"
            )
        timing = self._timing(row)
        if timing is not None:
            phases = ", ".join(
                f'<span style="color:{PHASE_COLOURS[name]}">■</span> {name} {value * 1000:.1f} ms'
                for name, value in timing.phases().items()
                if value is not None
            )
            total = f" — total {timing.total * 1000:.1f} ms" if timing.total else ""
            parts.append(f'<div style="color:{FG_DIM}">{phases}{total}</div>')
        for title, headers in (
            ("Request headers", row.request_headers),
            ("Response headers", row.response_headers),
        ):
            if headers is not None:
                parts.append(
                    f'<div style="margin-top:4px"><b>{title}</b> ({len(headers)})'
                    f"{self._headers(row, headers)}</div>"
                )
        return (
            f'<div style="padding:4px 4px 6px 1.5em;font-size:12px;border-top:1px solid {BORDER}">'
            f"{''.join(parts)}</div>"
        )

    def _headers(self, row: _Row, headers: list[tuple[str, str]]) -> str:
        rows = "".join(
            f'<tr><td style="text-align:left;font-weight:600;padding-right:1em;'
            f'vertical-align:top">{self._esc(row, n)}</td><td style="text-align:left;word-break:break-all">'
            f"{self._esc(row, v if self.show_secrets else redact_header(n, v))}</td></tr>"
            for n, v in headers
        )
        return f'<table style="font-family:{MONO};font-size:12px;margin:0">{rows}</table>'

    @staticmethod
    def _timing(row: _Row) -> Timing | None:
        if not row.milestones or "end" not in row.marks:
            return None
        hops = [i for i, e in enumerate(row.milestones) if starts_hop(e)]
        hop = row.milestones[hops[-1] :] if hops else row.milestones
        return Timing(hop, row.milestones[0].time)
