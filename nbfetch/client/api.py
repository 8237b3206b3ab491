"""Module-level fetching: one shared client per running loop (an asyncio loop,
or a ``trio.run``), and the sync API (asyncio only).

>>> r = await nbfetch.fetch("http://127.0.0.1:8000/get")      # doctest: +SKIP
>>> r = nbfetch.fetch_sync("http://127.0.0.1:8000/get")       # doctest: +SKIP
"""

from __future__ import annotations

import sys
import weakref
from collections.abc import Coroutine
from typing import Any, TypeVar

from ..core.errors import InvalidRequest
from ..drivers.auto import current_loop, in_trio
from .async_client import AsyncClient
from .response import Response

# A client's connections belong to the loop that opened them, so the shared
# client is per loop (the kernel's loop, in a notebook; per trio.run, keyed by
# its root task). Each value is (client, closer); see _closed_with_the_loop.
_default_clients: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
T = TypeVar("T")


def default_client() -> AsyncClient:
    """The shared ``AsyncClient`` of the running loop, asyncio's or trio's
    (created on first use, with that loop's driver). It is closed when its loop
    finishes (the end of ``asyncio.run`` or ``trio.run``)."""
    loop = current_loop()
    entry = _default_clients.get(loop)
    if entry is None or entry[0].closed:
        client = AsyncClient()
        _default_clients[loop] = (client, _closed_with_the_loop(loop, client))
        return client
    return entry[0]


def _closed_with_the_loop(loop, client: AsyncClient):
    """An async generator, started and left suspended, whose ``finally`` closes
    ``client`` and forgets it: both ``asyncio.run`` (``shutdown_asyncgens``) and
    ``trio.run`` close their loop's unfinished async generators before the loop
    ends, while it still runs.

    Without it every ``asyncio.run(nbfetch.fetch(url))`` kept a socket open
    forever: the entry's value (client, pool, transport) references its own weak
    key (the loop), so neither is ever collected. A loop closed without
    ``shutdown_asyncgens`` (a bare ``loop.close()``) still keeps them:
    ``AsyncClient`` in ``async with`` is the way there.
    """

    async def closer():
        try:
            yield
        finally:
            if _default_clients.get(loop, (None,))[0] is client:
                del _default_clients[loop]
            client.close()

    agen = closer()
    # One step by hand: the body up to ``yield`` never awaits, and this first
    # step is what registers the generator with the running loop's hooks.
    try:
        agen.asend(None).send(None)
    except StopIteration:
        pass
    return agen


async def fetch(url: str, method: str = "GET", **options: Any) -> Response:
    """Fetch with the shared client; same options as ``AsyncClient.fetch``."""
    return await default_client().fetch(url, method, **options)


async def download(url: str, path, method: str = "GET", **options: Any) -> Response:
    """Stream ``url``'s body to the file ``path`` with the shared client
    (see ``AsyncClient.download``)."""
    return await default_client().download(url, path, method, **options)


def fetch_sync(url: str, method: str = "GET", **options: Any) -> Response:
    """Fetch and wait, from code that cannot ``await``.

    With no loop running (a plain script) it runs a private loop. Inside a
    running loop (a notebook cell) it runs the fetch on that same loop through
    nest-asyncio2, so background fetches and widgets stay live; incoming kernel
    messages (a Cancel click) wait until it returns, so prefer ``await`` there.

    asyncio only: inside ``trio.run`` it raises ``InvalidRequest`` (blocking
    there would freeze trio's loop); ``await nbfetch.fetch(url)`` works on both.
    """
    import asyncio

    if in_trio():
        raise InvalidRequest(
            "fetch_sync() cannot block inside trio.run: use await nbfetch.fetch(url)", url=url
        )
    _refuse_in_browser("fetch_sync()", url)

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(_fetch_once(url, method, options))
    return run_sync(fetch(url, method, **options))


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to completion from synchronous code.

    Inside a running loop (a notebook cell, a ``def`` called from one) the
    coroutine runs on *that* loop, re-entered through nest-asyncio2 — never on
    another thread's loop, which would freeze every other task of the kernel.
    """
    import asyncio
    import contextlib

    _refuse_in_browser("a synchronous fetch", None, coro)
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    import nest_asyncio2  # applied lazily: only a sync call inside a running loop needs it

    nest_asyncio2.apply(loop)
    task = asyncio.ensure_future(coro)
    try:
        return loop.run_until_complete(task)
    except BaseException:
        # A KeyboardInterrupt (Kernel → Interrupt while a def runs a fetch)
        # stops run_until_complete but not the task: cancel it, and let it
        # close its socket and end its view before the interrupt goes on.
        if not task.done():
            task.cancel()
            with contextlib.suppress(BaseException):
                loop.run_until_complete(task)
        raise


def _refuse_in_browser(what: str, url, coro=None) -> None:
    """Under Pyodide the browser's event loop runs the kernel: nothing can
    wait for a fetch without returning to it (no threads, no nested loop), so
    a synchronous call fails at once, saying what to write instead."""
    if sys.platform != "emscripten":
        return
    if coro is not None:
        coro.close()  # never awaited: no "coroutine was never awaited" warning
    raise InvalidRequest(
        f"{what} cannot block in a browser (Pyodide: the page's event loop runs this"
        " kernel, with no threads): use await nbfetch.fetch(url), or %fetch in a cell",
        url=url,
    )


async def _fetch_once(url: str, method: str, options: dict) -> Response:
    async with AsyncClient() as client:
        return await client.fetch(url, method, **options)
