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
secret fields masked on both sides). Headers are not compared. Identical
requests take the recorded ones in order; once they are used up the last one
answers again (a notebook cell run twice replays as it did).

**Unmatched** requests (``unmatched=``): ``"fail"`` (the default) raises
``ReplayMissError`` naming the request and the closest recorded ones, before
anything is opened: no socket, no DNS; ``"pass"`` sends them to the network;
``"record"`` sends them and appends them to the file when the replay stops
(``with`` / ``stop()`` only).

**Timing** (``timing=``): ``"recorded"`` (the default) waits the recorded gaps
between the pieces (and before the first: the server's think time) divided by
``speed=``, each wait at most ``max_gap`` seconds (1 s): a /drip keeps its
rhythm, a 30 s wait in the recording does not make a tutorial slow.
``"fast"`` sends every piece at once.

**Errors**: a hop recorded as failing before its response (refused, a
timeout) fails again with the same class of error, before anything is sent;
one that broke mid-body replays its bytes, then breaks the same way. An
entry the recording could not keep whole (``max_bytes``, a secret in a
compressed body) is refused with ``ReplayError`` saying why.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from collections import Counter
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

from ..core import errors
from ..core.errors import FetchError
from ..core.redact import Secrets, redact_pairs, redact_url
from ..drivers.synthetic import SyntheticStream
from . import observe

MODES = ("fail", "pass", "record")
TIMINGS = ("recorded", "fast")
#: Errors replayed by raising their class again; the others (ProtocolError,
#: DecodeError, TooLargeError) come back by themselves from the recorded bytes.
_RAISED = ("ConnectError", "TLSError", "ProxyError", "FetchTimeout", "NetworkError")


class ReplayError(FetchError):
    """A recording cannot answer a request (an entry it could not keep whole)."""

    default_phase = "replay"


class ReplayMissError(ReplayError):
    """No recorded exchange matches the request (``unmatched="fail"``)."""


def _masked(value: str) -> bool:
    return bool(value) and set(value) <= {"*"}


class _Key:
    """A request's method and URL as matching compares them."""

    __slots__ = ("method", "place", "query")

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
        self.query = sorted(parse_qsl(parts.query, keep_blank_values=True))

    def matches(self, live: _Key) -> bool:
        if self.method != live.method or self.place != live.place:
            return False
        if len(self.query) != len(live.query):
            return False
        if self.query == live.query:
            return True
        # A redacted value matches any: compare names, then the unmasked values.
        left = Counter(k for k, _ in self.query)
        if left != Counter(k for k, _ in live.query):
            return False
        wanted = Counter((k, v) for k, v in self.query if not _masked(v))
        have = Counter((k, v) for k, v in live.query)
        return not (wanted - have)


def _load(source) -> dict:
    if isinstance(source, dict):
        return source
    har = getattr(source, "har", None)  # a stopped nbfetch.record()
    if isinstance(har, dict):
        return har
    if isinstance(source, (str, os.PathLike)):
        try:
            with open(source, encoding="utf-8") as f:
                return json.load(f)
        except OSError as exc:
            raise ReplayError(f"cannot read the recording {str(source)!r}: {exc}") from None
        except ValueError as exc:
            raise ReplayError(f"{str(source)!r} is not a HAR file (JSON): {exc}") from None
    raise TypeError("replay= takes a HAR file's path, a loaded HAR dict or a stopped record()")


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
        self.path = Path(source) if isinstance(source, (str, os.PathLike)) else None
        if unmatched == "record" and self.path is None:
            raise ValueError('unmatched="record" needs the recording\'s path to append to')
        self.har = _load(source)
        self.unmatched = unmatched
        self.timing, self.speed, self.max_gap = timing, speed, max_gap
        self.match_body = match_body
        self.redact = redact
        try:
            entries = self.har["log"]["entries"]
            self._entries = [
                (e, _Key(e["request"]["method"], e["request"]["url"])) for e in entries
            ]
        except (KeyError, TypeError) as exc:
            raise ReplayError(f"not a HAR log: missing {exc}") from None
        self._used: Counter = Counter()  # times each group of candidates answered
        self.answered = 0  # requests answered from the recording
        self.passed = 0  # requests sent to the network (pass, record)
        self._remove = None
        self._recording = None

    # -- the opener ------------------------------------------------------------------
    async def open(self, request, ctx):
        entry = self._match(request)
        if entry is None:
            if self.unmatched == "fail":
                raise self._miss(request)
            self.passed += 1
            return None
        custom = entry.get("_nbfetch")
        self.answered += 1
        if custom is not None:
            if not custom.get("replayable", True):
                raise ReplayError(
                    f"the recorded {request.method} {redact_url(request.url)} cannot be"
                    f" replayed: {custom.get('note') or 'it was not kept whole'}",
                    url=request.url,
                )
            error = custom.get("error")
            if error and not custom.get("wire"):
                raise _error(error, request)
        return SyntheticStream(ctx.driver, self._answerer(entry, ctx.driver), remote=("replay", 0))

    def _match(self, request):
        live = _Key(request.method, str(request.url))
        candidates = tuple(i for i, (_, key) in enumerate(self._entries) if key.matches(live))
        if candidates and self.match_body:
            text = _body_text(request)
            candidates = tuple(
                i
                for i in candidates
                if self._entries[i][0]["request"].get("postData", {}).get("text") == text
                or (text is None and "postData" not in self._entries[i][0]["request"])
            )
        if not candidates:
            return None
        n = self._used[candidates]
        self._used[candidates] += 1
        return self._entries[candidates[min(n, len(candidates) - 1)]][0]

    def _miss(self, request) -> ReplayMissError:
        shown = f"{request.method} {redact_url(request.url)}"
        recorded = list(
            dict.fromkeys(
                f"{e['request']['method']} {e['request']['url']}" for e, _ in self._entries
            )
        )
        import difflib  # on first use

        close = difflib.get_close_matches(shown, recorded, n=3, cutoff=0.0)
        where = f" in {str(self.path)!r}" if self.path is not None else ""
        nearest = (
            "; closest recorded: " + ", ".join(close) if close else " (the recording is empty)"
        )
        return ReplayMissError(
            f"no recorded exchange{where} matches {shown}{nearest}"
            ' (replay(..., unmatched="pass") sends such requests to the network)',
            url=request.url,
        )

    def _answerer(self, entry: dict, driver):
        custom = entry.get("_nbfetch")
        recorded = self.timing == "recorded"
        speed, max_gap = self.speed, self.max_gap

        async def wait(gap: float) -> None:
            if recorded and gap > 0:
                gap /= speed
                await driver.sleep(gap if max_gap is None else min(gap, max_gap))

        async def from_wire(request):
            pieces = custom["wire"]
            times = custom.get("wire_times") or [0.0] * len(pieces)
            last = 0.0
            for piece, at in zip(pieces, times, strict=False):
                await wait(at - last)
                last = at
                yield base64.b64decode(piece)
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
            response = entry["response"]
            content = response.get("content", {})
            text = content.get("text", "")
            body = base64.b64decode(text) if content.get("encoding") == "base64" else text.encode()
            skip = {"content-length", "transfer-encoding", "content-encoding", "connection"}
            headers = [
                (h["name"], h["value"])
                for h in response.get("headers", [])
                if h["name"].lower() not in skip and not h["name"].startswith(":")
            ]
            headers.append(("Content-Length", str(len(body))))
            yield request.respond(int(response["status"]), headers, response.get("statusText", ""))
            yield request.data(body)
            yield request.end()

        answer = from_wire if custom is not None and custom.get("wire") else from_har
        where = f"{entry.get('request', {}).get('method')} {entry.get('request', {}).get('url')}"

        async def checked(request):
            # A recording is a file from anywhere: a malformed entry fails the
            # fetch with a ReplayError, never with a KeyError from inside h11's path.
            try:
                async for piece in answer(request):
                    yield piece
            except (KeyError, TypeError, ValueError, binascii.Error) as exc:
                raise ReplayError(
                    f"the recorded entry for {redact_url(where)} is malformed: {exc!r}"
                ) from None

        return checked

    # -- installed for the process -----------------------------------------------------
    def start(self) -> Replay:
        """Answer every client's fetches (that has no ``replay=`` of its own)."""
        if self._remove is None:
            self._remove = observe.push_opener(self)
            if self.unmatched == "record":
                from .record import Recording

                self._recording = Recording(None, redact=self.redact, live_only=True)
        return self

    def stop(self) -> None:
        """Stop answering; in ``"record"`` mode, append what went to the network."""
        if self._remove is None:
            return
        self._remove()
        self._remove = None
        recording, self._recording = self._recording, None
        if recording is not None:
            new = recording.stop()["log"]["entries"]
            if new:
                from .record import write_har

                har = _load(self.path) if self.path.exists() else recording.har
                if har is not recording.har:
                    har["log"]["entries"].extend(new)
                write_har(self.path, har)
                self._entries.extend(
                    (e, _Key(e["request"]["method"], e["request"]["url"])) for e in new
                )

    def __enter__(self) -> Replay:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    async def __aenter__(self) -> Replay:
        return self.start()

    async def __aexit__(self, *exc_info) -> None:
        self.stop()

    def __repr__(self) -> str:
        source = str(self.path) if self.path is not None else "a loaded HAR"
        return (
            f"<nbfetch.Replay {source}: {len(self._entries)} entries, unmatched={self.unmatched!r},"
            f" answered {self.answered}, passed {self.passed}>"
        )


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
