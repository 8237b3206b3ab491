from nbfetch import Headers


def test_case_insensitive_multi_valued_and_ordered():
    h = Headers([("Set-Cookie", "a=1"), ("Content-Type", "text/html"), ("set-cookie", "b=2")])
    assert h["content-type"] == "text/html"
    assert h["SET-COOKIE"] == "a=1, b=2"
    assert h.get_list("Set-Cookie") == ["a=1", "b=2"]
    assert list(h) == ["set-cookie", "content-type"]
    assert h.raw == [
        (b"Set-Cookie", b"a=1"),
        (b"Content-Type", b"text/html"),
        (b"set-cookie", b"b=2"),
    ]
    assert "CONTENT-TYPE" in h and "x" not in h
    assert h.get("missing") is None and h.get("missing", "d") == "d"


def test_raw_bytes_kept_and_non_utf8_values_decode():
    h = Headers([(b"X-Bin", b"caf\xe9 \xff")])
    assert h.get_raw("x-bin") == [b"caf\xe9 \xff"]
    assert h["x-bin"] == "café ÿ"  # ISO-8859-1 view never fails


def test_setitem_replaces_all_in_place_and_delete():
    h = Headers([("A", "1"), ("B", "2"), ("a", "3")])
    h["a"] = "9"
    assert h.items() == [("a", "9"), ("B", "2")]
    del h["b"]
    assert h.items() == [("a", "9")]
    h.add("A", "10")
    assert h.get_list("a") == ["9", "10"]
    h.update({"a": "x", "C": "y"})
    assert h.to_dict() == {"a": "x", "c": "y"}


def test_equality_ignores_name_case():
    assert Headers({"A": "1"}) == Headers({"a": "1"})
    assert Headers({"A": "1"}) == {"a": "1"}
    assert Headers({"A": "1"}) != Headers({"A": "2"})


def test_non_latin1_value_is_sent_as_utf8():
    h = Headers({"X-Name": "Zoë ☃"})
    assert h.get_raw("x-name") == ["Zoë ☃".encode()]
