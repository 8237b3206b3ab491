"""Rich display of a Response: ``text/plain`` and ``text/html``.

Everything the server sent (reason phrase, header names and values, body, URLs
from Location headers) is untrusted and goes through ``html.escape``; userinfo in
a URL (a Location too) is shown as ``***@`` (``core.redact``); images are
only ever shown through ``<img src="data:...">`` (an SVG there cannot run
script); bodies are truncated so a notebook never stores megabytes of output.
"""

from __future__ import annotations

import base64
import html
import json

from ..core.redact import SENSITIVE_HEADERS, redact_header, redact_url
from ..text.render import looks_textual, status_line, timing_waterfall
from .theme import status_colour  # noqa: F401 (the views' import of it from here)

#: Body bytes shown at most in a notebook output.
MAX_PREVIEW = 20_000
MAX_IMAGE = 1_000_000
IMAGE_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp", "image/svg+xml")


def esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def hexdump(data: bytes, limit: int = 256) -> str:
    lines = []
    for offset in range(0, min(len(data), limit), 16):
        row = data[offset : offset + 16]
        hexpart = " ".join(f"{b:02x}" for b in row)
        text = "".join(chr(b) if 32 <= b < 127 else "." for b in row)
        lines.append(f"{offset:08x}  {hexpart:<47}  {text}")
    if len(data) > limit:
        lines.append(f"… {len(data):,} bytes in all")
    return "\n".join(lines)


def body_preview(response) -> tuple[str, str]:
    """(kind, text) for the body: kind is json, text, image, binary or empty."""
    if response.path is not None:
        return ("empty", f"(saved {response.decoded_bytes:,} bytes to {response.path})")
    try:
        body = response.body
    except Exception:
        return ("empty", "(the body has not been read)")
    if not body:
        return ("empty", "(empty body)")
    ctype = (response.headers.get("content-type") or "").split(";")[0].strip().lower()
    if ctype in IMAGE_TYPES and len(body) <= MAX_IMAGE:
        return ("image", f"data:{ctype};base64,{base64.b64encode(body).decode('ascii')}")
    if "json" in ctype:
        try:
            text = json.dumps(response.json(), indent=2, ensure_ascii=False)
            return ("json", _truncate(text, len(body)))
        except ValueError:
            pass
    if ctype.startswith("text/") or "xml" in ctype or "json" in ctype or looks_textual(body):
        return ("text", _truncate(response.text, len(body)))
    return ("binary", hexdump(body))


def _truncate(text: str, size: int) -> str:
    if len(text) <= MAX_PREVIEW:
        return text
    return text[:MAX_PREVIEW] + f"\n… truncated: {size:,} bytes in all"


def headers_table(headers, *, show_secrets: bool = False) -> str:
    """A table of header fields, credentials masked (``redact_header``) unless
    ``show_secrets``."""
    hidden = frozenset() if show_secrets else SENSITIVE_HEADERS
    rows = "".join(
        f'<tr><td style="text-align:left;font-weight:600;padding-right:1em">{esc(n)}</td>'
        f'<td style="text-align:left">{esc(redact_header(n, v, hidden=hidden))}</td></tr>'
        for n, v in headers.items()
    )
    return f'<table style="font-family:monospace;font-size:12px">{rows}</table>'


def response_html(response) -> str:
    """The Response's rich HTML: the same renderer as a finished view's snapshot."""
    from .snapshot import FetchState, snapshot_html

    return snapshot_html(FetchState.of_response(response))


def response_text(response) -> str:
    kind, text = body_preview(response)
    if kind == "image":
        text = f"[{len(response.body):,} bytes of {response.headers.get('content-type')}]"
    lines = [
        f"  {status_line(e)} → {redact_url(e.headers.get('location', ''))}"
        for e in response.history
    ]
    lines.append(f"<Response [{status_line(response)}] {response.url}>")
    lines.append(text if len(text) < 2000 else text[:2000] + "\n…")
    lines.append(timing_waterfall(response.timing))
    return "\n".join(lines)


def response_mimebundle(response) -> dict[str, str]:
    """text/plain and text/html, credentials masked and scrubbed (a server that
    echoes the request cannot put them into a saved output)."""
    from .snapshot import FetchState, snapshot_html

    state = FetchState.of_response(response)
    return {"text/plain": state.scrub(response_text(response)), "text/html": snapshot_html(state)}


def register(ip) -> None:
    """Show every ``Response`` richly in the IPython ``ip``. The notebook layer
    registers this with IPython's formatter (``import nbfetch`` inside a kernel,
    and ``%load_ext nbfetch``), so the client layer never imports this module."""
    from ..client.response import Response

    ip.display_formatter.mimebundle_formatter.for_type(Response, response_mimebundle)
