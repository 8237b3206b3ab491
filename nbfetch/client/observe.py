"""Process-wide instruments: what sees every fetch, whatever client made it
(the network log, ``record()``), and what may answer a fetch instead of the
network (``replay()``; the browser's fetch under Pyodide).

**Observers.** ``add_observer(observer)`` tells ``observer.fetch_started(request,
ctx)`` of each fetch once, as it is queued (before its ``queued`` event). It
may return a trace subscriber (it then sees the fetch's events as ``trace=``
does) and may add taps to the fetch's context: ``ctx.wire_taps``, called with
each piece read from the connection before h11 parses it (raw: head, framing
and body; a view valid only during the call, copy what you keep), and
``ctx.body_taps``, called with each decoded piece handed to the caller. Taps
run on the loop: keep them cheap and bounded. An observer that raises is logged
and skipped; it never breaks a fetch. With no observer a fetch pays one test.

**Openers.** A fetch's ``ctx.opener`` (the client's own, else the innermost one
``push_opener`` installed) is asked ``await opener.open(request, ctx)`` before
each hop connects: a ``Stream`` (usually ``drivers.synthetic.SyntheticStream``)
answers that hop, ``None`` sends it to the network as usual. A synthetic
connection is never pooled and emits no resolve/connect/TLS events of its own
(an opener emits what it can truly report).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from ..core.events import Subscriber
    from ..core.request import Request
    from ..drivers.base import Stream
    from .context import FetchContext


class Observer(Protocol):
    def fetch_started(self, request: Request, ctx: FetchContext) -> Subscriber | None: ...


class Opener(Protocol):
    async def open(self, request: Request, ctx: FetchContext) -> Stream | None: ...


_observers: list[Observer] = []
_openers: list[Opener] = []


def add_observer(observer: Observer) -> Callable[[], None]:
    """Tell ``observer`` of every fetch from now on; returns the function that
    stops it (idempotent)."""
    _observers.append(observer)

    def remove() -> None:
        if observer in _observers:
            _observers.remove(observer)

    return remove


def observers() -> tuple[Observer, ...]:
    return tuple(_observers)


def push_opener(opener: Opener) -> Callable[[], None]:
    """Answer fetches with ``opener`` (innermost first) until the returned
    function is called."""
    _openers.append(opener)

    def remove() -> None:
        if opener in _openers:
            _openers.remove(opener)

    return remove


def current_opener() -> Opener | None:
    return _openers[-1] if _openers else None


def started(request: Request, ctx: FetchContext) -> None:
    """Tell every observer of a fetch; add the subscribers they return."""
    added = []
    for observer in tuple(_observers):
        try:
            subscriber = observer.fetch_started(request, ctx)
        except Exception:
            logging.getLogger("nbfetch").exception("nbfetch observer %r failed", observer)
            continue
        if subscriber is not None:
            added.append(subscriber)
    if added:
        rec = ctx.recorder
        rec.subscribers = (*rec.subscribers, *added)


__all__ = [
    "Observer",
    "Opener",
    "add_observer",
    "current_opener",
    "observers",
    "push_opener",
    "started",
]
