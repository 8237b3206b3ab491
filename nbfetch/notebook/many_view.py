"""The live waterfall of ``fetch_many``: one row per fetch, DevTools-style bars.

Each row's bar is split into the phases a browser's network panel shows:
queued (waiting for a max_clients slot), connecting (DNS, TCP, TLS or a reused
connection), waiting (request sent, until the head arrives) and receiving (the
body). Rows are re-rendered at most 20 times a second; the final render is exact.
"""

from __future__ import annotations

import time

import ipywidgets as widgets

from ..core.events import Event
from ..core.redact import redact_url
from .display import esc, status_colour
from .throttle import Throttle

SEGMENTS = (
    ("queued", "#c8c8c8", "queued", "dequeued"),
    ("connecting", "#e9a03b", "dequeued", "request.headers_sent"),
    ("waiting", "#43aa8b", "request.headers_sent", "response.headers"),
    ("receiving", "#277da1", "response.headers", "end"),
)
MAX_ROWS = 300


class _Row:
    __slots__ = ("bytes", "error", "marks", "status")

    def __init__(self):
        self.marks: dict[str, float] = {}
        self.status: int | None = None
        self.error: str | None = None
        self.bytes = 0


class ManyView(widgets.VBox):
    """Waterfall of many fetches; feed it with ``trace(index, event)``."""

    def __init__(self, urls: list[str], *, max_clients: int, throttle: float = 0.05):
        self.urls = [redact_url(u) for u in urls]
        self.max_clients = max_clients
        self.throttle = throttle
        self.rows = [_Row() for _ in self.urls]
        self.start: float | None = None
        self.finished = False
        self._throttle = Throttle(self._render, throttle)
        self.summary = widgets.HTML()
        self.chart = widgets.HTML()
        super().__init__([self.summary, self.chart])
        self._render()

    def trace(self, index: int, event: Event) -> None:
        row = self.rows[index]
        name = event.name
        if self.start is None or event.time < self.start:
            self.start = event.time
        if name in ("queued", "dequeued", "request.headers_sent", "response.headers"):
            row.marks.setdefault(name, event.time)
        elif name == "response.data":
            row.bytes += event.details["bytes"]
        elif name == "response.done":
            row.marks["end"] = event.time
        elif name in ("error", "cancelled"):
            row.marks["end"] = event.time
            row.error = event.details.get("type", name)
        if name == "response.headers":
            row.status = event.details["status"]
        self._throttle.request()

    def finish(self) -> None:
        """The final, exact render."""
        self.finished = True
        self._throttle.now()

    def counts(self) -> dict[str, int]:
        done = sum(1 for r in self.rows if "end" in r.marks and r.error is None)
        failed = sum(1 for r in self.rows if r.error is not None)
        started = sum(1 for r in self.rows if "dequeued" in r.marks and "end" not in r.marks)
        queued = sum(1 for r in self.rows if "dequeued" not in r.marks and "end" not in r.marks)
        return {"done": done, "failed": failed, "in_flight": started, "queued": queued}

    def _render(self) -> None:
        now = time.perf_counter()
        start = self.start if self.start is not None else now
        ends = [r.marks.get("end", now) for r in self.rows if r.marks]
        span = max([e - start for e in ends] + [1e-6])
        c = self.counts()
        self.summary.value = (
            f"<b>{len(self.rows)} fetches</b>, max_clients={self.max_clients}: "
            f"{c['done']} done, {c['in_flight']} in flight, {c['queued']} queued, "
            f"{c['failed']} failed — {span * 1000:.0f} ms"
            + ' <span style="font-size:11px">'
            + " ".join(
                f'<span style="color:{colour}">■</span> {label}' for label, colour, *_ in SEGMENTS
            )
            + "</span>"
        )
        rows = []
        for i, (url, row) in enumerate(zip(self.urls, self.rows, strict=True)):
            if i >= MAX_ROWS:
                rows.append(
                    f'<tr><td colspan="3">… {len(self.rows) - MAX_ROWS} more rows</td></tr>'
                )
                break
            bars = []
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
                    f'left:{left:.2f}%;width:{width:.2f}%;height:10px;top:3px;background:{colour}"></span>'
                )
            if row.error:
                status = f'<span style="color:#c62828">{esc(row.error)}</span>'
            elif row.status is not None:
                status = f'<span style="color:{status_colour(row.status)}">{row.status}</span>'
            else:
                status = "…"
            rows.append(
                f'<tr><td style="text-align:left;max-width:260px;overflow:hidden;white-space:nowrap;'
                f'text-overflow:ellipsis" title="{esc(url)}">{esc(url)}</td><td>{status}</td>'
                f'<td style="width:420px;position:relative;background:#f6f6f6">{"".join(bars)}</td></tr>'
            )
        self.chart.value = f'<table class="nbfetch-waterfall" style="font-size:12px;border-collapse:collapse">{"".join(rows)}</table>'
