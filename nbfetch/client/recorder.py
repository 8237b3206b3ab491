"""The recorder of one fetch's events: it reads the clock (``perf_counter``),
keeps the events in order and hands each to the ``trace`` subscribers."""

from __future__ import annotations

from time import perf_counter, time

from ..core.events import Event, Subscriber


class Recorder:
    """Collects the events of one fetch (all its redirect hops) in order."""

    __slots__ = (
        "body_events",
        "dropped",
        "events",
        "hop_starts",
        "max_body_events",
        "start",
        "subscribers",
        "wall",
    )

    def __init__(
        self, subscribers: tuple[Subscriber, ...] = (), max_body_events: int | None = None
    ):
        self.events: list[Event] = []
        self.start = perf_counter()
        self.wall = time()  # wall-clock start, for exports (HAR startedDateTime)
        self.subscribers = subscribers
        self.hop_starts = [0]
        self.body_events = 0
        self.max_body_events = max_body_events
        self.dropped = 0

    def emit(self, name: str, details: dict | None = None, body: bool = False) -> Event:
        """Record ``name`` and hand it to every subscriber.

        ``body`` events (``response.chunk``, ``response.data``: one per chunk or
        read) are kept in ``events`` up to ``max_body_events``; past that they
        still reach subscribers live but are counted in ``dropped`` instead of
        kept, so a stream of a million chunks cannot exhaust memory.
        """
        now = perf_counter()
        event = Event(name, now, now - self.start, details)
        if body:
            self.body_events += 1
            limit = self.max_body_events
            if limit is not None and self.body_events > limit:
                self.dropped += 1
            else:
                self.events.append(event)
        else:
            self.events.append(event)
        if self.subscribers:
            for subscriber in self.subscribers:
                try:
                    subscriber(event)
                except Exception:  # an observer must never break the fetch
                    import logging

                    logging.getLogger("nbfetch").exception(
                        "nbfetch trace subscriber %r failed on %s", subscriber, name
                    )
        return event

    def offset_now(self) -> float:
        return perf_counter() - self.start

    def new_hop(self) -> int:
        """Mark where the next redirect hop's events start; returns its index."""
        self.hop_starts.append(len(self.events))
        return len(self.hop_starts) - 1
