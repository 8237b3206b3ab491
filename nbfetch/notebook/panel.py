"""``FetchPanel``: an interactive request builder in a notebook cell.

    panel = nbfetch.FetchPanel(url="http://127.0.0.1:8000/get")
    panel                      # URL, method, headers, body, options, Send, Cancel,
                               # history, a "paste cURL" box, and the request as
                               # curl, as an .http block and as Python

Each Send (the button, or Enter in the URL box) runs on the kernel's loop with
its own live ``ResponseView``; the history keeps the views and the form, so
selecting an earlier fetch shows it again and refills the form and "Copy as".
The request's headers as sent are shown under the view.

Credentials (``core.redact``: Authorization, Cookie, userinfo, secret-named
query values) are masked in the history, the "Copy as" texts, the Copy buttons
and the views, unless the panel is built with ``show_secrets=True``.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from urllib.parse import urlencode

import ipywidgets as widgets

from ..core.errors import FetchError, InvalidRequest
from ..core.redact import Secrets, redact_header, redact_pairs, redact_url
from ..text import code
from ..text.curl import parse_curl
from ..text.options import FetchOptions, parse_header
from .live import ResponseView
from .snapshot import COPY_BUTTON, esc
from .theme import ERROR, FG_DIM, MONO

METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
MAX_HISTORY = 50
#: The form fields a history entry restores.
#: The form's request timeout in seconds, also when a pasted curl has no --max-time.
DEFAULT_TIMEOUT = 30.0
FORM = ("method", "url", "headers", "body_kind", "body", "follow", "decompress", "timeout")
#: The "Copy as" buttons: (label, text maker, its library argument).
COPIES = (
    ("Copy curl", "to_curl", None),
    ("Copy .http", "to_http", None),
    ("Copy Python", "to_python", "nbfetch"),
    ("Copy httpx", "to_python", "httpx"),
    ("Copy requests", "to_python", "requests"),
)
#: What a pasted curl command can set that the form has no field for.
NO_FIELD = {"files": "-F file uploads", "proxy": "-x", "cookies": "cookie jar settings"}


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


class FetchPanel(widgets.VBox):
    def __init__(
        self, url: str = "", method: str = "GET", client=None, *, show_secrets: bool = False
    ):
        self.client = client
        self.show_secrets = show_secrets
        # Widgets of a kind share one Layout and one Style where they look alike:
        # every model is a comm a front end opens (65 models before, 40 now).
        from ipywidgets.widgets import widget_bool, widget_description, widget_string

        plain, wide = widgets.Layout(), widgets.Layout(width="600px")
        described = widget_description.DescriptionStyle()
        text = widget_string.TextStyle()
        html = {"layout": plain, "style": widget_string.HTMLStyle()}
        label = {"layout": plain, "style": widget_string.LabelStyle()}
        button = {"layout": plain, "style": widgets.ButtonStyle()}
        check = {"layout": plain, "style": widget_bool.CheckboxStyle()}
        self.method = widgets.Dropdown(
            options=METHODS, value=method, layout={"width": "110px"}, style=described
        )
        self.url = widgets.Text(
            value=url,
            placeholder="http://127.0.0.1:8000/get",
            layout={"width": "460px"},
            style=text,
        )
        self.send_button = widgets.Button(
            description="Send", button_style="primary", icon="paper-plane", **button
        )
        self.cancel_button = widgets.Button(
            description="Cancel", icon="stop", disabled=True, **button
        )
        self.headers = widgets.Textarea(
            placeholder="Name: value (one per line)", layout=wide, style=text
        )
        self.body_kind = widgets.ToggleButtons(
            options=["none", "raw", "JSON", "form"], value="none", layout=plain
        )
        self.body = widgets.Textarea(
            placeholder='raw text, {"json": true}, or a=1&b=2', layout=wide, style=text
        )
        self.follow = widgets.Checkbox(value=True, description="follow redirects", **check)
        self.decompress = widgets.Checkbox(value=True, description="decompress", **check)
        self.timeout = widgets.FloatText(
            value=DEFAULT_TIMEOUT,
            description="timeout (s)",
            layout={"width": "200px"},
            style=described,
        )
        self.error = widgets.HTML(**html)
        short = widgets.Layout(width="600px", height="60px")
        tall = widgets.Layout(width="600px", height="80px")
        self.as_curl = widgets.Textarea(layout=short, style=text)
        self.as_http = widgets.Textarea(layout=tall, style=text)
        self.as_python = widgets.Textarea(layout=tall, style=text)
        self.paste = widgets.Textarea(
            placeholder="curl -X POST https://... -H 'Name: value' --data-raw '...'",
            layout=short,
            style=text,
        )
        self.paste_button = widgets.Button(
            description="Fill from cURL", icon="paste", tooltip="fill the form", **button
        )
        self.copy_buttons = widgets.HTML(**html)
        self.history = widgets.Select(options=[], rows=4, layout=wide, style=described)
        self.current = widgets.Box(layout=plain)
        self.sent = widgets.HTML(**html)
        self._views: list[ResponseView] = []
        self._forms: list[dict] = []
        self._sent: list[str] = []
        self._task: asyncio.Future | None = None

        request_tabs = widgets.Tab(
            children=[
                self.headers,
                widgets.VBox([self.body_kind, self.body], layout=plain),
                widgets.HBox([self.follow, self.decompress, self.timeout], layout=plain),
                widgets.VBox(
                    [
                        widgets.Label("curl", **label),
                        self.as_curl,
                        widgets.Label(".http", **label),
                        self.as_http,
                        widgets.Label("Python", **label),
                        self.as_python,
                        self.copy_buttons,
                    ],
                    layout=plain,
                ),
                widgets.VBox([self.paste, self.paste_button], layout=plain),
            ],
            titles=["Headers", "Body", "Options", "Copy as", "Paste cURL"],
            layout=plain,
        )
        top = [self.method, self.url, self.send_button, self.cancel_button]
        super().__init__(
            [
                widgets.HBox(top, layout=plain),
                request_tabs,
                self.error,
                self.current,
                self.sent,
                widgets.Label("History", **label),
                self.history,
            ],
            layout=plain,
        )
        self.send_button.on_click(lambda _b: self.send())
        self.cancel_button.on_click(lambda _b: self.cancel())
        self.paste_button.on_click(lambda _b: self.fill_from_curl(self.paste.value))
        # Enter in the URL box: ipywidgets 8's TextView sends {"event": "submit"}
        # (on_submit would do the same, with a deprecation warning).
        self.url.on_msg(self._on_url_msg)
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

    def _secrets(self) -> Secrets:
        """The credentials the current inputs carry (URL userinfo, secret query
        values, Authorization/Cookie header values)."""
        secrets = Secrets()
        secrets.add_url(self.url.value)
        lines = [line.partition(":") for line in self.headers.value.splitlines()]
        secrets.add_headers((n.strip(), v.strip()) for n, sep, v in lines if sep)
        return secrets

    def _mask(self, text: str, secrets: Secrets | None = None) -> str:
        if self.show_secrets:
            return text
        return (secrets or self._secrets()).scrub(text)

    def _redacted_url(self) -> str:
        return self.url.value if self.show_secrets else redact_url(self.url.value)

    def fetch_options(self) -> FetchOptions:
        """The request the form describes, as ``FetchOptions`` (for "Copy as")."""
        return FetchOptions(
            url=self.url.value, method=self.method.value, fetch_kwargs=self.request_options()
        )

    def _copy(self, maker: str, library: str | None = None) -> str:
        """The request written by ``nbfetch.text.code.<maker>``, masked unless
        ``show_secrets`` (the maker masks credentials, the panel's secrets the rest)."""
        try:
            options = self.fetch_options()
        except (InvalidRequest, ValueError) as exc:
            return f"# {exc}"
        args = (options, library) if library else (options,)
        return self._mask(getattr(code, maker)(*args, show_secrets=self.show_secrets))

    def curl_command(self) -> str:
        """The request as a curl command line."""
        return self._copy("to_curl")

    def http_block(self) -> str:
        """The request as a ``.http`` block (VS Code REST Client, JetBrains, httpyac)."""
        return self._copy("to_http")

    def python_code(self, library: str = "nbfetch") -> str:
        """The request as Python code for ``library``: nbfetch, httpx or requests."""
        return self._copy("to_python", library)

    def _update_copies(self) -> None:
        self.as_curl.value = self.curl_command()
        self.as_http.value = self.http_block()
        self.as_python.value = self.python_code()
        shown = {"to_curl": self.as_curl.value, "to_http": self.as_http.value}
        shown["nbfetch"] = self.as_python.value
        self.copy_buttons.value = " ".join(
            COPY_BUTTON.format(
                text=esc(shown.get(library or maker) or self._copy(maker, library)), label=label
            )
            for label, maker, library in COPIES
        )

    # -- a pasted curl command ---------------------------------------------------------------
    def fill_from_curl(self, command: str) -> bool:
        """Fill the form from a curl command line (what "Fill from cURL" does).
        A command the form cannot hold is a one-line error under the form, and
        the form is left as it was; True when it was filled."""
        self.error.value = ""
        try:
            form = self._form_from_curl(parse_curl(command))
        except (InvalidRequest, ValueError) as exc:
            # The message may quote the command: credentials in it are masked.
            message = redact_pairs(redact_url(getattr(exc, "message", None) or str(exc)))
            self.error.value = f'<span style="color:{ERROR}">cURL: {esc(message)}</span>'
            return False
        for name, value in form.items():
            getattr(self, name).value = value
        return True

    @staticmethod
    def _form_from_curl(opts: FetchOptions) -> dict:
        """The form fields (``FORM`` names) for ``opts``; ValueError naming what
        the form has no field for."""
        kwargs = dict(opts.fetch_kwargs)
        unsupported = [NO_FIELD.get(k, k) for k in kwargs if k in NO_FIELD]
        if opts.client_kwargs:
            unsupported.append("client options (-k, ...)")
        if opts.method not in METHODS:
            unsupported.append(f"the method {opts.method}")
        if unsupported:
            raise ValueError(
                f"the panel has no field for {', '.join(unsupported)}: run it with %fetch curl ..."
            )
        headers = list(kwargs.pop("headers", None) or ())
        auth = kwargs.pop("auth", None)
        if auth is not None:  # -u user:password: the header curl would send (RFC 7617)
            token = base64.b64encode(":".join(auth).encode("utf-8")).decode("ascii")
            headers.append(("Authorization", f"Basic {token}"))
        form = {
            "method": opts.method,
            "url": opts.url,
            "headers": "\n".join(f"{n}: {v}" for n, v in headers),
            "body_kind": "none",
            "body": "",
            "follow": bool(kwargs.get("follow_redirects", True)),
            "decompress": bool(kwargs.get("decompress", True)),
            # No --max-time: the panel's own default, not 0 (no timeout at all).
            "timeout": float(kwargs.get("request_timeout") or DEFAULT_TIMEOUT),
        }
        if "json" in kwargs:
            form["body_kind"], form["body"] = "JSON", json.dumps(kwargs["json"])
        elif kwargs.get("data") is not None:
            data = kwargs["data"]
            pairs = data.items() if isinstance(data, dict) else data
            form["body_kind"], form["body"] = "form", urlencode(list(pairs))
        elif kwargs.get("body") is not None:
            body = kwargs["body"]
            text = body.decode("utf-8") if isinstance(body, bytes) else str(body)
            form["body_kind"], form["body"] = "raw", text
            json_type = [h for h in headers if h[0].lower() == "content-type" and "json" in h[1]]
            if json_type and _is_json(text):  # curl --json: the form's JSON body
                form["body_kind"] = "JSON"
                kept = [h for h in headers if h not in json_type]
                form["headers"] = "\n".join(f"{n}: {v}" for n, v in kept)
        return form

    def _on_url_msg(self, _widget, content, _buffers) -> None:
        if content.get("event") == "submit" and not self.send_button.disabled:
            self.send()

    def _form(self) -> dict:
        return {name: getattr(self, name).value for name in FORM}

    def _new_view(self) -> ResponseView:
        """A view for the panel's output: embedded (it stays a live widget inside
        the panel) and masked as the panel is."""
        return ResponseView(
            self.method.value, self.url.value, embedded=True, show_secrets=self.show_secrets
        )

    def _sent_html(self, headers, secrets: Secrets) -> str:
        def text(value: str) -> str:  # scrubbed, then escaped: never the other way round
            return esc(self._mask(value, secrets))

        rows = "".join(
            f'<tr><td style="font-weight:600;padding-right:1em;text-align:left">{text(n)}</td>'
            f'<td style="text-align:left">'
            f"{text(v if self.show_secrets else redact_header(n, v))}</td></tr>"
            for n, v in headers
        )
        return (
            f'<details><summary style="color:{FG_DIM}">Request headers as sent '
            f'({len(headers)})</summary><table style="font-family:{MONO};font-size:12px">'
            f"{rows}</table></details>"
        )

    # -- running ------------------------------------------------------------------------------
    def send(self) -> asyncio.Future | None:
        """Start the fetch the inputs describe (what the Send button does)."""
        from ..client.api import default_client

        self.error.value = ""
        try:
            options = self.request_options()
            client = self.client or default_client()
        except (InvalidRequest, ValueError) as exc:
            self.error.value = f'<span style="color:{ERROR}">{esc(exc)}</span>'
            return None
        view = self._new_view()
        self._views.append(view)
        self._forms.append(self._form())
        self._sent.append("")
        for old in self._views[:-MAX_HISTORY]:
            old.close()  # out of the history: its widget models go too
        del self._views[:-MAX_HISTORY], self._forms[:-MAX_HISTORY], self._sent[:-MAX_HISTORY]
        self.current.children = [view]
        self.sent.value = ""
        label = self._mask(
            f"{time.strftime('%H:%M:%S')}  {self.method.value} {self._redacted_url()}"
        )
        entry = len(self._views) - 1
        url, method, secrets = self.url.value, self.method.value, self._secrets()

        def show_sent(headers) -> None:
            html = self._sent_html(list(headers), secrets)
            if view in self._views:  # not yet dropped from the history
                self._sent[self._views.index(view)] = html
            if self.current.children and self.current.children[0] is view:
                self.sent.value = html

        def trace(event) -> None:
            view.trace(event)
            headers = event.details.get("headers") if event.name == "request.headers_sent" else None
            if headers is not None:
                show_sent(headers.items())

        async def go():
            try:
                response = await client.fetch(url, method, trace=trace, **options)
                view.attach_response(response)
                show_sent(response.request.headers.items())
                self._relabel(entry, f"{label}  → {response.status_code}")
                return response
            except FetchError as exc:
                # Refused before anything was sent (no event reached the view)
                # or failed later: the view ends in its error state either way.
                view.fail(exc)
                self.error.value = f'<span style="color:{ERROR}">{esc(self._mask(str(exc)))}</span>'
                self._relabel(entry, f"{label}  → {type(exc).__name__}")
                return exc
            finally:
                self.cancel_button.disabled = True
                self.send_button.disabled = False

        self._task = asyncio.ensure_future(go())
        view.bind(self._task)
        self.history.unobserve(self._show_history, names="value")
        self.history.options = [*self.history.options[-(MAX_HISTORY - 1) :], label]
        self.history.observe(self._show_history, names="value")
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
        """Selecting a history entry shows its view and sent headers, and
        refills the form (and so the "Copy as" texts) with its request."""
        options = list(self.history.options)
        if change["new"] in options:
            index = options.index(change["new"]) - (len(options) - len(self._views))
            if 0 <= index < len(self._views):
                self.current.children = [self._views[index]]
                self.sent.value = self._sent[index]
                for name, value in self._forms[index].items():
                    getattr(self, name).value = value
