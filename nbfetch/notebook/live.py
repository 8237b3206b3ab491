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
import uuid

import ipywidgets as widgets
from ipywidgets.widgets.widget_string import HTMLStyle

from ..core.errors import FetchCancelled
from ..core.events import Event
from . import snapshot
from .snapshot import FetchState, esc
from .throttle import Throttle

#: The view's tabs, in order; "Checks" only for a request with ``??`` assertions.
TABS = ("Timing", "Headers", "Chunks", "Events", "Body", "Copy as")
CHECKS = "Checks"
#: The download-rate control of a streaming view: label, bytes per second (0: none).
RATES = (("no limit", 0), ("10 KB/s", 10_000), ("100 KB/s", 100_000), ("1 MB/s", 1_000_000))


class _Pane:
    """One pane's HTML, rendered when it is looked at (the tab shown, the status
    line), not at every update: a live view redraws only what can be seen."""

    __slots__ = ("_html", "_render", "_state", "dirty")

    def __init__(self, render, state: FetchState) -> None:
        self._render, self._state = render, state
        self._html, self.dirty = "", True

    @property
    def value(self) -> str:
        if self.dirty:
            self._html, self.dirty = self._render(self._state), False
        return self._html


class ResponseView(widgets.VBox):
    """A live view of one fetch: status, progress, headers, wire chunks, waterfall,
    event timeline, body preview, the request to copy as curl, ``.http`` or
    Python, and a Cancel button; with ``assertions`` (the ``??`` lines of a
    ``.http`` request), a Checks tab their results fill (``attach_checks``).

    Ten widget models at most (D2): the tables are HTML in one content widget
    that a tab bar switches, and the widgets share one Layout and one Style.
    A streaming view (``attach_stream``: ``%fetch --stream``, ``-o FILE``, or a
    ``client.stream()`` response) adds two: Pause/Resume and a download-rate
    control, acting on that response (``Response.pause()``, ``rate_limit``).
    Displayed as an output, it becomes a static HTML snapshot when the fetch
    ends and closes its models (a saved notebook, nbconvert and a reloaded page
    show the result without a kernel); ``embedded=True`` keeps it a live widget
    (inside a FetchPanel). ``show_secrets=True`` shows credentials unmasked.
    """

    MAX_CHUNK_ROWS = FetchState.MAX_CHUNK_ROWS
    MAX_EVENT_ROWS = FetchState.MAX_EVENT_ROWS

    def __init__(
        self,
        method: str = "GET",
        url: object = "",
        *,
        throttle: float = 0.05,
        show_secrets: bool = False,
        embedded: bool = False,
        headers=(),
        assertions=None,
        secrets=None,
        options=None,
        cancellable: bool = True,
    ):
        self.state = FetchState(method, url, show_secrets=show_secrets, headers=headers)
        if secrets is not None:  # a .http run's secrets (env values) are this fetch's too
            self.state.secrets.update(secrets)
        if assertions is not None:
            self.state.assertions = list(assertions)
        self.state.options = options  # what "Copy as" writes out
        self.method = method
        self.throttle = throttle
        self.embedded = embedded
        self._task: asyncio.Future | None = None
        self._stream = None  # the Response whose body the controls act on
        self.pause_button: widgets.Button | None = None
        self.rate_control: widgets.Dropdown | None = None
        self._throttle = Throttle(self._render_all, throttle)
        self._display_id: str | None = None
        self._closed = False
        self._finalised = False
        state = self.state
        self.waterfall_html = _Pane(snapshot.waterfall_html, state)
        self.headers_html = _Pane(snapshot.headers_html, state)
        self.chunks_html = _Pane(snapshot.chunks_html, state)
        self.events_html = _Pane(snapshot.events_html, state)
        self.body_html = _Pane(snapshot.body_html, state)
        self.copy_html = _Pane(snapshot.copy_html, state)
        self.checks_html = _Pane(snapshot.checks_html, state)
        self.error_html = _Pane(snapshot.error_html, state)
        self.progress_html = _Pane(
            lambda s: snapshot.upload_html(s) + snapshot.progress_html(s, live=True), state
        )
        self._panes = dict(
            zip(
                TABS,
                (
                    self.waterfall_html,
                    self.headers_html,
                    self.chunks_html,
                    self.events_html,
                    self.body_html,
                    self.copy_html,
                ),
                strict=True,
            )
        )
        tabs = TABS
        if state.assertions is not None:
            self._panes[CHECKS] = self.checks_html
            tabs = (*TABS[:-1], CHECKS, TABS[-1])

        layout = widgets.Layout()
        style = HTMLStyle()
        self.status_html = widgets.HTML(layout=layout, style=style)
        self.cancel_button = widgets.Button(
            description="Cancel", icon="stop", button_style="warning", layout=layout
        )
        self.cancel_button.on_click(lambda _button: self.cancel())
        self.tab_bar = widgets.ToggleButtons(
            options=tabs,
            value="Timing",
            layout=layout,
            style=widgets.ToggleButtonsStyle(button_width="auto"),
        )
        self.tab_bar.observe(lambda _change: self._show_content(), names="value")
        self.content = widgets.HTML(layout=layout, style=style)
        # A request of a .http run has no Cancel of its own: Kernel → Interrupt
        # stops the run.
        top = [self.status_html, self.cancel_button] if cancellable else [self.status_html]
        self._top = widgets.HBox(top, layout=layout)
        self._layout, self._style = layout, style
        super().__init__([self._top, self.tab_bar, self.content], layout=layout)
        self._models = [
            self,
            self._top,
            self.status_html,
            self.cancel_button,
            self.cancel_button.style,
            self.tab_bar,
            self.tab_bar.style,
            self.content,
            layout,
            style,
        ]
        self._render_all()

    # -- compatibility with the state ----------------------------------------------------
    @property
    def url(self) -> str:
        return self.state.url

    @property
    def response(self):
        return self.state.response

    @property
    def error(self) -> dict | None:
        return self.state.error

    @property
    def finished(self) -> bool:
        return self.state.finished

    @property
    def cancel_requested(self) -> bool:
        return self.state.cancel_requested

    @property
    def _chunks(self):
        return self.state.chunks

    @property
    def _chunk_count(self) -> int:
        return self.state.chunk_count

    # -- wiring ------------------------------------------------------------------------
    def bind(self, task: asyncio.Future) -> None:
        """The task the Cancel button cancels; its end is the view's end."""
        self._task = task
        task.add_done_callback(self._task_done)

    def cancel(self) -> None:
        """Cancel the bound fetch (what the Cancel button does)."""
        if self._task is not None and not self._task.done():
            self.state.cancel_requested = True
            self._task.cancel()
            self.cancel_button.description = "Cancelling"
            self.cancel_button.disabled = True

    def attach_stream(self, response) -> None:
        """The Response whose body this view shows as it is read: the view
        gets Pause/Resume and a download-rate control acting on it. Works as
        ``on_headers=view.attach_stream``, or with ``client.stream()``::

            async with client.stream("GET", url, trace=view.trace) as r:
                view.attach_stream(r)
                async for data in r.aiter_bytes(): ...
        """
        if self._finalised or self._closed:
            return
        self._stream = response
        if self.pause_button is None:
            self.pause_button = widgets.Button(
                description="Pause",
                icon="pause",
                tooltip="stop reading: the server's send blocks once the TCP window closes",
                layout=self._layout,
                style=self.cancel_button.style,
            )
            self.pause_button.on_click(lambda _button: self.toggle_pause())
            self.rate_control = widgets.Dropdown(
                options=RATES, value=0, layout=self._layout, style=self._style
            )
            self.rate_control.observe(self._rate_chosen, names="value")
            self._models += [self.pause_button, self.rate_control]
            children = list(self._top.children)
            children[1:1] = [self.pause_button, self.rate_control]
            self._top.children = tuple(children)
        rate = response.rate_limit  # a rate_limit= of the fetch
        if rate:
            if rate not in [value for _, value in self.rate_control.options]:
                label = f"{snapshot.human_bytes(rate)}/s"
                self.rate_control.options = (*self.rate_control.options, (label, rate))
            self.rate_control.value = rate
        self._render_all()

    def toggle_pause(self) -> None:
        """Pause the attached response, or resume it (the Pause button)."""
        response = self._stream
        if response is None:
            return
        if response.paused:
            response.resume()
        else:
            response.pause()

    def _rate_chosen(self, change) -> None:
        if self._stream is not None:
            self._stream.rate_limit = change["new"] or None

    def trace(self, event: Event) -> None:
        """The ``trace=`` subscriber: cheap bookkeeping, throttled rendering."""
        if self.state.feed(event):
            # A bound view ends with its task (the Response comes after this
            # event); a view fed by hand ends here.
            if self._task is None or self._task.done():
                self._finish()
            else:
                self._throttle.now()
            return
        if event.name in ("response.paused", "response.resumed"):
            self._throttle.now()  # the button and the status line say so at once
            return
        self._throttle.request()

    def close(self) -> None:
        """Close the view and every widget model it is made of (its layout and
        styles too: ``Widget.close`` alone would leave nine of ten open)."""
        for model in getattr(self, "_models", [self])[1:]:
            model.close()
        super().close()

    def fail(self, exc: BaseException) -> None:
        """Drive the view to its final error state from any exception (an invalid
        URL, a %fetch argument error, anything raised before or after the events)."""
        if isinstance(exc, (asyncio.CancelledError, KeyboardInterrupt, FetchCancelled)):
            if not self.state.finished:
                self.state.end = time.perf_counter()
                self.state.end_cancelled(None)
        else:
            self.state.fail(exc)
        hint = getattr(exc, "hint", None)  # FetchError.hint: what to try
        if hint and self.state.error is not None:
            self.state.error["hint"] = hint
        if self._finalised:  # already ended by its task: show the hint too
            self._render_all()
            if self._closed:
                self._publish_snapshot()
            return
        self._finish()

    def show_tab(self, title: str) -> None:
        """Open the tab called ``title`` (Timing, Headers, Chunks, Events, Body,
        Checks, Copy as)."""
        self.tab_bar.value = title

    def scrub_also(self, secrets) -> None:
        """Mask ``secrets`` (a ``Secrets``) too, in the widgets and the snapshot."""
        self.state.secrets.update(secrets)
        self._render_all()
        if self._closed:
            self._publish_snapshot()

    def attach_checks(self, checks) -> None:
        """The ``??`` results (``AssertionResult``) of this request: the Checks
        tab and the status line show them; a failed one opens the tab."""
        self.state.checks = list(checks)
        if self.state.assertions is None:
            self.state.assertions = [c.assertion for c in self.state.checks]
        if CHECKS not in self._panes:  # a view built without its assertions
            self._panes[CHECKS] = self.checks_html
            if not self._closed:
                self.tab_bar.options = (*TABS[:-1], CHECKS, TABS[-1])
        if not self._closed and any(not c.passed for c in self.state.checks):
            self.tab_bar.value = CHECKS
        self._render_all()
        if self._closed:
            self._publish_snapshot()

    def attach_response(self, response) -> None:
        """Show the body preview once the fetch returned its Response."""
        self.state.response = response
        if not self.state.request_headers:  # before the headers_sent event carried them
            self.state.request_headers = list(response.request.headers.items())
        self.state.secrets.add_hops(response)  # URLs, headers, secret body fields
        snapshot.add_body_secrets(self.state.secrets, response)  # {"access_token": ...}
        if self.state.outcome is None:
            self.state.outcome = "done"
        self._render_all()
        if self._closed:
            self._publish_snapshot()

    def _task_done(self, task: asyncio.Future) -> None:
        if task.cancelled():
            self.fail(asyncio.CancelledError())
            return
        exc = task.exception()
        if exc is not None:
            self.fail(exc)
            return
        result = task.result()
        if self.state.response is None and hasattr(result, "status_code"):
            self.attach_response(result)
        self._finish()

    # -- display (D1) --------------------------------------------------------------------
    def _ipython_display_(self) -> None:
        from IPython.display import display

        if self.embedded:
            display(self._repr_mimebundle_(), raw=True)
            return
        if self._display_id is None:
            self._display_id = uuid.uuid4().hex
        if self._finalised and not self._closed:
            # Shown only after it finished: the snapshot straight away.
            self._closed = True
            self.close()
        bundle = self.snapshot_bundle() if self._closed else self._repr_mimebundle_()
        display(bundle, raw=True, display_id=self._display_id)

    def snapshot_bundle(self) -> dict[str, str]:
        """The static text/html + text/plain of the view as it is now."""
        return {
            "text/html": snapshot.snapshot_html(self.state),
            "text/plain": snapshot.snapshot_text(self.state),
        }

    def _finish(self) -> None:
        """The final state: written to the widgets, then (a displayed, top-level
        view) every output of the view replaced by the static snapshot and the
        widget models closed."""
        if self._finalised:
            return
        self._finalised = True
        self._throttle.now()
        self.cancel_button.disabled = True
        self._stream = None  # the controls act on nothing more
        if self.pause_button is not None:
            self.pause_button.disabled = self.rate_control.disabled = True
        self._top.children = (self.status_html,)  # no Cancel button at the end
        if self._display_id is not None and not self.embedded:
            self._publish_snapshot()
            self._closed = True
            self.close()

    def _publish_snapshot(self) -> None:
        from IPython.display import update_display

        update_display(self.snapshot_bundle(), raw=True, display_id=self._display_id)

    # -- rendering ---------------------------------------------------------------------
    def _render_all(self) -> None:
        # Each renderer scrubs text before it escapes it. The panes of hidden
        # tabs are only marked: they render when their tab is opened.
        for pane in (self.error_html, self.progress_html, self.checks_html, *self._panes.values()):
            pane.dirty = True
        if self._closed:
            return
        if self.pause_button is not None:
            paused = self.state.paused
            self.pause_button.description = "Resume" if paused else "Pause"
            self.pause_button.icon = "play" if paused else "pause"
        self.status_html.value = (
            snapshot.status_html(self.state)
            + self.progress_html.value
            + self.error_html.value
            + snapshot.checks_line(self.state)
        )
        self._show_content()

    def _show_content(self) -> None:
        if not self._closed:
            self.content.value = self._panes[self.tab_bar.value].value


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

    def _ipython_display_(self) -> None:
        """Shown as its view (the same display_id: the snapshot replaces it at the end)."""
        if self.view is not None:
            self.view._ipython_display_()
            return
        from IPython.display import display

        display({"text/plain": repr(self)}, raw=True)


def show_events(response) -> widgets.HTML:
    """Every event of a finished fetch, in order, with its offset and details."""
    rows = "".join(
        f"<tr><td>{e.offset * 1000:9.3f}</td><td>{esc(e.name)}</td>"
        f"<td>{esc(e.describe(skip=('headers', 'trailers')))}</td></tr>"
        for e in response.events
    )
    return widgets.HTML(
        '<table style="font-family:monospace;font-size:12px;text-align:left">'
        f"<tr><th>ms</th><th>event</th><th>details</th></tr>{rows}</table>"
    )
