"""The driver of the loop the caller runs in, chosen automatically, and the
running loop's identity (the module-level API keeps one client per loop)."""

from __future__ import annotations

import sys

from .base import Driver


def _trio_root_task():
    """The root task of the ``trio.run`` running in this thread, or None."""
    trio = sys.modules.get("trio")  # never imported here: only a running trio counts
    if trio is None:
        return None
    try:
        return trio.lowlevel.current_root_task()
    except RuntimeError:
        return None  # trio is imported but not running here


def in_trio() -> bool:
    return _trio_root_task() is not None


def current_driver() -> Driver:
    """The driver of the loop we run in: trio inside ``trio.run``, the browser's
    under Pyodide (no sockets, no threads), else asyncio."""
    if sys.platform == "emscripten":  # pragma: no cover - Pyodide only (tests/lite)
        from .browser import BrowserDriver

        return BrowserDriver()
    if in_trio():
        from .trio_driver import TrioDriver

        return TrioDriver()
    from .asyncio_driver import AsyncioDriver

    return AsyncioDriver()


def current_loop() -> object:
    """The running loop as a (weakly referenceable) key: the root task of the
    current ``trio.run``, or the running asyncio loop (``RuntimeError`` outside
    both). A client's connections belong to the loop that opened them."""
    root = _trio_root_task()
    if root is not None:
        return root
    import asyncio

    return asyncio.get_running_loop()
