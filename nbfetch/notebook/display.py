"""Rich display of a Response: ``text/plain`` and ``text/html``.

Everything the server sent (reason phrase, header names and values, body, URLs
from Location headers) is untrusted and goes through ``html.escape``; userinfo in
a URL (a Location too) is shown as ``***@`` (``core.redact``); images are
only ever shown through ``<img src="data:...">`` (an SVG there cannot run
script); bodies are truncated so a notebook never stores megabytes of output.
"""

from __future__ import annotations

from ..core.redact import redact_url
from ..text.render import status_line, timing_waterfall
from .snapshot import FetchState, body_preview, snapshot_html


def response_html(response) -> str:
    """The Response's rich HTML: the same renderer as a finished view's snapshot."""
    return snapshot_html(FetchState.of_response(response))


def response_text(response, secrets=None) -> str:
    """The Response's ``text/plain``; scrubbed of ``secrets`` (a ``Secrets``)."""
    kind, text = body_preview(response, secrets)
    if kind == "image":
        text = f"[{len(response.body):,} bytes of {response.headers.get('content-type')}]"
    lines = [
        f"  {status_line(e)} → {redact_url(e.headers.get('location', ''))}"
        for e in response.history
    ]
    lines.append(f"<Response [{status_line(response)}] {redact_url(response.url)}>")
    lines.append(text if len(text) < 2000 else text[:2000] + "\n…")
    lines.append(timing_waterfall(response.timing))
    text = "\n".join(lines)
    return text if secrets is None else secrets.scrub(text)


def response_mimebundle(response) -> dict[str, str]:
    """text/plain and text/html, credentials masked and scrubbed (a server that
    echoes the request cannot put them into a saved output)."""
    state = FetchState.of_response(response)
    return {"text/plain": response_text(response, state.secrets), "text/html": snapshot_html(state)}


def register(ip) -> None:
    """Show every ``Response`` richly in the IPython ``ip``. The notebook layer
    registers this with IPython's formatter (``import nbfetch`` inside a kernel,
    and ``%load_ext nbfetch``), so the client layer never imports this module."""
    from ..client.response import Response

    ip.display_formatter.mimebundle_formatter.for_type(Response, response_mimebundle)
    # client.inspect()'s snapshot shows as the live view of its client; the
    # widget module loads when one is first shown.
    ip.display_formatter.ipython_display_formatter.for_type_by_name(
        "nbfetch.client.inspect", "Inspection", _show_inspection
    )


def _show_inspection(snap) -> None:
    from .inspect_view import show

    show(snap)
