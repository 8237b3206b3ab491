"""Decompression bombs decoded step by step: whatever the input, one decode()
or flush() call returns at most 1 MiB from a bounded amount of input, and the
budget stops the total. The end-to-end checks of bombs over a socket are in
test_adversarial.py (every bomb there, buffered and streamed, under
tracemalloc); the ones here are bodies of empty blocks, which cost CPU time
rather than memory."""

import asyncio
import functools
import gzip
import math
import time
import tracemalloc
import zlib

import brotli
import pytest
import zstandard
from conftest import wait_until
from hypothesis import given, settings
from hypothesis import strategies as st

from nbfetch import AsyncClient, DecodeError, TooLargeError
from nbfetch.core.decoders import _GZIP_MEMBERS, _ZSTD_HEADERS, INPUT_STEP, drain, make_decoder

MiB = 1024 * 1024
LIMIT = 64 * MiB
ZEROS = bytes(MiB)


def compressor(coding):
    if coding == "gzip":
        c = zlib.compressobj(6, zlib.DEFLATED, 31)
    elif coding in ("deflate", "deflate-raw"):
        c = zlib.compressobj(6, zlib.DEFLATED, 15 if coding == "deflate" else -15)
    elif coding == "br":
        c = brotli.Compressor(quality=5)
        return c.process, c.finish
    else:
        c = zstandard.ZstdCompressor().compressobj()
    return c.compress, c.flush


@functools.cache
def bomb(codings, mib=256):
    """``mib`` MiB of zeros compressed with ``codings`` (in the order applied),
    built a MiB at a time so the test never holds the zeros."""
    compress, finish = compressor(codings[0])
    data = b"".join(compress(ZEROS) for _ in range(mib)) + finish()
    for coding in codings[1:]:
        compress, finish = compressor(coding)
        data = compress(data) + finish()
    return data


def steps(decoder, data, piece=65536):
    """Every output of decode()/flush(), fed ``piece`` bytes at a time as a socket would."""
    for i in range(0, len(data), piece):
        yield decoder.decode(data[i : i + piece])
        while decoder.more:
            yield decoder.decode(b"")
    yield decoder.flush()


CODINGS = [["gzip"], ["deflate"], ["deflate-raw"], ["br"], ["zstd"]]
CHAINS = [["gzip", "zstd"], ["zstd", "gzip"], ["gzip", "gzip"], ["zstd", "br"], ["br", "zstd"]]


@pytest.mark.parametrize("codings", CODINGS + CHAINS, ids=", ".join)
@pytest.mark.parametrize("piece", [65536, None], ids=["64KiB-pieces", "whole-body"])
def test_a_bomb_comes_out_in_bounded_steps_until_the_budget_stops_it(codings, piece):
    data = bomb(tuple(codings))
    assert len(data) < 2 * MiB  # 256 MiB of zeros
    names = ["deflate" if c == "deflate-raw" else c for c in codings]
    d = make_decoder(names, max_size=LIMIT)
    total = 0
    with pytest.raises(TooLargeError, match=f"max_decoded_size={LIMIT}"):
        for out in steps(d, data, piece or len(data)):
            assert len(out) <= MiB
            total += len(out)
    assert LIMIT - 2 * MiB < total <= LIMIT


@pytest.mark.parametrize("codings", CODINGS + CHAINS, ids=", ".join)
def test_a_big_body_decodes_in_full_in_bounded_steps(codings):
    names = ["deflate" if c == "deflate-raw" else c for c in codings]
    d = make_decoder(names, max_size=None)
    pieces = list(steps(d, bomb(tuple(codings), 32)))
    assert max(map(len, pieces)) <= MiB
    assert sum(map(len, pieces)) == 32 * MiB and not any(b"".join(pieces))


TEXT = b"".join(b"line %d of something fairly compressible\n" % i for i in range(100_000))


def frame(data, **options):
    return zstandard.ZstdCompressor(**options).compress(data)


SKIPPABLE = b"\x5a\x2a\x4d\x18" + (3).to_bytes(4, "little") + b"xyz"  # RFC 8878 3.1.2


@pytest.mark.parametrize("piece", [1, 5, 4096, None])
def test_zstd_frames_one_after_another_all_decode(piece):
    # Concatenated frames (RFC 8878 section 3.1) with a skippable one between,
    # one with a checksum, one without a content size, split anywhere.
    data = (
        frame(TEXT[:1000])
        + SKIPPABLE
        + frame(TEXT, write_checksum=True)
        + frame(b"tail", write_content_size=False)
    )
    d = make_decoder(["zstd"], max_size=None)
    assert b"".join(steps(d, data, piece or len(data))) == TEXT[:1000] + TEXT + b"tail"


def test_zstd_two_frames_in_one_piece_give_both():
    # The library stops at a frame's end unless told to read across frames.
    d = make_decoder(["zstd"], max_size=None)
    assert drain(d, frame(b"hello ") + frame(b"world")) + d.flush() == b"hello world"


@pytest.mark.parametrize("cut", [3, 10, -1])
def test_a_truncated_zstd_body_is_an_error(cut):
    d = make_decoder(["zstd"], max_size=None)
    drain(d, frame(TEXT, write_checksum=True)[:cut])
    with pytest.raises(DecodeError, match="invalid zstd data: truncated"):
        d.flush()


def rle_frame(window_descriptor: int, blocks: int) -> bytes:
    """A zstd frame of ``blocks`` RLE blocks of 128 KiB (4 bytes each, RFC 8878
    3.1.1.2), with the given Window_Descriptor (3.1.1.1.2)."""
    rle = (128 * 1024) << 3 | 1 << 1  # Block_Size, Block_Type 1 (RLE)
    block = rle.to_bytes(3, "little") + b"\0"
    last = (rle | 1).to_bytes(3, "little") + b"\0"
    return b"\x28\xb5\x2f\xfd\x00" + bytes([window_descriptor]) + block * (blocks - 1) + last


def test_zstd_window_is_limited_to_8_mib():
    # RFC 9659: 8 MB is the most an HTTP zstd frame may need; the library would
    # allocate up to 128 MiB for a frame that asks for it.
    exponent = {8: 13, 16: 14, 128: 17}  # Window_Size = 2**(10 + exponent), mantissa 0
    d = make_decoder(["zstd"], max_size=None)
    assert len(drain(d, rle_frame(exponent[8] << 3, 80)) + d.flush()) == 10 * MiB
    for mib in (16, 128):
        d = make_decoder(["zstd"], max_size=None)
        with pytest.raises(DecodeError, match="invalid zstd data"):
            drain(d, rle_frame(exponent[mib] << 3, 80))


def test_zstd_rle_blocks_come_out_a_mib_at_a_time():
    # The densest zstd input: 4 bytes per 128 KiB. 32 KiB of it is 1 GiB.
    data = rle_frame(13 << 3, 8192)
    assert len(data) < 33 * 1024
    d = make_decoder(["zstd"], max_size=None)
    sizes = [len(out) for out in steps(d, data, len(data))]
    assert max(sizes) == MiB and sum(sizes) == 1024 * MiB


@pytest.mark.parametrize(
    "data",
    [b"not zstd at all", frame(b"x")[:5] + b"\xff\xff\xff" + b"\0" * 10],
    ids=["not-a-frame", "reserved-block-type"],
)
def test_zstd_garbage_is_a_decode_error(data):
    d = make_decoder(["zstd"], max_size=None)
    with pytest.raises(DecodeError, match="invalid zstd data"):
        drain(d, data)
        d.flush()


def test_chain_of_ordinary_data_round_trips_in_any_split():
    data = zstandard.ZstdCompressor().compress(gzip.compress(TEXT))  # gzip, then zstd
    for piece in (1, 777, len(data)):
        d = make_decoder(["gzip", "zstd"], max_size=None)
        assert b"".join(steps(d, data, piece)) == TEXT


ZSTD_BODIES = [
    frame(TEXT[:50_000], write_checksum=True),
    frame(bytes(3 * MiB)),  # RLE blocks
    rle_frame(13 << 3, 12),
    SKIPPABLE,
]


@settings(max_examples=200, deadline=None)
@given(
    parts=st.lists(st.sampled_from(ZSTD_BODIES), min_size=1, max_size=3),
    edits=st.lists(st.tuples(st.integers(0, 300), st.binary(max_size=8)), max_size=4),
    piece=st.sampled_from([1, 13, 65536]),
)
def test_fuzz_zstd_any_bytes_give_bounded_steps_or_a_decode_error(parts, edits, piece):
    # The decoder reads the frame and block headers itself to cut the input: on
    # any bytes, it must agree with the library or fail cleanly, never overshoot.
    data = bytearray(b"".join(parts))
    for at, new in edits:
        data[at : at + len(new)] = new
    d = make_decoder(["zstd"], max_size=None)
    try:
        for out in steps(d, bytes(data), piece):
            assert len(out) <= MiB
    except DecodeError:
        pass


def test_zstd_a_block_cut_by_the_end_of_a_piece_counts_in_the_next_step():
    # The first piece ends just after a block header: the block decodes in the
    # next step, which must count it (it was 1 MiB + 128 KiB).
    data = rle_frame(13 << 3, 200)
    cut = 6 + 4 * 3 + 3  # the frame header, three whole RLE blocks, a block header
    d = make_decoder(["zstd"], max_size=None)
    sizes = [len(d.decode(data[:cut]))] + [len(out) for out in steps(d, data[cut:], len(data))]
    assert max(sizes) <= MiB and sum(sizes) == 200 * 128 * 1024


def test_raw_deflate_ending_in_a_match_across_a_step_decodes_in_full():
    # The step can fill up with all the input read and zlib still holding the end
    # of a match: the decoder must ask again, not call the body truncated.
    c = zlib.compressobj(1, zlib.DEFLATED, -15)
    data = c.compress(bytes(MiB + 1)) + c.flush()
    d = make_decoder(["deflate"], max_size=None)
    assert b"".join(steps(d, data, len(data))) == bytes(MiB + 1)


@pytest.mark.parametrize("wbits", [15, -15], ids=["zlib", "raw"])
def test_deflate_split_after_its_first_byte_is_told_zlib_or_raw_all_the_same(wbits):
    # The 2-byte zlib header (RFC 1950 2.2) decides: the first byte alone (a
    # 1-byte chunk) made a zlib stream look raw, an invalid deflate stream.
    c = zlib.compressobj(6, zlib.DEFLATED, wbits)
    data = c.compress(TEXT[:50_000]) + c.flush()
    d = make_decoder(["deflate"], max_size=None)
    assert b"".join(steps(d, data, 1)) == TEXT[:50_000]


def test_bytes_after_the_end_of_a_deflate_stream_are_not_kept():
    # They are ignored; handed to zlib, they piled up in its unused_data (16 MiB
    # held for 16 MiB sent, copied again at every piece).
    data = zlib.compress(b"hello") + bytes(16 * MiB)
    d = make_decoder(["deflate"], max_size=None)
    tracemalloc.start()
    try:
        out = b"".join(steps(d, data))
        held = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert out == b"hello" and held < MiB


def deflate_bits(*fields: tuple[int, int]) -> bytes:
    """(value, width) fields packed from the least significant bit (RFC 1951 3.1.1)."""
    acc = pos = 0
    for value, width in fields:
        acc |= value << pos
        pos += width
    return acc.to_bytes((pos + 7) // 8, "little")


# Code length code order (RFC 1951 3.2.7); these blocks use lengths for 18, 0 and 1.
ORDER = [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15]
LENGTHS = {18: 1, 0: 2, 1: 2}  # canonical codes: 18 is 0, 0 is 10, 1 is 11
# An empty dynamic-Huffman block (zlib builds its tables for each: the costliest
# empty block per byte), then an empty stored block to end on a byte boundary.
DYNAMIC_EMPTY = (
    deflate_bits(
        (0, 1),  # BFINAL
        (2, 2),  # BTYPE: dynamic Huffman codes
        (0, 5),  # HLIT: 257 literal/length codes
        (0, 5),  # HDIST: 1 distance code
        (14, 4),  # HCLEN: 18 code length codes
        *[(LENGTHS.get(symbol, 0), 3) for symbol in ORDER[:18]],
        (0, 1),  # 18: repeat a zero length ...
        (138 - 11, 7),  # ... 138 times
        (0, 1),
        (118 - 11, 7),  # and 118 more: literals 0-255 are unused
        (3, 2),  # 1: end-of-block has a 1-bit code
        (1, 2),  # 0 (code 10, sent from its first bit): no distance code
        (0, 1),  # end of block
        (0, 1),  # the stored block: BFINAL ...
        (0, 2),  # ... and BTYPE 00, then LEN and NLEN at the next byte
    )
    + b"\0\0\xff\xff"
)
# Four empty fixed-Huffman blocks (a header and the end-of-block code) in 5 bytes.
FIXED_EMPTY = deflate_bits(*[(0, 1), (1, 2), (0, 7)] * 4)
ZLIB_END = b"\x03\0" + b"\0\0\0\x01"  # a last empty fixed block, Adler-32 of nothing
ZSTD_FRAME = b"\x28\xb5\x2f\xfd\x00\x00"  # magic, descriptor (no size), 1 KiB window
ZSTD_LAST = b"\x01\0\0"  # an empty raw block, the frame's last
GZIP_EMPTY = gzip.compress(b"", mtime=0)


def empty_body(name: str, size: int) -> tuple[str, bytes, int, int]:
    """About ``size`` bytes of nothing: (coding, body, the units of work in it,
    and how many a step may take). zstd's unit is a header, parsed in Python;
    gzip's a member; the others' a byte, parsed in C."""
    if name == "zstd-empty-blocks":
        n = size // 3
        return "zstd", ZSTD_FRAME + b"\0\0\0" * n + ZSTD_LAST, n + 2, _ZSTD_HEADERS
    if name == "zstd-1-byte-rle-blocks":
        n = size // 4
        return "zstd", ZSTD_FRAME + b"\x0a\0\0x" * n + ZSTD_LAST, n + 2, _ZSTD_HEADERS
    if name == "zstd-empty-frames":
        frame = b"\x28\xb5\x2f\xfd\x20\x00" + ZSTD_LAST  # single segment, size 0
        n = size // len(frame)
        return "zstd", frame * n, 2 * n, _ZSTD_HEADERS
    if name == "gzip-empty-members":
        n = size // len(GZIP_EMPTY)
        return "gzip", GZIP_EMPTY * n, n, _GZIP_MEMBERS
    if name == "br-empty-metadata":
        # RFC 7932 9.2: window bits, then empty metadata meta-blocks of a byte each.
        body = b"\x0c" + b"\x06" * size + b"\x03"
    elif name == "deflate-empty-fixed-blocks":
        body = b"\x78\x9c" + FIXED_EMPTY * (size // 5) + ZLIB_END
    else:
        body = b"\x78\x9c" + DYNAMIC_EMPTY * (size // len(DYNAMIC_EMPTY)) + ZLIB_END
    return name.split("-")[0], body, len(body), INPUT_STEP


EMPTY = [
    "zstd-empty-blocks",
    "zstd-1-byte-rle-blocks",
    "zstd-empty-frames",
    "gzip-empty-members",
    "br-empty-metadata",
    "deflate-empty-fixed-blocks",
    "deflate-empty-dynamic-blocks",
]


@pytest.mark.parametrize("name", EMPTY)
def test_a_body_of_empty_blocks_takes_steps_in_proportion_to_its_size(name):
    # Empty blocks decode to nothing, so the output bound never ends a step: one
    # call parsed a whole piece (8 MiB of empty zstd blocks: 2 s of CPU). A step
    # now takes a bounded number of units (bytes, headers or members), and as
    # many as it may: not one step per gzip member (52,000 per MiB).
    coding, body, units, per_step = empty_body(name, MiB)
    d = make_decoder([coding], max_size=None)
    calls = 1
    out = [d.decode(body)]
    while d.more:
        out.append(d.decode(b""))
        calls += 1
    d.flush()
    expected = math.ceil(units / per_step)
    assert expected <= calls <= expected + 2, (calls, expected)
    assert len(b"".join(out)) == (MiB // 4 if "rle" in name else 0)


async def fetch_slowly(url: str, min_buffered: int, turns: list) -> list[bytes]:
    """Stream ``url``, first letting the body pile up in the driver's buffer as it
    does behind a slow reader, then reading it as fast as possible while a ticker
    task records the loop thread's CPU time between two of its turns."""
    running = True

    async def ticker():
        while running:
            before = time.thread_time()
            await asyncio.sleep(0)
            turns.append(time.thread_time() - before)

    pieces = []
    async with AsyncClient() as c, c.stream("GET", url, request_timeout=60) as r:
        proto = r._source.conn.stream.proto  # the asyncio driver's buffer
        await wait_until(lambda: proto.buffered >= min_buffered, 10, "a buffered body")
        task = asyncio.ensure_future(ticker())
        await asyncio.sleep(0)
        try:
            async for piece in r.aiter_bytes():
                pieces.append(piece)
        finally:
            running = False
            await task
    return pieces


def serve(coding: str, body: bytes):
    def handler(conn, server):
        server.read_request(conn)
        conn.sendall(
            b"HTTP/1.1 200 OK\r\nContent-Encoding: %s\r\nContent-Length: %d\r\n\r\n"
            % (coding.encode(), len(body))
            + body
        )
        conn.recv(1)  # until the client closes

    return handler


@pytest.mark.anyio
@pytest.mark.parametrize("name", EMPTY)
async def test_a_body_of_empty_blocks_never_holds_the_loop(raw_server, name):
    # 4 MiB of nothing; 2 MiB of it waiting in the driver's buffer decoded in one
    # turn of the loop (zstd: 0.6 s of CPU). No garbage collection in the middle
    # (not nbfetch's doing); CPU time, not wall time, so that a loaded machine
    # preempting the loop thread does not count.
    import gc

    coding, body, _, _ = empty_body(name, 4 * MiB)
    srv = raw_server(serve(coding, body))
    turns = []
    gc.disable()
    try:
        await fetch_slowly(srv.url, 2 * MiB, turns)
    finally:
        gc.enable()
    assert max(turns) < 0.1, f"the loop thread ran {max(turns) * 1000:.0f} ms without a turn"


@settings(max_examples=200, deadline=None)
@given(
    members=st.lists(st.sampled_from([b"", b"x", TEXT[:5000], bytes(70_000)]), max_size=6),
    piece=st.sampled_from([1, 7, 4096, 65536, 200_000]),
    coding=st.sampled_from(["gzip", "deflate", "br"]),
)
def test_fuzz_zlib_and_brotli_any_split_decode_in_full(members, piece, coding):
    # Steps end at the output bound, the input bound or a gzip member's end,
    # wherever a piece ends: the body must come out whole all the same.
    if coding == "gzip":
        data = b"".join(gzip.compress(m, mtime=0) for m in members) if members else b""
    elif coding == "deflate":
        data = zlib.compress(b"".join(members))
    else:
        data = brotli.compress(b"".join(members))
    d = make_decoder([coding], max_size=None)
    assert b"".join(steps(d, data, piece)) == b"".join(members)
