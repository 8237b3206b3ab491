"""The live view of ``client.inspect()``: the pool and the ``max_clients`` queue.

It listens to the client's ``Monitor`` (``client/inspect.py``): a pool event or
a queue change asks for a render, and renders are throttled (``Throttle``, 0.1 s
by default) so a burst of 10,000 fetches costs a handful of redraws; a
once-a-second tick keeps the ages and waits counting while anything is open or
waiting. Each render is a fresh snapshot drawn as HTML: server-given text never
appears (URLs are the client's, through ``redact_url``), and every string is
escaped all the same.

It stops when closed (``view.close()``) and when the client closes: it leaves
the monitor's listeners then, so the pool keeps no reference to it. Displayed
as an output, it settles to a static HTML + text snapshot when the client
closes (a saved notebook shows the last state without a kernel).

Three widget models: the view, its summary and its body (sharing one Layout
and one Style).
"""

from __future__ import annotations

import asyncio
import time
import weakref

import ipywidgets as widgets

from ..client.inspect import Inspection, inspect_client, snapshot, text_lines
from .snapshot import esc, human_seconds
from .static_view import SettlesToStatic
from .theme import (
    BG_RAISED,
    BORDER,
    ERROR,
    FG,
    FG_DIM,
    FG_FAINT,
    INFO,
    MONO,
    OK,
    PHASE_COLOURS,
    UI_FONT,
    WARN,
)
from .throttle import Throttle

#: Rows drawn per table at most (the data keeps them all; the HTML stays small).
MAX_ROWS = 50
#: Recent pool events drawn, newest on top (the monitor's ring keeps more).
EVENT_ROWS = 20
STATE_COLOURS = {
    "idle": OK,
    "active": INFO,
    "stale": WARN,
    "connecting": PHASE_COLOURS["connect"],
    "waiting": WARN,
}
EVENT_COLOURS = {
    "opened": INFO,
    "reused": OK,
    "went idle": FG_DIM,
    "expired": WARN,
    "dropped as stale": WARN,
    "closed": FG_DIM,
}
TABLE = (
    f'style="border-collapse:collapse;font-family:{MONO};font-size:12px;'
    f'text-align:left;margin:2px 0 6px 0"'
)
CELL = f'style="padding:1px 8px 1px 0;border-bottom:1px solid {BORDER}"'
HEAD = f'style="padding:1px 8px 1px 0;color:{FG_DIM};font-weight:normal;background:{BG_RAISED}"'


def _table(headings: tuple[str, ...], rows: list[tuple[str, ...]], more: int = 0) -> str:
    """An HTML table; every cell is already-escaped HTML."""
    head = "".join(f"<th {HEAD}>{esc(h)}</th>" for h in headings)
    body = "".join("<tr>" + "".join(f"<td {CELL}>{c}</td>" for c in row) + "</tr>" for row in rows)
    if more:
        body += (
            f'<tr><td colspan="{len(headings)}" style="color:{FG_FAINT}">… {more} more</td></tr>'
        )
    return f"<table {TABLE}><tr>{head}</tr>{body}</table>"


def _state(name: str) -> str:
    return f'<b style="color:{STATE_COLOURS.get(name, FG)}">{esc(name)}</b>'


def _secs(value: float | None) -> str:
    return "" if value is None else esc(human_seconds(max(0.0, value)))


def summary_html(snap: Inspection) -> str:
    q = snap.queue
    conns = sum(len(o.idle) + len(o.active) for o in snap.origins)
    idle = sum(len(o.idle) for o in snap.origins)
    full = q.active >= q.limit
    parts = [
        f'<b style="color:{WARN if full else FG}">max_clients {q.active}/{q.limit}</b> active',
        f'<b style="color:{WARN if q.waiting else FG}">{len(q.waiting)}</b> waiting',
        f"{len(snap.origins)} origin(s)",
        f"{conns} connection(s) ({idle} idle, {conns - idle} active)",
        f'<span style="color:{FG_DIM}">keepalive_expiry {esc(snap.keepalive_expiry)} s</span>',
    ]
    if snap.closed:
        parts.append(f'<b style="color:{ERROR}">client closed</b>')
    return f'<div style="color:{FG};font-family:{UI_FONT}">' + " · ".join(parts) + "</div>"


def body_html(snap: Inspection) -> str:
    out = []
    if snap.advice:
        items = "".join(f"<li>{esc(a)}</li>" for a in snap.advice)
        out.append(f'<ul style="color:{WARN};margin:2px 0;padding-left:18px">{items}</ul>')
    q = snap.queue
    if q.waiting:
        rows = [(str(i + 1), esc(w.request), _secs(w.waited)) for i, w in enumerate(q.waiting)]
        out.append(
            f'<div style="color:{FG_DIM}">waiting for a max_clients slot (first in, first out)</div>'
        )
        out.append(_table(("#", "request", "waited"), rows[:MAX_ROWS], len(rows) - MAX_ROWS))
    for o in snap.origins:
        out.append(origin_html(o))
    out.append(events_html(snap))
    return f'<div style="color:{FG};font-family:{UI_FONT}">' + "".join(out) + "</div>"


def origin_html(o) -> str:
    via = f' <span style="color:{FG_DIM}">via {esc(o.proxy)}</span>' if o.proxy else ""
    limit = "" if o.max_connections is None else f" of max_connections_per_host={o.max_connections}"
    head = (
        f"<div><b>{esc(o.origin)}</b>{via} "
        f'<span style="color:{FG_DIM}">{o.open} open{esc(limit)}</span></div>'
    )
    rows = []
    for c in o.active:
        rows.append(
            (
                f"#{c.number}",
                _state("active"),
                esc(c.local),
                _secs(c.age),
                _secs(c.busy_for),
                str(c.requests),
                esc(c.request),
            )
        )
    for c in o.idle:
        left = "" if c.expires_in is None else f"expires in {human_seconds(max(0.0, c.expires_in))}"
        if c.state == "stale":
            left = "closed by the server: dropped at next use"
        rows.append(
            (
                f"#{c.number}",
                _state(c.state),
                esc(c.local),
                _secs(c.age),
                _secs(c.idle_for),
                str(c.requests),
                esc(left),
            )
        )
    for w in o.connecting:
        rows.append(("", _state("connecting"), "", "", _secs(w.waited), "", esc(w.request)))
    for w in o.waiting:
        rows.append(("", _state("waiting"), "", "", _secs(w.waited), "", esc(w.request)))
    table = _table(
        ("conn", "state", "local", "age", "for", "requests", "request / note"),
        rows[:MAX_ROWS],
        len(rows) - MAX_ROWS,
    )
    counts = ""
    if o.counts:
        counts = (
            f'<div style="color:{FG_DIM};font-size:12px">since inspection began: '
            + " · ".join(f"{esc(k)} {n}" for k, n in o.counts.items())
            + "</div>"
        )
    return head + table + counts


def events_html(snap: Inspection) -> str:
    recent = snap.events[-EVENT_ROWS:][::-1]
    if not recent:
        return f'<div style="color:{FG_FAINT}">no pool events yet</div>'
    rows = [
        (
            esc(
                time.strftime("%H:%M:%S", time.localtime(e.time))
                + f".{int(e.time * 1000) % 1000:03d}"
            ),
            f'<span style="color:{EVENT_COLOURS.get(e.kind, FG)}">{esc(e.kind)}</span>',
            esc(e.origin + (f" via {e.proxy}" if e.proxy else "")),
            f"#{e.connection}",
            esc(e.detail),
        )
        for e in recent
    ]
    return (
        f'<div style="color:{FG_DIM}">recent pool events (newest first, {len(snap.events)} kept)</div>'
        + _table(("time", "event", "origin", "conn", "detail"), rows)
    )


#: Live inspectors of one client at most; a new one turns the oldest static.
MAX_LIVE = 4


class InspectView(SettlesToStatic, widgets.VBox):
    """The live pool and queue of ``client``; ``snap`` is the last snapshot drawn."""

    def __init__(self, client, *, throttle: float = 0.1, tick: float = 1.0):
        self.client = client
        self.throttle = throttle
        self.tick = tick
        self.closed = False
        self._tick_handle: asyncio.TimerHandle | None = None
        self._throttle = Throttle(self._render, throttle)
        layout, style = widgets.Layout(), widgets.widget_string.HTMLStyle()
        self.summary = widgets.HTML(layout=layout, style=style)
        self.body = widgets.HTML(layout=layout, style=style)
        super().__init__([self.summary, self.body], layout=layout)
        self.snap: Inspection = inspect_client(client)
        self._monitor = client._pool.monitor
        if client.closed or self._monitor is None:
            self._draw(self.snap)
            self.closed = True
            return
        # A re-run cell makes a new view without closing the old one (ipywidgets
        # keeps every open model): past MAX_LIVE, the oldest settle to static.
        older = [
            view
            for view in (getattr(fn, "__self__", None) for fn in self._monitor.listeners)
            if isinstance(view, InspectView)
        ]
        for view in older[: max(0, len(older) - (MAX_LIVE - 1))]:
            view._client_closed()
        self._monitor.subscribe(self._changed)
        self._draw(self.snap)
        self._schedule_tick()

    # -- following the pool ------------------------------------------------------------
    def _changed(self) -> None:
        if self.client.closed:
            self._client_closed()
        else:
            self._throttle.request()

    def _render(self) -> None:
        if not self.closed:
            self._draw(snapshot(self.client))

    def _draw(self, snap: Inspection) -> None:
        self.snap = snap
        self.summary.value = summary_html(snap)
        self.body.value = body_html(snap)

    def _schedule_tick(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop: the view updates on events only
        # Through a weak reference: a pending timer must not keep a dropped view alive.
        self._tick_handle = loop.call_later(self.tick, _tick, weakref.ref(self))

    def _on_tick(self) -> None:
        self._tick_handle = None
        if self.closed:
            return
        snap = self.snap
        if snap.queue.waiting or snap.origins:  # ages and waits to count on
            self._throttle.request()
        self._schedule_tick()

    def _stop(self) -> None:
        """Leave the monitor and cancel the timers: nothing refers to the view."""
        self.closed = True
        if self._monitor is not None:
            self._monitor.unsubscribe(self._changed)
        self._monitor = None
        if self._tick_handle is not None:
            self._tick_handle.cancel()
            self._tick_handle = None
        timer = self._throttle._timer
        if timer is not None:
            timer.cancel()
            self._throttle._timer = None

    def _client_closed(self) -> None:
        if self.closed:
            return
        self._draw(snapshot(self.client))
        self._stop()
        self._become_static((self.summary, self.body, self, self.layout, self.summary.style))

    def close(self) -> None:
        """Stop following the pool and close the widget models."""
        self._stop()
        for model in (self.summary, self.body, self.layout, self.summary.style):
            model.close()
        super().close()

    # -- the static form (static_view) --------------------------------------------------
    def html(self) -> str:
        return f'<div class="nbfetch-inspect">{self.summary.value}{self.body.value}</div>'

    def text(self) -> str:
        return "\n".join(text_lines(self.snap))


def _tick(ref: weakref.ref) -> None:
    view = ref()
    if view is not None:
        view._on_tick()


def show(snap: Inspection) -> None:
    """IPython's display of an ``Inspection``: the live view of its client."""
    from IPython.display import display

    display(InspectView(snap.client))


__all__ = ["InspectView", "show"]
