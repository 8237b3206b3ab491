"""The network panel of the kernel: ``nbfetch.network()`` in a notebook.

Every fetch the network log (``client/netlog.py``) holds, newest on top, live
as new ones start and progress: #, method, URL, status, size, time and a
waterfall bar on a time axis common to the rows drawn (queued, connecting,
waiting, receiving, as ``ManyView``'s). Above: filters by text, status (``2xx``,
``404``, ``failed``; several with commas) and host, and Export HAR (the rows the
filters match, as a file in the kernel's working directory), Clear and Stop.
Below: pick a fetch for its detail (request and response headers, body preview,
timing phases, events).

The view never blocks the loop: it re-renders at most every ``throttle``
seconds (longer when more rows are drawn), scans the ring once per render, and
draws at most ``MAX_ROWS`` rows (the others are counted). The log holds it
weakly: a closed (or Stopped) view is not kept alive. Stop makes its output a
static text/html + text/plain bundle (what a saved notebook keeps) and closes
its widget models. Everything shown is text the log gives out, which it
redacts when it makes it (see ``client/netlog.py``); it is escaped here
(server-controlled header values and URLs).
"""

from __future__ import annotations

import time
from datetime import datetime

import ipywidgets as widgets

from ..client.netlog import Entry, NetworkLog, matcher
from .many_view import middle_ellipsis, nice_ticks, tick_label
from .snapshot import esc, human_bytes, human_seconds
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
    PHASE_COLOURS,
    UI_FONT,
    status_colour,
)
from .throttle import Throttle

#: Rows drawn at most (~1.5 KB of HTML and ~0.1 ms each).
MAX_ROWS = 100
#: Entries scanned per render at most (a ring made very large stays cheap).
MAX_SCANNED = 20_000
#: Rows in the text/plain form.
MAX_TEXT_ROWS = 20
#: Column widths: #, method, name, status, size, time, waterfall.
COLUMNS = ("4%", "6%", "30%", "9%", "8%", "7%", "36%")
SEGMENTS = (
    ("redirect", PHASE_COLOURS["redirect"], "start", "hop"),
    ("queued", PHASE_COLOURS["queue"], "queued", "dequeued"),
    ("connecting", PHASE_COLOURS["connect"], "attempt", "sent"),
    ("waiting", PHASE_COLOURS["wait"], "sent", "headers"),
    ("receiving", PHASE_COLOURS["download"], "headers", "end"),
)
NO_PICK = 0


def _name(url: str) -> str:
    """The path and query, as DevTools names a request."""
    rest = url.partition("://")[2] or url
    slash = rest.find("/")
    return middle_ellipsis(rest[slash:] if slash != -1 else rest, 60)


class NetworkView(SettlesToStatic, widgets.VBox):
    """The live network panel of ``log`` (a ``NetworkLog``; ``network_log``
    here: ``log`` is a widget's logger)."""

    _unsubscribe = None

    def __init__(
        self,
        log: NetworkLog,
        *,
        text: str | None = None,
        status=None,
        host: str | None = None,
        throttle: float = 0.2,
    ):
        self.network_log = log
        self.throttle = throttle
        self.shown: list[Entry] = []  # the rows drawn, newest first
        self.matched = 0  # rows the filters matched (of those scanned)
        self._hosts: tuple[str, ...] = ()
        self._picks: tuple = ()
        self._throttle = Throttle(self._render, throttle)
        layout = widgets.Layout()
        self.filter_text = widgets.Text(
            value=text or "",
            placeholder="filter: method, URL, status",
            layout=widgets.Layout(width="28%"),
        )
        self.filter_status = widgets.Text(
            value="" if status is None else str(status),
            placeholder="status: 2xx, 404, failed",
            layout=widgets.Layout(width="18%"),
        )
        self.filter_host = widgets.Dropdown(
            options=[("all hosts", "")], value="", layout=widgets.Layout(width="20%")
        )
        self._set_hosts(host or "")
        self.export_button = widgets.Button(
            description="Export HAR", tooltip="the rows the filters match, as a .har file"
        )
        self.clear_button = widgets.Button(
            description="Clear", tooltip="forget every fetch the log holds"
        )
        self.stop_button = widgets.Button(
            description="Stop", tooltip="stop updating: the output becomes static HTML"
        )
        self.summary = widgets.HTML(layout=layout)
        self.table = widgets.HTML(layout=layout)
        self.pick = widgets.Dropdown(
            options=[("— pick a fetch for its detail —", NO_PICK)],
            value=NO_PICK,
            layout=widgets.Layout(width="60%"),
        )
        self.detail = widgets.HTML(layout=layout)
        self.message = widgets.HTML(layout=layout)
        controls = widgets.HBox(
            [
                self.filter_text,
                self.filter_status,
                self.filter_host,
                self.export_button,
                self.clear_button,
                self.stop_button,
            ]
        )
        super().__init__(
            [
                controls,
                self.summary,
                self.table,
                widgets.HBox([self.pick, self.message]),
                self.detail,
            ],
            layout=layout,
        )
        for w in (self.filter_text, self.filter_status, self.filter_host, self.pick):
            w.observe(self._filters_changed, names="value")
        self.export_button.on_click(self._export_clicked)
        self.clear_button.on_click(lambda _b: self.network_log.clear())
        self.stop_button.on_click(lambda _b: self.settle())
        self._unsubscribe = log.subscribe(self._changed)
        self._render()

    # -- reacting ------------------------------------------------------------------------
    def _changed(self) -> None:
        self._throttle.request()

    def _filters_changed(self, _change) -> None:
        self._throttle.now()

    def _export_clicked(self, _button) -> None:
        path = f"nbfetch-network-{datetime.now().strftime('%Y%m%d-%H%M%S')}.har"
        count = self.export_har(path)
        self.message.value = (
            f'<span style="color:{FG_DIM};font-size:12px">{count} fetches written to '
            f"<code>{esc(path)}</code></span>"
        )

    def filters(self) -> dict:
        return {
            "text": self.filter_text.value,
            "status": self.filter_status.value,
            "host": self.filter_host.value,
        }

    def to_har(self, ids=None) -> dict:
        """HAR of the rows the filters match (all of them, drawn or not), or of ``ids``."""
        if ids is not None:
            return self.network_log.to_har(ids)
        return self.network_log.to_har(**self.filters())

    def export_har(self, path, ids=None) -> int:
        if ids is not None:
            return self.network_log.save_har(path, ids)
        return self.network_log.save_har(path, **self.filters())

    # -- closing -------------------------------------------------------------------------
    def close(self) -> None:
        """Stop following the log and close every widget model of the view
        (its controls, their layouts and styles)."""
        if self._unsubscribe is not None:
            self._unsubscribe()
        self._throttle.cancel()
        models: dict[int, widgets.Widget] = {}
        stack: list = [self]
        while stack:
            w = stack.pop()
            if id(w) in models:
                continue
            models[id(w)] = w
            stack += [
                getattr(w, "layout", None),
                getattr(w, "style", None),
                *getattr(w, "children", ()),
            ]
            stack = [x for x in stack if isinstance(x, widgets.Widget)]
        for w in models.values():
            if w is not self:
                w.close()
        super().close()

    def settle(self) -> None:
        """Stop: the outputs become the static form of the view as it is now."""
        self._throttle.now()
        if self._display_id is None:
            self.close()
            return
        self._become_static([])
        self.close()

    # -- rendering -----------------------------------------------------------------------
    def _set_hosts(self, value: str | None = None) -> None:
        hosts = tuple(self.network_log.hosts())
        if value is None:
            value = self.filter_host.value
        if value and value not in hosts:
            hosts = (*hosts, value)
        if hosts != self._hosts:
            self._hosts = hosts
            with self.filter_host.hold_trait_notifications():
                self.filter_host.options = [("all hosts", ""), *((h, h) for h in hosts)]
                self.filter_host.value = value
        elif self.filter_host.value != value:
            self.filter_host.value = value

    def _select(self) -> None:
        """The rows drawn: the newest that match, scanning at most MAX_SCANNED."""
        test = matcher(**self.filters())
        shown: list[Entry] = []
        matched = 0
        for scanned, entry in enumerate(reversed(self.network_log._entries)):
            if scanned >= MAX_SCANNED:
                break
            if test(entry):
                matched += 1
                if len(shown) < MAX_ROWS:
                    shown.append(entry)
        self.shown, self.matched = shown, matched

    def _render(self) -> None:
        self._select()
        self._set_hosts()
        self._set_picks()
        now = time.perf_counter()
        self.summary.value = self._summary_html()
        self.table.value = self._table_html(now)
        self.detail.value = self._detail_html()
        # More rows drawn: fewer renders (100 rows, one every 0.5 s at most).
        self._throttle.interval = max(self.throttle, len(self.shown) / 200)

    def _set_picks(self) -> None:
        picks = tuple((f"#{e.id}  {e.method}  {_name(e.url)}", e.id) for e in self.shown)
        if picks == self._picks:
            return
        self._picks = picks
        value = self.pick.value
        ids = {i for _, i in picks}
        with self.pick.hold_trait_notifications():
            self.pick.options = [("— pick a fetch for its detail —", NO_PICK), *picks]
            self.pick.value = value if value in ids else NO_PICK

    def picked(self) -> Entry | None:
        value = self.pick.value
        if value == NO_PICK:
            return None
        try:
            return self.network_log.entry(value)
        except KeyError:
            return None

    def _summary_text(self) -> str:
        log = self.network_log
        state = "recording" if log.enabled else "not recording"
        filtered = any(self.filters().values())
        shown = f"{len(self.shown)} shown"
        if filtered:
            shown += f" of {self.matched:,} matching"
        return (
            f"Network: {len(log):,} fetches in the log (last {log.size:,} kept, {state}); {shown}"
        )

    def _summary_html(self) -> str:
        legend = " ".join(
            f'<span style="color:{colour}">■</span> {label}' for label, colour, *_ in SEGMENTS[1:]
        )
        more = ""
        if self.matched > len(self.shown):
            more = f" — {self.matched - len(self.shown):,} more not drawn (filter to see them)"
        return (
            f'<div style="font-size:12px;color:{FG};font-family:{UI_FONT}">'
            f"<b>{esc(self._summary_text())}</b>{esc(more)}"
            f'<span style="font-size:11px;color:{FG_DIM};margin-left:1em">{legend}</span></div>'
        )

    def _grid(self, cells: list[str], style: str = "") -> str:
        cols = "".join(f'<col style="width:{w}">' for w in COLUMNS)
        return (
            # margin and text-align: JupyterLab's rendered-HTML CSS centres tables.
            f'<table style="width:100%;margin:0;table-layout:fixed;border-collapse:collapse;{style}">'
            f"<colgroup>{cols}</colgroup><tr>{''.join(cells)}</tr></table>"
        )

    def _span(self, now: float) -> tuple[float, float]:
        if not self.shown:
            return now, 1e-3
        start = min(e.t0 for e in self.shown)
        end = max(e.marks.get("end", now) for e in self.shown)
        return start, max(end - start, 1e-3)

    def _table_html(self, now: float) -> str:
        start, span = self._span(now)
        ticks = "".join(
            f'<span style="position:absolute;left:{t / span * 100:.2f}%;top:0;height:100%;'
            f'border-left:1px solid {BORDER};padding-left:2px;white-space:nowrap">{tick_label(t)}</span>'
            for t in nice_ticks(span)
            if t / span <= 0.92
        )
        head = 'style="text-align:{};padding:2px 4px;font-weight:600"'
        parts = [
            self._grid(
                [
                    f"<td {head.format('right')}>#</td>",
                    f"<td {head.format('left')}>Method</td>",
                    f"<td {head.format('left')}>Name</td>",
                    f"<td {head.format('right')}>Status</td>",
                    f"<td {head.format('right')}>Size</td>",
                    f"<td {head.format('right')}>Time</td>",
                    f'<td style="position:relative;height:16px;color:{FG_DIM};font-size:11px">{ticks}</td>',
                ],
                f"border-bottom:1px solid {BORDER}",
            )
        ]
        picked = self.pick.value
        for entry in self.shown:
            parts.append(self._row_html(entry, start, span, now, entry.id == picked))
        if not self.shown:
            parts.append(
                f'<div style="color:{FG_DIM};padding:4px">No fetch yet{" matches" if any(self.filters().values()) else ""}.</div>'
            )
        return (
            f'<div class="nbfetch-network" style="font-size:12px;width:100%;color:{FG};'
            f'font-family:{UI_FONT}">{"".join(parts)}</div>'
        )

    def _row_html(self, e: Entry, start: float, span: float, now: float, picked: bool) -> str:
        marks = {"start": e.t0, **e.marks}
        marks.setdefault("attempt", marks.get("hop", marks.get("dequeued", e.t0)))
        if "hop" in marks:
            marks["attempt"] = marks["hop"]
        bars = []
        for label, colour, begin, end in SEGMENTS:
            if begin not in marks or (begin == "start" and "hop" not in marks):
                continue
            t0 = marks[begin]
            t1 = marks.get(end, marks.get("end", now))
            if t1 < t0:
                continue
            bars.append(
                f'<span title="{label}: {(t1 - t0) * 1000:.1f} ms" style="position:absolute;'
                f"left:{(t0 - start) / span * 100:.2f}%;width:{max((t1 - t0) / span * 100, 0.3):.2f}%;"
                f'height:10px;top:3px;background:{colour}"></span>'
            )
        status = e.status_text()
        if e.error is not None:
            colour = FG_DIM if e.state == "cancelled" else ERROR
        elif e.status is not None:
            colour = status_colour(e.status)
        else:
            colour = FG_FAINT
        if e.redirects:
            status += f" ↪{e.redirects}"
        took = human_seconds(e.elapsed) if e.elapsed is not None else "…"
        size = human_bytes(e.wire_bytes) if e.status is not None else ""
        cell = 'style="text-align:right;padding:1px 4px;white-space:nowrap;overflow:hidden"'
        left = '<td style="text-align:left;padding:1px 4px;white-space:nowrap;overflow:hidden;text-overflow:ellipsis'
        background = f"background:{BG_RAISED};" if picked else ""
        return self._grid(
            [
                f'<td {cell}><span style="color:{FG_DIM}">{e.id}</span></td>',
                f'{left};font-family:{MONO}">{esc(e.method)}</td>',
                f'{left};font-family:{MONO}" title="{esc(e.url)}">{esc(_name(e.url))}</td>',
                f'<td {cell}><span style="color:{colour}">{esc(status)}</span></td>',
                f"<td {cell}>{size}</td>",
                f"<td {cell}>{took}</td>",
                f'<td class="nbfetch-track" style="position:relative;height:16px;background:{BG_RAISED};'
                f'padding:0">{"".join(bars)}</td>',
            ],
            f"{background}border-bottom:1px solid {BORDER}",
        )

    def _detail_html(self) -> str:
        e = self.picked()
        if e is None:
            return ""
        d = e.detail()
        target = f"<code>{esc(e.method)} {esc(d['final_url'])}</code>"
        if e.status is not None:
            head = (
                f'<b style="color:{status_colour(e.status)}">{e.status} {esc(e.reason)}</b> {target}'
                f' <span style="color:{FG_DIM}">{esc(e.version)}</span>'
            )
        else:
            head = f'<b style="color:{FG_DIM}">{esc(e.state)}</b> {target}'
        parts = [f"<div>#{e.id} {head}</div>"]
        if e.redirects:
            parts.append(
                f'<div style="color:{FG_DIM}">after {e.redirects} redirect(s) from <code>{esc(e.url)}</code></div>'
            )
        if e.error is not None:
            err = e.error
            phase = f" in phase <b>{esc(err['phase'])}</b>" if err.get("phase") else ""
            message = f": {esc(err['message'])}" if err.get("message") else ""
            parts.append(
                f'<div style="color:{ERROR}"><b>{esc(err["type"])}</b>{phase}{message}</div>'
            )
        if d["timing"]:
            phases = ", ".join(
                f'<span style="color:{PHASE_COLOURS[name]}">■</span> {name} {value * 1000:.1f} ms'
                for name, value in d["timing"].items()
                if value is not None and name in PHASE_COLOURS
            )
            total = d["timing"].get("total")
            parts.append(
                f'<div style="color:{FG_DIM}">{phases}{f" — total {total * 1000:.1f} ms" if total else ""}</div>'
            )
        for title, headers in (
            ("Request headers", d["request_headers"]),
            ("Response headers", d["response_headers"]),
        ):
            if headers:
                parts.append(
                    f'<div style="margin-top:4px"><b>{title}</b> ({len(headers)}){_pairs(headers)}</div>'
                )
        body = d["request_body"]
        if body:
            parts.append(
                f'<div style="margin-top:4px"><b>Request body</b> ({human_bytes(body["size"])}, '
                f"{esc(body['content_type'] or 'no type')}){_pre(body['text'])}</div>"
            )
        if d["preview_kind"] != "empty":
            cut = (
                " (first bytes)"
                if e.decoded_bytes > len(d["preview"]) or e.state == "running"
                else ""
            )
            parts.append(
                f'<div style="margin-top:4px"><b>Response body</b> ({human_bytes(e.decoded_bytes)}'
                f"{cut}){_pre(d['preview'])}</div>"
            )
        if d["events"]:
            rows = "".join(
                f'<tr><td style="text-align:right;padding-right:1em">{ev["offset"] * 1000:.3f}</td>'
                f'<td style="text-align:left;padding-right:1em">{esc(ev["name"])}</td>'
                f'<td style="text-align:left;word-break:break-all">{esc(ev["details"])}</td></tr>'
                for ev in d["events"]
            )
            dropped = d["events_dropped"]
            note = (
                f' <span style="color:{FG_DIM}">({dropped:,} body events not kept)</span>'
                if dropped
                else ""
            )
            parts.append(
                f'<div style="margin-top:4px"><b>Events</b> ({len(d["events"])}){note}'
                f'<table style="font-family:{MONO};font-size:12px;margin:0"><tr><th>ms</th><th>event</th>'
                f"<th>details</th></tr>{rows}</table></div>"
            )
        elif e.state == "running":
            parts.append(f'<div style="color:{INFO}">running…</div>')
        return (
            f'<div class="nbfetch-network-detail" style="padding:4px;font-size:12px;color:{FG};'
            f'border-top:1px solid {BORDER}">{"".join(parts)}</div>'
        )

    # -- static forms ----------------------------------------------------------------------
    def html(self) -> str:
        return (
            f'<div class="nbfetch-network-view" style="font-family:{UI_FONT};color:{FG}">'
            f"{self.summary.value}{self.table.value}{self.detail.value}</div>"
        )

    def text(self) -> str:
        lines = [self._summary_text()]
        for e in self.shown[:MAX_TEXT_ROWS]:
            took = human_seconds(e.elapsed) if e.elapsed is not None else "…"
            lines.append(f"  #{e.id:<5} {e.method:<7} {e.status_text():>9} {took:>8}  {e.url}")
        if len(self.shown) > MAX_TEXT_ROWS:
            lines.append(f"  … {len(self.shown) - MAX_TEXT_ROWS} more")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"<NetworkView: {len(self.network_log)} fetches, {len(self.shown)} shown>"


def _pairs(headers: list[tuple[str, str]]) -> str:
    rows = "".join(
        f'<tr><td style="text-align:left;font-weight:600;padding-right:1em;vertical-align:top">'
        f'{esc(n)}</td><td style="text-align:left;word-break:break-all">{esc(v)}</td></tr>'
        for n, v in headers
    )
    return f'<table style="font-family:{MONO};font-size:12px;margin:0">{rows}</table>'


def _pre(text: str) -> str:
    return (
        f'<pre style="font-family:{MONO};font-size:12px;max-height:16em;overflow:auto;margin:2px 0;'
        f'padding:4px;background:{BG_RAISED};color:{FG};white-space:pre-wrap;word-break:break-all">'
        f"{esc(text)}</pre>"
    )
