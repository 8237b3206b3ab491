"""``nbfetch.load``: a load run, watched live in a notebook.

>>> result = await nbfetch.load("http://127.0.0.1:8000/get", n=1000, concurrency=32,
...                             slo={"p95.total": "200ms", "errors": 0})  # doctest: +SKIP
>>> assert result.passed                                                   # doctest: +SKIP

The notebook layer's front door to ``nbfetch.client.load``: in a kernel it
shows a ``LoadView`` (with a Cancel button) and returns the result; in a
script it only returns the result. The arguments are checked (loopback, the
slo, the counts) before anything is sent or shown.
"""

from __future__ import annotations

import asyncio
from typing import Any

from ..client.api import run_sync
from ..client.load import LoadComparison, LoadResult, LoadRun
from ..core.errors import InvalidRequest
from ..drivers.auto import in_trio
from .kernel import in_kernel


async def load(
    url: str,
    n: int | None = 1000,
    concurrency: int = 32,
    duration: float | str | None = None,
    rate: float | None = None,
    method: str = "GET",
    *,
    show: bool | None = None,
    **kwargs: Any,
) -> LoadResult | LoadComparison:
    """Run ``n`` requests (per configuration; ``None``: until ``duration``), at most
    ``concurrency`` at a time, against a server you own, and return the result.

    ``duration=`` (seconds or ``"30s"``) ends the run at whichever of ``n`` and
    the duration comes first: no request starts after it, and those in flight
    then finish and count (bounded by the fetch timeouts: ``request_timeout=``
    bounds that tail). ``rate=`` (requests/s) starts requests on a fixed
    schedule (open loop) instead of as soon as one ends: latency then counts
    from each request's intended start, and the result says when the client
    fell behind. ``compare=`` another URL, or a dict of what differs (``url``,
    ``label``, ``method``, ``client``, ``client_options``, any fetch option):
    the two alternate request by request, each with ``n``, ``concurrency`` and
    ``rate``. ``slo={"p95.total": "200ms", "errors": 0}``: ``result.passed``.
    ``client=`` a client of yours (else each configuration gets its own,
    ``AsyncClient(max_clients=concurrency, **client_options)``, closed at the
    end). ``allow_remote=True`` permits a target outside loopback. Every other
    keyword is a fetch option (``headers=``, ``json=``, ``data=``, timeouts...).

    ``show``: the live view (default: in a kernel). Its Cancel button stops the
    run and returns the partial result (``result.cancelled``); cancelling the
    awaiting task stops it too and raises ``CancelledError`` as usual. Either
    way every fetch in flight is cancelled and the clients it opened are closed.
    """
    run = LoadRun(url, n, concurrency, duration, rate, method, **kwargs)
    if show is None:
        show = in_kernel()
    if not show:
        return await run.run()
    from IPython.display import display

    from .load_view import LoadView

    view = LoadView(run)
    run.on_change = view.changed
    display(view)
    task = asyncio.ensure_future(run.run())
    view.bind(task)
    try:
        result = await task
    except asyncio.CancelledError:
        if view.cancel_requested and not _current_task_cancelling():
            view.finish()  # the Cancel button: the partial result is the answer
            return run.snapshot()
        view.finish()
        raise
    except BaseException as exc:
        view.finish(exc)
        raise
    view.finish()
    return result


def load_sync(url: str, n: int | None = 1000, concurrency: int = 32, **kwargs: Any):
    """``load()`` from code that cannot ``await`` (a script: it runs a private
    loop; a notebook ``def``: the kernel's loop, as ``fetch_sync`` does).
    asyncio only: inside ``trio.run`` it raises ``InvalidRequest``."""
    if in_trio():
        raise InvalidRequest(
            "load_sync() cannot block inside trio.run: use await nbfetch.load(url)"
        )
    return run_sync(load(url, n, concurrency, **kwargs))


def _current_task_cancelling() -> bool:
    task = asyncio.current_task()
    return bool(task is not None and getattr(task, "cancelling", lambda: 0)())
