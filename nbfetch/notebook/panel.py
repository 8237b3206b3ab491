"""``FetchPanel``: an interactive request builder in a notebook cell.

    panel = nbfetch.FetchPanel(url="http://127.0.0.1:8000/get")
    panel                      # URL, method, headers, body, options, Send, Cancel,
                               # history, and the request as curl and as Python

Each Send runs on the kernel's loop with its own live ``ResponseView``; the
history keeps the views, so selecting an earlier fetch shows it again.
"""

from __future__ import annotations

import asyncio
import json
import shlex
import time

import ipywidgets as widgets

from ..core.errors import FetchError, InvalidRequest
from ..core.redact import redact_url
from ..text.options import parse_header
from .display import esc
from .live import ResponseView

METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
MAX_HISTORY = 50


class FetchPanel(widgets.VBox):
    def __init__(self, url: str = "", method: str = "GET", client=None):
        self.client = client
        self.method = widgets.Dropdown(options=METHODS, value=method, layout={"width": "110px"})
        self.url = widgets.Text(
            value=url, placeholder="http://127.0.0.1:8000/get", layout={"width": "460px"}
        )
        self.send_button = widgets.Button(
            description="Send", button_style="primary", icon="paper-plane"
        )
        self.cancel_button = widgets.Button(description="Cancel", icon="stop", disabled=True)
        self.headers = widgets.Textarea(
            placeholder="Name: value (one per line)", layout={"width": "600px"}
        )
        self.body_kind = widgets.ToggleButtons(
            options=["none", "raw", "JSON", "form"], value="none"
        )
        self.body = widgets.Textarea(
            placeholder='raw text, {"json": true}, or a=1&b=2', layout={"width": "600px"}
        )
        self.follow = widgets.Checkbox(value=True, description="follow redirects")
        self.decompress = widgets.Checkbox(value=True, description="decompress")
        self.timeout = widgets.FloatText(
            value=30.0, description="timeout (s)", layout={"width": "200px"}
        )
        self.error = widgets.HTML()
        self.as_curl = widgets.Textarea(layout={"width": "600px", "height": "60px"})
        self.as_python = widgets.Textarea(layout={"width": "600px", "height": "80px"})
        self.history = widgets.Select(options=[], rows=4, layout={"width": "600px"})
        self.current = widgets.Box()
        self._views: list[ResponseView] = []
        self._task: asyncio.Future | None = None

        request_tabs = widgets.Tab(
            children=[
                self.headers,
                widgets.VBox([self.body_kind, self.body]),
                widgets.HBox([self.follow, self.decompress, self.timeout]),
                widgets.VBox(
                    [widgets.Label("curl"), self.as_curl, widgets.Label("Python"), self.as_python]
                ),
            ],
            titles=["Headers", "Body", "Options", "Copy as"],
        )
        super().__init__(
            [
                widgets.HBox([self.method, self.url, self.send_button, self.cancel_button]),
                request_tabs,
                self.error,
                self.current,
                widgets.Label("History"),
                self.history,
            ]
        )
        self.send_button.on_click(lambda _b: self.send())
        self.cancel_button.on_click(lambda _b: self.cancel())
        self.history.observe(self._show_history, names="value")
        for w in (
            self.method,
            self.url,
            self.headers,
            self.body_kind,
            self.body,
            self.follow,
            self.decompress,
            self.timeout,
        ):
            w.observe(lambda _change: self._update_copies(), names="value")
        self._update_copies()

    # -- the request the widgets describe -------------------------------------------------
    def request_options(self) -> dict:
        """fetch() keyword arguments for the current inputs; InvalidRequest if wrong."""
        options: dict = {
            "follow_redirects": self.follow.value,
            "decompress": self.decompress.value,
        }
        if self.timeout.value and self.timeout.value > 0:
            options["request_timeout"] = float(self.timeout.value)
        headers = [parse_header(line) for line in self.headers.value.splitlines() if line.strip()]
        if headers:
            options["headers"] = headers
        kind, text = self.body_kind.value, self.body.value
        if kind == "raw":
            options["body"] = text.encode("utf-8")
            if self.method.value in ("GET", "HEAD"):
                options["allow_body"] = True
        elif kind == "JSON":
            try:
                options["json"] = json.loads(text or "null")
            except ValueError as exc:
                raise InvalidRequest(f"the body is not valid JSON: {exc}") from None
        elif kind == "form":
            from urllib.parse import parse_qsl

            options["data"] = dict(parse_qsl(text, keep_blank_values=True))
        return options

    def curl_command(self) -> str:
        parts = ["curl", "-X", self.method.value]
        if self.follow.value:
            parts.append("-L")
        if self.decompress.value:
            parts.append("--compressed")
        for line in self.headers.value.splitlines():
            if line.strip():
                parts += ["-H", line.strip()]
        kind, text = self.body_kind.value, self.body.value
        if kind == "JSON":
            parts += ["-H", "Content-Type: application/json"]
        if kind != "none":
            parts += ["--data-raw", text]
        parts.append(self.url.value)
        return " ".join(shlex.quote(p) for p in parts)

    def python_code(self) -> str:
        try:
            options = self.request_options()
        except (InvalidRequest, ValueError) as exc:
            return f"# {exc}"
        args = [repr(self.url.value)]
        if self.method.value != "GET":
            args.append(f"method={self.method.value!r}")
        args += [f"{k}={v!r}" for k, v in options.items()]
        return "import nbfetch\n\nr = await nbfetch.fetch(" + ", ".join(args) + ")"

    def _update_copies(self) -> None:
        self.as_curl.value = self.curl_command()
        self.as_python.value = self.python_code()

    # -- running ------------------------------------------------------------------------------
    def send(self) -> asyncio.Future | None:
        """Start the fetch the inputs describe (what the Send button does)."""
        from ..client.api import default_client

        self.error.value = ""
        try:
            options = self.request_options()
            client = self.client or default_client()
        except (InvalidRequest, ValueError) as exc:
            self.error.value = f'<span style="color:#c62828">{esc(exc)}</span>'
            return None
        view = ResponseView(self.method.value, self.url.value)
        self._views.append(view)
        del self._views[:-MAX_HISTORY]
        self.current.children = [view]
        label = f"{time.strftime('%H:%M:%S')}  {self.method.value} {redact_url(self.url.value)}"
        index = len(self._views) - 1

        async def go():
            try:
                response = await client.fetch(
                    self.url.value, self.method.value, trace=view.trace, **options
                )
                view.attach_response(response)
                self._relabel(index, f"{label}  → {response.status_code}")
                return response
            except FetchError as exc:
                self._relabel(index, f"{label}  → {type(exc).__name__}")
                return exc
            finally:
                self.cancel_button.disabled = True
                self.send_button.disabled = False

        self._task = asyncio.ensure_future(go())
        view.bind(self._task)
        self.history.options = [*self.history.options[-(MAX_HISTORY - 1) :], label]
        self.cancel_button.disabled = False
        return self._task

    def _relabel(self, index: int, text: str) -> None:
        options = list(self.history.options)
        offset = len(options) - len(self._views)
        if 0 <= index + offset < len(options):
            options[index + offset] = text
            self.history.unobserve(self._show_history, names="value")
            self.history.options = options
            self.history.observe(self._show_history, names="value")

    def cancel(self) -> None:
        if self._task is not None and self._views:
            self._views[-1].cancel()

    def _show_history(self, change) -> None:
        options = list(self.history.options)
        if change["new"] in options:
            index = options.index(change["new"]) - (len(options) - len(self._views))
            if 0 <= index < len(self._views):
                self.current.children = [self._views[index]]
