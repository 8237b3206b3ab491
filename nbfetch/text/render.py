"""A response as plain text: the terminal's output and ``text/plain`` in a
notebook (status line, headers, body, an httpstat-style timing waterfall).

A notebook saves this text, so credentials are masked unless
``--show-secrets``: header values as ``core.redact`` hides them (``-i`` shows
``Set-Cookie: ***`` where curl -i shows the cookie), and the values the
request sent are scrubbed from the body too (a server that echoes them)."""

from __future__ import annotations

import json as jsonlib

from ..core.redact import SENSITIVE_HEADERS, Secrets, redact_header, redact_headers
from .options import FetchOptions

BAR_WIDTH = 40


def timing_waterfall(timing) -> str:
    """An httpstat-style waterfall: one line per phase, bar offset by its start."""
    total = timing.total or 0.0
    lines = []
    start = 0.0
    for name, value in timing.phases().items():
        if value is None:
            continue
        if total > 0:
            lead = round(start / total * BAR_WIDTH)
            width = max(1, round(value / total * BAR_WIDTH)) if value > 0 else 0
        else:
            lead, width = 0, 0
        bar = " " * lead + "█" * width
        lines.append(f"  {name:<9} {value * 1000:9.2f} ms  |{bar:<{BAR_WIDTH + 1}}|")
        start += value
    lines.append(f"  {'total':<9} {total * 1000:9.2f} ms")
    return "\n".join(lines)


def status_line(response) -> str:
    return f"{response.http_version} {response.status_code} {response.reason}".rstrip()


def head_text(response, show_secrets: bool = False) -> str:
    hidden = frozenset() if show_secrets else SENSITIVE_HEADERS
    lines = [status_line(response)]
    lines += [
        f"{name}: {value}" for name, value in redact_headers(response.headers.items(), hidden)
    ]
    return "\n".join(lines)


def response_secrets(response) -> Secrets:
    """What every hop of ``response`` sent (URL, headers) and was sent (Set-Cookie)."""
    secrets = Secrets()
    secrets.add_hops(response)
    for hop in [*response.history, response]:
        secrets.add_headers(hop.headers.items(), served=True)
    return secrets


def body_text(response, limit: int = 100_000) -> str:
    """The body for a terminal: JSON indented, text decoded, binary summarised."""
    body = response.body
    ctype = (response.headers.get("content-type") or "").lower()
    if "json" in ctype:
        try:
            return jsonlib.dumps(response.json(), indent=2, ensure_ascii=False)[:limit]
        except ValueError:
            pass
    if ctype.startswith("text/") or "json" in ctype or "xml" in ctype or looks_textual(body):
        text = response.text
        return text if len(text) <= limit else text[:limit] + f"\n… ({len(body):,} bytes in all)"
    return (
        f"[{len(body):,} bytes of binary data ({ctype or 'no Content-Type'}); use -o FILE to save]"
    )


def looks_textual(data: bytes) -> bool:
    sample = data[:2048]
    if b"\0" in sample:
        return False
    try:
        sample.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start > len(sample) - 4  # cut mid-character at the end
    return True


def render_text(response, opts: FetchOptions, *, head: bool) -> str:
    hidden = frozenset() if opts.show_secrets else SENSITIVE_HEADERS
    parts = []
    for earlier in response.history:
        location = redact_header("location", earlier.headers.get("location", ""), hidden)
        parts.append(f"{status_line(earlier)}  → {location}")
    if head:
        parts.append(head_text(response, opts.show_secrets))
        parts.append("")
    if response.path is not None:
        parts.append(f"[saved {response.decoded_bytes:,} bytes to {response.path}]")
    elif not opts.stream:
        parts.append(body_text(response))
    if opts.timing:
        parts.append("")
        parts.append(timing_waterfall(response.timing))
    text = "\n".join(parts).rstrip("\n")
    return text if opts.show_secrets else response_secrets(response).scrub(text)
