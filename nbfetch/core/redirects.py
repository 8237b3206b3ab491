"""Redirect policy as pure functions: which responses are followed, where to,
with which method and body (RFC 9110 section 15.4). The client layer only
counts hops, drains bodies and emits the ``redirect`` event."""

from __future__ import annotations

from .errors import InvalidRequest, RedirectError
from .redact import redact_url
from .request import Request
from .urls import URL

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})


def is_followed(status: int, location: str | None, follow: bool) -> bool:
    """Whether a response with ``status`` and ``location`` is a redirect to follow."""
    return follow and location is not None and status in REDIRECT_STATUSES


def next_request(request: Request, url: URL, status: int, location: str) -> Request:
    """The request of the next hop after ``request`` got ``status`` with ``location``
    from ``url``; raises ``RedirectError`` when it cannot be followed."""
    try:
        target = url.join(location.strip())
    except InvalidRequest as exc:
        raise RedirectError(
            f"cannot follow redirect to {redact_url(location)!r}: {exc.message}", url=url
        ) from None
    method = request.method
    keep_body = True
    # RFC 9110 15.4.4: 303 means GET (or HEAD); 15.4.2/15.4.3: 301 and 302
    # turn POST into GET, as every browser does. 307/308 keep both.
    if (status == 303 and method != "HEAD") or (status in (301, 302) and method == "POST"):
        method, keep_body = "GET", False
    if keep_body and not request.replayable:
        raise RedirectError(f"{status} redirect needs the body again, but it was a stream", url=url)
    # Credentials never travel to another origin (the CVEs in Request.redirected).
    return request.redirected(
        target, method, keep_body, strip_credentials=target.origin != request.url.origin
    )
