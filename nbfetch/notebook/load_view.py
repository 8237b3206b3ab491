"""The live view of a load run: requests/s, progress, errors by kind, a latency
histogram and p50/p95/p99 per phase; with ``compare=`` the two side by side
and their ratio; with ``slo=`` a pass/fail badge.

The view reads the run's counters only when it renders (``LoadRun.snapshot``,
a few ms: one pass over each phase's 2,048 buckets), at most every
``throttle`` seconds (0.25 s): a request's end only asks for a render. Four
widget models (a VBox, its HBox, one HTML, a Cancel button) plus their layout
and styles, however many requests. When the run ends (done, cancelled or
failed) the output becomes the static text/html + text/plain of the final
result and the models close (issue 15, D1), as ``ManyView`` does.
"""

from __future__ import annotations

import asyncio
import collections
import time

import ipywidgets as widgets
from ipywidgets.widgets.widget_string import HTMLStyle

from ..client.load import (
    PERCENTILES,
    Histogram,
    LoadComparison,
    LoadResult,
    LoadRun,
    format_seconds,
)
from .snapshot import esc
from .static_view import SettlesToStatic
from .theme import (
    BG_RAISED,
    BORDER,
    ERROR,
    FG,
    FG_DIM,
    INFO,
    MONO,
    OK,
    PHASE_COLOURS,
    UI_FONT,
    WARN,
)
from .throttle import Throttle

#: The seconds over which the live requests/s is measured.
RATE_WINDOW = 2.0
#: Bars in the latency histogram.
BINS = 40
HIST_HEIGHT = 60  # px


class LoadView(SettlesToStatic, widgets.VBox):
    """A live view of ``run`` (a ``LoadRun``); ``changed()`` is its ``on_change``."""

    def __init__(self, run: LoadRun, *, throttle: float = 0.25):
        self.run = run
        self.cancel_requested = False
        self.error: BaseException | None = None
        self._task: asyncio.Future | None = None
        self._samples: collections.deque[tuple[float, int]] = collections.deque()
        self._final: LoadResult | LoadComparison | None = None
        self._throttle = Throttle(self._render, throttle)
        layout = widgets.Layout()
        style = HTMLStyle()
        self.content = widgets.HTML(layout=layout, style=style)
        self.cancel_button = widgets.Button(
            description="Cancel", icon="stop", button_style="warning", layout=layout
        )
        self.cancel_button.on_click(lambda _button: self.cancel())
        self._top = widgets.HBox([self.cancel_button], layout=layout)
        super().__init__([self._top, self.content], layout=layout)
        self._models = [
            self,
            self._top,
            self.cancel_button,
            self.cancel_button.style,
            self.content,
            layout,
            style,
        ]
        self._render()

    # -- wiring ------------------------------------------------------------------------
    def bind(self, task: asyncio.Future) -> None:
        """The task the Cancel button cancels."""
        self._task = task

    def cancel(self) -> None:
        if self._task is not None and not self._task.done():
            self.cancel_requested = True
            self._task.cancel()
            self.cancel_button.description = "Cancelling"
            self.cancel_button.disabled = True

    def changed(self) -> None:
        """A request ended: render soon (never now: the run does not wait)."""
        self._throttle.request()

    def finish(self, error: BaseException | None = None) -> None:
        """The final state, exactly, then the static output (once)."""
        if self._final is not None:
            return
        self.error = error
        self._final = self.run.snapshot()
        self._throttle.now()
        self._top.children = ()
        self._become_static(self._models)

    # -- rendering ---------------------------------------------------------------------
    def _rps(self, completed: int) -> float | None:
        now = time.monotonic()
        self._samples.append((now, completed))
        while len(self._samples) > 2 and now - self._samples[0][0] > RATE_WINDOW:
            self._samples.popleft()
        then, before = self._samples[0]
        return (completed - before) / (now - then) if now - then > 0.2 else None

    def _render(self) -> None:
        if self._final is not None:
            self.content.value = self.html()
            return
        result = self.run.snapshot()
        results = result.results if isinstance(result, LoadComparison) else (result,)
        rps = self._rps(sum(r.completed for r in results))
        self.content.value = load_html(result, live=True, rps=rps)

    def html(self) -> str:
        return load_html(self._final or self.run.snapshot(), error=self.error)

    def text(self) -> str:
        text = (self._final or self.run.snapshot()).text()
        return text if self.error is None else f"{text}\n  stopped: {self.error}"


# -- HTML ---------------------------------------------------------------------------------
def _badge(text: str, colour: str) -> str:
    return (
        f'<span style="background:{colour};color:#fff;border-radius:3px;padding:1px 6px;'
        f'font-weight:600;margin-left:6px">{esc(text)}</span>'
    )


def _state_badge(result: LoadResult | LoadComparison, live: bool) -> str:
    if live:
        return _badge("running", INFO)
    if result.cancelled:
        return _badge("cancelled", WARN)
    passed = result.passed
    if passed is None:
        return _badge("done", OK)
    return _badge("SLO PASS" if passed else "SLO FAIL", OK if passed else ERROR)


def _progress(r: LoadResult, rps: float | None, live: bool) -> str:
    done = r.completed
    of = f" / {r.planned:,}" if r.planned else ""
    share = done / r.planned if r.planned else None
    bar = ""
    if share is not None:
        bar = (
            f'<div style="background:{BG_RAISED};height:6px;width:100%;margin:3px 0">'
            f'<div style="background:{INFO};height:6px;width:{min(1, share) * 100:.1f}%"></div>'
            "</div>"
        )
    speed = f"{rps:,.0f} req/s now" if live and rps is not None else f"{r.throughput:,.1f} req/s"
    errors = r.error_count
    err = f'<span style="color:{ERROR if errors else FG_DIM}">{errors:,} errors</span>' + "".join(
        f' <span title="{esc(r.error_messages.get(kind, ""))}" style="border:1px solid'
        f' {ERROR};border-radius:3px;padding:0 4px;color:{ERROR}">{esc(kind)} {count:,}</span>'
        for kind, count in sorted(r.errors.items(), key=lambda kv: -kv[1])
    )
    line = (
        f"<b>{done:,}</b>{of} requests · {speed} · {r.elapsed:.1f} s<br>{err}"
        f' <span style="color:{FG_DIM}">· statuses: '
        + (", ".join(f"{code}: {n:,}" for code, n in sorted(r.statuses.items())) or "none")
        + "</span>"
    )
    behind = ""
    if r.behind:
        behind = (
            f'<div style="color:{WARN}">Behind the asked rate ({r.rate:g}/s): {r.late:,}'
            f" requests started more than 10 ms late (at most {format_seconds(r.max_lag)}):"
            " latencies count from each request's intended start (coordinated omission)</div>"
        )
    return f"<div>{line}</div>{bar}{behind}"


def _histogram(r: LoadResult, colour: str, scale: tuple[float, float] | None) -> str:
    stats = r.phases.get("total")
    if stats is None or scale is None:
        return ""
    bins = stats._hist.bins(BINS, *scale)
    top = max(n for _a, _b, n in bins) or 1
    bars = "".join(
        f'<div title="{esc(format_seconds(a))} to {esc(format_seconds(b))}: {n:,}"'
        f' style="flex:1;align-self:flex-end;background:{colour};margin-right:1px;'
        f'height:{max(1 if n else 0, round(n / top * HIST_HEIGHT))}px"></div>'
        for a, b, n in bins
    )
    low, high = bins[0][0], bins[-1][1]
    return (
        f'<div style="display:flex;height:{HIST_HEIGHT}px;border-bottom:1px solid {BORDER};'
        f'max-width:520px">{bars}</div>'
        f'<div style="display:flex;justify-content:space-between;max-width:520px;'
        f'color:{FG_DIM};font-size:11px"><span>{esc(format_seconds(low))}</span>'
        f"<span>total latency, log scale</span><span>{esc(format_seconds(high))}</span></div>"
    )


def _cell(value: float | None) -> str:
    return f'<td style="text-align:right;padding:0 6px">{esc(format_seconds(value))}</td>'


def _phase_name(phase: str) -> str:
    colour = PHASE_COLOURS.get(phase, FG)
    return f'<td style="padding:0 6px"><span style="color:{colour}">■</span> {esc(phase)}</td>'


def _table(results: tuple[LoadResult, ...]) -> str:
    heads = "".join(
        f'<th colspan="{len(PERCENTILES) + 1}" style="text-align:center">{esc(r.label)}</th>'
        for r in results
        if len(results) > 1
    )
    ratio_head = (
        f'<th colspan="{len(PERCENTILES)}" style="text-align:center">'
        f"{esc(results[1].label)} / {esc(results[0].label)}</th>"
        if len(results) > 1
        else ""
    )
    sub = "".join(
        '<th style="text-align:right;padding:0 6px">n</th>'
        + "".join(f'<th style="text-align:right;padding:0 6px">p{q}</th>' for q in PERCENTILES)
        for _r in results
    )
    if len(results) > 1:
        sub += "".join(f'<th style="text-align:right;padding:0 6px">p{q}</th>' for q in PERCENTILES)
    phases = [p for p in results[0].phases if all(p in r.phases for r in results)]
    phases += [p for r in results for p in r.phases if p not in phases]
    rows = []
    for phase in phases:
        cells = ""
        for r in results:
            stats = r.phases.get(phase)
            count = stats.count if stats else 0
            cells += f'<td style="text-align:right;padding:0 6px;color:{FG_DIM}">{count:,}</td>'
            cells += "".join(_cell(getattr(stats, f"p{q}", None)) for q in PERCENTILES)
        if len(results) > 1:
            for q in PERCENTILES:
                a, b = results[0].percentile(q, phase), results[1].percentile(q, phase)
                ratio = f"{b / a:.2f}x" if a and b is not None else "-"
                cells += f'<td style="text-align:right;padding:0 6px">{ratio}</td>'
        bold = ' style="font-weight:600"' if phase == "total" else ""
        rows.append(f"<tr{bold}>{_phase_name(phase)}{cells}</tr>")
    top = f"<tr><th></th>{heads}{ratio_head}</tr>" if len(results) > 1 else ""
    return (
        f'<table style="font-family:{MONO};font-size:12px;border-collapse:collapse;margin:4px 0">'
        f'<thead>{top}<tr><th style="text-align:left;padding:0 6px">phase</th>{sub}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _slo(result: LoadResult | LoadComparison) -> str:
    results = result.results if isinstance(result, LoadComparison) else (result,)
    lines = []
    for r in results:
        for check in r.slo:
            colour = OK if check.passed else ERROR
            label = f"{r.label}: " if len(results) > 1 else ""
            lines.append(f'<span style="color:{colour}">{esc(label + check.describe())}</span>')
    return f"<div>SLO: {' · '.join(lines)}</div>" if lines else ""


def load_html(
    result: LoadResult | LoadComparison,
    *,
    live: bool = False,
    rps: float | None = None,
    error: BaseException | None = None,
) -> str:
    """The view as HTML (live or final): the same markup in the widget and the
    static output. Every server-given text (error messages) is escaped."""
    results = result.results if isinstance(result, LoadComparison) else (result,)
    head = (
        f'<div><b>Load run</b>{_state_badge(result, live)}<span style="color:{FG_DIM}">'
        + "".join(
            f" · {esc(r.label + ': ' if r.label else '')}{esc(r.method)} {esc(r.url)}"
            for r in results
        )
        + "</span></div>"
    )
    colours = (PHASE_COLOURS["download"], PHASE_COLOURS["connect"])
    # One latency scale for both (compare): the bars of A and B line up.
    totals = [r.phases["total"] for r in results if "total" in r.phases]
    scale = (min(t.min for t in totals), max(t.max for t in totals)) if totals else None
    columns = "".join(
        f'<div style="flex:1;min-width:280px;margin:4px 12px 0 0">'
        f"{'<b>' + esc(r.label) + '</b>' if len(results) > 1 else ''}"
        f"{_progress(r, rps if len(results) == 1 else None, live)}"
        f"{_histogram(r, colours[i % 2], scale)}</div>"
        for i, r in enumerate(results)
    )
    body = f'<div style="display:flex;flex-wrap:wrap">{columns}</div>'
    stopped = f'<div style="color:{ERROR}">stopped: {esc(error)}</div>' if error is not None else ""
    note = (
        f'<div style="color:{FG_DIM};font-size:11px">Percentiles within'
        f" {Histogram.RELATIVE_ERROR * 100:.2g}% (log-linear histogram); a phase counts the"
        " requests that had it (connect, tls: new connections only).</div>"
    )
    return (
        f'<div class="nbfetch-load" style="font-family:{UI_FONT};font-size:13px;color:{FG}">'
        f"{head}{body}{stopped}{_table(results)}{_slo(result)}{note}</div>"
    )
