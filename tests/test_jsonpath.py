"""The JSONPath subset of nbfetch.httpfile.jsonpath: what REST Client's request
variables and httpyac's ``?? body $...`` assertions are written with."""

import json

import pytest

from nbfetch import InvalidRequest
from nbfetch.httpfile import jsonpath, jsonpath_one

DOC = {
    "token": "abc",
    "items": [{"id": 1, "tags": ["a", "b"]}, {"id": 2, "tags": []}, {"id": 3, "name": "x"}],
    "a b": {"c": True},
    "it's": 1,
    "nested": {"deep": {"id": 9}},
    "empty": None,
    "obj": {"length": 42},
}


@pytest.mark.parametrize(
    "path, expected",
    [
        ("$", [DOC]),
        ("$.token", ["abc"]),
        ("$['token']", ["abc"]),
        ('$["token"]', ["abc"]),
        ("$['a b'].c", [True]),
        ("$['it\\'s']", [1]),
        ("$.items[0].id", [1]),
        ("$.items[-1].id", [3]),
        ("$.items[*].id", [1, 2, 3]),
        ("$.items.*.id", [1, 2, 3]),
        ("$.items[0].tags[1]", ["b"]),
        ("$..id", [1, 2, 3, 9]),
        ("$.nested..id", [9]),
        ("$..tags[0]", ["a"]),
        ("$.items.length", [3]),
        ("$.items[0].tags.length", [2]),
        ("$.token.length", [3]),
        ("$.obj.length", [42]),  # a member named "length" wins over the size
        ("$.empty", [None]),
        ("$.missing", []),
        ("$.items[5]", []),
        ("$.items[-4]", []),
        ("$.token[0]", []),
        ("$.items.id", []),
    ],
)
def test_paths_select_what_they_name(path, expected):
    assert jsonpath(DOC, path) == expected


def test_descendant_wildcard_is_every_value_below():
    doc = {"a": {"b": 1}, "c": [2]}
    assert jsonpath(doc, "$..*") == [{"b": 1}, 1, [2], 2]


def test_a_deep_document_does_not_exhaust_the_stack():
    depth = 50_000
    doc = current = {}
    for _ in range(depth):
        current["x"] = {}
        current = current["x"]
    current["id"] = 7
    assert jsonpath(doc, "$..id") == [7]


def test_jsonpath_one_is_the_first_match_and_names_the_path_when_none():
    assert jsonpath_one(DOC, "$.items[*].id") == 1
    assert jsonpath_one(DOC, "$.empty") is None
    with pytest.raises(LookupError, match=r"JSONPath \$\.nope\.x matched nothing"):
        jsonpath_one(DOC, "$.nope.x")


@pytest.mark.parametrize(
    "path, message",
    [
        ("token", "must start with '\\$'"),
        ("$.", "expected a name at character 3"),
        ("$.items[?(@.id > 1)]", "unsupported bracket at character 8"),
        ("$.items[0:2]", "unsupported bracket"),
        ("$.items[0,1]", "unsupported bracket"),
        ("$['unclosed", "unsupported bracket"),
        ("$ token", "unexpected ' ' at character 2"),
        ("$[%s]" % ("9" * 500), "unsupported bracket"),  # int() would refuse 4,300 digits
    ],
)
def test_unsupported_syntax_is_a_clear_error(path, message):
    with pytest.raises(InvalidRequest, match=message):
        jsonpath(DOC, path)


def test_a_path_of_any_length_is_bounded():
    with pytest.raises(InvalidRequest, match="at most 1000"):
        jsonpath(DOC, "$" + ".a" * 600)


def test_it_works_on_what_json_loads_makes():
    doc = json.loads('{"data": {"users": [{"name": "ada"}, {"name": "bob"}]}}')
    assert jsonpath(doc, "$.data.users[*].name") == ["ada", "bob"]
    assert jsonpath(doc, "$.data.users.length") == [2]
