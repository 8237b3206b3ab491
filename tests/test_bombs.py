"""Decompression bombs decoded step by step: whatever the input, one decode()
or flush() call returns at most 2 MiB, and the budget stops the total. The
end-to-end checks over a socket are in test_adversarial.py (every bomb there,
buffered and streamed, under tracemalloc)."""

import functools
import gzip
import zlib

import brotli
import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st

from nbfetch import DecodeError, TooLargeError
from nbfetch.core.decoders import drain, make_decoder

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
            # zlib and zstd stop at 1 MiB; brotli's buffer doubles past it.
            assert len(out) <= 2 * MiB
            total += len(out)
    assert LIMIT - 2 * MiB < total <= LIMIT


@pytest.mark.parametrize("codings", CODINGS + CHAINS, ids=", ".join)
def test_a_big_body_decodes_in_full_in_bounded_steps(codings):
    names = ["deflate" if c == "deflate-raw" else c for c in codings]
    d = make_decoder(names, max_size=None)
    pieces = list(steps(d, bomb(tuple(codings), 32)))
    assert max(map(len, pieces)) <= 2 * MiB
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
