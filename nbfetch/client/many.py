"""Many fetches at once through one client's ``max_clients`` queue.

>>> results = await nbfetch.fetch_many(urls, max_clients=8)     # doctest: +SKIP
>>> [r.status_code if isinstance(r, nbfetch.Response) else repr(r) for r in results]  # doctest: +SKIP

Results come back in input order; a failed fetch is its ``FetchError`` in the
list, so one failure does not lose the others. In a notebook, ``show=True`` (the
default there) displays a live waterfall of all of them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
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
    show: bool | None = None,
    trace: Callable[[int, Event], Any] | None = None,
    cluster: Any = None,
    **options: Any,
) -> list[Response | FetchError]:
    """Fetch every URL, at most ``max_clients`` at a time (or through ``client``'s
    queue). ``trace(index, event)`` sees every event of every fetch. ``show``:
    display a live waterfall (default: when running in a notebook kernel).

    ``cluster=`` a ``dask.distributed.Client``: spread the URLs over its workers
    (see ``nbfetch.dask``; then the results are ``FetchResult`` records)."""
    import asyncio

    if cluster is not None:
        from ..dask import fetch_many_distributed

        return await fetch_many_distributed(
            urls, cluster=cluster, max_clients=max_clients, show=show, **options
        )

    urls = list(urls)
    own = client is None
    if own:
        client = AsyncClient(max_clients=max_clients)
    subscribers: list[Callable[[int, Event], Any]] = [trace] if trace else []
    if show is None:
        show = _in_kernel()
    view = None
    if show:
        from ..notebook.many_view import ManyView

        view = ManyView(urls, max_clients=client.max_clients)
        subscribers.append(view.trace)
        from IPython.display import display

        display(view)

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
        results = await asyncio.gather(*[one(i, u) for i, u in enumerate(urls)])
    finally:
        if own:
            await client.aclose()
        if view is not None:
            view.finish()
    return list(results)


def _in_kernel() -> bool:
    import sys

    if "IPython" not in sys.modules:
        return False
    from IPython import get_ipython

    ip = get_ipython()
    return ip is not None and hasattr(ip, "kernel")
