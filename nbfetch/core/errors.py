"""The one error hierarchy of nbfetch.

Every error says what happened, in which phase of the fetch, and to which URL::

    try:
        await nbfetch.fetch("http://127.0.0.1:9/")
    except nbfetch.ConnectError as e:
        print(e.phase, e.url)      # connect http://127.0.0.1:9/

An HTTP error status (404, 500, ...) is a response, not an exception, unless
``Response.raise_for_status()`` is called.

The URL an error names never shows credentials: ``url`` is kept with its
userinfo redacted (``http://***@host/``), even for a string the parser rejected.
"""

from __future__ import annotations

from .redact import redact_url

__all__ = [
    "FetchError",
    "InvalidRequest",
    "ConnectError",
    "TLSError",
    "NetworkError",
    "FetchTimeout",
    "ProtocolError",
    "DecodeError",
    "TooLargeError",
    "RedirectError",
    "TooManyRedirects",
    "FetchCancelled",
    "HTTPStatusError",
]


class FetchError(Exception):
    """Base of every error nbfetch raises.

    Attributes: ``url`` (str or None; userinfo redacted), ``phase`` (the lifecycle
    phase in which it happened: queue, resolve, connect, tls, send, wait, download,
    decode, redirect, request), and ``message`` (what happened, without the URL).
    """

    default_phase = "request"

    def __init__(self, message: str, *, url: object = None, phase: str | None = None):
        self.message = message
        # Redacted when stored: the password never reaches str(), repr(), events or logs.
        self.url = None if url is None else redact_url(url)
        # A class with its own phase (ConnectError: connect) knows where it happened.
        self._given_phase = phase or (
            None if self.default_phase == "request" else self.default_phase
        )
        self.phase = phase or self.default_phase
        super().__init__(message)

    def __str__(self) -> str:
        where = f" [{self.phase}]" if self.phase else ""
        target = f" ({self.url})" if self.url else ""
        return f"{self.message}{where}{target}"

    def with_context(self, url: object, phase: str | None = None) -> FetchError:
        """Fill in the URL and phase where the raiser did not know them."""
        if self.url is None and url is not None:
            self.url = redact_url(url)
        if phase and self._given_phase is None:
            self._given_phase = self.phase = phase
        return self


class InvalidRequest(FetchError, ValueError):
    """The request itself is invalid; raised before anything is sent."""


class ConnectError(FetchError):
    """Resolving the host or opening the TCP connection failed."""

    default_phase = "connect"


class TLSError(ConnectError):
    """The TLS handshake failed (certificate, hostname, protocol)."""

    default_phase = "tls"


class NetworkError(FetchError):
    """The connection broke after it was established (reset, closed while sending)."""


class FetchTimeout(FetchError):
    """A timeout fired. ``phase`` says where, ``timeout`` names the setting
    (connect_timeout, read_timeout, request_timeout, queue_timeout) and
    ``seconds`` its value."""

    def __init__(
        self,
        message: str,
        *,
        url: object = None,
        phase: str | None = None,
        timeout: str | None = None,
        seconds: float | None = None,
    ):
        super().__init__(message, url=url, phase=phase)
        self.timeout = timeout
        self.seconds = seconds


class ProtocolError(FetchError):
    """The server sent something that is not valid HTTP/1.1, or closed early.
    ``phase`` is ``wait`` (the head) or ``download`` (the body)."""


class DecodeError(ProtocolError):
    """A body could not be decoded (corrupt gzip, deflate, br or zstd data)."""

    default_phase = "decode"


class TooLargeError(FetchError):
    """A limit was exceeded (header block, header count, body, decoded body, 1xx count)."""


class RedirectError(FetchError):
    """A redirect cannot be followed (bad Location, unsupported scheme, unreplayable body)."""

    default_phase = "redirect"


class TooManyRedirects(RedirectError):
    """More than ``max_redirects`` redirects."""


class FetchCancelled(FetchError):
    """The fetch was cancelled (Cancel button, ``handle.cancel()``) before it finished."""

    def _render_traceback_(self) -> list[str]:
        # IPython shows this instead of a traceback: a Cancel click is the
        # user's own doing, not a failure to debug.
        return [f"{type(self).__name__}: {self}"]


class HTTPStatusError(FetchError):
    """Raised by ``Response.raise_for_status()`` for a 4xx or 5xx response."""

    default_phase = "response"

    def __init__(self, message: str, *, url: object = None, response: object = None):
        super().__init__(message, url=url)
        self.response = response
