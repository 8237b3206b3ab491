"""Many fetches at once through one client's ``max_clients`` queue.

>>> results = await fetch_many(urls, max_clients=8)              # doctest: +SKIP
>>> [r.status_code if isinstance(r, Response) else repr(r) for r in results]  # doctest: +SKIP

Results come back in input order; a failed fetch is its ``FetchError`` in the
list, so one failure does not lose the others. Views are passed in from above
(``nbfetch.fetch_many`` adds the live waterfall in a notebook): this layer
builds no widget.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from ..core.errors import FetchError
from ..core.events import Event
from .async_client import AsyncClient
from .response import Response


async def fetch_many(
    urls: Iterable[str],
    *,
    max_clients: int = 10,
    client: AsyncClient | None = None,
    trace: Callable[[int, Event], Any] | None = None,
    views: Sequence[Any] = (),
    **options: Any,
) -> list[Response | FetchError]:
    """Fetch every URL, at most ``max_clients`` at a time (or through ``client``'s
    queue). ``trace(index, event)`` sees every event of every fetch, and so does
    each of ``views`` (``view.trace(index, event)``; ``view.finish()`` is called
    when all are done, whatever happened)."""
    urls = list(urls)
    own = client is None
    if own:
        client = AsyncClient(max_clients=max_clients)
    subscribers: list[Callable[[int, Event], Any]] = [trace] if trace else []
    subscribers += [view.trace for view in views]

    def tracer(index: int):
        if not subscribers:
            return None
        if len(subscribers) == 1:
            only = subscribers[0]
            return lambda event: only(index, event)
        return lambda event: [s(index, event) for s in subscribers]

    async def one(index: int, url: str):
        try:
            return await client.fetch(url, trace=tracer(index), **options)
        except FetchError as exc:
            return exc

    try:
        results = await client.driver.gather([one(i, u) for i, u in enumerate(urls)])
    finally:
        if own:
            await client.aclose()
        for view in views:
            view.finish()
    return list(results)
