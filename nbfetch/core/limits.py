"""The bounds on what a server can make nbfetch hold (sizes and counts, as data)."""

from __future__ import annotations


class Limits:
    """Bounds on what a server can make nbfetch hold. ``None`` means no bound.

    ``max_header_bytes`` (status line + header block, 64 KiB), ``max_headers``
    (header fields in one response, 256), ``max_body_size`` (a buffered fetch's
    decoded body, 100 MiB: Tornado's max_buffer_size; ``stream()`` and
    ``download()`` are not bound by it), ``max_decoded_size`` (decoded bytes of any body,
    streams included: decompression bombs, 1 GiB), ``max_encodings`` (chained
    Content-Encodings, 3), ``max_informational`` (1xx responses before the final
    one, 16), ``max_redirect_body`` (a redirect body read to keep its connection;
    larger ones drop it, 1 MiB), ``max_recorded_events`` (per-chunk events kept
    in ``r.events``; later ones still reach ``trace`` subscribers live and are
    counted in ``response.done``'s ``events_dropped``, 20,000).
    """

    __slots__ = (
        "max_body_size",
        "max_decoded_size",
        "max_encodings",
        "max_header_bytes",
        "max_headers",
        "max_informational",
        "max_recorded_events",
        "max_redirect_body",
    )

    def __init__(
        self,
        *,
        max_header_bytes: int = 64 * 1024,
        max_headers: int = 256,
        max_body_size: int | None = 100 * 1024**2,
        max_decoded_size: int | None = 1024**3,
        max_encodings: int = 3,
        max_informational: int = 16,
        max_redirect_body: int = 1024 * 1024,
        max_recorded_events: int | None = 20_000,
    ):
        self.max_header_bytes = max_header_bytes
        self.max_headers = max_headers
        self.max_body_size = max_body_size
        self.max_decoded_size = max_decoded_size
        self.max_encodings = max_encodings
        self.max_informational = max_informational
        self.max_redirect_body = max_redirect_body
        self.max_recorded_events = max_recorded_events

    def __repr__(self) -> str:
        return "Limits(" + ", ".join(f"{n}={getattr(self, n)!r}" for n in self.__slots__) + ")"
