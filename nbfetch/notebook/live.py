"""The live view of one fetch (``ResponseView``) and the ``--bg`` handle.

The view is fed only by the public event stream (it is a ``trace=`` subscriber),
so anything it shows a plain script can log too. It keeps bounded state (a ring
of the last chunk rows and running totals), and it throttles: events update
Python-side state at once, widgets are written at most every ``throttle``
seconds (0.05 s: 20 updates a second per widget), and the final state is always
written exactly when the fetch ends. The fetch never waits for the view.

    view = ResponseView("GET", url)
    display(view)
    r = await client.fetch(url, trace=view.trace)
"""

from __future__ import annotations

import asyncio
import time
from collections import deque

import ipywidgets as widgets

from ..core.errors import FetchCancelled
from ..core.events import PHASES, RUNNING_PHASE, Event, Timing
from ..core.redact import redact_url
from .display import PHASE_COLOURS, body_preview, esc, headers_table, status_colour
from .throttle import Throttle

#: Events the waterfall is computed from (never the per-chunk ones).
MILESTONES = frozenset(
    {
        "queued",
        "dequeued",
        "resolve.start",
        "resolve.done",
        "connect.start",
        "connect.done",
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


class ResponseView(widgets.VBox):
    """A live view of one fetch: status, progress, headers, wire chunks, waterfall,
    event timeline, body preview, and a Cancel button."""

    MAX_CHUNK_ROWS = 200
    MAX_EVENT_ROWS = 200

    def __init__(self, method: str = "GET", url: str = "", *, throttle: float = 0.05):
        self.method, self.url = method, redact_url(url)
        self.throttle = throttle
        self.response = None
        self.error: BaseException | None = None
        self.finished = False
        self.cancel_requested = False
        self._task: asyncio.Future | None = None
        self._throttle = Throttle(self._render_all, throttle)
        # bounded state
        self._milestones: list[Event] = []
        self._events_head: list[Event] = []
        self._events_tail: deque[Event] = deque(maxlen=self.MAX_EVENT_ROWS // 2)
        self._events_total = 0
        self._chunks: deque[tuple] = deque(maxlen=self.MAX_CHUNK_ROWS)
        self._chunk_count = 0
        self._chunk_bytes = 0
        self._last_chunk_offset = 0.0
        self._wire = 0
        self._decoded = 0
        self._expected: int | None = None
        self._status = ""
        self._headers = None

        self.status_html = widgets.HTML()
        self.cancel_button = widgets.Button(
            description="Cancel", icon="stop", button_style="warning", layout={"width": "90px"}
        )
        self.cancel_button.on_click(lambda _button: self.cancel())
        self.progress = widgets.FloatProgress(
            min=0.0, max=1.0, value=0.0, layout={"width": "320px"}
        )
        self.progress_html = widgets.HTML()
        self.error_html = widgets.HTML()
        self.headers_html = widgets.HTML()
        self.chunks_html = widgets.HTML()
        self.waterfall_html = widgets.HTML()
        self.events_html = widgets.HTML()
        self.body_html = widgets.HTML()
        self.tabs = widgets.Tab(
            children=[
                self.waterfall_html,
                self.headers_html,
                self.chunks_html,
                self.events_html,
                self.body_html,
            ],
            titles=["Timing", "Headers", "Chunks", "Events", "Body"],
        )
        super().__init__(
            [
                widgets.HBox([self.status_html, self.cancel_button]),
                widgets.HBox([self.progress, self.progress_html]),
                self.error_html,
                self.tabs,
            ]
        )
        self._render_all()

    # -- wiring ------------------------------------------------------------------------
    def bind(self, task: asyncio.Future) -> None:
        """The task the Cancel button cancels."""
        self._task = task

    def cancel(self) -> None:
        """Cancel the bound fetch (what the Cancel button does)."""
        if self._task is not None and not self._task.done():
            self.cancel_requested = True
            self._task.cancel()
            self.cancel_button.description = "Cancelling"
            self.cancel_button.disabled = True

    def trace(self, event: Event) -> None:
        """The ``trace=`` subscriber: cheap bookkeeping, throttled rendering."""
        name = event.name
        self._events_total += 1
        if len(self._events_head) < self.MAX_EVENT_ROWS // 2:
            self._events_head.append(event)
        else:
            self._events_tail.append(event)
        if name in MILESTONES:
            self._milestones.append(event)
        if name == "response.data":
            self._decoded += event.details["bytes"]
            self._wire = event.details["wire_bytes"]
        elif name == "response.chunk":
            d = event.details
            gap = event.offset - self._last_chunk_offset if self._chunk_count else event.offset
            self._last_chunk_offset = event.offset
            self._chunk_count += 1
            self._chunk_bytes += d["size"]
            self._chunks.append((d["index"], d["size"], event.offset, gap, d["extensions"]))
        elif name == "response.headers":
            d = event.details
            self._status = (d["status"], d["reason"], d["http_version"])
            self._headers = d["headers"]
            self._expected = d["content_length"]
            self._wire = self._decoded = 0
        elif name == "redirect":
            self.url = str(event.details["to"])
            self._chunks.clear()
            self._chunk_count = self._chunk_bytes = 0
        if name in FINAL:
            self.finished = True
            if name == "error":
                self.error = event.details
            elif name == "cancelled":
                self.error = {
                    "type": "cancelled",
                    "message": "cancelled",
                    "phase": event.details.get("phase"),
                }
            self._throttle.now()
            return
        self._throttle.request()

    def fail(self, exc: BaseException) -> None:
        """The final state for a fetch that ended with ``exc``, also when no event
        said so (an invalid URL fails before the first event)."""
        if not self.finished:
            self.finished = True
            cancelled = isinstance(exc, (asyncio.CancelledError, KeyboardInterrupt))
            self.error = {
                "type": "cancelled" if cancelled else type(exc).__name__,
                "message": getattr(exc, "message", str(exc)),
                "phase": getattr(exc, "phase", None),
            }
        hint = getattr(exc, "hint", None)  # FetchError.hint: what to try
        if hint:
            self.error = {**self.error, "hint": hint}
        self._throttle.now()

    def show_tab(self, title: str) -> None:
        """Open the tab called ``title`` (Timing, Headers, Chunks, Events, Body)."""
        self.tabs.selected_index = list(self.tabs.titles).index(title)

    def attach_response(self, response) -> None:
        """Show the body preview once the fetch returned its Response."""
        self.response = response
        self._render_body()

    # -- rendering ---------------------------------------------------------------------
    def _render_all(self) -> None:
        self._render_status()
        self._render_progress()
        self._render_waterfall()
        if self._headers is not None:
            self.headers_html.value = headers_table(self._headers)
        self._render_chunks()
        self._render_events()
        if self.finished:
            self.cancel_button.disabled = True
            self.cancel_button.description = "Done" if self.error is None else "Stopped"

    def _render_status(self) -> None:
        target = f"<code>{esc(self.method)} {esc(self.url)}</code>"
        if self._status:
            code, reason, version = self._status
            line = f'<b style="color:{status_colour(code)}">{code} {esc(reason)}</b> {target} <span style="color:#666">{esc(version)}</span>'
        else:
            current = self._milestones[-1].name if self._milestones else "starting"
            current = "error" if self.error is not None else f"{current}…"
            line = f'<b style="color:#666">{esc(current)}</b> {target}'
        self.status_html.value = line
        if self.error is not None:
            e = self.error
            self.error_html.value = (
                f'<div style="color:#c62828"><b>{esc(e.get("type"))}</b> in phase '
                f"<b>{esc(e.get('phase'))}</b>: {esc(e.get('message'))}"
                + (f"<br>hint: {esc(e['hint'])}" if e.get("hint") else "")
                + "</div>"
            )

    def _render_progress(self) -> None:
        expected = self._expected
        if expected:
            self.progress.bar_style = "success" if self.finished and self.error is None else "info"
            self.progress.value = min(self._wire / expected, 1.0)
        elif self.finished:
            self.progress.value = 1.0
            self.progress.bar_style = "success" if self.error is None else "danger"
        else:
            # Unknown length: an indeterminate (striped) bar.
            self.progress.value = 1.0
            self.progress.bar_style = "info" if self._status else ""
        if self.error is not None:
            self.progress.bar_style = "danger"
        wire = f"{self._wire:,} B on the wire"
        decoded = f", {self._decoded:,} B decoded" if self._decoded != self._wire else ""
        of = f" of {expected:,}" if expected else ""
        n = self._chunk_count
        chunks = f", {n:,} chunk{'' if n == 1 else 's'}" if n else ""
        self.progress_html.value = (
            f'<span style="font-size:12px">{wire}{of}{decoded}{chunks}</span>'
        )

    def _timing(self) -> tuple[Timing, str | None, float]:
        """Timing of the current hop from the milestones, the running phase, and now."""
        hop = self._milestones
        starts = [i for i, e in enumerate(hop) if e.name == "redirect"]
        hop_events = hop[starts[-1] :] if starts else hop
        fetch_start = hop[0].time if hop else time.perf_counter()
        timing = Timing(hop_events, fetch_start)
        running = None
        if hop and not self.finished:
            for e in reversed(hop_events):
                if e.name in RUNNING_PHASE:
                    running = RUNNING_PHASE[e.name]
                    break
        return timing, running, time.perf_counter() - fetch_start

    def _render_waterfall(self) -> None:
        timing, running, now = self._timing()
        end = timing.total if self.finished and timing.total else max(now, 1e-6)
        rows = []
        start = 0.0
        for name in PHASES:
            value = getattr(timing, name)
            grow = running == name and value is None
            if value is None and not grow:
                continue
            if grow:  # the phase under way: from its start until now
                value = max(end - start, 0.0)
            left = start / end * 100 if end else 0
            width = max(value / end * 100, 0.3) if end else 0
            label = f"{value * 1000:.1f} ms" + (" …" if grow else "")
            rows.append(
                f'<tr><td style="text-align:left;padding-right:8px">{name}</td>'
                f'<td style="width:360px;background:#f4f4f4;position:relative;padding:0">'
                f'<div style="margin-left:{left:.2f}%;width:{width:.2f}%;height:12px;background:{PHASE_COLOURS[name]}"></div></td>'
                f'<td style="text-align:right;padding-left:8px;font-family:monospace">{label}</td></tr>'
            )
            start += value
        total = f"{timing.total * 1000:.1f} ms" if self.finished and timing.total else "…"
        rows.append(
            f'<tr><td style="text-align:left"><b>total</b></td><td></td><td style="text-align:right;font-family:monospace">{total}</td></tr>'
        )
        self.waterfall_html.value = f'<table style="font-size:12px">{"".join(rows)}</table>'

    def _render_chunks(self) -> None:
        if not self._chunk_count:
            self.chunks_html.value = '<span style="color:#666">no chunked body (yet)</span>'
            return
        rows = "".join(
            f"<tr><td>{i}</td><td>{size:,}</td><td>{off * 1000:.1f}</td><td>{gap * 1000:.1f}</td>"
            f"<td>{esc(';'.join(n if v is None else f'{n}={v}' for n, v in ext))}</td></tr>"
            for i, size, off, gap, ext in self._chunks
        )
        shown = len(self._chunks)
        note = (
            f"<div>last {shown} of {self._chunk_count:,} chunks, {self._chunk_bytes:,} bytes in all</div>"
            if shown < self._chunk_count
            else f"<div>{self._chunk_count:,} chunks, {self._chunk_bytes:,} bytes</div>"
        )
        self.chunks_html.value = (
            f'{note}<table style="font-family:monospace;font-size:12px"><tr><th>#</th><th>size</th>'
            f"<th>at (ms)</th><th>gap (ms)</th><th>extensions</th></tr>{rows}</table>"
        )

    def _render_events(self) -> None:
        def row(e: Event) -> str:
            details = ", ".join(
                f"{k}={v}" for k, v in e.details.items() if k not in ("headers", "trailers")
            )
            return f"<tr><td>{e.offset * 1000:9.3f}</td><td>{esc(e.name)}</td><td>{esc(details)}</td></tr>"

        rows = [row(e) for e in self._events_head]
        hidden = self._events_total - len(self._events_head) - len(self._events_tail)
        if hidden > 0:
            rows.append(f'<tr><td></td><td colspan="2">… {hidden:,} more events …</td></tr>')
        rows += [row(e) for e in self._events_tail]
        self.events_html.value = (
            '<table style="font-family:monospace;font-size:12px;text-align:left">'
            f"<tr><th>ms</th><th>event</th><th>details</th></tr>{''.join(rows)}</table>"
        )

    def _render_body(self) -> None:
        if self.response is None:
            return
        kind, text = body_preview(self.response)
        if kind == "image":
            self.body_html.value = f'<img src="{esc(text)}" style="max-width:400px">'
        else:
            self.body_html.value = f'<pre style="max-height:300px;overflow:auto">{esc(text)}</pre>'


class FetchHandle:
    """What ``%fetch --bg`` returns at once, like the Future of Tornado's ``fetch()``:
    awaitable, with ``done()``, ``result()``, ``exception()``, ``cancel()`` and
    ``response``; it displays as the live view."""

    def __init__(self, task: asyncio.Future, view: ResponseView | None):
        self.task = task
        self.view = view

    def __await__(self):
        return self.task.__await__()

    def done(self) -> bool:
        return self.task.done()

    def cancel(self) -> bool:
        if self.view is not None:
            self.view.cancel()
            return True
        return self.task.cancel()

    def result(self):
        """The Response; raises if the fetch failed, or ``FetchCancelled``."""
        if self.task.cancelled():
            raise FetchCancelled("the fetch was cancelled")
        return self.task.result()

    def exception(self):
        if self.task.cancelled():
            return FetchCancelled("the fetch was cancelled")
        return self.task.exception()

    @property
    def response(self):
        """The Response once the fetch finished (None before)."""
        if self.task.done() and not self.task.cancelled() and self.task.exception() is None:
            return self.task.result()
        return None

    def __repr__(self) -> str:
        state = (
            "running" if not self.task.done() else "cancelled" if self.task.cancelled() else "done"
        )
        return f"<FetchHandle {state} {self.view.url if self.view else ''}>"

    def _repr_mimebundle_(self, include=None, exclude=None):
        if self.view is not None:
            return self.view._repr_mimebundle_(include=include, exclude=exclude)
        return {"text/plain": repr(self)}


def show_events(response) -> widgets.HTML:
    """Every event of a finished fetch, in order, with its offset and details."""
    rows = "".join(
        f"<tr><td>{e.offset * 1000:9.3f}</td><td>{esc(e.name)}</td>"
        f"<td>{esc(', '.join(f'{k}={v}' for k, v in e.details.items() if k not in ('headers', 'trailers')))}</td></tr>"
        for e in response.events
    )
    return widgets.HTML(
        '<table style="font-family:monospace;font-size:12px;text-align:left">'
        f"<tr><th>ms</th><th>event</th><th>details</th></tr>{rows}</table>"
    )
