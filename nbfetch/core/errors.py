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

import re

from .redact import redact_url

__all__ = [
    "FetchError",
    "InvalidRequest",
    "ConnectError",
    "TLSError",
    "ProxyError",
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

    def __init__(
        self,
        message: str,
        *,
        url: object = None,
        phase: str | None = None,
        hint: str | None = None,
    ):
        self.message = message
        self._hint = hint
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

    @property
    def hint(self) -> str | None:
        """What to try for a common cause (a host that does not resolve, a refused
        port, a certificate, which timeout or limit fired), or None. Plain text,
        so the notebook and the ``nbfetch`` command both show it."""
        return self._hint or _hint_for(self)

    def scrub(self, secrets) -> FetchError:
        """Take ``secrets`` (a ``core.redact.Secrets``) out of the message, the
        URL and the hint. An error that quotes what the server sent (a chunk-size
        line, a header line, a reason phrase) may quote a credential the server
        echoed back; a URL may hold one in its path (``/hooks/{{token}}``), which
        ``redact_url`` cannot know is secret."""
        scrubbed = secrets.scrub(self.message)
        if scrubbed != self.message:
            self.message = scrubbed
            self.args = (scrubbed, *self.args[1:])
        if self.url is not None:
            self.url = secrets.scrub(self.url)
        if self._hint is not None:
            self._hint = secrets.scrub(self._hint)
        return self

    def with_hint(self, hint: str) -> FetchError:
        """Say what to try in the caller's own terms (a ``.http`` run's
        ``# @timeout`` rather than ``%fetch --timeout``)."""
        self._hint = hint
        return self

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


class ProxyError(ConnectError):
    """The proxy failed us: it could not be reached, asked for credentials
    (407), or refused the ``CONNECT`` tunnel. The message names the proxy
    (never its password) and the status it answered; ``status`` is that
    status (None when it answered none)."""

    def __init__(self, message: str, *, status: int | None = None, **kwargs):
        super().__init__(message, **kwargs)
        self.status = status


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
        hint: str | None = None,
    ):
        super().__init__(message, url=url, phase=phase, hint=hint)
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


# The %fetch / nbfetch option that sets each timeout (queue_timeout has none).
_TIMEOUT_OPTIONS = {
    "request_timeout": "--timeout",
    "connect_timeout": "--connect-timeout",
    "read_timeout": "--read-timeout",
}
_LIMIT = re.compile(r"\b(max_[a-z_]+)\b")
_LIMIT_BY_TEXT = (("header fields", "max_headers"), ("informational", "max_informational"))


def _hint_for(exc: FetchError) -> str | None:
    """The hint for the common causes, from the error's class, phase and message."""
    text = exc.message.lower()
    if isinstance(exc, TLSError):
        if "mismatch" in text:
            return (
                "the certificate is for another host name: use the name it was issued for"
                " (or an IP address it lists)"
            )
        if "expired" in text:
            return "the server's certificate has expired (or this machine's clock is wrong)"
        if "certificate" in text or "issuer" in text or "self-signed" in text:
            return (
                "the certificate is not signed by a CA this machine trusts: pass"
                " verify='ca.pem' (the CA bundle) to AsyncClient; -k / verify=False"
                " only for a test server"
            )
        if "wrong version number" in text or "record layer" in text:
            return "the port does not speak TLS: is it a plain http:// server?"
        return None
    if isinstance(exc, ConnectError):
        if exc.phase == "resolve":
            return "the host name does not resolve: check its spelling, then the network/DNS"
        if "refused" in text:
            return "nothing listens on that port: is the server running, is the port right?"
        if "unreachable" in text:
            return "no route to that address: check the address and the network"
        return None
    if isinstance(exc, FetchTimeout) and exc.timeout:
        option = _TIMEOUT_OPTIONS.get(exc.timeout)
        how = f"{exc.timeout}=... (%fetch {option} SECONDS)" if option else f"{exc.timeout}=..."
        return f"{exc.timeout} is {exc.seconds} s: if the server is just slow, raise it: {how}"
    if isinstance(exc, TooLargeError):
        if "raise the limit" in text:
            return None  # the message already says which limit and what to do
        found = _LIMIT.search(exc.message)
        name = found.group(1) if found else None
        for words, limit in _LIMIT_BY_TEXT:
            if name is None and words in text:
                name = limit
        if name is None:
            return None
        return (
            f"the limit is {name}: raise it with AsyncClient(limits=Limits({name}=...))"
            " if you trust the server"
        )
    if isinstance(exc, ProtocolError) and exc.phase == "wait" and not isinstance(exc, DecodeError):
        return "the reply is not HTTP/1.1: is that port HTTPS (use https://) or not a web server?"
    return None
