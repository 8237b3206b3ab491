"""Exports of a finished fetch: HAR 1.2, and the events as a pandas DataFrame.

>>> har = r.to_har()                      # doctest: +SKIP
>>> json.dump(har, open("fetch.har", "w"))  # opens in browser DevTools
>>> r.events_frame()                      # doctest: +SKIP

Both redact by default (``core.redact``): the values of Authorization,
Proxy-Authorization, Cookie, Set-Cookie and secret-named fields (``X-Api-Key``)
become ``***`` (``Basic ***``), so do cookie values, secret query values
(``api_key=***``, in ``url`` and ``queryString``) and secret fields of a form
body; userinfo in URLs becomes ``***@``; and the values the request sent are
scrubbed from every other text (a body that echoes them: ``Secrets``).
``redact=False`` keeps them, e.g. to replay the requests; URL userinfo is never
written (Authorization carries it).
"""

from __future__ import annotations

import base64
from datetime import datetime, timezone
from urllib.parse import parse_qsl

from .._version import __version__
from ..core.errors import FetchError
from ..core.headers import Headers
from ..core.redact import (
    REDACTED,
    SENSITIVE_HEADERS,
    Secrets,
    is_secret_name,
    redact_headers,
    redact_pairs,
    redact_url,
)
from ..core.urls import URL

MAX_HAR_TEXT = 1_000_000


def _ms(seconds: float | None) -> float:
    """HAR timings: milliseconds, -1 where a phase does not apply."""
    return -1 if seconds is None else round(seconds * 1000, 3)


def _headers(headers, hidden: frozenset[str]) -> list[dict]:
    return [{"name": n, "value": v} for n, v in redact_headers(headers.items(), hidden)]


def _pairs(text: str, redact: bool) -> list[dict]:
    """Form-style name=value pairs (a query, a urlencoded body), secret values masked."""
    return [
        {"name": k, "value": REDACTED if redact and v and is_secret_name(k) else v}
        for k, v in parse_qsl(text, keep_blank_values=True)
    ]


def _cookies(values: list[str], redact: bool) -> list[dict]:
    """HAR cookies of Cookie values (``a=1; b=2``) or Set-Cookie values (the first
    pair is the cookie, RFC 6265 section 4.1.1; its attributes are not kept)."""
    cookies = []
    for value in values:
        for pair in value.split(";"):
            name, _, v = pair.strip().partition("=")
            cookies.append({"name": name, "value": REDACTED if redact else v})
    return cookies


def har_timings(timing) -> tuple[dict, float]:
    """HAR ``timings`` of a ``Timing`` (ms, -1 where a phase did not happen)
    and the entry's ``time``, their sum (the network log builds its entries
    from summaries with this too)."""
    # HAR's "connect" includes the TLS time, which is also given alone as "ssl",
    # and a proxy's CONNECT tunnel (HAR has no field of its own for it).
    connect = (
        None
        if timing.connect is None
        else timing.connect + (timing.tunnel or 0) + (timing.tls or 0)
    )
    timings = {
        "blocked": _ms(timing.queue),
        "dns": _ms(timing.dns),
        "connect": _ms(connect),
        "ssl": _ms(timing.tls),
        "send": _ms(timing.send),
        "wait": _ms(timing.wait),
        "receive": _ms(timing.download),
    }
    total = sum(v for v in timings.values() if v > 0) - max(timings["ssl"], 0)
    return timings, round(total, 3)


def _entry(response, hop_start: float, fetch_wall: float, fetch_start: float, redact: bool) -> dict:
    hidden = SENSITIVE_HEADERS if redact else frozenset()
    request = response.request
    secrets = Secrets()
    if redact:
        secrets.add_request(request)
        secrets.add_headers(response.headers.items(), served=True)
    timing = response.timing
    body = request.body if isinstance(request.body, bytes) else None
    entry_request = {
        "method": request.method,
        "url": redact_url(request.url) if redact else str(request.url),
        "httpVersion": "HTTP/1.1",
        "cookies": _cookies(request.headers.get_list("cookie"), redact),
        "headers": _headers(request.headers, hidden),
        "queryString": _pairs(request.url.query, redact),
        "headersSize": -1,
        "bodySize": len(body) if body is not None else 0,
    }
    if body is not None:
        mime = request.headers.get("content-type", "")
        text = body.decode("utf-8", errors="replace")
        post = {"mimeType": mime, "text": secrets.scrub(text)}
        if mime.startswith("application/x-www-form-urlencoded"):
            post["params"] = _pairs(text, redact)
            if redact:  # a form's secret fields are what a query's are
                post["text"] = redact_pairs(post["text"])
        entry_request["postData"] = post
    content = {"size": response.decoded_bytes, "mimeType": response.headers.get("content-type", "")}
    try:
        body_bytes = response.body
    except FetchError:  # not read: a stream, a redirect body too large to keep
        body_bytes = None
    if body_bytes is not None and len(body_bytes) <= MAX_HAR_TEXT:
        try:
            content["text"] = secrets.scrub(body_bytes.decode("utf-8"))
        except UnicodeDecodeError:  # binary: scrubbed as bytes (base64 would hide a secret)
            content["text"] = base64.b64encode(secrets.scrub_bytes(body_bytes)).decode("ascii")
            content["encoding"] = "base64"
    timings, hop_total = har_timings(timing)
    started = datetime.fromtimestamp(fetch_wall + (hop_start - fetch_start), tz=timezone.utc)
    return {
        "startedDateTime": started.isoformat().replace("+00:00", "Z"),
        "time": hop_total,
        "request": entry_request,
        "response": {
            "status": response.status_code,
            "statusText": response.reason,
            "httpVersion": response.http_version,
            "cookies": [
                _cookies([v.partition(";")[0]], redact)[0]
                for v in response.headers.get_list("set-cookie")
            ],
            "headers": _headers(response.headers, hidden),
            "content": content,
            "redirectURL": redact_url(response.headers.get("location", "")),
            "headersSize": -1,
            "bodySize": response.wire_bytes,
        },
        "cache": {},
        "timings": timings,
    }


def to_har(response, *, redact: bool = True) -> dict:
    """HAR 1.2 for the fetch: one entry per hop (redirects first), timings from the events.
    ``redact=False`` keeps the credentials (see the module docstring)."""
    rec = response._recorder
    fetch_start = rec.events[0].time if rec.events else rec.start
    entries = []
    for hop in [*response.history, response]:
        start_index = rec.hop_starts[hop._hop]
        hop_start = rec.events[start_index].time if start_index < len(rec.events) else fetch_start
        entries.append(_entry(hop, hop_start, rec.wall, fetch_start, redact))
    return har_log(entries)


def har_log(entries: list[dict], comment: str | None = None) -> dict:
    """A HAR 1.2 document around ``entries`` (every export of nbfetch uses it)."""
    log = {
        "version": "1.2",
        "creator": {"name": "nbfetch", "version": __version__},
        "pages": [],
        "entries": entries,
    }
    if comment is not None:
        log["comment"] = comment
    return {"log": log}


def events_frame(response, *, redact: bool = True):
    """The events as a pandas DataFrame: name, offset (s), time, and one column per detail
    (text for anything else than a number, str, bool or None; URLs and header
    values redacted as in ``to_har``, and the request's secret values scrubbed
    from every text)."""
    hidden = SENSITIVE_HEADERS if redact else frozenset()
    try:
        import pandas as pd
    except ImportError:
        raise ImportError("events_frame() needs pandas: pip install pandas") from None
    secrets = Secrets()
    if redact:
        secrets.add_hops(response)
    rows = []
    for e in response.events:
        row = {"name": e.name, "offset": e.offset, "time": e.time}
        for key, value in e.details.items():
            if isinstance(value, str):
                row[key] = secrets.scrub(value)
            elif isinstance(value, (int, float, bool, type(None))):
                row[key] = value
            elif isinstance(value, Headers):
                row[key] = value.describe(hidden)
            elif isinstance(value, URL):
                row[key] = redact_url(value) if redact else str(value)
            else:
                row[key] = secrets.scrub(str(value))
        rows.append(row)
    return pd.DataFrame(rows)
