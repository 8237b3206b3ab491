"""nbfetch: an asynchronous HTTP/1.1 client for notebooks, on h11, that lets you
watch every step of a fetch as it happens.

>>> import nbfetch
>>> r = await nbfetch.fetch("http://127.0.0.1:8000/get")           # doctest: +SKIP
>>> [e.name for e in r.events][:4]                                  # doctest: +SKIP
['queued', 'dequeued', 'connect.start', 'connect.done']

The notebook layer (magics, widgets) loads only when used, so ``import nbfetch``
stays light for scripts.
"""

from ._version import __version__
from .client.api import default_client, download, fetch, fetch_sync
from .client.async_client import AsyncClient
from .client.netlog import NetworkLog, network_log
from .client.netlog import enable_by_default as _enable_network_log
from .client.response import Chunk, Response
from .core.auth import DigestAuth
from .core.cookies import Cookie, CookieJar
from .core.errors import (
    ConnectError,
    DecodeError,
    FetchCancelled,
    FetchError,
    FetchTimeout,
    HTTPStatusError,
    InvalidRequest,
    NetworkError,
    ProtocolError,
    ProxyError,
    RedirectError,
    TLSError,
    TooLargeError,
    TooManyRedirects,
)
from .core.events import Event, Timing
from .core.headers import Headers
from .core.limits import Limits
from .core.retry import Retry
from .core.urls import URL

# The notebook layer (ipywidgets, IPython) loads on first use only.
_LAZY = {
    "fetch_many": "nbfetch.notebook.many",
    "FetchPanel": "nbfetch.notebook.panel",
    "ManyView": "nbfetch.notebook.many_view",
    # .http files: a live table in a kernel, else nbfetch.httpfile.arun_http as is.
    "run_http": "nbfetch.notebook.http",
    "RunView": "nbfetch.notebook.run_view",
    "ResponseView": "nbfetch.notebook.live",
    "FetchHandle": "nbfetch.notebook.live",
    "show_events": "nbfetch.notebook.live",
    # load runs: the live view in a kernel, the result alone in a script
    "load": "nbfetch.notebook.load",
    "load_sync": "nbfetch.notebook.load",
    "LoadView": "nbfetch.notebook.load_view",
    "LoadResult": "nbfetch.client.load",
    "LoadComparison": "nbfetch.client.load",
    # Record and replay (client layer; loaded on first use to keep imports light).
    "record": "nbfetch.client.record",
    "Recording": "nbfetch.client.record",
    "RecordingTruncated": "nbfetch.client.record",
    "RecordingBlocksLoop": "nbfetch.client.record",
    "replay": "nbfetch.client.replay",
    "Replay": "nbfetch.client.replay",
    "ReplayError": "nbfetch.client.replay",
    "ReplayMissError": "nbfetch.client.replay",
}


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'nbfetch' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)


def network(text: str | None = None, status=None, host=None, size: int | None = None):
    """The network log of this process (``client/netlog.py``): inside a kernel
    a live widget of every fetch so far, newest on top (filters preset from
    ``text``, ``status``, ``host``); elsewhere the ``NetworkLog`` itself (its
    ``rows()``, ``frame()``, ``to_har()``), recording from now on. ``size``:
    how many fetches the ring keeps."""
    network_log.enable(size)
    ip = _ipython()
    if ip is None or getattr(ip, "kernel", None) is None:
        return network_log
    from .notebook.network_view import NetworkView

    return NetworkView(network_log, text=text, status=status, host=host)


def load_ipython_extension(ip) -> None:
    """``%load_ext nbfetch``: registers ``%fetch`` and ``%%fetch``."""
    from .notebook.display import register
    from .notebook.magics import load
    from .notebook.tracebacks import install

    register(ip)
    install(ip)
    load(ip)


def _register_rich_display() -> None:
    """Inside a running IPython (a kernel), a ``Response`` shows as HTML and a
    ``FetchError`` as a few lines without ``%load_ext``: the notebook layer registers
    its formatter and exception handler with IPython. A script never loads IPython
    for it (only an IPython already imported is asked)."""
    ip = _ipython()
    if ip is not None:
        from .notebook.display import register
        from .notebook.tracebacks import install

        register(ip)
        install(ip)


def unload_ipython_extension(ip) -> None:
    from .notebook.magics import unload

    unload(ip)


def _ipython():
    """The running IPython, if one is (never imported for the asking)."""
    import sys

    ipython = sys.modules.get("IPython")
    return ipython.get_ipython() if ipython is not None else None


_register_rich_display()
# The network log records from import inside IPython (a kernel's log shows every
# fetch of the kernel), in a script only once asked (client/netlog.py).
_enable_network_log(_ipython() is not None)

__all__ = [
    "__version__",
    "AsyncClient",
    "Chunk",
    "ConnectError",
    "Cookie",
    "CookieJar",
    "DecodeError",
    "DigestAuth",
    "Event",
    "FetchCancelled",
    "FetchError",
    "FetchTimeout",
    "HTTPStatusError",
    "Headers",
    "InvalidRequest",
    "Limits",
    "NetworkError",
    "NetworkLog",
    "ProtocolError",
    "ProxyError",
    "RedirectError",
    "Response",
    "Retry",
    "TLSError",
    "Timing",
    "TooLargeError",
    "TooManyRedirects",
    "URL",
    "default_client",
    "fetch",
    "fetch_sync",
    "download",
    "network",
    "network_log",
]
