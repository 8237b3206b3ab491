"""The client layer: ``AsyncClient`` and the module-level API, on any driver.

How a fetch flows (one module per step)::

    async_client.py  AsyncClient.fetch/stream/download: checks the options, builds
                     the Request (core/request.py) and the FetchContext (context.py)
    queue.py         the max_clients queue: wait for a slot (queued, dequeued)
    pool.py          an idle keep-alive connection of the origin, if any
    connect.py       else resolve (hostnames.py), TCP, TLS (resolve.*, connect.*, tls.*)
    exchange.py      one request/response on it: send, read the head, then the
                     body piece by piece (h11 via core/protocol.py, decoders)
    response.py      the Response the caller reads; redirects loop back to the
                     exchange step (async_client.py, policy in core/redirects.py)
    release          the connection back to pool.py (or closed), the slot back to
                     queue.py, when the body was read or the response closed

Where things are: every timeout's wait is computed in context.py
(``FetchContext.step_timeout``; the read timeout is applied in exchange.py);
events are recorded by recorder.py; ``fetch_many`` is many.py (its live view
is the notebook layer's, notebook/many.py; the widget throttle is
notebook/throttle.py); the module-level ``fetch`` is api.py; HAR and DataFrame
export is export.py. The Tornado adapter, with its error mapping
(``AsyncHTTPClient._tornado_error``), is nbfetch/tornado.py.
"""

from .async_client import AsyncClient

__all__ = ["AsyncClient"]
