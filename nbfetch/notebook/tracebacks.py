"""Short tracebacks for nbfetch's errors in IPython; the full one stays one ``%tb`` away.

A ``FetchError`` that ends a cell shows as a few lines (type and message, URL,
phase, a hint) instead of some 60 lines of nbfetch internals::

    ConnectError: cannot resolve 'nosuch.invalid': [Errno -2] Name or service not known
      url:   http://nosuch.invalid/
      phase: resolve
      hint:  the host name does not resolve: check its spelling, then the network/DNS
      full traceback: %tb

It is an IPython custom exception handler (``set_custom_exc``), not
``_render_traceback_``: IPython's ``%tb`` renders ``sys.last_value`` through
``showtraceback``, which would ask ``_render_traceback_`` again and hide the stack
there too; the handler only decides what the failing cell prints, and leaves
``sys.last_*`` for ``%tb`` to show in full.

A handler already set (by the user or another extension) is kept: the exceptions
it was registered for still go to it, first; only other ``FetchError``\\ s are
ours, and a ``CancelledError`` that came up through nbfetch (Kernel → Interrupt
during ``await nbfetch.fetch(...)``: one line). A handler set after this one
replaces it (IPython holds one); nbfetch's errors then show IPython's usual
traceback.
"""

from __future__ import annotations

import asyncio
import sys
import weakref

from ..core.errors import FetchCancelled, FetchError

_IN_VIEW = "_nbfetch_in_view"
# The shells we installed into, with the handler we left there (to install once).
_installed: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_RED, _RESET = "\x1b[0;31m", "\x1b[0m"


def mark_shown(exc: BaseException) -> None:
    """``exc`` is already on screen in a live view: the cell adds one line only."""
    setattr(exc, _IN_VIEW, True)


def _through_nbfetch(tb) -> bool:
    """Did the exception come up through nbfetch's code?"""
    while tb is not None:
        if tb.tb_frame.f_globals.get("__name__", "").startswith("nbfetch."):
            return True
        tb = tb.tb_next
    return False


def short_traceback(exc: BaseException) -> list[str]:
    """The lines a cell that raised ``exc`` shows."""
    name = f"{_RED}{type(exc).__name__}{_RESET}"
    if not isinstance(exc, FetchError):  # a CancelledError out of a fetch
        return [f"{name}: the fetch was cancelled (Kernel → Interrupt?); %tb: full traceback"]
    if isinstance(exc, FetchCancelled):  # the user's own doing: what and where, no more
        return [f"{name}: {exc}"]
    if getattr(exc, _IN_VIEW, False):
        return [f"{name}: {exc.message} (details in the view above; %tb: full traceback)"]
    lines = [f"{name}: {exc.message}"]
    if exc.url:
        lines.append(f"  url:   {exc.url}")
    if exc.phase and exc.phase != "request":  # "request": before anything was sent
        lines.append(f"  phase: {exc.phase}")
    if exc.hint:
        lines.append(f"  hint:  {exc.hint}")
    lines.append("  full traceback: %tb")
    return lines


def install(ip) -> None:
    """Make IPython ``ip`` show nbfetch's errors short (idempotent)."""
    if _installed.get(ip) is ip.CustomTB:
        return
    theirs = tuple(ip.custom_exceptions)
    previous = ip.CustomTB if theirs else None

    def handler(shell, etype, value, tb, tb_offset=None):
        if previous is not None and issubclass(etype, theirs):
            return previous(etype, value, tb, tb_offset=tb_offset)
        if not isinstance(value, FetchError) and (value.args or not _through_nbfetch(tb)):
            # A cancellation elsewhere, or one with a message of its own (a
            # user's on_chunk raising CancelledError("why")): IPython's own
            # traceback, as without us.
            return shell.showtraceback((etype, value, tb), tb_offset=tb_offset)
        # What showtraceback would record: %tb then shows this error's whole stack.
        sys.last_type, sys.last_value, sys.last_traceback = etype, value, tb
        if sys.version_info >= (3, 12):
            sys.last_exc = value
        stb = short_traceback(value)
        shell._showtraceback(etype, value, stb)  # the kernel's hook: sends the error message
        return stb

    # CancelledError: ipykernel cancels an awaiting cell on Kernel → Interrupt;
    # inside ``await nbfetch.fetch(...)`` that is a one-line result too.
    ip.set_custom_exc((*theirs, FetchError, asyncio.CancelledError), handler)
    _installed[ip] = ip.CustomTB
