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
    # Record and replay (client layer; loaded on first use to keep imports light).
    "record": "nbfetch.client.record",
    "Recording": "nbfetch.client.record",
    "RecordingTruncated": "nbfetch.client.record",
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
    import sys

    ipython = sys.modules.get("IPython")
    ip = ipython.get_ipython() if ipython is not None else None
    if ip is not None:
        from .notebook.display import register
        from .notebook.tracebacks import install

        register(ip)
        install(ip)


def unload_ipython_extension(ip) -> None:
    from .notebook.magics import unload

    unload(ip)


_register_rich_display()

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
]
