"""``nbfetch.fetch_many``: many fetches, watched live in a notebook.

>>> results = await nbfetch.fetch_many(urls, max_clients=8)     # doctest: +SKIP
>>> [r.status_code if isinstance(r, nbfetch.Response) else repr(r) for r in results]  # doctest: +SKIP

The notebook layer's front door to ``nbfetch.client.many.fetch_many`` (one
client, its ``max_clients`` queue) and to ``nbfetch.dask`` (``cluster=``): it
builds the live view (``ManyView``, ``ClusterView``) and passes it down.
Results come back in input order; a failed fetch is its ``FetchError`` in the
list, so one failure does not lose the others.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from ..client import many
from ..client.async_client import AsyncClient
from ..core.events import Event
from .kernel import in_kernel


async def fetch_many(
    urls: Iterable[str],
    *,
    max_clients: int = 10,
    client: AsyncClient | None = None,
    show: bool | None = None,
    trace: Callable[[int, Event], Any] | None = None,
    cluster: Any = None,
    show_secrets: bool = False,
    **options: Any,
) -> list:
    """Fetch every URL, at most ``max_clients`` at a time (or through ``client``'s
    queue). ``trace(index, event)`` sees every event of every fetch. ``show``:
    display a live waterfall (default: when running in a notebook kernel); it
    masks credentials unless ``show_secrets=True``.

    ``cluster=`` a ``dask.distributed.Client``: spread the URLs over its workers
    (see ``nbfetch.dask``; then the results are ``FetchResult`` records)."""
    if show is None:
        show = in_kernel()
    if cluster is not None:
        from ..dask import fetch_many_distributed

        return await fetch_many_distributed(
            urls,
            cluster=cluster,
            max_clients=max_clients,
            watch=_show_cluster if show else None,
            **options,
        )
    views = []
    if show:
        from IPython.display import display

        from .many_view import ManyView

        urls = list(urls)
        view = ManyView(
            urls,
            max_clients=client.max_clients if client else max_clients,
            method=options.get("method", "GET"),
            show_secrets=show_secrets,
        )
        display(view)
        views.append(view)
    results: list[Any] | None = None
    try:
        results = await many.fetch_many(
            urls, max_clients=max_clients, client=client, trace=trace, views=views, **options
        )
    finally:
        # Whatever happened (an Interrupt too), the output ends as a static
        # waterfall and the widget models close (D1).
        for view in views:
            if results is not None:
                view.attach_results(results)
            view.settle()
    return results


def _show_cluster(progress):
    from IPython.display import display

    from .dask_view import ClusterView

    view = ClusterView(progress)
    display(view)
    return view
