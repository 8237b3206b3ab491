"""The sans-IO core: h11 driving and the wire view, with no network at all."""

import h11
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nbfetch import InvalidRequest, ProtocolError, TooLargeError
from nbfetch.core.chunk_view import ChunkTap, parse_extensions
from nbfetch.core.protocol import NEED_DATA, ClientProtocol, build_request, head_headers

CHUNKED = (
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n"
    b"a;name=first\r\n0123456789\r\n"
    b"7D0\r\n" + b"x" * 2000 + b"\r\n"
    b'7;q="a b";flag\r\nabcdefg\r\n'
    b"0\r\nX-Sum: 42\r\n\r\n"
)


def run(response: bytes, splits: list[int] | None = None):
    """Feed ``response`` in pieces; returns (status, body, wire chunks, trailers)."""
    p = ClientProtocol()
    p.send_request(build_request("GET", "/", [(b"Host", b"h")]))
    p.send_end()
    cuts = sorted(set(s for s in (splits or []) if 0 < s < len(response)))
    pieces = [response[a:b] for a, b in zip([0, *cuts], [*cuts, len(response)], strict=True)]
    status, body, chunks, trailers = None, b"", [], None
    in_chunk = False
    while True:
        event = p.next_event()
        if event is NEED_DATA:
            p.receive_data(pieces.pop(0) if pieces else b"")
            continue
        if isinstance(event, h11.Response):
            status = event.status_code
        elif isinstance(event, h11.Data):
            body += event.data
            # h11's chunk_start is lost when a size line arrives without data;
            # chunk_end is exact, so a chunk starts with the Data after it.
            if p.chunked and not in_chunk:
                chunks.append(p.chunk_header())
            in_chunk = not event.chunk_end
        elif isinstance(event, h11.EndOfMessage):
            trailers = list(event.headers)
            return status, body, chunks, trailers, p
        elif isinstance(event, h11.ConnectionClosed):
            raise ProtocolError("closed")


def test_chunk_sizes_extensions_and_trailers():
    status, body, chunks, trailers, p = run(CHUNKED)
    assert status == 200 and len(body) == 2017
    assert chunks == [
        (10, (("name", "first"),)),
        (2000, ()),
        (7, (("q", "a b"), ("flag", None))),
    ]
    assert trailers == [(b"x-sum", b"42")]
    assert p.reusable()


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=len(CHUNKED) - 1), max_size=30))
def test_any_split_of_a_chunked_response_gives_the_same_result(splits):
    expected = run(CHUNKED)[:4]
    assert run(CHUNKED, splits)[:4] == expected


def test_one_byte_at_a_time():
    assert run(CHUNKED, list(range(1, len(CHUNKED))))[:4] == run(CHUNKED)[:4]


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_give_a_result_or_an_nbfetch_error(data):
    try:
        run(b"HTTP/1.1 200 OK\r\n" + data)
    except (ProtocolError, TooLargeError):
        pass
    try:
        run(data)
    except (ProtocolError, TooLargeError):
        pass


def test_leftover_bytes_after_a_response_forbid_reuse():
    # Content-Length says 2, the server sent 5: the extra bytes would be read as
    # the next response if the connection were reused (a desync).
    *_, p = run(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi!!!")
    assert not p.reusable()
    *_, p = run(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi")
    assert p.reusable()


def test_malformed_response_is_a_protocol_error():
    with pytest.raises(ProtocolError, match="malformed response"):
        run(b"HTTP/1.1 2OO OK\r\n\r\n")
    with pytest.raises(ProtocolError):
        run(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")


def test_oversized_header_block_is_too_large():
    p = ClientProtocol(max_header_bytes=1024)
    p.send_request(build_request("GET", "/", [(b"Host", b"h")]))
    p.receive_data(b"HTTP/1.1 200 OK\r\nX: " + b"a" * 5000)
    with pytest.raises(TooLargeError):
        p.next_event()


@pytest.mark.parametrize(
    "method,target,headers",
    [
        ("GET", "/", [(b"Host", b"h"), (b"X", b"a\r\nInjected: 1")]),
        ("GET", "/", [(b"Host", b"h"), (b"Bad Name", b"v")]),
        ("GET", "/a b", [(b"Host", b"h")]),
        ("GE T", "/", [(b"Host", b"h")]),
    ],
)
def test_h11_refuses_injection_before_sending(method, target, headers):
    with pytest.raises(InvalidRequest):
        build_request(method, target, headers)


def test_chunk_tap_parses_extensions():
    assert parse_extensions(b';x=1;y="two words"; z;q="a\\"b"') == (
        ("x", "1"),
        ("y", "two words"),
        ("z", None),
        ("q", 'a"b'),
    )
    tap = ChunkTap()
    for byte in b"3;e=1\r\nabc\r\n000A\r\n0123456789\r\n0\r\n\r\n":
        tap.feed(bytes([byte]))
    assert [tap.next_header() for _ in range(3)] == [(3, (("e", "1"),)), (10, ()), (0, ())]


# Size lines int(x, 16) or a lax reader would accept; RFC 9112 7.1 says 1*HEXDIG.
HOSTILE_SIZE_LINES = [
    b"-4",
    b"+4",
    b"4_0",
    b" 4",
    b"\t4",
    b"0x4",
    b"4 ;a=1",  # h11 allows no whitespace before the first ";"
    b"4;",
    b"4;=1",
    b'4;a="unterminated',
    b"4;a=b c",
    b"4;a\x00",
    b"4;a=\x7f",
    b"1" * 21,  # h11's bound is 20 hex digits
    b"",
    b"g",
]


@pytest.mark.parametrize("line", HOSTILE_SIZE_LINES, ids=repr)
def test_hostile_size_line_is_a_protocol_error(line):
    head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    with pytest.raises(ProtocolError):
        run(head + line + b"\r\nXXXX\r\n0\r\n\r\n")
    with pytest.raises(ProtocolError):  # the same, a byte at a time
        run(head + line + b"\r\nXXXX\r\n0\r\n\r\n", list(range(1, 200)))


def test_bare_lf_and_bad_chunk_footer_are_protocol_errors():
    head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    for body in (b"4\nabcd\r\n0\r\n\r\n", b"4\r\nabcdXY0\r\n\r\n", b"4\r\nabcd\n0\r\n\r\n"):
        with pytest.raises(ProtocolError):
            run(head + body)


def _h11_size(line: bytes):
    """What h11 alone makes of a chunk whose size line is ``line``."""
    conn = h11.Connection(h11.CLIENT)
    conn.send(h11.Request(method="GET", target="/", headers=[("Host", "h")]))
    conn.send(h11.EndOfMessage())
    conn.receive_data(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + line + b"\r\n")
    conn.next_event()
    try:
        conn.next_event()
    except h11.RemoteProtocolError:
        return "refused"
    return int(line.split(b";")[0].rstrip(b" \t"), 16)


SIZE_LINE_BYTES = st.sampled_from(list(b'0123456789abcdefABCDEFxX-+_ \t;="\\,\r\x00\x7fz'))


@settings(max_examples=1500, deadline=None)
@given(st.lists(SIZE_LINE_BYTES, max_size=24).map(bytes))
def test_the_tap_is_never_looser_than_h11(line):
    """Whatever the tap accepts, h11 accepts with the same size."""
    tap = ChunkTap()
    try:
        tap.feed(line + b"\r\n")
        size, _ = tap.next_header()
    except ProtocolError:
        return
    assert _h11_size(line) == size


EXT_BYTES = st.sampled_from(list(b'abcXYZ019;=" \t\\!#~\x7f\x80\xff,'))


@settings(max_examples=500, deadline=None)
@given(
    st.sampled_from([b"1", b"a", b"00f", b"7fffffffffffffffffff"]),
    st.lists(EXT_BYTES, max_size=64).map(bytes),
    st.integers(min_value=0, max_value=4200),
)
def test_the_tap_is_never_looser_than_h11_on_extensions(size, ext, pad):
    """Extension-heavy lines up to past the 4096-byte bound: never looser than h11,
    and a line over the bound is refused whatever it holds."""
    line = size + b";" + ext + b"x" * pad
    tap = ChunkTap()
    try:
        tap.feed(line + b"\r\n")
        got, _ = tap.next_header()
    except ProtocolError:
        return
    assert len(line) <= 4096
    assert _h11_size(line) == got


@pytest.mark.parametrize(
    ("sent", "message"),
    [
        (b"", "server closed the connection without sending a response"),
        (
            b"HTTP/1.1 100 Continue\r\n\r\n",
            "server closed the connection without sending a response",
        ),
        (b"HTTP/1.1 200 OK\r\nContent-Le", "malformed response"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab", "malformed response"),
    ],
)
def test_a_close_is_told_apart_by_state_not_by_h11s_wording(sent, message):
    """Closed before any final head (after a 1xx too): "without sending a
    response"; closed inside the head or the body: a malformed response."""
    p = ClientProtocol()
    p.send_request(build_request("GET", "/", [(b"Host", b"h")]))
    p.send_end()
    p.receive_data(sent)
    p.receive_data(b"")
    with pytest.raises(ProtocolError) as info:
        while True:
            event = p.next_event()
            assert event is not NEED_DATA
    assert info.value.message.startswith(message), info.value.message


def test_head_headers_keep_the_names_as_sent_and_find_them_case_blind():
    p = ClientProtocol()
    p.send_request(build_request("GET", "/", [(b"Host", b"h")]))
    p.receive_data(b"HTTP/1.1 200 OK\r\nX-Mixed-Case: 1\r\nContent-Length: 0\r\n\r\n")
    headers = head_headers(p.next_event())
    assert list(headers.items()) == [("X-Mixed-Case", "1"), ("Content-Length", "0")]
    assert headers["x-mixed-case"] == "1"
