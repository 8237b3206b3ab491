"""The driver of the loop the caller runs in, chosen automatically."""

from __future__ import annotations

import sys

from .base import Driver


def current_driver() -> Driver:
    """The driver of the loop we run in: trio inside ``trio.run``, else asyncio."""
    trio = sys.modules.get("trio")
    if trio is not None:
        try:
            trio.lowlevel.current_task()
        except RuntimeError:
            pass  # trio is imported but not running here
        else:
            from .trio_driver import TrioDriver

            return TrioDriver()
    from .asyncio_driver import AsyncioDriver

    return AsyncioDriver()
