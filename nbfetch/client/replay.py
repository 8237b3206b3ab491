"""``nbfetch.replay(path)``: answer fetches from a recording (``nbfetch.record``)
instead of the network, through ``SyntheticStream``: the recorded wire pieces go
through the client's own h11 path, so events, chunk tables, live views and
errors are those of the recorded session.

>>> with nbfetch.replay("session.har"):                     # doctest: +SKIP
...     r = await client.fetch(url)           # from the file, no socket opened
>>> client = nbfetch.AsyncClient(replay="session.har")      # doctest: +SKIP

**Matching** is VCR.py's default: the method and the URL (scheme, host, port,
path and the query as a multiset: its order does not matter); a recorded
query value that was redacted (``***``) matches any value. ``match_body=True``
also compares the request body (for POST and the like: the body's text, its
secret fields masked on both sides; a ``***`` the recording wrote, for a value
another request of its session sent as a credential, matches any value;
bodies over 1 MiB are compared exactly). Headers are not compared. Identical
requests take the recorded ones in order; once they are used up the last one
answers again (a notebook cell run twice replays as it did).

**Unmatched** requests (``unmatched=``): ``"fail"`` (the default) raises
``ReplayMissError`` naming the request and the closest recorded ones, before
anything is opened: no socket, no DNS; ``"pass"`` sends them to the network;
``"record"`` sends them and appends them to the file when the replay stops
(the end of ``with``, or ``stop()``: also for a client's
``AsyncClient(replay=Replay(path, unmatched="record"))``, which records only
that replay's fetches until ``stop()``). ``AsyncClient(replay=path)`` fails
on a miss; another mode is ``replay=Replay(path, unmatched=...)``.

**Loading**: inside a running loop (a notebook, a coroutine) the file is read
and indexed at the first fetch, in a worker thread; outside one, at once. A
hit is a dictionary lookup on the method and the URL without its query.

**Timing** (``timing=``): ``"recorded"`` (the default) waits the recorded gaps
between the pieces (and before the first: the server's think time) divided by
``speed=``, each wait at most ``max_gap`` seconds (1 s): a /drip keeps its
rhythm, a 30 s wait in the recording does not make a tutorial slow.
``"fast"`` sends every piece at once.

**Errors**: a hop recorded as failing before its response (refused, a
timeout) fails again with the same class of error, before anything is sent;
one that broke mid-body replays its bytes, then breaks the same way. An
entry the recording could not keep whole (``max_bytes``, a secret in a
compressed body), or that was cancelled or unfinished when recorded, is
refused with ``ReplayError`` saying why. So is a malformed one (a recording
is a file from anywhere): the error names the entry (its index, method and
redacted URL) and what is wrong; one that cannot even be matched (no method
or URL) refuses the file. A browser's HAR entry with status 0 (a blocked
request) or a 1xx status has no response to replay.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import os
import re
from collections import Counter
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import h11

from ..core import errors
from ..core.errors import FetchError
from ..core.redact import REDACTED, Secrets, redact_pairs, redact_url
from ..drivers.synthetic import SyntheticStream
from . import observe

MODES = ("fail", "pass", "record")
TIMINGS = ("recorded", "fast")
#: Errors replayed by raising their class again; the others (ProtocolError,
#: DecodeError, TooLargeError) come back by themselves from the recorded bytes.
_RAISED = ("ConnectError", "TLSError", "ProxyError", "FetchTimeout", "NetworkError")
#: Error types a recorder writes for a hop it did not see end (cancelled by
#: the caller, still running when the recording stopped): nothing to replay.
_UNFINISHED = {"cancelled": "was cancelled", "incomplete": "had not finished"}
#: Bytes decoded and handed to the client at once, at most, and between two
#: yields to the loop: base64-decoding one recorded 90 MB piece at once held
#: the loop 0.6 s; socket reads are far smaller, so real recordings keep
#: their pieces as they are.
SLICE = 1024**2
#: Pieces handed over at most between two yields to the loop when nothing
#: else awaits (fast timing): 200,000 one-byte pieces are not one loop step.
YIELD_EVERY = 64
#: A miss names the closest recorded requests among at most this many of the
#: same method and origin: difflib compares each candidate with the request.
MAX_CLOSE = 200
#: match_body's wildcard comparison (a recorded ``***`` matches any value) is
#: a regular expression; past these bounds only the exact comparison is made.
MAX_WILDCARD_TEXT = 1024**2
MAX_WILDCARDS = 64
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")
_MASK_RUN = re.compile(re.escape(REDACTED) + r"\**")


class ReplayError(FetchError):
    """A recording cannot answer a request (an entry it could not keep whole,
    a malformed file or entry)."""

    default_phase = "replay"


class ReplayMissError(ReplayError):
    """No recorded exchange matches the request (``unmatched="fail"``)."""


def _masked(value: str) -> bool:
    return bool(value) and set(value) <= {"*"}


class _Key:
    """A request's method and URL as matching compares them."""

    __slots__ = ("method", "place", "raw_query", "_query")

    def __init__(self, method: str, url: str):
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        try:
            port = parts.port
        except ValueError:
            port = None
        port = port or {"http": 80, "https": 443}.get(parts.scheme.lower())
        self.method = method.upper()
        self.place = (parts.scheme.lower(), host, port, parts.path or "/")
        self.raw_query = parts.query
        self._query = None  # parsed on the first comparison that needs it

    @property
    def query(self) -> list:
        if self._query is None:
            self._query = sorted(parse_qsl(self.raw_query, keep_blank_values=True))
        return self._query

    def matches(self, live: _Key) -> bool:
        # The index already compared the method and the place.
        if self.raw_query == live.raw_query:
            return True
        mine, theirs = self.query, live.query
        if len(mine) != len(theirs):
            return False
        if mine == theirs:
            return True
        # A redacted value matches any: compare names, then the unmasked values.
        if Counter(k for k, _ in mine) != Counter(k for k, _ in theirs):
            return False
        wanted = Counter((k, v) for k, v in mine if not _masked(v))
        have = Counter((k, v) for k, v in theirs)
        return not (wanted - have)


class _Entry:
    """One recorded exchange. Its request is checked as the recording loads
    (an entry that cannot be matched refuses the file); the rest once, when
    it is first matched: ``problem`` says why it cannot be replayed (so one
    blocked request in a browser's HAR does not refuse the whole file, and
    loading 20,000 entries does not validate 20,000 heads with h11)."""

    __slots__ = ("index", "har", "method", "url", "key", "custom", "_problem", "head")

    def __init__(self, index: int, har):
        if not isinstance(har, dict):
            raise ReplayError(f"entry {index} of the recording is {_kind(har)}, not an object")
        request = har.get("request")
        if not isinstance(request, dict):
            raise ReplayError(f"entry {index} of the recording has no request object")
        method, url = request.get("method"), request.get("url")
        if not isinstance(method, str) or not _TOKEN.match(method):
            raise ReplayError(f"entry {index} of the recording: its method {method!r} is not one")
        if not isinstance(url, str):
            raise ReplayError(f"entry {index} ({method}) of the recording: its url is {_kind(url)}")
        self.index, self.har, self.method, self.url = index, har, method, url
        try:
            self.key = _Key(method, url)
        except ValueError:  # urlsplit: an unbalanced [ in the host
            raise ReplayError(
                f"entry {index} ({method}) of the recording: its url is not one"
            ) from None
        self.custom = har.get("_nbfetch")
        self.head = None  # (status, headers, reason) of an entry answered from its HAR fields
        self._problem = False  # not checked yet

    @property
    def problem(self) -> str | None:
        if self._problem is False:
            self._problem = self._check()
        return self._problem

    @property
    def where(self) -> str:
        return f"{self.method} {redact_url(self.url)} (entry {self.index})"

    def _check(self) -> str | None:
        custom = self.custom
        if custom is not None:
            if not isinstance(custom, dict):
                return f"its _nbfetch field is {_kind(custom)}, not an object"
            wire = custom.get("wire")
            if wire is not None and not (
                isinstance(wire, list) and all(isinstance(p, str) for p in wire)
            ):
                return "its _nbfetch.wire is not a list of base64 strings"
            times = custom.get("wire_times")
            if times is not None and not (isinstance(times, list) and all(map(_finite, times))):
                return "its _nbfetch.wire_times is not a list of finite numbers"
            error = custom.get("error")
            if error is not None:
                if not isinstance(error, dict):
                    return f"its _nbfetch.error is {_kind(error)}, not an object"
                kind = error.get("type")
                if isinstance(kind, str) and kind in _UNFINISHED:
                    return (
                        f"the exchange {_UNFINISHED[kind]} when it was recorded: it has no response"
                    )
            if not custom.get("replayable", True):
                return str(custom.get("note") or "it was not kept whole")
            if wire or error:
                return None  # answered from the wire, or fails with its recorded error
        return self._check_har()

    def _check_har(self) -> str | None:
        # No recorded wire (a browser's HAR): the status, headers and text
        # are framed again by h11, which must accept them as a server's.
        response = self.har.get("response")
        if not isinstance(response, dict):
            return "it has no response object"
        status = response.get("status")
        if isinstance(status, str) and status.isdigit():
            status = int(status)
        if isinstance(status, bool) or not (
            isinstance(status, int) or (isinstance(status, float) and status.is_integer())
        ):
            return f"its status {status!r} is not a number"
        status = int(status)
        if status == 0:
            # What a browser writes for a request that got no response.
            return "its status is 0: no response was received (blocked, failed or cancelled)"
        if 100 <= status < 200:
            return f"its status {status} is an interim (1xx) response, not a final one"
        if not 200 <= status <= 999:
            return f"its status {status} is not an HTTP status (200-999)"
        reason = response.get("statusText", "")
        headers = response.get("headers", [])
        content = response.get("content", {})
        if not isinstance(reason, str):
            return f"its statusText is {_kind(reason)}"
        if not isinstance(headers, list):
            return f"its response headers are {_kind(headers)}, not a list"
        if not isinstance(content, dict):
            return f"its response content is {_kind(content)}, not an object"
        if not isinstance(content.get("text", ""), str):
            return f"its response content.text is {_kind(content.get('text'))}"
        if not isinstance(content.get("encoding", ""), (str, type(None))):
            return "its response content.encoding is not a string"
        skip = {"content-length", "transfer-encoding", "content-encoding", "connection"}
        kept = []
        for number, header in enumerate(headers):
            name = header.get("name") if isinstance(header, dict) else None
            value = header.get("value") if isinstance(header, dict) else None
            if not isinstance(name, str) or not isinstance(value, str):
                return f"its response header {number} is not a name and a value (strings)"
            if name.startswith(":") or name.lower() in skip:
                continue  # HTTP/2 pseudo-headers; framing of the recorded body
            # Surrounding whitespace is no part of a value (RFC 9110 5.5).
            kept.append((name.encode("utf-8"), value.strip(" \t").encode("utf-8")))
        reason_bytes = reason.encode("utf-8")
        try:
            h11.Response(
                status_code=status, headers=[*kept, (b"content-length", b"0")], reason=reason_bytes
            )
        except h11.LocalProtocolError as exc:
            return f"its response head is not valid HTTP: {exc}"
        self.head = (status, kept, reason_bytes)
        return None

    def body_matches(self, text: str | None) -> bool:
        post = self.har["request"].get("postData")
        recorded = post.get("text") if isinstance(post, dict) else None
        if recorded == text:
            return True
        if text is None or recorded is None or REDACTED not in recorded:
            return False
        # The recording masked values that other requests of its session sent
        # as credentials (an API key also named in a JSON body): a masked run
        # stands for any value there.
        parts = _MASK_RUN.split(recorded)
        if len(parts) > MAX_WILDCARDS + 1 or len(text) > MAX_WILDCARD_TEXT:
            return False
        pattern = "(?s)" + ".+?".join(map(re.escape, parts))
        return re.fullmatch(pattern, text) is not None


def _kind(value) -> str:
    """``value``'s JSON kind, for messages: "null", "an int", "a list"."""
    if value is None:
        return "null"
    name = type(value).__name__
    return f"{'an' if name[0] in 'aeiou' else 'a'} {name}"


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _loop_running() -> bool:
    from ..drivers.auto import current_loop

    try:
        current_loop()
    except RuntimeError:
        return False
    return True


def _read(path) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            # Decoded a slice at a time: decoding 53 MB at once held the GIL 0.2 s.
            text = "".join(iter(lambda: f.read(SLICE), ""))
        return _parse(text)
    except OSError as exc:
        raise ReplayError(f"cannot read the recording {str(path)!r}: {exc}") from None
    except RecursionError:
        raise ReplayError(f"{str(path)!r} is not a HAR file: its JSON nests too deeply") from None
    except ValueError as exc:  # also a text that is not UTF-8
        raise ReplayError(f"{str(path)!r} is not a HAR file (JSON): {exc}") from None


_SPACE = re.compile(r"[ \t\n\r]*")
#: Where ``_parse`` takes a recording apart itself: an object's listed keys,
#: an array's items (``[spec]``); any other value is one C call. Down to the
#: pieces of the wire, which hold nearly all of a large recording's bytes.
_HAR_PARTS = {"log": {"entries": [{"_nbfetch": {"wire": [None], "events": [None]}}]}}


def _parse(text: str, parts=_HAR_PARTS):
    """``json.loads(text)``, taken value by value where ``parts`` says. One C
    call holds the GIL: a 53 MB recording parsed by one ``json.loads`` in a
    worker thread still stopped the loop for the whole parse; between two
    values the loop thread can take the GIL."""
    value = json.JSONDecoder().raw_decode  # one JSON value at text[i], no space before

    def space(i: int) -> int:
        return _SPACE.match(text, i).end()

    def fail(what: str, i: int):
        raise json.JSONDecodeError(what, text, i)

    def walk(i: int, spec):
        if isinstance(spec, dict) and text.startswith("{", i):
            return members(i, spec)
        if isinstance(spec, list) and text.startswith("[", i):
            return items(i, spec[0])
        return value(text, i)

    def members(i: int, spec: dict):  # the object whose "{" is at text[i]
        out = {}
        i = space(i + 1)
        if text.startswith("}", i):
            return out, i + 1
        while True:
            if not text.startswith('"', i):
                fail("Expecting property name enclosed in double quotes", i)
            key, i = value(text, i)
            i = space(i)
            if not text.startswith(":", i):
                fail("Expecting ':' delimiter", i)
            out[key], i = walk(space(i + 1), spec.get(key))
            i = space(i)
            if text.startswith(",", i):
                i = space(i + 1)
            elif text.startswith("}", i):
                return out, i + 1
            else:
                fail("Expecting ',' delimiter", i)

    def items(i: int, spec):  # the array whose "[" is at text[i]
        out = []
        i = space(i + 1)
        if text.startswith("]", i):
            return out, i + 1
        while True:
            item, i = walk(i, spec)
            out.append(item)
            i = space(i)
            if text.startswith(",", i):
                i = space(i + 1)
            elif text.startswith("]", i):
                return out, i + 1
            else:
                fail("Expecting ',' delimiter", i)

    start = space(0)
    result, end = walk(start, parts)
    if space(end) != len(text):
        fail("Extra data", space(end))
    return result


def _source(source):
    """A loaded HAR (a dict) or the path to read one from."""
    if isinstance(source, dict):
        return source
    har = getattr(source, "har", None)  # a stopped nbfetch.record()
    if isinstance(har, dict):
        return har
    if isinstance(source, (str, os.PathLike)):
        return Path(source)
    raise TypeError("replay= takes a HAR file's path, a loaded HAR dict or a stopped record()")


def _log_entries(har) -> list:
    log = har.get("log") if isinstance(har, dict) else None
    entries = log.get("entries") if isinstance(log, dict) else None
    if not isinstance(entries, list):
        raise ReplayError('not a HAR log: a recording is {"log": {"entries": [...]}}')
    return entries


def _body_text(request) -> str | None:
    """A live request's body as a recording keeps it (secret fields masked)."""
    body = request.body
    if not isinstance(body, bytes) or not body:
        return None
    secrets = Secrets()
    secrets.add_request(request)
    text = secrets.scrub(body.decode("utf-8", errors="replace"))
    if request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        text = redact_pairs(text)
    return text


def _decoded(piece: str, what: str):
    """A recorded base64 text's bytes, in slices of at most ``SLICE`` bytes."""
    step = SLICE // 3 * 4
    for start in range(0, max(len(piece), 1), step):
        try:
            yield base64.b64decode(piece[start : start + step], validate=True)
        except binascii.Error as exc:
            raise ValueError(f"{what} is not base64 ({exc})") from None


class Replay:
    """An opener (client/observe.py) answering from a recording; see the module.
    ``nbfetch.replay()`` makes one and installs it for the whole process;
    ``AsyncClient(replay=...)`` for one client."""

    def __init__(
        self,
        source,
        *,
        unmatched: str = "fail",
        timing: str = "recorded",
        speed: float = 1.0,
        max_gap: float | None = 1.0,
        match_body: bool = False,
        redact: bool = True,
    ):
        if unmatched not in MODES:
            raise ValueError(f"unmatched must be one of {', '.join(MODES)}, not {unmatched!r}")
        if timing not in TIMINGS:
            raise ValueError(f"timing must be one of {', '.join(TIMINGS)}, not {timing!r}")
        if not speed > 0:
            raise ValueError("speed must be > 0")
        loaded = _source(source)
        self.path = loaded if isinstance(loaded, Path) else None
        if unmatched == "record" and self.path is None:
            raise ValueError('unmatched="record" needs the recording\'s path to append to')
        self.unmatched = unmatched
        self.timing, self.speed, self.max_gap = timing, speed, max_gap
        self.match_body = match_body
        self.redact = redact
        self._har: dict | None = None
        self._index: dict | None = None  # (method, place) -> [_Entry]: a hit is a lookup
        self._origins: dict = {}  # (method, scheme, host, port) -> [_Entry]: for misses
        self._count = 0
        self._failure: str | None = None  # why loading failed, raised to each fetch
        self._loading = None  # a driver Signal while a worker thread loads
        self._used: Counter = Counter()  # times each group of candidates answered
        self.answered = 0  # requests answered from the recording
        self.passed = 0  # requests sent to the network (pass, record)
        self._remove = None
        self._recording = None
        if self.path is None:
            _log_entries(loaded)  # not a HAR at all: said now
            self._har = loaded
        if not _loop_running():
            self._load()  # no loop to hold: read now, errors said now
            if self._failure is not None:
                raise ReplayError(self._failure)
        elif self.path is not None:
            # Inside a running loop (a notebook's cell, a coroutine): parsing
            # a large file takes seconds of the loop's time, so it waits for
            # the first fetch and a worker thread. A missing file is said now.
            try:
                os.stat(self.path)
            except OSError as exc:
                raise ReplayError(f"cannot read the recording {str(self.path)!r}: {exc}") from None
        if unmatched == "record":
            self._recording = _recording_for(self)

    # -- loading -----------------------------------------------------------------------
    def _load(self) -> None:
        """Read (if a path) and index the recording; in a worker thread when a
        loop runs. Sets ``_index`` or ``_failure``."""
        try:
            har = self._har if self._har is not None else _read(self.path)
            entries = [_Entry(i, e) for i, e in enumerate(_log_entries(har))]
        except ReplayError as exc:
            self._failure = exc.args[0]
            return
        except RecursionError:
            self._failure = "the recording nests too deeply to be a HAR file"
            return
        index, origins = {}, {}
        for entry in entries:
            _add(index, origins, entry)
        self._har, self._origins, self._count = har, origins, len(entries)
        self._index = index  # last: a loop thread reading it sees it whole

    async def _ready(self, driver) -> None:
        while self._index is None:
            if self._failure is not None:
                raise ReplayError(self._failure)
            if self._loading is None:
                self._loading = signal = driver.signal()
                try:
                    await driver.run_sync(self._load, None)
                finally:
                    self._loading = None
                    signal.set()
            else:
                await self._loading.wait(None)

    @property
    def har(self) -> dict:
        """The recording (a HAR dict), read now if it was not yet."""
        if self._index is None and self._failure is None:
            self._load()
        if self._failure is not None:
            raise ReplayError(self._failure)
        return self._har

    # -- the opener ------------------------------------------------------------------
    async def open(self, request, ctx):
        if self._index is None:
            await self._ready(ctx.driver)
        entry = self._match(request)
        if entry is None:
            if self.unmatched == "fail":
                raise self._miss(request)
            self.passed += 1
            return None
        self.answered += 1
        if entry.problem is not None:
            raise ReplayError(
                f"the recorded {entry.where} cannot be replayed: {entry.problem}", url=request.url
            )
        custom = entry.custom
        if custom is not None:
            error = custom.get("error")
            if error and not custom.get("wire"):
                raise _error(error, request)
        return SyntheticStream(ctx.driver, self._answerer(entry, ctx.driver), remote=("replay", 0))

    def _match(self, request) -> _Entry | None:
        live = _Key(request.method, str(request.url))
        group = self._index.get((live.method, live.place), ())
        candidates = tuple(e for e in group if e.key.matches(live))
        if candidates and self.match_body:
            text = _body_text(request)
            candidates = tuple(e for e in candidates if e.body_matches(text))
        if not candidates:
            return None
        ids = tuple(e.index for e in candidates)
        n = self._used[ids]
        self._used[ids] += 1
        return candidates[min(n, len(candidates) - 1)]

    def _miss(self, request) -> ReplayMissError:
        shown = f"{request.method} {redact_url(request.url)}"
        live = _Key(request.method, str(request.url))
        # The same method and path first (they differ in the query or the
        # body), else the same method and origin; a bounded number of them.
        pool = self._index.get((live.method, live.place)) or self._origins.get(
            (live.method, *live.place[:3]), ()
        )
        recorded = list(dict.fromkeys(f"{e.method} {redact_url(e.url)}" for e in pool[:MAX_CLOSE]))
        where = f" in {str(self.path)!r}" if self.path is not None else ""
        if recorded:
            import difflib  # on first use

            close = difflib.get_close_matches(shown, recorded, n=3, cutoff=0.0)
            nearest = "; closest recorded: " + ", ".join(close)
        elif self._count:
            scheme, host, port = live.place[:3]
            others = [f"{m} {s}://{h}:{p}" for m, s, h, p in list(self._origins)[:3]]
            more = ", ..." if len(self._origins) > 3 else ""
            nearest = (
                f"; nothing recorded for {live.method} {scheme}://{host}:{port}"
                f" (recorded: {', '.join(others)}{more})"
            )
        else:
            nearest = " (the recording is empty)"
        return ReplayMissError(
            f"no recorded exchange{where} matches {shown}{nearest}"
            ' (replay(..., unmatched="pass") sends such requests to the network)',
            url=request.url,
        )

    def _answerer(self, entry: _Entry, driver):
        custom = entry.custom
        recorded = self.timing == "recorded"
        speed, max_gap = self.speed, self.max_gap

        async def wait(gap: float) -> None:
            if recorded and gap > 0:
                gap /= speed
                await driver.sleep(gap if max_gap is None else min(gap, max_gap))

        async def from_wire(request):
            pieces = custom["wire"]
            times = custom.get("wire_times") or [0.0] * len(pieces)
            last, since, count = 0.0, 0, 0
            for number, (piece, at) in enumerate(zip(pieces, times, strict=False)):
                await wait(at - last)
                last = at
                for data in _decoded(piece, f"wire piece {number}"):
                    since, count = since + len(data), count + 1
                    if since > SLICE or count > YIELD_EVERY:
                        # Nothing awaited since the last yield (fast timing,
                        # a huge piece): let the loop run, as a socket would.
                        since, count = len(data), 1
                        await driver.sleep(0)
                    yield data
            error = custom.get("error")
            if error and error.get("type") in _RAISED:
                if error.get("type") == "NetworkError":
                    raise OSError(error.get("message", "connection broken"))
                raise _error(error, request)
            if not custom.get("complete", True) and not error:
                raise OSError("the recording ends here: the response was not read to its end")

        async def from_har(request):
            # A HAR without nbfetch's wire (a browser's): its status, headers
            # and text framed again by h11 (the chunk sizes are h11's).
            content = entry.har["response"].get("content", {})
            text = content.get("text", "")
            parts = []  # the body in slices, the loop let run between them
            if content.get("encoding") == "base64":
                for data in _decoded(text, "its response content.text"):
                    parts.append(data)
                    await driver.sleep(0)
            else:
                for start in range(0, len(text), SLICE):
                    parts.append(text[start : start + SLICE].encode())
                    await driver.sleep(0)
            status, headers, reason = entry.head
            length = str(sum(map(len, parts))).encode()
            yield request.respond(status, [*headers, (b"Content-Length", length)], reason)
            for data in parts:
                await driver.sleep(0)
                yield request.data(data)
            yield request.end()

        answer = from_wire if custom is not None and custom.get("wire") else from_har

        async def checked(request):
            # A recording is a file from anywhere: a malformed entry fails the
            # fetch with a ReplayError, never with a KeyError from inside h11's path.
            try:
                async for piece in answer(request):
                    yield piece
            except (KeyError, TypeError, ValueError, h11.LocalProtocolError) as exc:
                raise ReplayError(f"the recorded {entry.where} is malformed: {exc}") from None

        return checked

    # -- installed for the process -----------------------------------------------------
    def start(self) -> Replay:
        """Answer every client's fetches (that has no ``replay=`` of its own)."""
        if self._remove is None:
            self._remove = observe.push_opener(self)
            if self.unmatched == "record" and self._recording is None:
                self._recording = _recording_for(self)
        return self

    def stop(self) -> None:
        """Stop answering; in ``"record"`` mode, append what went to the network
        (through ``nbfetch.replay()`` or a client's ``replay=``)."""
        recording = self._stop_answering()
        if recording is not None:
            self._append(recording)

    def _stop_answering(self):
        if self._remove is not None:
            self._remove()
            self._remove = None
        recording, self._recording = self._recording, None
        return recording

    def _append(self, recording) -> None:
        recorded = recording.stop()
        new = recorded["log"]["entries"]
        if not new:
            return
        from .record import write_har

        har = _read(self.path) if self.path.exists() else recorded
        if har is not recorded:
            _log_entries(har).extend(new)
        write_har(self.path, har)
        if self._index is not None:
            for i, e in enumerate(new, start=self._count):
                _add(self._index, self._origins, _Entry(i, e))
            self._count += len(new)
            self._har = har

    def __enter__(self) -> Replay:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    async def __aenter__(self) -> Replay:
        return self.start()

    async def __aexit__(self, *exc_info) -> None:
        recording = self._stop_answering()
        if recording is not None:
            from ..drivers.auto import current_driver

            # Appending reads and writes the whole file: not on the loop.
            await current_driver().run_sync(lambda: self._append(recording), None)

    def __repr__(self) -> str:
        source = str(self.path) if self.path is not None else "a loaded HAR"
        count = f"{self._count} entries" if self._index is not None else "not loaded yet"
        return (
            f"<nbfetch.Replay {source}: {count}, unmatched={self.unmatched!r},"
            f" answered {self.answered}, passed {self.passed}>"
        )


def _add(index: dict, origins: dict, entry: _Entry) -> None:
    key = entry.key
    index.setdefault((key.method, key.place), []).append(entry)
    origins.setdefault((key.method, *key.place[:3]), []).append(entry)


def _recording_for(replay: Replay):
    """A recording of the fetches ``replay`` answers for (as the process's
    opener or a client's ``replay=``) and sends to the network."""
    from .record import Recording

    class Passed(Recording):
        def fetch_started(self, request, ctx):
            if ctx.opener is not replay:
                return None  # another client's, another replay's
            return super().fetch_started(request, ctx)

    return Passed(None, redact=replay.redact, live_only=True)


def _error(error: dict, request) -> FetchError:
    """The recorded error again: its class (a FetchError subclass), phase and message."""
    cls = getattr(errors, str(error.get("type")), None)
    if not (isinstance(cls, type) and issubclass(cls, FetchError)) or cls is errors.HTTPStatusError:
        cls = errors.NetworkError
    message, phase = str(error.get("message", "")), error.get("phase")
    # The message recorded is str(error): " [phase] (url)" ends it; str() adds them again.
    cut = message.find(f" [{phase}]") if phase else -1
    if cut != -1:
        message = message[:cut]
    return cls(f"{message} (replayed)", url=request.url, phase=phase)


def replay(
    source,
    *,
    unmatched: str = "fail",
    timing: str = "recorded",
    speed: float = 1.0,
    max_gap: float | None = 1.0,
    match_body: bool = False,
) -> Replay:
    """Answer every fetch of this process from the recording ``source`` (a HAR
    path, a loaded HAR dict, a stopped ``record()``) until ``stop()`` or the end
    of ``with`` / ``async with`` (see the module)."""
    return Replay(
        source,
        unmatched=unmatched,
        timing=timing,
        speed=speed,
        max_gap=max_gap,
        match_body=match_body,
    ).start()


__all__ = ["Replay", "ReplayError", "ReplayMissError", "replay"]
