"""Content decoders: gzip (multi-member), deflate (zlib or raw), br, zstd.

Every decoder is bounded: it never produces more than ``max_size`` bytes in total
(decompression bombs: urllib3 CVE-2025-66471, curl CVE-2023-23916), and it works
in steps of at most ``STEP`` output bytes so one small input cannot allocate a
huge buffer at once. A chain of encodings (``Content-Encoding: gzip, br``) is
decoded last-applied first (RFC 9110 section 8.4), and its length is bounded.

>>> import gzip
>>> d = make_decoder(["gzip"], max_size=None)
>>> drain(d, gzip.compress(b"hello ") + gzip.compress(b"world")) + d.flush()
b'hello world'
"""

from __future__ import annotations

import zlib

from ..errors import DecodeError, TooLargeError

STEP = 1024 * 1024


def _installed(name: str) -> bool:
    from importlib.util import find_spec

    return find_spec(name) is not None


#: What nbfetch can decode on this install, in preference order (Accept-Encoding).
#: The optional packages are looked up, not imported: they load on first use.
AVAILABLE_ENCODINGS: tuple[str, ...] = (
    "gzip",
    "deflate",
    *(["br"] if _installed("brotli") else []),
    *(["zstd"] if _installed("zstandard") else []),
)


class _Budget:
    """Counts decoded bytes against the limit shared by a chain."""

    __slots__ = ("left", "limit")

    def __init__(self, limit: int | None):
        self.limit = limit
        self.left = limit

    def step(self) -> int:
        if self.left is None:
            return STEP
        return min(STEP, self.left + 1)

    def take(self, n: int) -> None:
        if self.left is None:
            return
        self.left -= n
        if self.left < 0:
            raise TooLargeError(
                f"decoded body exceeds max_decoded_size={self.limit} bytes"
                " (possible decompression bomb)",
                phase="decode",
            )


class _ZlibDecoder:
    """gzip (wbits 31, member after member) and deflate (zlib, else raw).

    ``decode`` returns at most one step of output; input it has not consumed yet
    is kept, ``more`` says so, and ``decode(b"")`` continues. A streaming reader
    therefore never holds more than a step of a bomb at once.
    """

    def __init__(self, name: str, budget: _Budget):
        self.name = name
        self.budget = budget
        self.first = True
        self.seen = False
        self.tail = b""
        self.obj = zlib.decompressobj(31 if name == "gzip" else zlib.MAX_WBITS)

    @property
    def more(self) -> bool:
        return bool(self.tail)

    def decode(self, data: bytes) -> bytes:
        if self.first and self.name == "deflate" and data:
            self.first = False
            # RFC 9110 8.4.1.2 says zlib format, but many servers send raw deflate.
            if (data[0] & 0x0F) != 8 or ((data[0] << 8) | data[1 if len(data) > 1 else 0]) % 31:
                self.obj = zlib.decompressobj(-zlib.MAX_WBITS)
        if data:
            self.seen = True
        if self.tail:
            data = self.tail + data if data else self.tail
        if not data:
            return b""
        try:
            out = self.obj.decompress(data, self.budget.step())
        except zlib.error as exc:
            raise DecodeError(f"invalid {self.name} data: {exc}") from None
        self.budget.take(len(out))
        tail = self.obj.unconsumed_tail
        if not tail and self.obj.eof and self.obj.unused_data and self.name == "gzip":
            # Multi-member gzip (RFC 1952 section 2.2): the next member follows.
            tail = self.obj.unused_data
            self.obj = zlib.decompressobj(31)
        self.tail = tail
        return out

    def flush(self) -> bytes:
        if self.seen and not self.obj.eof:
            # A stream that stops mid-member: the body is truncated.
            raise DecodeError(f"invalid {self.name} data: truncated")
        return b""


class _BrotliDecoder:
    """br, one bounded step per ``decode`` (brotli >= 1.2's output_buffer_limit)."""

    def __init__(self, budget: _Budget):
        import brotli

        self.error = brotli.error
        self.obj = brotli.Decompressor()
        self.budget = budget
        self.more = False

    def decode(self, data: bytes) -> bytes:
        step = self.budget.step()
        try:
            out = self.obj.process(data, output_buffer_limit=step)
        except self.error as exc:
            raise DecodeError(f"invalid br data: {exc}") from None
        self.budget.take(len(out))
        # Output may still be buffered inside the decoder even when it says it
        # can accept input: whenever a call filled its step, ask again.
        self.more = len(out) >= step or not self.obj.can_accept_more_data()
        return out

    def flush(self) -> bytes:
        if not self.obj.is_finished():
            raise DecodeError("invalid br data: truncated")
        return b""


class _ZstdDecoder:
    more = False

    def __init__(self, budget: _Budget):
        import zstandard

        self.error = zstandard.ZstdError
        self.obj = zstandard.ZstdDecompressor().decompressobj()
        self.budget = budget

    def decode(self, data: bytes) -> bytes:
        try:
            # zstandard's decompressobj has no output bound per call; the frame's
            # window is bounded by the library (8 MiB default max window), and the
            # total is checked by the budget.
            out = self.obj.decompress(data)
        except self.error as exc:
            raise DecodeError(f"invalid zstd data: {exc}") from None
        self.budget.take(len(out))
        return out

    def flush(self) -> bytes:
        return b""


class IdentityDecoder:
    __slots__ = ()
    more = False

    def decode(self, data: bytes) -> bytes:
        return data

    def flush(self) -> bytes:
        return b""


def drain(decoder, data: bytes) -> bytes:
    """All the output ``data`` decodes to (bounded in total by the budget only)."""
    out = [decoder.decode(data)]
    while decoder.more:
        out.append(decoder.decode(b""))
    return out[0] if len(out) == 1 else b"".join(out)


class ChainDecoder:
    """Applies several decoders, the last-applied encoding first. Each stage is
    drained fully (the whole chain is bounded by the shared budget)."""

    more = False

    def __init__(self, decoders: list):
        self.decoders = decoders

    def decode(self, data: bytes) -> bytes:
        for d in self.decoders:
            data = drain(d, data)
        return data

    def flush(self) -> bytes:
        data = b""
        for d in self.decoders:
            data = drain(d, data) + d.flush() if data else d.flush()
        return data


def parse_content_encoding(values: list[bytes]) -> list[str]:
    """``Content-Encoding`` values, in the order they were applied, lowercased."""
    codings = []
    for value in values:
        for part in value.split(b","):
            part = part.strip().lower()
            if part and part != b"identity":
                codings.append(part.decode("latin-1"))
    return codings


def make_decoder(
    codings: list[str], *, max_size: int | None, max_codings: int = 3
) -> IdentityDecoder | ChainDecoder | _ZlibDecoder:
    """A decoder for ``codings`` (as applied); raises DecodeError for unknown ones."""
    if not codings:
        return IdentityDecoder()
    if len(codings) > max_codings:
        raise DecodeError(
            f"{len(codings)} chained content encodings (limit {max_codings}): {', '.join(codings)}"
        )
    budget = _Budget(max_size)
    decoders = []
    for name in reversed(codings):
        if name in ("gzip", "x-gzip"):
            decoders.append(_ZlibDecoder("gzip", budget))
        elif name == "deflate":
            decoders.append(_ZlibDecoder("deflate", budget))
        elif name == "br" and "br" in AVAILABLE_ENCODINGS:
            decoders.append(_BrotliDecoder(budget))
        elif name == "zstd" and "zstd" in AVAILABLE_ENCODINGS:
            decoders.append(_ZstdDecoder(budget))
        else:
            hint = " (install nbfetch[brotli] / nbfetch[zstd])" if name in ("br", "zstd") else ""
            raise DecodeError(f"unsupported content encoding {name!r}{hint}")
    return decoders[0] if len(decoders) == 1 else ChainDecoder(decoders)
