import gzip
import zlib

import brotli
import pytest
import zstandard

from nbfetch import DecodeError, TooLargeError
from nbfetch.core.decoders import AVAILABLE_ENCODINGS, make_decoder, parse_content_encoding

TEXT = b"the quick brown fox jumps over the lazy dog\n" * 1000


def drain_rest(d):
    out = []
    while d.more:
        out.append(d.decode(b""))
    return b"".join(out)


def decode_all(codings, data, max_size=None, step=None):
    d = make_decoder(codings, max_size=max_size)
    step = step or len(data) or 1
    out = b"".join(d.decode(data[i : i + step]) + drain_rest(d) for i in range(0, len(data), step))
    return out + drain_rest(d) + d.flush()


@pytest.mark.parametrize("step", [1, 7, 4096, None])
def test_gzip_any_split(step):
    assert decode_all(["gzip"], gzip.compress(TEXT), step=step) == TEXT


def test_gzip_multi_member():
    data = gzip.compress(b"hello ") + gzip.compress(b"world")
    assert decode_all(["gzip"], data) == b"hello world"
    assert decode_all(["gzip"], data, step=3) == b"hello world"


def test_deflate_zlib_and_raw():
    assert decode_all(["deflate"], zlib.compress(TEXT)) == TEXT
    raw = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    assert decode_all(["deflate"], raw.compress(TEXT) + raw.flush()) == TEXT


def test_brotli_and_zstd():
    assert "br" in AVAILABLE_ENCODINGS and "zstd" in AVAILABLE_ENCODINGS
    assert decode_all(["br"], brotli.compress(TEXT), step=100) == TEXT
    assert decode_all(["zstd"], zstandard.ZstdCompressor().compress(TEXT)) == TEXT


def test_chain_is_decoded_last_applied_first():
    data = brotli.compress(gzip.compress(TEXT))  # Content-Encoding: gzip, br
    assert decode_all(parse_content_encoding([b"gzip, br"]), data) == TEXT


def test_too_many_chained_encodings():
    with pytest.raises(DecodeError, match="chained"):
        make_decoder(["gzip"] * 4, max_size=None)


def test_unknown_encoding():
    with pytest.raises(DecodeError, match="unsupported content encoding 'compress'"):
        make_decoder(["compress"], max_size=None)


COMPRESS = {
    "gzip": gzip.compress,
    "deflate": zlib.compress,
    "br": brotli.compress,
    "zstd": zstandard.ZstdCompressor().compress,
}


@pytest.mark.parametrize("coding", sorted(COMPRESS))
def test_bomb_is_stopped_at_the_limit_without_inflating_it(coding):
    zeros = b"\0" * (64 * 1024 * 1024)
    data = COMPRESS[coding](zeros)
    assert len(data) < 300_000
    d = make_decoder([coding], max_size=1_000_000)
    with pytest.raises(TooLargeError, match="max_decoded_size=1000000"):
        d.decode(data)
        drain_rest(d)


def test_corrupt_and_truncated():
    with pytest.raises(DecodeError, match="invalid gzip data"):
        decode_all(["gzip"], b"\x1f\x8b\x08\x00garbage-garbage-garbage")
    d = make_decoder(["gzip"], max_size=None)
    d.decode(gzip.compress(TEXT)[:-20])
    drain_rest(d)
    with pytest.raises(DecodeError, match="invalid gzip data: truncated"):
        d.flush()
    with pytest.raises(DecodeError, match="invalid br data"):
        decode_all(["br"], b"\xff\xff\xff\xff not brotli")


def test_empty_body_with_an_encoding_is_fine():
    assert decode_all(["gzip"], b"") == b""


def test_parse_content_encoding():
    assert parse_content_encoding([b"GZIP", b" identity , br "]) == ["gzip", "br"]


@pytest.mark.parametrize("coding", sorted(COMPRESS))
def test_each_decode_step_is_bounded_and_continues(coding):
    from nbfetch.core.decoders import STEP, drain

    big = b"\0" * (3 * STEP + 123)
    data = COMPRESS[coding](big)
    d = make_decoder([coding], max_size=None)
    pieces = [d.decode(data)]
    while d.more:
        pieces.append(d.decode(b""))
    # brotli stops growing its output buffer once it is past the limit, so a
    # step can reach about twice the limit; zlib's max_length is exact, and zstd
    # is cut at whole blocks
    bound = 2 * STEP if coding == "br" else STEP
    assert max(len(p) for p in pieces) <= bound and len(pieces) >= 2
    assert b"".join(pieces) + d.flush() == big
    assert drain(make_decoder([coding], max_size=None), data) == big
