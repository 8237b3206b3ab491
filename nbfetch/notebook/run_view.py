"""The live table of a ``.http`` run: one row per request, filled as the run goes.

``%fetch --file api.http`` and ``nbfetch.run_http(...)`` in a kernel show it::

    #  Request               Status   Time     Checks
    1  login                 200      12 ms    ✓ 2
    2  GET /me               401      3 ms     ✗ 1 of 2

It is a ``RunObserver`` of ``nbfetch.httpfile.run.arun_http``: ``started`` marks
a row running (and returns a ``trace`` that tracks its status), ``finished``
fills it from the ``RequestResult``. Each row is an HTML ``<details>``: opened,
it shows the request line, the error and every assertion with its result, with
no kernel needed. As ``ManyView`` does, the whole table is one HTML widget
drawing at most ``MAX_ROWS`` rows (the failed and running ones first),
re-rendered at most 20 times a second; at the end (``settle``) its outputs
become a static ``text/html`` + ``text/plain`` bundle and the widget models
close (a saved notebook shows the final table; a reload never says "model not
found").

Everything shown is scrubbed of the run's secrets (values from the private env
file, ``.env``, Authorization-like headers: ``Scope.secrets``) and each fetch's
own, then escaped; ``show_secrets=True`` shows them.
"""

from __future__ import annotations

import time

import ipywidgets as widgets

from ..core.events import Event
from ..core.redact import Secrets, redact_url
from .many_view import middle_ellipsis
from .snapshot import add_body_secrets, checks_table, esc, human_seconds
from .static_view import SettlesToStatic
from .theme import BORDER, ERROR, FG, FG_DIM, FG_FAINT, MONO, OK, UI_FONT, status_colour
from .throttle import Throttle

#: Rows drawn at most, as ``ManyView``: the rest are counted in one line (they
#: still run). 1,000 rows drawn were 31 ms and 1.9 MB a render; 100 keep a
#: render of any run to a few ms and its output to a couple of hundred KB.
MAX_ROWS = 100
#: Rows in the text/plain form (a terminal's screenful).
MAX_TEXT_ROWS = 40
#: Column widths: number, request, status, time, checks.
COLUMNS = ("4%", "52%", "14%", "12%", "18%")


class _Row:
    __slots__ = ("end", "error", "label", "result", "start", "status", "total_checks")

    def __init__(self, label: str, total_checks: int):
        self.label = label
        self.total_checks = total_checks
        self.start: float | None = None
        self.end: float | None = None
        self.status: int | None = None
        self.error: str | None = None
        self.result = None  # the RequestResult, once finished


def block_label(block, url: str | None = None) -> str:
    """A row's name: the request's ``# @name``, else its method and URL."""
    if block.name:
        return block.name
    return f"{block.method} {url if url is not None else block.url}"


class RunView(SettlesToStatic, widgets.VBox):
    """The table of a run of ``blocks`` (``HttpRequestBlock``\\ s, in order)."""

    def __init__(
        self,
        blocks: list,
        *,
        title: str = "",
        secrets: Secrets | None = None,
        show_secrets: bool = False,
        throttle: float = 0.05,
    ):
        self.title = title
        self.show_secrets = show_secrets
        #: The run's secrets (its Scope's), and every request's own.
        self.secrets = secrets if secrets is not None else Secrets()
        self.rows = [_Row(block_label(b), len(b.assertions)) for b in blocks]
        self.settled = False
        # Kept as the rows finish, not counted at each render (1,000 rows: 9 ms a count).
        self._done = self._passed = 0
        self._failures: list[int] = []  # rows that ran and failed, in order
        self._running: int | None = None
        self._display_id: str | None = None
        # As ManyView: fewer renders for more rows drawn keep the comm traffic down.
        self._throttle = Throttle(self._render, max(throttle, min(len(self.rows), MAX_ROWS) / 200))
        layout, style = widgets.Layout(), widgets.widget_string.HTMLStyle()
        self.summary = widgets.HTML(layout=layout, style=style)
        self.table = widgets.HTML(layout=layout, style=style)
        super().__init__([self.summary, self.table], layout=layout)
        self._render()

    # -- the RunObserver protocol ------------------------------------------------------------
    def started(self, index: int, block, options):
        """Request ``index`` is about to be sent with ``options`` (expanded)."""
        row = self.rows[index]
        self._running = index
        if options is not None:  # else not expanded: nothing is sent, no time runs
            row.start = time.perf_counter()
            self.secrets.add_url(options.url)
            self.secrets.add_headers(options.fetch_kwargs.get("headers") or ())
            if not block.name:
                url = options.url if self.show_secrets else redact_url(options.url)
                row.label = block_label(block, url)
        self._throttle.request()

        def trace(event: Event) -> None:
            if event.name == "request.headers_sent" and event.details.get("headers") is not None:
                self.secrets.add_headers(event.details["headers"].items())
            elif event.name == "response.headers":
                row.status = event.details["status"]
                self.secrets.add_headers(event.details["headers"].items(), served=True)
            elif event.name == "redirect":
                row.status = None
            else:
                return
            self._throttle.request()

        return trace

    def finished(self, index: int, result) -> None:
        """Request ``index`` ended (``RequestResult``): its row's final state."""
        row = self.rows[index]
        row.result = result
        row.end = time.perf_counter()
        self._running = None
        self._done += 1
        if result.passed:
            self._passed += 1
        elif not result.skipped:
            self._failures.append(index)
        self.secrets.update(result.secrets)  # every value the run's scope expanded so far
        response = result.response
        if response is not None:
            row.status = response.status_code
            self.secrets.add_hops(response)
            add_body_secrets(self.secrets, response)  # a check may show {"access_token": ...}
        if result.error is not None:
            error = result.error
            row.error = f"{type(error).__name__}: {getattr(error, 'message', None) or error}"
        row.total_checks = max(row.total_checks, len(result.assertions))
        self._throttle.request()

    def view(self, index: int):
        """Request ``index``'s own ``ResponseView`` (its events replayed, its
        checks): display it, or read its state from Python."""
        from .live import ResponseView

        result = self.rows[index].result
        if result is None or result.response is None:
            raise LookupError(f"request {index + 1} has no response to show")
        options = result.options
        view = ResponseView(
            options.method,
            options.url,
            show_secrets=self.show_secrets,
            assertions=result.block.assertions,
            secrets=self.secrets,
            options=options,
        )
        for event in result.response.events:
            view.trace(event)
        view.attach_response(result.response)
        view.attach_checks(result.assertions)
        return view

    def result(self, index: int):
        """Request ``index``'s ``RequestResult`` (None while it has not finished)."""
        return self.rows[index].result

    def counts(self) -> dict[str, int]:
        return {
            "done": self._done,
            "passed": self._passed,
            "failed": self._done - self._passed,
            "pending": len(self.rows) - self._done,
        }

    # -- display: a static output when settled (static_view) ------------------------------
    def settle(self) -> None:
        """The end of the run: the exact final render; every output this view was
        displayed in becomes static text/html + text/plain, then the models close."""
        self.settled = True
        self._throttle.now()
        self._become_static((self.summary, self.table, self, self.layout, self.summary.style))

    def html(self) -> str:
        return (
            f'<div class="nbfetch-run" style="font-family:{UI_FONT};color:{FG}">'
            f"{self.summary.value}{self.table.value}</div>"
        )

    def text(self) -> str:
        lines = [self._summary_text()]
        shown = self._drawn(MAX_TEXT_ROWS)
        width = max((len(self.rows[i].label) for i in shown), default=0)
        width = min(width, 48)
        for i in shown:
            row = self.rows[i]
            status, took, checks = self._cells(row)
            label = middle_ellipsis(row.label, 48)
            lines.append(f"  {i + 1:>2}  {label:<{width}}  {status:>8}  {took:>8}  {checks}")
            if row.error:
                lines.append(f"      {row.error}")
            for check in self._checks(row):
                if not check.passed:
                    lines.append(f"      ✗ {check.message}")
        if len(self.rows) > MAX_TEXT_ROWS:
            lines.append(f"  … {len(self.rows) - MAX_TEXT_ROWS} more")
        return self._scrub("\n".join(lines))

    # -- rendering ---------------------------------------------------------------------------
    def _scrub(self, text: str) -> str:
        return text if self.show_secrets else self.secrets.scrub(text)

    def _esc(self, value: object) -> str:
        """Scrubbed, then escaped (never scrubbed as finished HTML)."""
        return esc(self._scrub(str(value)))

    @staticmethod
    def _checks(row: _Row) -> list:
        return list(row.result.assertions) if row.result is not None else []

    def _cells(self, row: _Row) -> tuple[str, str, str]:
        if row.result is not None and getattr(row.result, "skipped", False):
            status = "skipped"
        elif self.settled and row.result is None:  # the run stopped (Kernel → Interrupt)
            status = "interrupted" if row.start is not None else "not run"
        elif row.error is not None and row.status is None:
            status = row.error.partition(":")[0]
        elif row.status is not None:
            status = str(row.status)
        else:
            status = "…" if row.start is not None else ""
        took = ""
        if row.result is not None and getattr(row.result, "duration", None) is not None:
            took = human_seconds(row.result.duration)
        elif row.start is not None and (row.end is not None or not self.settled):
            took = human_seconds((row.end or time.perf_counter()) - row.start)
        checks = self._checks(row)
        failed = sum(1 for c in checks if not c.passed)
        if row.result is None:
            summary = f"{row.total_checks} to check" if row.total_checks else ""
        elif not checks:
            summary = ""
        elif failed:
            summary = f"✗ {failed} of {len(checks)}"
        else:
            summary = f"✓ {len(checks)}"
        return status, took, summary

    def _summary_text(self) -> str:
        c = self.counts()
        title = f"{self.title}: " if self.title else ""
        if not c["pending"]:
            state = ""
        elif self.settled:
            state = f", stopped with {c['pending']} not done"
        else:
            state = f", {c['pending']} to go"
        return (
            f"{title}{len(self.rows)} request{'' if len(self.rows) == 1 else 's'}: "
            f"{c['passed']} passed, {c['failed']} failed{state}"
        )

    def _render(self) -> None:
        c = self.counts()
        colour = ERROR if c["failed"] else OK if self.settled else FG
        self.summary.value = (
            f'<div style="font-size:12px;color:{colour}"><b>{self._esc(self._summary_text())}</b>'
            "</div>"
        )
        head = 'style="text-align:{};padding:2px 4px;font-weight:600"'
        parts = [
            self._grid(
                [
                    f"<td {head.format('right')}>#</td>",
                    f"<td {head.format('left')}>Request</td>",
                    f"<td {head.format('right')}>Status</td>",
                    f"<td {head.format('right')}>Time</td>",
                    f"<td {head.format('left')}>Checks</td>",
                ],
                f"border-bottom:1px solid {BORDER}",
            )
        ]
        drawn = self._drawn()
        parts += [self._row_html(i, self.rows[i]) for i in drawn]
        if len(drawn) < len(self.rows):
            parts.append(
                f'<div class="nbfetch-run-more" style="color:{FG_DIM};padding:2px 4px">'
                f"… {len(self.rows) - len(drawn):,} more requests (not drawn; counted above)</div>"
            )
        self.table.value = (
            f'<div class="nbfetch-run-table" style="font-size:12px;width:100%;color:{FG}">'
            f"{''.join(parts)}</div>"
        )

    def _drawn(self, limit: int = MAX_ROWS) -> list[int]:
        """The rows shown, in file order: at most ``limit``, the ones to look
        at first (failed, running), then the earliest."""
        if len(self.rows) <= limit:
            return list(range(len(self.rows)))
        chosen = set(self._failures[:limit])
        if self._running is not None and len(chosen) < limit:
            chosen.add(self._running)
        first = 0
        while len(chosen) < limit:
            chosen.add(first)
            first += 1
        return sorted(chosen)

    @staticmethod
    def _grid(cells: list[str], style: str = "") -> str:
        cols = "".join(f'<col style="width:{w}">' for w in COLUMNS)
        return (
            # margin and text-align: JupyterLab's rendered-HTML CSS centres tables.
            f'<table style="width:100%;margin:0;table-layout:fixed;border-collapse:collapse;'
            f'{style}"><colgroup>{cols}</colgroup><tr>{"".join(cells)}</tr></table>'
        )

    def _row_html(self, i: int, row: _Row) -> str:
        status, took, checks = self._cells(row)
        if row.error is not None and row.status is None:
            colour = ERROR
        elif row.status is not None:
            colour = status_colour(row.status)
        else:
            colour = FG_FAINT
        failed = any(not c.passed for c in self._checks(row))
        check_colour = ERROR if failed else OK
        cell = 'style="text-align:right;padding:1px 4px;white-space:nowrap;overflow:hidden"'
        line = self._grid(
            [
                f'<td {cell}><span style="color:{FG_DIM}">{i + 1}</span></td>',
                f'<td style="text-align:left;padding:1px 4px;white-space:nowrap;overflow:hidden;'
                f'text-overflow:ellipsis;font-family:{MONO}">'
                f'<span style="color:{FG_DIM}">▸</span> {self._esc(row.label)}</td>',
                f'<td {cell}><span style="color:{colour}">{self._esc(status)}</span></td>',
                f"<td {cell}>{took}</td>",
                f'<td style="text-align:left;padding:1px 4px;white-space:nowrap">'
                f'<span class="nbfetch-checks" style="color:{check_colour}">'
                f"{self._esc(checks)}</span></td>",
            ]
        )
        # Live, the table is re-rendered (an open row would close again): the
        # details come with the final render.
        details = self._details(row) if self.settled and row.result is not None else ""
        opened = " open" if self.settled and (failed or row.error) else ""
        return (
            f'<details class="nbfetch-run-row"{opened} style="border-bottom:1px solid {BORDER}">'
            f'<summary style="display:block;list-style:none;cursor:pointer">{line}</summary>'
            f"{details}</details>"
        )

    def _details(self, row: _Row) -> str:
        result = row.result
        parts = []
        options = result.options
        if options is not None:
            url = options.url if self.show_secrets else redact_url(options.url)
            parts.append(f"<div><code>{self._esc(options.method)} {self._esc(url)}</code></div>")
        if row.error:
            parts.append(f'<div style="color:{ERROR}">{self._esc(row.error)}</div>')
            hint = getattr(result.error, "hint", None)
            if hint:
                parts.append(f'<div style="color:{FG_DIM}">hint: {self._esc(hint)}</div>')
        checks = self._checks(row)
        if checks:
            parts.append(checks_table(checks, self._esc))
        return (
            f'<div style="padding:4px 4px 6px 2em;font-size:12px;border-top:1px solid {BORDER}">'
            f"{''.join(parts)}</div>"
        )
