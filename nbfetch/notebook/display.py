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

from ..core.redact import redact_header, redact_url
from ..text.render import looks_textual, status_line, timing_waterfall

#: Body bytes shown at most in a notebook output.
MAX_PREVIEW = 20_000
MAX_IMAGE = 1_000_000
IMAGE_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp", "image/svg+xml")

PHASE_COLOURS = {
    "redirect": "#b0b0b0",
    "queue": "#c8c8c8",
    "dns": "#2a9d8f",
    "connect": "#e9a03b",
    "tls": "#9b5de5",
    "send": "#4d908e",
    "wait": "#43aa8b",
    "download": "#277da1",
}


def esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def status_colour(code: int) -> str:
    if code < 300:
        return "#2e7d32"
    if code < 400:
        return "#1565c0"
    if code < 500:
        return "#e65100"
    return "#c62828"


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


def timing_bar_html(timing, width_px: int = 420) -> str:
    total = timing.total or 0
    if total <= 0:
        return ""
    segments = []
    for name, value in timing.phases().items():
        if not value:
            continue
        pct = max(value / total * 100, 0.5)
        segments.append(
            f'<span title="{name}: {value * 1000:.2f} ms" style="display:inline-block;'
            f'height:10px;width:{pct:.2f}%;background:{PHASE_COLOURS[name]}"></span>'
        )
    legend = " ".join(
        f'<span style="color:{PHASE_COLOURS[n]}">■</span> {n} {v * 1000:.1f} ms'
        for n, v in timing.phases().items()
        if v is not None
    )
    return (
        f'<div style="width:{width_px}px;background:#eee;line-height:0;white-space:nowrap">'
        f"{''.join(segments)}</div>"
        f'<div style="font-size:11px;color:#555">{legend} — total {total * 1000:.1f} ms</div>'
    )


def headers_table(headers) -> str:
    # Only URL userinfo is redacted: the view shows what the server sent.
    rows = "".join(
        f'<tr><td style="text-align:left;font-weight:600;padding-right:1em">{esc(n)}</td>'
        f'<td style="text-align:left">{esc(redact_header(n, v, hidden=frozenset()))}</td></tr>'
        for n, v in headers.items()
    )
    return f'<table style="font-family:monospace;font-size:12px">{rows}</table>'


def response_html(response) -> str:
    r = response
    parts = ['<div class="nbfetch-response" style="font-family:sans-serif;font-size:13px">']
    for earlier in r.history:
        parts.append(
            f'<div style="color:#666">{esc(earlier.request.method)} {esc(earlier.url)} → '
            f"{earlier.status_code} {esc(earlier.reason)} → {esc(redact_url(earlier.headers.get('location', '')))}</div>"
        )
    parts.append(
        f'<div><b style="color:{status_colour(r.status_code)}">{r.status_code} {esc(r.reason)}</b> '
        f"<code>{esc(r.request.method)} {esc(r.url)}</code> "
        f'<span style="color:#666">{esc(r.http_version)} · {r.decoded_bytes:,} bytes'
        f"{f' ({r.wire_bytes:,} on the wire)' if r.wire_bytes != r.decoded_bytes else ''}</span></div>"
    )
    parts.append(timing_bar_html(r.timing))
    parts.append(
        f"<details><summary>Headers ({len(r.headers)})</summary>{headers_table(r.headers)}</details>"
    )
    if len(r.trailers):
        parts.append(
            f"<details><summary>Trailers ({len(r.trailers)})</summary>{headers_table(r.trailers)}</details>"
        )
    kind, text = body_preview(r)
    if kind == "image":
        parts.append(f'<img src="{esc(text)}" style="max-width:400px;max-height:300px">')
    else:
        parts.append(
            f'<pre style="max-height:300px;overflow:auto;font-size:12px">{esc(text)}</pre>'
        )
    parts.append("</div>")
    return "".join(parts)


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
    return {"text/plain": response_text(response), "text/html": response_html(response)}


def register(ip) -> None:
    """Show every ``Response`` richly in the IPython ``ip``. The notebook layer
    registers this with IPython's formatter (``import nbfetch`` inside a kernel,
    and ``%load_ext nbfetch``), so the client layer never imports this module."""
    from ..client.response import Response

    ip.display_formatter.mimebundle_formatter.for_type(Response, response_mimebundle)
