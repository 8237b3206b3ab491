"""Content decoders: gzip (multi-member), deflate (zlib or raw), br, zstd.

Every decoder is bounded: it never produces more than ``max_size`` bytes in total
(decompression bombs: urllib3 CVE-2025-66471, curl CVE-2023-23916), and one
``decode`` call returns at most ``STEP`` bytes, whatever the input, so one small
input cannot allocate a huge buffer at once. One call also does bounded work on
its input, so that a body of empty blocks (it decodes to nothing, so the output
bound never stops it) cannot hold the event loop either: gzip, deflate and br read
at most ``INPUT_STEP`` bytes per call (gzip: and ``_GZIP_MEMBERS`` members), zstd
parses at most ``_ZSTD_HEADERS`` frame and block headers. Input not decoded yet
is kept: while ``more`` is true, ``decode(b"")`` returns the next step, and new
data is given only once it is false. ``flush`` returns nothing more; it raises
DecodeError for a body that stopped mid-stream. A chain of encodings
(``Content-Encoding: gzip, br``) is decoded last-applied first (RFC 9110 section
8.4), in the same bounded steps.

>>> import gzip
>>> d = make_decoder(["gzip"], max_size=None)
>>> drain(d, gzip.compress(b"hello ") + gzip.compress(b"world")) + d.flush()
b'hello world'
"""

from __future__ import annotations

import zlib

from .errors import DecodeError, TooLargeError

STEP = 1024 * 1024
#: Input one zlib or brotli step reads. Blocks that produce no output cost their C
#: code up to about 125 ms per MiB (deflate's empty dynamic-Huffman blocks: new
#: tables for every 11 bytes; brotli's empty metadata: 45 ms).
INPUT_STEP = 64 * 1024
#: gzip members one step decodes: about 4 us each (a new zlib stream), 20 bytes
#: each at least (an empty member).
_GZIP_MEMBERS = 1024
#: Headers one zstd step parses, in Python: about 1 us each, 3 bytes each at
#: least (an empty raw block). Ordinary data has about 8 blocks per step.
_ZSTD_HEADERS = 4096
_ZSTD_MAX_WINDOW = 8 * 1024 * 1024
_ZSTD_BLOCK_MAX = 128 * 1024
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"  # 0xFD2FB528, little-endian
_ZSTD_SKIPPABLE = b"\x2a\x4d\x18"  # 0x184D2A5?, the high bytes


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

    ``decode`` returns at most one step of output from at most ``INPUT_STEP``
    bytes of input and ``_GZIP_MEMBERS`` members; input it has not read yet is
    kept, ``more`` says so, and ``decode(b"")`` continues. A streaming reader
    therefore never holds more than a step of a bomb at once.
    """

    def __init__(self, name: str, budget: _Budget):
        self.name = name
        self.budget = budget
        self.head = b"" if name == "deflate" else None  # until zlib or raw is known
        self.seen = False
        self.full = False  # the last step filled its limit: zlib may hold more
        self.pending = memoryview(b"")  # input zlib has not consumed yet
        self.obj = zlib.decompressobj(31 if name == "gzip" else zlib.MAX_WBITS)

    @property
    def more(self) -> bool:
        return self.full or bool(self.pending)

    def decode(self, data: bytes) -> bytes:
        if data:
            self.seen = True
            if self.head is not None:
                data = self._sniff(data)
                if not data:
                    return b""
            self.pending = memoryview(bytes(self.pending) + data if self.pending else data)
        elif not self.more:
            return b""
        limit = self.budget.step()
        parts = []
        size = used = members = 0
        # Member after member (RFC 1952 section 2.2) while the step has room:
        # a body of tiny gzip members must not take one step per member.
        while True:
            obj = self.obj
            if obj.eof and self.name == "deflate":
                # Bytes after the end of the stream are ignored; handed to zlib,
                # they would pile up in its unused_data, copied at every call.
                self.pending = memoryview(b"")
                break
            feed = self.pending[: INPUT_STEP - used]
            try:
                out = obj.decompress(feed, limit - size)
            except zlib.error as exc:
                raise DecodeError(f"invalid {self.name} data: {exc}") from None
            parts.append(out)
            size += len(out)
            left = len(obj.unconsumed_tail)
            if obj.eof and obj.unused_data and self.name == "gzip":
                left = len(obj.unused_data)  # the next member starts there
                self.obj = zlib.decompressobj(31)
                members += 1
            used += len(feed) - left
            self.pending = self.pending[len(feed) - left :]
            if not self.pending or size >= limit or used >= INPUT_STEP or members == _GZIP_MEMBERS:
                break
        self.full = size >= limit
        self.budget.take(size)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def _sniff(self, data: bytes) -> bytes:
        """RFC 9110 8.4.1.2 says zlib format, but many servers send raw deflate:
        a zlib header is 2 bytes (RFC 1950 2.2), told apart once both are in."""
        data = self.head + data
        if len(data) < 2:
            self.head = data
            return b""
        self.head = None
        if (data[0] & 0x0F) != 8 or ((data[0] << 8) | data[1]) % 31:
            self.obj = zlib.decompressobj(-zlib.MAX_WBITS)
        return data

    def flush(self) -> bytes:
        if self.seen and not self.obj.eof:
            # A stream that stops mid-member: the body is truncated.
            raise DecodeError(f"invalid {self.name} data: truncated")
        return b""


class _BrotliDecoder:
    """br, one bounded step per ``decode`` (brotli >= 1.2's output_buffer_limit),
    from at most ``INPUT_STEP`` bytes of new input."""

    def __init__(self, budget: _Budget):
        import brotli

        self.error = brotli.error
        self.obj = brotli.Decompressor()
        self.budget = budget
        self.more = False
        self.pending = memoryview(b"")  # input not given to brotli yet

    def decode(self, data: bytes) -> bytes:
        if data:
            self.pending = memoryview(bytes(self.pending) + data if self.pending else data)
        feed = b""
        if self.obj.can_accept_more_data():
            feed = self.pending[:INPUT_STEP]
            self.pending = self.pending[len(feed) :]
        # brotli grows its output in blocks of doubling size (32 KiB, 64 KiB, ...,
        # less 16 bytes each) until they reach the limit: asking for half a step,
        # a call returns at most 1015728 bytes (five blocks), under STEP; asking
        # for a whole step, up to 2 MiB.
        limit = min(self.budget.step(), STEP // 2)
        try:
            out = self.obj.process(feed, output_buffer_limit=limit)
        except self.error as exc:
            raise DecodeError(f"invalid br data: {exc}") from None
        self.budget.take(len(out))
        # Output may still be buffered inside the decoder even when it says it
        # can accept input: whenever a call filled its step, ask again.
        self.more = bool(self.pending) or len(out) >= limit or not self.obj.can_accept_more_data()
        return out

    def flush(self) -> bytes:
        if not self.obj.is_finished():
            raise DecodeError("invalid br data: truncated")
        return b""


class _ZstdDecoder:
    """zstd (RFC 8878), one bounded step per ``decode``.

    zstandard's decompressobj decodes all the input it is given, with no bound on
    the output, and an RLE block turns 4 bytes into 128 KiB. So this decoder reads
    the frame and block headers itself (RFC 8878 section 3.1) and hands zstandard
    only as many blocks as fit in a step: a block decodes to at most 128 KiB
    (Block_Maximum_Size, 3.1.1.2.4), an RLE or raw one to exactly its Block_Size.
    A step parses at most ``_ZSTD_HEADERS`` headers: empty blocks decode to
    nothing, so only their count bounds the work. Input past the cut is kept, as
    in ``_ZlibDecoder``; frames may follow each other.
    """

    def __init__(self, budget: _Budget):
        import zstandard

        self.error = zstandard.ZstdError
        # RFC 9659: HTTP zstd needs at most an 8 MB window. The library would
        # otherwise allocate whatever window a frame asks for, up to 128 MiB.
        dctx = zstandard.ZstdDecompressor(max_window_size=_ZSTD_MAX_WINDOW)
        self.obj = dctx.decompressobj(read_across_frames=True)
        self.budget = budget
        self.more = False
        self.pending = memoryview(b"")  # input not given to zstandard yet
        self.left = 0  # bytes of the current block (or skipped frame) still to pass
        self.bound = 0  # what the current block decodes to at most (0: no block)
        self.in_frame = False  # next comes a block header, else a frame header
        self.checksum = 0  # bytes of Content_Checksum after the frame's last block

    def decode(self, data: bytes) -> bytes:
        if data:
            data = bytes(self.pending) + data if self.pending else data
            self.pending = memoryview(data)
        n, self.more = self._cut(self.pending, self.budget.step())
        if not n:
            return b""
        try:
            out = self.obj.decompress(self.pending[:n])
        except self.error as exc:
            raise DecodeError(f"invalid zstd data: {exc}") from None
        self.pending = self.pending[n:]
        self.budget.take(len(out))
        return out

    def _cut(self, data: memoryview, limit: int) -> tuple[int, bool]:
        """How much of ``data`` decodes to at most ``limit`` bytes (or to one block,
        whatever the limit) through at most ``_ZSTD_HEADERS`` headers, and whether
        the cut left whole headers behind."""
        pos = headers = 0
        # A block cut by the end of the last input decodes now, when it is whole.
        out = self.bound if self.left else 0
        end = len(data)
        while True:
            if self.left:
                n = min(self.left, end - pos)
                pos += n
                self.left -= n
                if self.left:
                    return pos, False
            if headers == _ZSTD_HEADERS:
                return pos, pos < end
            headers += 1
            if self.in_frame:
                if end - pos < 3:
                    return pos, False
                header = int.from_bytes(data[pos : pos + 3], "little")
                kind, size = header >> 1 & 3, header >> 3
                if kind == 3 or size > _ZSTD_BLOCK_MAX:
                    raise DecodeError("invalid zstd data: bad block header")
                bound = _ZSTD_BLOCK_MAX if kind == 2 else size
                if out and out + bound > limit:
                    return pos, True
                out += bound
                pos += 3
                self.left = 1 if kind == 1 else size
                self.bound = bound
                if header & 1:  # Last_Block
                    self.left += self.checksum
                    self.in_frame = False
                continue
            if end - pos < 6:  # the shortest frame header
                return pos, False
            magic = bytes(data[pos : pos + 4])
            if magic[1:] == _ZSTD_SKIPPABLE and magic[0] & 0xF0 == 0x50:  # 3.1.2
                if end - pos < 8:
                    return pos, False
                self.left = int.from_bytes(data[pos + 4 : pos + 8], "little")
                self.bound = 0
                pos += 8
                continue
            if magic != _ZSTD_MAGIC:
                raise DecodeError("invalid zstd data: not a zstd frame")
            fhd = data[pos + 4]  # Frame_Header_Descriptor, 3.1.1.1.1
            single = fhd >> 5 & 1
            size = 5 + (not single) + (0, 1, 2, 4)[fhd & 3] + (single, 2, 4, 8)[fhd >> 6]
            if end - pos < size:
                return pos, False
            pos += size
            self.checksum = 4 if fhd & 4 else 0
            self.in_frame = True

    def flush(self) -> bytes:
        if self.pending or self.left or self.in_frame:
            raise DecodeError("invalid zstd data: truncated")
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
    """Applies several decoders, the last-applied encoding first, one bounded step
    per ``decode``: a stage gets new input only once it has handed out all that
    its last input decoded to, so none holds more than a step at a time."""

    def __init__(self, decoders: list):
        self.decoders = decoders

    @property
    def more(self) -> bool:
        return any(d.more for d in self.decoders)

    def decode(self, data: bytes) -> bytes:
        # Resume at the last stage with output pending (``data`` is then empty);
        # with none pending, new data enters the first stage.
        start = 0
        for i, d in enumerate(self.decoders):
            if d.more:
                start = i
        for d in self.decoders[start:]:
            data = d.decode(data)
        return data

    def flush(self) -> bytes:
        # Every stage has handed out all its output (``more`` is false); flushing
        # checks that none of them stopped mid-stream.
        for d in self.decoders:
            d.flush()
        return b""


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
