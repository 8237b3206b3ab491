"""``nbfetch.record(path)``: every fetch of the process, while it is active,
saved as a HAR 1.2 file that browser devtools and HAR viewers open, with what
replay needs in each entry's custom ``_nbfetch`` field.

>>> with nbfetch.record("session.har"):                         # doctest: +SKIP
...     await client.fetch(url)
>>> rec = nbfetch.record("session.har"); ...; rec.stop()        # doctest: +SKIP

One HAR entry per hop (a redirect chain is one entry per hop, as browsers
write it), its usual fields built as ``Response.to_har()`` builds them, and::

    "_nbfetch": {"version": 1, "fetch": 3, "hop": 0, "hops": 2,
                 "wire": ["<base64>", ...],       # each receive() piece, as read
                 "wire_times": [0.0012, ...],     # s after the request was sent
                 "complete": true,                # the response ended in the wire
                 "replayable": true, "note": null,
                 "error": null,                   # {"type", "phase", "message"}
                 "events": [{"name", "offset", ...}], "events_dropped": 0}

**Secrets** are redacted by default, as ``core.redact`` decides (Authorization,
Cookie, Set-Cookie, secret-named fields and query parameters, URL userinfo,
the values any recorded request sent, credential fields of a server's JSON),
in the HAR fields and in the wire too: there each secret byte becomes ``*``,
the same length, so Content-Length and chunk sizes still hold and the entry
still replays (a replayed cookie or token is ``****``, which a replayed server
does not check). Only field values and the body without its framing are
masked (a secret split by a chunk boundary too), never the framing itself:
status lines, Content-Length, Transfer-Encoding, Content-Encoding, chunk-size
lines. A server's header value (a Set-Cookie's, a secret-named field's) is
masked in its own field, and elsewhere only if it looks like a credential: at
least 8 characters, not all digits (a cookie ``quota=2000`` does not mask a
chunk size, nor CORS's ``...-Allow-Credentials: true`` every ``true``). A compressed body is decoded again from the wire when
the file is built and scanned whole, within one budget of ``MAX_SCANNED``
(256 MiB) decoded bytes for the whole recording: a secret inside it cannot be masked without re-encoding it, so such an
entry keeps no wire and says so, as does one that decodes past what is left
of the budget or cannot be decoded. A JSON response (NDJSON too, or after an XSSI guard
``)]}'``) or a form-encoded one (an OAuth token reply) is parsed for
credential fields up to
``MAX_JSON_SCANNED`` (32 MiB); a larger one keeps no wire, and so does one
whose body did not end (it cannot be parsed). ``redact=False``
keeps everything (a file to treat as a password).

**Bounded**: at most ``max_bytes`` (100 MiB) of wire bytes in all (decoded
bodies are not kept while recording: they are decoded from the wire when the
file is built); a response that would pass the bound keeps what fit, is
marked ``"replayable": false`` with a note, and a ``RecordingTruncated``
warning says so as it happens. Past the bound a fetch keeps a summary (its
milestone events, no body events); at most ``MAX_TOTAL_EVENTS`` (100,000)
body events and ``MAX_FETCHES`` (10,000) fetches are kept per recording,
later fetches counted in the HAR's comment.

A hop with no response (cancelled, or still waiting when recording stopped)
is written with status 0 and ``_nbfetch.error`` of type ``"cancelled"`` or
``"incomplete"``: replay raises it.

The file is written when recording stops (atomically: a temporary file
renamed), also when the ``with`` block ends by an error or a
KeyboardInterrupt. ``async with`` writes it in a worker thread (a large
recording is not written on the event loop). A sync ``with`` block writes
it before its exit returns (the code after it may read the file), on the
loop if one runs: past ``LOOP_WARN_BYTES`` (8 MiB) recorded it warns
``RecordingBlocksLoop``; use ``async with`` in a coroutine.
"""

from __future__ import annotations

import base64
import json
import os
import re
import warnings
from bisect import bisect_right
from pathlib import Path
from time import perf_counter
from urllib.parse import unquote_plus, urlsplit

from .._version import __version__
from ..core.decoders import make_decoder, parse_content_encoding
from ..core.errors import DecodeError, FetchError, TooLargeError
from ..core.events import Timing
from ..core.headers import Headers
from ..core.redact import (
    SENSITIVE_HEADERS,
    Secrets,
    is_credential_field,
    is_secret_name,
    redact_url,
)
from ..core.urls import URL
from . import observe
from .export import MAX_HAR_TEXT, _entry, har_log

#: The default bound on the wire bytes one recording keeps.
MAX_BYTES = 100 * 1024**2
#: Body events (response.chunk, response.data, ...) kept per fetch in
#: ``_nbfetch.events``; later ones are counted in ``events_dropped``.
MAX_EVENTS = 2_000
#: Body events kept over the whole recording (about 200 bytes each).
MAX_TOTAL_EVENTS = 100_000
#: Fetches one recording keeps (each about 4 KB of events and HAR fields
#: without its body); later ones are counted in the HAR's comment, not kept.
MAX_FETCHES = 10_000
#: A compressed body is decoded again, when the file is built, to look for
#: secrets in it (they cannot be masked inside the compression): at most this
#: many decoded bytes per recording, all its bodies together (a budget each,
#: 20 small gzip bombs took 15 s). A body past it keeps no wire.
MAX_SCANNED = 256 * 1024**2
#: A JSON response is parsed for credential fields (a login's access_token)
#: up to this size; a larger one keeps no wire, its fields unknown.
MAX_JSON_SCANNED = 32 * 1024**2
FORMAT_VERSION = 1
_BODY_EVENTS = frozenset({"response.chunk", "response.data", "request.body_progress"})
#: The events a new hop starts with (emitted just after the recorder's new_hop()).
_HOP_EVENTS = frozenset({"redirect", "retry"})
#: A hop whose events hold one of these used the network (not a replay's answer).
_LIVE_EVENTS = frozenset({"resolve.start", "connect.start", "connection.reused", "tunnel.start"})


#: A sync ``with`` block that ends on a running event loop with more than
#: this many wire bytes recorded warns (``RecordingBlocksLoop``).
LOOP_WARN_BYTES = 8 * 1024**2


def _loop_running() -> bool:
    """Whether this thread runs an event loop (asyncio, or trio if imported)."""
    import asyncio
    import sys

    try:
        asyncio.get_running_loop()
        return True
    except RuntimeError:
        pass
    trio = sys.modules.get("trio")
    if trio is not None:
        try:
            trio.lowlevel.current_trio_token()
            return True
        except RuntimeError:
            pass
    return False


class RecordingBlocksLoop(UserWarning):
    """A sync ``with nbfetch.record(...)`` block ended on a running event
    loop with a large recording: masking, encoding and writing it held the
    loop (``async with`` does it in a worker thread)."""


class RecordingTruncated(UserWarning):
    """A response did not fit in the recording's ``max_bytes``: its entry
    keeps what fit and cannot be replayed."""


class _Hop:
    __slots__ = (
        "index",
        "events",
        "pieces",
        "times",
        "sent",
        "response",
        "done",
        "truncated",
    )

    def __init__(self, index: int):
        self.index = index
        self.events: list = []
        self.pieces: list[bytes] = []
        self.times: list[float] = []
        self.sent = None  # the request.headers_sent event
        self.response = None  # the response.headers event
        self.done = False
        self.truncated = False


class _Fetch:
    """What one fetch's observer gathers: its events per hop, the wire pieces
    read and (for a Content-Encoding body) the first decoded bytes."""

    __slots__ = (
        "owner",
        "request",
        "hop_starts",
        "wall",
        "hops",
        "current",
        "number",
        "body_events",
        "dropped",
    )

    def __init__(self, owner: Recording, request, ctx, number: int):
        self.owner = owner
        self.request = request
        # Not the Recorder itself: it holds every event of the fetch (its body
        # events too) for as long as the recording would hold it.
        self.hop_starts = ctx.recorder.hop_starts
        self.wall = ctx.recorder.wall
        self.number = number
        self.hops: list[_Hop] = [_Hop(0)]
        self.current = self.hops[0]  # changes only where a hop starts (_HOP_EVENTS)
        self.body_events = 0
        self.dropped = 0

    def _hop(self) -> _Hop:
        index = len(self.hop_starts) - 1
        hops = self.hops
        while len(hops) <= index:
            hops.append(_Hop(len(hops)))
        return hops[index]

    def on_event(self, event) -> None:
        if self.owner.stopped:
            return
        name = event.name
        if name in _BODY_EVENTS:
            self.body_events += 1
            owner = self.owner
            # Past the byte budget a fetch keeps a summary (its milestone
            # events, what its HAR entry is built from), not its body events;
            # and the whole recording keeps at most MAX_TOTAL_EVENTS of them.
            if (
                self.body_events > MAX_EVENTS
                or owner.kept >= owner.max_bytes
                or owner.body_events >= MAX_TOTAL_EVENTS
            ):
                self.dropped += 1
                return
            owner.body_events += 1
        elif name in _HOP_EVENTS:
            self.current = self._hop()  # the recorder's new_hop() came just before
        elif name == "request.headers_sent":
            self.current.sent = event
        elif name == "response.headers":
            self.current.response = event
        elif name == "response.done":
            self.current.done = True
        self.current.events.append(event)

    def on_wire(self, data) -> None:
        owner = self.owner
        if owner.stopped:
            return
        hop = self.current
        if hop.truncated:
            return
        n = len(data)
        if owner.kept + n > owner.max_bytes:
            hop.truncated = True
            owner.truncated += 1
            warnings.warn(
                RecordingTruncated(
                    f"nbfetch.record: {self.request.method} {redact_url(self.request.url)}"
                    f" passes max_bytes={owner.max_bytes:,}: its entry keeps what fit and"
                    " cannot be replayed (record(..., max_bytes=...) to keep more)"
                ),
                stacklevel=2,
            )
            return
        owner.kept += n
        hop.pieces.append(bytes(data))
        hop.times.append(perf_counter())


class _HopView:
    """A finished hop as ``export._entry`` reads a Response."""

    def __init__(self, fetch: _Fetch, hop: _Hop, body: bytes | None):
        sent, head = hop.sent.details, hop.response.details
        original = fetch.request
        self.request = _RequestView(
            sent["method"],
            sent["url"],
            sent["headers"],
            # A redirect that keeps the method keeps the body (RFC 9110 15.4.8).
            original.body if sent["method"] == original.method else None,
        )
        self.status_code = head["status"]
        self.reason = head["reason"]
        self.http_version = head["http_version"]
        self.headers = head["headers"]
        self.wire_bytes = sum(len(p) for p in hop.pieces)
        self.decoded_bytes = len(body) if body is not None else 0
        self._body = body
        events = fetch.hops[0].events
        self.timing = Timing(hop.events, events[0].time if events else 0.0)

    @property
    def body(self) -> bytes:
        if self._body is None:
            raise FetchError("not kept")
        return self._body


class _RequestView:
    __slots__ = ("method", "url", "headers", "body")

    def __init__(self, method, url, headers, body):
        self.method, self.url, self.headers = method, url, headers
        self.body = body if isinstance(body, bytes) else None


class Recording:
    """A recording under way (``nbfetch.record``); ``stop()`` writes it.

    After ``stop()``, ``har`` is the HAR written (a dict ``nbfetch.replay``
    takes as it takes a file) and ``truncated`` counts the responses the
    bound cut."""

    def __init__(
        self,
        path: str | os.PathLike | None,
        *,
        redact: bool = True,
        max_bytes: int = MAX_BYTES,
        live_only: bool = False,
    ):
        if not isinstance(max_bytes, int) or max_bytes < 0:
            raise ValueError("max_bytes must be a number of bytes >= 0")
        self.path = None if path is None else Path(path)
        self.redact = redact
        self.max_bytes = max_bytes
        self.kept = 0
        self.truncated = 0
        self.skipped = 0  # fetches past MAX_FETCHES, not recorded
        self.body_events = 0  # body events kept, over all fetches
        self.decoded = 0  # bytes decoded building the file: at most MAX_SCANNED in all
        self.stopped = False
        self.har: dict | None = None
        self._live_only = live_only  # replay's "record" mode: only what used the network
        self._fetches: list[_Fetch] = []
        self._remove = observe.add_observer(self)

    # -- the observer (client/observe.py) ---------------------------------------------
    def fetch_started(self, request, ctx):
        if self.stopped:
            return None
        if len(self._fetches) >= MAX_FETCHES:
            self.skipped += 1  # said in the HAR's comment
            return None
        fetch = _Fetch(self, request, ctx, len(self._fetches))
        self._fetches.append(fetch)
        # The wire only: a decoded body is decoded again from it when the file
        # is built (a copy of each decoded body kept 1 MB per gzip fetch,
        # outside max_bytes).
        if ctx.wire_taps is None:
            ctx.wire_taps = []
        ctx.wire_taps.append(fetch.on_wire)
        return fetch.on_event

    # -- ending -----------------------------------------------------------------------
    def stop(self) -> dict:
        """Stop recording and write the file (if a path was given); returns the HAR.
        Fetches still running are written as far as they got. Idempotent."""
        if not self.stopped:
            self._stop_observing()
            self._finish()
        return self.har

    def _stop_observing(self) -> None:
        # The taps of fetches still running see ``stopped`` and keep nothing more.
        self.stopped = True
        self._remove()

    def _finish(self) -> None:
        self.har = self._build()
        if self.path is not None:
            write_har(self.path, self.har)

    def __enter__(self) -> Recording:
        return self

    def __exit__(self, *exc_info) -> None:
        # Also on an error or a KeyboardInterrupt: what was recorded is kept.
        if not self.stopped and self.kept > LOOP_WARN_BYTES and _loop_running():
            # A sync block cannot give the loop back while the file is built:
            # its code after the block may read the file, so it is written
            # before __exit__ returns. ``async with`` writes it in a thread.
            warnings.warn(
                RecordingBlocksLoop(
                    f"nbfetch.record: writing {self.kept:,} recorded bytes blocks the running"
                    " event loop until the file is written; use `async with nbfetch.record(...)`"
                    " inside a coroutine to write it in a worker thread"
                ),
                stacklevel=2,
            )
        warned = self.stopped or self.kept > LOOP_WARN_BYTES
        self.stop()
        if not warned and self.kept + self.decoded > LOOP_WARN_BYTES and _loop_running():
            # Compressed bodies decoded again to look for secrets held it too:
            # known only once done, said after the fact.
            warnings.warn(
                RecordingBlocksLoop(
                    f"nbfetch.record: building the file decoded {self.decoded:,} bytes of"
                    " compressed bodies to look for secrets in them, which blocked the running"
                    " event loop; use `async with nbfetch.record(...)` inside a coroutine to do"
                    " it in a worker thread"
                ),
                stacklevel=2,
            )

    async def __aenter__(self) -> Recording:
        return self

    async def __aexit__(self, *exc_info) -> None:
        if self.stopped:
            return
        self._stop_observing()
        from ..drivers.auto import current_driver

        # Masking, encoding and writing 100 MiB take seconds: not on the loop.
        await current_driver().run_sync(self._finish, None)

    def __repr__(self) -> str:
        state = "stopped" if self.stopped else "recording"
        return f"<nbfetch.Recording {state} {len(self._fetches)} fetches, {self.kept:,} bytes>"

    # -- the HAR ----------------------------------------------------------------------
    def _build(self) -> dict:
        hops = []
        for fetch in self._fetches:
            for hop in fetch.hops:
                if self._live_only and not any(e.name in _LIVE_EVENTS for e in hop.events):
                    continue
                if hop.sent is not None or any(e.name == "error" for e in hop.events):
                    hops.append((fetch, hop))
        # The body of each hop, de-framed (and decoded) from its wire: for the
        # HAR text, the JSON credential fields, and where to mask.
        scans = {id(hop): _scan(fetch, hop, self.redact, self) for fetch, hop in hops}
        secrets = Secrets()
        if self.redact:
            # One set for the whole recording: the token a login's response
            # gave is masked there too, not only in the request that sent it.
            for fetch in self._fetches:
                secrets.add_request(fetch.request)
            for fetch, hop in hops:
                if hop.sent is not None:
                    view = _HopView(fetch, hop, None) if hop.response is not None else None
                    request = view.request if view else _request_of(fetch, hop)
                    secrets.add_request(request, served=hop.index > 0)
                if hop.response is not None:
                    headers = hop.response.details["headers"]
                    secrets.add_headers(_served_credentials(headers.items()), served=True)
                    found = scans[id(hop)].json
                    if found is not None:  # a JSON body's credential fields
                        secrets.update(found)
        entries = [self._entry(fetch, hop, scans[id(hop)], secrets) for fetch, hop in hops]
        comment = f"recorded by nbfetch {__version__}"
        if self.truncated:
            comment += (
                f"; {self.truncated} response(s) passed max_bytes={self.max_bytes:,}"
                " and cannot be replayed"
            )
        if self.skipped:
            comment += f"; {self.skipped} fetch(es) past the first {MAX_FETCHES:,} not recorded"
        return har_log(entries, comment)

    def _entry(self, fetch: _Fetch, hop: _Hop, scan: _Scan, secrets: Secrets) -> dict:
        redact, body = self.redact, scan.body
        events = fetch.hops[0].events
        fetch_start = events[0].time if events else 0.0
        hop_start = hop.events[0].time if hop.events else fetch_start
        wall = fetch.wall
        if hop.response is not None:
            entry = _entry(_HopView(fetch, hop, body), hop_start, wall, fetch_start, redact)
        else:
            entry = _failed_entry(fetch, hop, hop_start, wall, fetch_start, redact)
        if redact:  # what other requests of the recording sent, in this one's texts
            post = entry["request"].get("postData")
            if post:
                post["text"] = secrets.scrub(post["text"])
            content = entry["response"]["content"]
            if "text" in content and content.get("encoding") == "base64":
                raw = secrets.scrub_bytes(base64.b64decode(content["text"]))
                content["text"] = base64.b64encode(raw).decode("ascii")
            elif "text" in content:
                content["text"] = secrets.scrub(content["text"])
        entry["_nbfetch"] = self._custom(fetch, hop, scan, secrets)
        return entry

    def _custom(self, fetch: _Fetch, hop: _Hop, scan: _Scan, secrets: Secrets) -> dict:
        pieces, note = hop.pieces, None
        error = next((e.details for e in hop.events if e.name == "error"), None)
        if error is None and hop.response is None:
            error = _unanswered(hop)  # replay raises it: no status-0 response to parse
        replayable = True
        if self.redact and pieces:
            # Also a truncated wire: what it kept is written.
            pieces, note = _redacted_wire(hop, scan, secrets, self)
            replayable = note is None
        if hop.truncated:
            replayable = False
            note = note or (
                f"truncated: the response passed the recording's max_bytes={self.max_bytes:,};"
                f" {sum(map(len, pieces)):,} bytes kept"
            )
        if not hop.done and not hop.truncated and error is None and hop.response is not None:
            note = note or "the response was not read to its end when recorded"
        sent_at = _sent_time(hop)
        wire = [] if not replayable and not hop.truncated else pieces
        hop.pieces = []  # encoded below piece by piece: the raw copy is let go as it goes
        return {
            "version": FORMAT_VERSION,
            "fetch": fetch.number,
            "hop": hop.index,
            "hops": len(fetch.hops),
            "wire": _encoded(wire),
            "wire_times": [round(t - sent_at, 6) for t in hop.times[: len(wire)]],
            "complete": hop.done,
            "replayable": replayable,
            "note": note,
            "error": None
            if error is None
            else {k: secrets.scrub("" if v is None else str(v)) for k, v in error.items()},
            "events": [_event(e, secrets, redact=self.redact) for e in hop.events],
            "events_dropped": fetch.dropped if hop.index == len(fetch.hops) - 1 else 0,
        }


def record(
    path: str | os.PathLike, *, redact: bool = True, max_bytes: int = MAX_BYTES
) -> Recording:
    """Record every fetch of this process from now on into the HAR file ``path``
    (see the module): ``with nbfetch.record(path):``, ``async with``, or
    ``rec = nbfetch.record(path)`` ... ``rec.stop()``."""
    return Recording(path, redact=redact, max_bytes=max_bytes)


def write_har(path: str | os.PathLike, har: dict) -> None:
    """Write ``har`` to ``path`` atomically: a temporary file beside it, renamed."""
    import tempfile  # on first use: it imports random and shutil

    target = Path(path)
    fd, part = tempfile.mkstemp(prefix=f".{target.name[:200]}.", suffix=".part", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            # Entry by entry with the C encoder (json.dump's is Python's, 10x
            # slower): at most one entry's text is held at a time.
            log = har["log"]
            rest = json.dumps({k: v for k, v in log.items() if k != "entries"}, ensure_ascii=False)
            f.write('{"log": ' + rest[:-1] + ', "entries": [')
            for i, entry in enumerate(log["entries"]):
                if i:
                    f.write(",")
                _write_entry(f, entry)
            f.write("]}}")
        os.replace(part, target)
    except BaseException:
        with _suppress_os():
            os.unlink(part)
        raise


def _write_entry(f, entry: dict) -> None:
    """One entry; its wire pieces written one at a time, not as one string."""
    custom = entry.get("_nbfetch")
    wire = custom.get("wire") if isinstance(custom, dict) else None
    if not wire:
        f.write(json.dumps(entry, ensure_ascii=False))
        return
    # "wire" last in _nbfetch, _nbfetch last in the entry: the text ends "null}}".
    rest = {k: v for k, v in entry.items() if k != "_nbfetch"}
    rest["_nbfetch"] = {**{k: v for k, v in custom.items() if k != "wire"}, "wire": None}
    text = json.dumps(rest, ensure_ascii=False)
    f.write(text[: -len("null}}")] + "[")
    for i, piece in enumerate(wire):
        # base64 has no character JSON escapes: quoted as it is (json.dumps
        # scanned every byte of it again: 0.4 s of a 40 MB response's write).
        f.write(("," if i else "") + '"' + piece + '"')
    f.write("]}}")


class _suppress_os:
    def __enter__(self):
        return self

    def __exit__(self, kind, exc, tb):
        return kind is not None and issubclass(kind, OSError)


# -- helpers ------------------------------------------------------------------------------
def _encoded(pieces: list[bytes]) -> list[str]:
    """The pieces in base64, each raw piece dropped once encoded (a 100 MiB
    wire is not held twice over)."""
    out = []
    for i, piece in enumerate(pieces):
        out.append(base64.b64encode(piece).decode("ascii"))
        pieces[i] = b""
    return out


def _sent_time(hop: _Hop) -> float:
    """When the hop's request was sent in full: its answer's gaps start there."""
    for e in reversed(hop.events):
        if e.name in ("request.body_sent", "request.headers_sent"):
            return e.time
    return hop.events[0].time if hop.events else 0.0


def _request_of(fetch: _Fetch, hop: _Hop) -> _RequestView:
    sent = hop.sent.details
    return _RequestView(sent["method"], sent["url"], sent["headers"], fetch.request.body)


_HEAD_END = re.compile(rb"\r?\n\r?\n")
_PAIR = re.compile(rb"([^?&;=#\s]*)=([^&;#\s]*)")


def _stars(m: re.Match, group: int) -> bytes:
    whole, start = m.group(0), m.start(group) - m.start(0)
    return whole[:start] + b"*" * len(m.group(group)) + whole[m.end(group) - m.start(0) :]


def _mask_userinfo(value: bytes) -> bytes:
    """The userinfo of the URL in ``value`` as ``*``: up to the authority's last
    "@", as ``redact_url`` reads it (a raw "@" in the password), or the URL's
    last "@" when a raw "/", "?" or "#" in the password cut the authority
    short (its "port" is then no number)."""
    start = value.find(b"//")
    if start == -1:
        return value
    start += 2
    token_end = len(value)
    for stop in (b" ", b"\t", b";", b","):
        i = value.find(stop, start)
        if i != -1:
            token_end = min(token_end, i)
    rest = value[start:token_end]
    end = min((i for i in map(rest.find, (b"/", b"?", b"#")) if i != -1), default=len(rest))
    authority = rest[:end]
    at = authority.rfind(b"@")
    if at == -1:
        port = authority.rpartition(b":")[2]
        if (
            b"@" not in rest
            or authority.startswith(b"[")
            or b":" not in authority
            or port.isdigit()
        ):
            return value
        at = rest.rfind(b"@")
    return value[:start] + b"*" * at + value[start + at :]


def _mask_pairs(text: bytes) -> bytes:
    """The values of secret-named ``name=value`` pairs in ``text`` as ``*``."""
    return _PAIR.sub(
        lambda m: _stars(m, 2) if is_secret_name(m.group(1).decode("latin-1")) else m.group(0),
        text,
    )


def _mask_trailers(wire: _Wire, at: int, trailers) -> None:
    """The trailer fields after a chunked body's last chunk, at ``at``, masked
    in place as a head's fields are (a secret-named one, a Set-Cookie)."""
    region = wire.read(at, at + _STEP)
    if not region or region.startswith((b"\r\n", b"\n")):
        return  # no trailer fields
    found = _HEAD_END.search(region)
    section = region if found is None else region[: found.start()]
    masked = _mask_head(b"\n" + section)[1:]  # a head's first line is its status line
    if masked != section:
        wire.write(at, masked)
    if trailers is not None:
        trailers.append((at, at + len(section)))


def _mask_url(value: bytes) -> bytes:
    """A Location's userinfo and secret query and fragment values as ``*``,
    same length (an OAuth implicit grant's token is in the fragment)."""
    value = _mask_userinfo(value)
    query = min((i for i in (value.find(b"?"), value.find(b"#")) if i != -1), default=-1)
    if query == -1:
        return value
    return value[:query] + _mask_pairs(value[query:])


def _mask_head(head: bytes) -> bytes:
    """The response head with each credential masked in place (same length):
    a Set-Cookie's value (its name and attributes stay, so the jar works the
    same), a secret-named field's value, a URL field's secret parts."""
    lines = head.split(b"\n")
    hidden = False  # whether the field a folded line continues was masked
    for i, line in enumerate(lines[1:], 1):
        if line[:1] in (b" ", b"\t"):  # obs-fold (RFC 9112 5.2): the field goes on
            if hidden:
                lines[i] = re.sub(rb"[^\s]", b"*", line)
            continue
        hidden = False
        name, colon, value = line.partition(b":")
        if not colon:
            continue
        lowered = name.strip().lower().decode("latin-1")
        hidden = lowered == "set-cookie" or (
            not lowered.startswith("access-control-")
            and (lowered in SENSITIVE_HEADERS or is_secret_name(lowered))
        )
        if lowered == "set-cookie":
            pair_end = value.find(b";")
            pair = value if pair_end == -1 else value[:pair_end]
            eq = pair.find(b"=")
            start = eq + 1 if eq != -1 else len(pair) - len(pair.lstrip())
            masked = pair[:start] + re.sub(rb"[^\s]", b"*", pair[start:])
            lines[i] = name + colon + masked + value[len(pair) :]
        elif lowered.startswith("access-control-"):
            continue  # CORS fields ("...-Allow-Credentials: true") name no secret
        elif lowered in SENSITIVE_HEADERS or is_secret_name(lowered):
            lines[i] = name + colon + re.sub(rb"[^\s]", b"*", value)
        elif lowered in ("location", "content-location", "refresh"):
            # Refresh: "0; url=http://user:pw@host/" (HTML's meta refresh)
            lines[i] = name + colon + _mask_url(value)
    return b"\n".join(lines)


#: The fields that frame a message (RFC 9112 section 6): never masked in the
#: wire, or the replayed response would not parse.
_FRAMING = frozenset({b"content-length", b"transfer-encoding", b"content-encoding"})


def _mask_fields(
    wire: _Wire, start: int, end: int, secrets: Secrets, status_line: bool = True
) -> None:
    """``secrets`` masked in the field values of the heads between ``start``
    and ``end`` in the wire, each value on its own (not the status lines, not
    the framing fields, not the field names), written back in place."""
    region = wire.read(start, end)
    at, first = 0, status_line
    while at < len(region):
        nl = region.find(b"\n", at)
        line_end = len(region) if nl == -1 else nl
        stop = (
            line_end - 1 if line_end > at and region[line_end - 1 : line_end] == b"\r" else line_end
        )
        line = region[at:stop]
        if not line:
            first = True  # a head ended: the next line is a status line
        elif first:
            first = False
        else:
            if line[:1] in (b" ", b"\t"):  # an obsolete folded continuation (RFC 9112 5.2)
                value_at = at
            else:
                colon = line.find(b":")
                name = line[:colon].strip().lower() if colon != -1 else b""
                value_at = at + colon + 1 if colon != -1 and name not in _FRAMING else stop
            value = region[value_at:stop]
            if value:
                masked = secrets.mask_bytes(value)
                if masked != value:
                    wire.write(start + value_at, masked)
        at = line_end + 1


def _looks_like_credential(value: str) -> bool:
    """Whether a server's header value is masked beyond its own field (in
    bodies and other fields): at least 8 characters and not all digits. A
    ``true``, a ``2000``, a ``gzip`` or a ``dark`` is masked in its field only
    (everywhere, it broke the framing and every ``true`` of a JSON body)."""
    value = value.strip().strip('"')
    return len(value) >= 8 and not value.isdigit()


def _served_credentials(items):
    """The response fields whose credentials go into the recording's secrets:
    not CORS fields, and only values ``_looks_like_credential``."""
    for name, value in items:
        lowered = name.lower()
        if lowered.startswith("access-control-"):
            continue
        if lowered == "set-cookie":
            pair = value.partition(";")[0]
            checked = pair.partition("=")[2] if "=" in pair else pair
        else:
            checked = value.partition(" ")[2] if lowered == "www-authenticate" else value
        if _looks_like_credential(checked):
            yield name, value


class _Wire:
    """A hop's wire pieces as one byte sequence, read and masked by offset
    without joining them (a 100 MiB wire is not held twice over); a piece
    written to becomes a bytearray, its length kept."""

    __slots__ = ("pieces", "size", "starts")

    def __init__(self, pieces: list):
        self.pieces = pieces
        self.starts = []
        at = 0
        for piece in pieces:
            self.starts.append(at)
            at += len(piece)
        self.size = at

    def read(self, a: int, b: int) -> bytes:
        b = min(b, self.size)
        i, out = bisect_right(self.starts, a) - 1, []
        while a < b and i < len(self.pieces):
            start = self.starts[i]
            part = self.pieces[i][a - start : b - start]
            out.append(bytes(part))
            a += len(part)
            i += 1
        return out[0] if len(out) == 1 else b"".join(out)

    def write(self, a: int, data: bytes) -> None:
        i, at = bisect_right(self.starts, a) - 1, 0
        while at < len(data):
            piece = self.pieces[i]
            if not isinstance(piece, bytearray):
                piece = self.pieces[i] = bytearray(piece)
            off = a + at - self.starts[i]
            n = min(len(piece) - off, len(data) - at)
            piece[off : off + n] = data[at : at + n]
            at += n
            i += 1


class _Scan:
    """What building the file learnt of a hop's wire: the body's spans in it
    (de-framed), its content codings, the body for the HAR text, a JSON
    body's credential fields (as a ``Secrets``: not the parsed document), or
    that it was too large to parse."""

    __slots__ = (
        "body",
        "codings",
        "head_end",
        "json",
        "json_unfinished",
        "json_unscanned",
        "over_budget",
        "spans",
        "trailers",
        "wire",
    )

    def __init__(self, wire: _Wire):
        self.wire = wire
        self.head_end: int | None = None  # where the final head ends in the wire
        self.spans: list[tuple[int, int]] | None = None
        self.codings: list[str] = []
        self.body: bytes | None = None
        self.json = None
        self.json_unscanned = False
        self.json_unfinished = False  # a JSON body cut short, not parsed
        self.over_budget = False  # the recording's decode budget ran out in it
        self.trailers: tuple[int, int] | None = None  # a chunked body's trailer section


#: Wire bytes read (and decoded) per step when a body is de-framed.
_STEP = 1024 * 1024


def _scan(fetch: _Fetch, hop: _Hop, redact: bool, owner: Recording) -> _Scan:
    pieces, head_end = _mask_heads(hop.pieces, mask=redact)
    hop.pieces = pieces
    scan = _Scan(_Wire(pieces))
    scan.head_end = head_end
    if hop.response is None or head_end is None:
        return scan
    head = hop.response.details
    method = hop.sent.details["method"] if hop.sent is not None else fetch.request.method
    trailers: list[tuple[int, int]] = []
    scan.spans = _body_spans(scan.wire, head_end, method, head, redact, trailers)
    scan.trailers = trailers[0] if trailers else None
    if scan.spans is None:
        return scan
    headers = head["headers"]
    scan.codings = parse_content_encoding(
        [v.encode("latin-1") for v in headers.get_list("content-encoding")]
    )
    ctype = headers.get("content-type", "")
    # A body a server gives credentials in (a login's access_token), parsed:
    # JSON (and NDJSON, an XSSI-guarded one), or a form (an OAuth token reply).
    is_json = "json" in ctype or ctype.startswith("application/x-www-form-urlencoded")
    keep = MAX_JSON_SCANNED if is_json and redact else MAX_HAR_TEXT
    parts: list[bytes] | None = []
    size = 0
    if not hop.truncated:
        # A compressed body draws on the recording's decode budget.
        limit = max(MAX_SCANNED - owner.decoded, 0) if scan.codings else None
        try:
            for data in _decoded(scan.wire, scan.spans, scan.codings, hop.done, limit):
                parts.append(data)
                size += len(data)
                if size > keep:
                    break
        except TooLargeError:
            parts = None
            scan.over_budget = True
        except DecodeError:
            parts = None
        finally:
            if scan.codings:
                owner.decoded += size
    body = b"".join(parts) if parts is not None and size <= keep and not hop.truncated else None
    if is_json and redact and not hop.done and not hop.truncated:
        # A body that did not end (the connection dropped, a stream not read
        # to its end, a cancel) cannot be parsed: its access_token is unknown.
        scan.json_unfinished = any(b > a for a, b in scan.spans)
    elif is_json and redact:
        if body is None:
            scan.json_unscanned = True
        else:
            # Its credential strings only: the parsed document (a 32 MiB
            # array is ~128 MB of objects) is let go before the next hop's.
            scan.json = _served_body_credentials(body, ctype)
    if body is not None and hop.done and len(body) <= MAX_HAR_TEXT:
        scan.body = body
    return scan


def _served_body_credentials(body: bytes, ctype: str) -> Secrets:
    """The credentials a server's body gives: its fields ``is_credential_field``
    names, of a form (``access_token=...&scope=``, masked as written and
    decoded), of a JSON document (after an XSSI guard line ``)]}'``), or of
    each line of NDJSON / a JSON text sequence."""
    found = Secrets()
    if "json" not in ctype:
        for pair in body.split(b"&"):
            name, _, value = pair.partition(b"=")
            if value and is_credential_field(unquote_plus(name.decode("latin-1"))):
                raw = value.decode("latin-1")
                found.add(raw, served=True)
                found.add(unquote_plus(raw), served=True)
        return found
    if body.startswith(b")]}'"):  # an XSSI guard: not JSON, the document follows it
        body = body.partition(b"\n")[2]
    try:
        found.add_json(json.loads(body))
        return found
    except ValueError:
        pass
    for line in body.split(b"\n"):  # NDJSON, or RFC 7464's records ("\x1e" first)
        line = line.strip(b" \t\r\x1e")
        if line:
            try:
                found.add_json(json.loads(line))
            except ValueError:  # not JSON after all: no fields to take apart
                pass
    return found


def _body_spans(
    wire: _Wire, at: int, method: str, head: dict, mask: bool = False, trailers=None
) -> list[tuple[int, int]] | None:
    """Where the body's bytes are in the wire after the head ending at ``at``
    (RFC 9112 section 6.3): each chunk's data for a chunked body, else one
    span; None if the chunk framing cannot be read (then nothing is
    de-framed, and a redacted entry keeps no wire). With ``mask``, the
    credentials of chunk extensions (``;signature=...``) and of the trailer
    fields are masked in place, and the trailer section's span is appended
    to ``trailers``."""
    status = head["status"]
    if method == "HEAD" or status in (204, 304):
        return []
    if head.get("chunked"):
        # Parsed in a local window of the wire refilled every ~1 MiB (a body of
        # a million 1-byte chunks is a million lines, not a million reads).
        spans: list[tuple[int, int]] = []
        buf_start, buf, after_data = at, b"", False
        while True:
            if len(buf) - (at - buf_start) < 64 * 1024 and buf_start + len(buf) < wire.size:
                buf_start, buf = at, wire.read(at, at + _STEP)
            rel = at - buf_start
            if after_data:  # the CRLF that ends a chunk's data
                ending = buf[rel : rel + 2]
                at += ending.find(b"\n") + 1 if b"\n" in ending else len(ending)
                rel, after_data = at - buf_start, False
            nl = buf.find(b"\n", rel, rel + 64 * 1024)
            if nl == -1:  # the wire ends here (a partial recording), or no line at all
                return spans if buf_start + len(buf) >= wire.size else None
            line = buf[rel:nl]
            try:
                size = int(line.split(b";")[0].strip(), 16)
            except ValueError:
                return None
            if mask and b";" in line:  # chunk extensions (RFC 9112 7.1.1)
                semi = line.find(b";")
                masked = _mask_pairs(line[semi:])
                if masked != line[semi:]:
                    wire.write(buf_start + rel + semi, masked)
            at = buf_start + nl + 1
            if size == 0:
                if mask:
                    _mask_trailers(wire, at, trailers)
                return spans
            spans.append((at, min(at + size, wire.size)))
            at += size
            after_data = True
    length = head.get("content_length")
    end = wire.size if length is None else min(at + length, wire.size)
    return [(at, end)] if end > at else []


def _span_runs(wire: _Wire, spans):
    """The spans' bytes in runs of about 1 MiB: each run one read of the wire
    it covers, cut locally (a chunked body's spans can be a byte each)."""
    run: list[tuple[int, int]] = []
    size = 0
    for a, b in spans:
        while a < b:
            take = min(b - a, _STEP - size)
            run.append((a, a + take))
            size += take
            a += take
            if size >= _STEP:
                yield _cut(wire, run)
                run, size = [], 0
    if run:
        yield _cut(wire, run)


def _cut(wire: _Wire, run: list[tuple[int, int]]) -> bytes:
    base = run[0][0]
    whole = wire.read(base, run[-1][1])
    if len(run) == 1:
        return whole
    return b"".join(whole[a - base : b - base] for a, b in run)


def _decoded(wire: _Wire, spans, codings: list[str], complete: bool, limit: int | None = None):
    """The body in bounded steps: the spans' bytes, decoded when ``codings``
    (a decoder's steps are at most 1 MiB; ``limit`` raises TooLargeError past
    it). A body the wire does not hold whole is not checked for its end."""
    # No body (HEAD, 304, an empty one) has nothing to decode: not an error.
    decoder = make_decoder(codings, max_size=limit) if codings and spans else None
    for data in _span_runs(wire, spans):
        if decoder is None:
            yield data
            continue
        yield decoder.decode(data)
        while decoder.more:
            yield decoder.decode(b"")
    if decoder is not None and complete:
        decoder.flush()


def _unanswered(hop: _Hop) -> dict:
    """The error of a hop with no response (cancelled, or still waiting when
    the recording stopped): replay raises it rather than a status-0 answer."""
    cancelled = next((e.details for e in hop.events if e.name == "cancelled"), None)
    phase = "wait" if hop.sent is not None else "connect"
    if cancelled is not None:
        return {
            "type": "cancelled",
            "phase": cancelled.get("phase") or phase,
            "message": f"the fetch was cancelled ({cancelled.get('type')}) before its"
            " response when recorded",
        }
    return {
        "type": "incomplete",
        "phase": phase,
        "message": "the recording stopped before the response came",
    }


def _redacted_wire(hop: _Hop, scan: _Scan, secrets: Secrets, owner: Recording):
    """The wire (its heads masked by ``_scan``) with the recording's secrets
    masked, in the pieces it was read in; or no pieces and a note saying why
    the entry cannot be replayed. A secret is masked in the wire as read and
    in the de-framed body (split by a chunk's framing it is still masked);
    a compressed body is decoded again to look for them."""
    wire = scan.wire
    if scan.json_unscanned and hop.truncated:
        return [], (
            "truncated: the response passed the recording's max_bytes; a JSON body cut short"
            " is not parsed for credentials, so no wire is kept"
        )
    if scan.json_unscanned:
        return [], (
            f"not replayable: its JSON body is larger than {MAX_JSON_SCANNED:,} bytes and was"
            " not parsed for credentials (record with redact=False to replay it)"
        )
    budget_note = (
        f"not replayable: the recording's budget of {MAX_SCANNED:,} decoded bytes (for all"
        " its compressed bodies) ran out before this body was scanned for secrets"
        " (record with redact=False to replay it)"
    )
    if scan.over_budget and (secrets or scan.json_unscanned):
        return [], budget_note  # (a JSON body not parsed, or not looked into)
    if scan.json_unfinished:
        return [], (
            "not replayable: its JSON body did not end when recorded, so it could not be"
            " parsed for credentials and no wire is kept (record with redact=False to replay it)"
        )
    if not secrets:
        return wire.pieces, None
    # Never the framing (status lines, Content-Length, Transfer-Encoding,
    # Content-Encoding, chunk-size lines): a secret that happens to be "1024"
    # or "gzip" would make the replayed response malformed. Field values and
    # the de-framed body only.
    _mask_fields(wire, 0, wire.size if scan.head_end is None else scan.head_end, secrets)
    if hop.response is None:
        return wire.pieces, None
    if scan.spans is None:
        return [], (
            "not replayable: its body's framing could not be read to mask the secrets in it"
            " (record with redact=False to replay it)"
        )
    if scan.trailers is not None:  # fields with no status line before them
        _mask_fields(wire, *scan.trailers, secrets, status_line=False)
    if not scan.codings:
        _mask_stream(wire, scan.spans, secrets)
        return wire.pieces, None
    overlap = max(secrets.longest_bytes - 1, 0)
    tail = b""
    decoded = 0
    try:
        complete = hop.done and not hop.truncated
        limit = max(MAX_SCANNED - owner.decoded, 0)
        for data in _decoded(wire, scan.spans, scan.codings, complete, limit):
            decoded += len(data)
            window = tail + data
            if secrets.holds_bytes(window):
                return [], (
                    "not replayable: its compressed body holds a secret that cannot be masked"
                    " inside the compression (record with redact=False to replay it)"
                )
            tail = window[-overlap:] if overlap else b""
    except TooLargeError:
        return [], budget_note
    except DecodeError as exc:
        return [], (
            f"not replayable: its compressed body could not be decoded to look for secrets"
            f" in it ({exc}); record with redact=False to replay it"
        )
    finally:
        owner.decoded += decoded
    return wire.pieces, None


def _mask_stream(wire: _Wire, spans, secrets: Secrets) -> None:
    """``secrets.mask_bytes`` over the bytes of ``spans`` taken as one text
    (the wire as read, or the body without its chunk framing), written back
    in place: windows of about 1 MiB, each starting with the end of the
    previous one, so a secret across two windows is masked too."""
    overlap = max(secrets.longest_bytes - 1, 0)
    window: list[tuple[int, int]] = []
    size = 0

    def flush() -> None:
        # One read of the wire the window covers, cut into its spans locally.
        base = window[0][0]
        whole = wire.read(base, window[-1][1])
        data = b"".join(whole[a - base : b - base] for a, b in window)
        masked = secrets.mask_bytes(data)
        if masked == data:
            return
        at = 0
        for a, b in window:
            n = b - a
            if masked[at : at + n] != data[at : at + n]:
                wire.write(a, masked[at : at + n])
            at += n

    for a, b in spans:
        while a < b:
            take = min(b - a, _STEP)
            window.append((a, a + take))
            size += take
            a += take
            if size >= _STEP:
                flush()
                # Keep the last ``overlap`` bytes' spans to start the next window.
                kept, left = [], overlap
                for sa, sb in reversed(window):
                    if left <= 0:
                        break
                    n = min(sb - sa, left)
                    kept.append((sb - n, sb))
                    left -= n
                window = kept[::-1]
                size = overlap - left
    if window and size:
        flush()


def _mask_heads(pieces: list[bytes], mask: bool = True) -> tuple[list[bytes], int | None]:
    """The pieces holding the response heads (any 1xx, then the final one:
    RFC 9110 section 15.2) with their credentials masked in place (when
    ``mask``), and the offset where the final head ends (None if the wire
    does not hold it whole)."""
    prefix, count, end = b"", 0, None
    while count < len(pieces):
        prefix += pieces[count]
        count += 1
        at, final = 0, None
        while (found := _HEAD_END.search(prefix, at)) is not None:
            if prefix[at + 9 : at + 10] != b"1":
                final = found.end()
                break
            at = found.end()
        if final is not None:
            end = final
            break
    if not mask:
        return pieces, end
    cut = len(prefix) if end is None else end
    masked, at = [], 0
    for found in _HEAD_END.finditer(prefix, 0, cut):
        masked.append(_mask_head(prefix[at : found.start()]) + found.group())
        at = found.end()
    if at < cut:  # a head the wire does not hold whole (a truncated recording)
        masked.append(_mask_head(prefix[at:cut]))
    rewritten = b"".join(masked) + prefix[cut:]
    return _split_like(rewritten, pieces[:count]) + pieces[count:], end


def _split_like(data: bytes, pieces: list[bytes]) -> list[bytes]:
    out, at = [], 0
    for piece in pieces:
        out.append(data[at : at + len(piece)])
        at += len(piece)
    return out


def _jsonable(value, secrets: Secrets, redact: bool):
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, str):
        return secrets.scrub(value)
    if isinstance(value, URL):
        return redact_url(value) if redact else str(value)
    if isinstance(value, Headers):
        hidden = SENSITIVE_HEADERS if redact else frozenset()
        from ..core.redact import redact_headers

        # The recording's secrets too: a trailer echoing the request's token.
        return [[n, secrets.scrub(v)] for n, v in redact_headers(value.items(), hidden)]
    if isinstance(value, (list, tuple)):
        return [_jsonable(v, secrets, redact) for v in value[:100]]
    if isinstance(value, dict):
        return {str(k): _jsonable(v, secrets, redact) for k, v in list(value.items())[:100]}
    return secrets.scrub(str(value))


def _event(event, secrets: Secrets, redact: bool) -> dict:
    details = event.details
    extensions = details.get("extensions") if redact else None
    if extensions:  # a chunk's ";signature=...": its value is the wire's, masked there
        details = {**details, "extensions": [_hidden_pair(pair) for pair in extensions]}
    return {
        "name": event.name,
        "offset": round(event.offset, 6),
        **{k: _jsonable(v, secrets, redact) for k, v in details.items()},
    }


def _hidden_pair(pair):
    """A chunk extension (name, value) with a secret-named one's value hidden."""
    if isinstance(pair, (list, tuple)) and len(pair) == 2 and pair[1]:
        name = pair[0].decode("latin-1") if isinstance(pair[0], bytes) else str(pair[0])
        if is_secret_name(name):
            return [pair[0], "***"]
    return pair


def _failed_entry(fetch, hop, hop_start, wall, fetch_start, redact: bool) -> dict:
    """A hop that failed before a response (a refused connection, a timeout):
    status 0, as browsers write a failed request, its error in ``_error``."""
    from datetime import datetime, timezone

    if hop.sent is not None:
        request = _request_of(fetch, hop)
    else:  # failed before sending: the URL is the redirect's target, or the fetch's
        moved = next((e.details for e in hop.events if e.name == "redirect"), None)
        original = fetch.request
        request = original
        if moved is not None:
            request = _RequestView(moved["method"], moved["to"], original.headers, None)
    error = next((e.details for e in hop.events if e.name == "error"), None) or _unanswered(hop)
    hidden = SENSITIVE_HEADERS if redact else frozenset()
    from ..core.redact import redact_headers

    started = datetime.fromtimestamp(wall + (hop_start - fetch_start), tz=timezone.utc)
    url = request.url
    query = urlsplit(redact_url(url) if redact else str(url)).query
    return {
        "startedDateTime": started.isoformat().replace("+00:00", "Z"),
        "time": round((hop.events[-1].time - hop_start) * 1000, 3) if hop.events else 0,
        "request": {
            "method": request.method,
            "url": redact_url(url) if redact else str(url),
            "httpVersion": "HTTP/1.1",
            "cookies": [],
            "headers": [
                {"name": n, "value": v} for n, v in redact_headers(request.headers.items(), hidden)
            ],
            "queryString": [
                {"name": k, "value": v}
                for k, _, v in (p.partition("=") for p in query.split("&") if p)
            ],
            "headersSize": -1,
            "bodySize": -1,
        },
        "response": {
            "status": 0,
            "statusText": "",
            "httpVersion": "",
            "cookies": [],
            "headers": [],
            "content": {"size": 0, "mimeType": ""},
            "redirectURL": "",
            "headersSize": -1,
            "bodySize": -1,
        },
        "cache": {},
        "timings": {"send": 0, "wait": 0, "receive": 0},
        "_error": f"{error.get('type', 'Error')}: {error.get('message', '')}",
    }


__all__ = [
    "MAX_BYTES",
    "Recording",
    "RecordingBlocksLoop",
    "RecordingTruncated",
    "record",
    "write_har",
]
