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
from .api import default_client, fetch, fetch_sync
from .client import AsyncClient, Limits
from .core.headers import Headers
from .core.urls import URL
from .errors import (
    ConnectError,
    DecodeError,
    FetchCancelled,
    FetchError,
    FetchTimeout,
    HTTPStatusError,
    InvalidRequest,
    NetworkError,
    ProtocolError,
    RedirectError,
    TLSError,
    TooLargeError,
    TooManyRedirects,
)
from .events import Event, Timing
from .response import Chunk, Response

__all__ = [
    "__version__",
    "AsyncClient",
    "Chunk",
    "ConnectError",
    "DecodeError",
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
    "RedirectError",
    "Response",
    "TLSError",
    "Timing",
    "TooLargeError",
    "TooManyRedirects",
    "URL",
    "default_client",
    "fetch",
    "fetch_sync",
]
