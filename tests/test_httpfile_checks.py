"""The ``??`` assertions evaluated against real responses of the demo server:
every operator passing and failing, the messages, ``actual`` short and
scrubbed, ``?? py`` with its names, and a check that cannot compare failing
with the reason instead of raising."""

from __future__ import annotations

import pytest
from conftest import answer_each

import nbfetch
from nbfetch.httpfile.checks import MAX_ACTUAL, MAX_JSON_CHECKED, MAX_TEXT_CHECKED, check
from nbfetch.httpfile.model import Assertion
from nbfetch.httpfile.parse import parse_assertion
from nbfetch.httpfile.variables import Scope

BODY = {"items": [1, 2, 3], "name": "nbfetch", "ok": True, "count": "3", "nested": {"a": None}}


@pytest.fixture(scope="module")
def echo(demo_server):
    """A JSON echo of ``BODY`` (``$.json`` holds it) with a secret header in it."""
    return nbfetch.fetch_sync(
        demo_server.url + "/post", "POST", json=BODY, headers={"X-Api-Key": "k3y-0f-mine"}
    )


@pytest.fixture(scope="module")
def html(demo_server):
    return nbfetch.fetch_sync(demo_server.url + "/html")


def run(text: str, response, scope=None, **kwargs):
    return check(parse_assertion(text, 7), response, scope or Scope(), **kwargs)


@pytest.mark.parametrize(
    "text",
    [
        "status == 200",
        "status != 404",
        "status < 300",
        "status >= 200",
        'status == "200"',  # numbers compare as numbers, whichever side is text
        "header content-type contains json",
        "header Content-Type startsWith application/",
        "header content-type endsWith json",
        "header content-type matches ^application/(json|xml)$",
        "header content-length isNumber",
        "header content-length > 10",
        "header x-missing !exists",
        "header content-type exists",
        'body contains "nbfetch"',
        "body contains nbfetch",
        "body !contains hunter2",
        "body $.json.items.length > 2",
        "body $.json.items.length == 3",
        "body $.json.items[0] == 1",
        "body $.json.items contains 2",
        "body $.json.items isArray",
        'body $.json.name == "nbfetch"',
        "body $.json.name == nbfetch",
        "body $.json.name isString",
        "body $.json.count == 3",
        "body $.json.count isString",
        "body $.json.ok isTrue",
        "body $.json.ok isBoolean",
        "body $.json.ok == true",
        "body $.json.nested.a == null",
        "body $.json.nested.a exists",
        "body $.json.nothing !exists",
        "body $..a exists",
        "duration < 60s",
        "duration < 60000ms",
        "duration < 60000",
        "duration > 0ms",
        'py response.status_code == 200 and json["json"]["name"] == "nbfetch"',
        'py all(x > 0 for x in json["json"]["items"])',
    ],
)
def test_each_form_passes_on_a_response_that_fits(echo, text):
    result = run(text, echo)
    assert result.passed, result.message
    assert result.message == text


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("status == 404", "status == 404: got 200"),
        ("status >= 400", "status >= 400: got 200"),
        (
            "header content-type contains xml",
            'header content-type contains xml: got "application/json"',
        ),
        ("header x-missing exists", "header x-missing exists: got nothing"),
        ("header x-missing == 1", "header x-missing == 1: no x-missing header"),
        ("body $.json.items.length > 3", "body $.json.items.length > 3: got 3"),
        ("body $.json.name == other", 'body $.json.name == other: got "nbfetch"'),
        ("body $.json.ok isFalse", "body $.json.ok isFalse: got true"),
        ("body $.json.count isNumber", 'body $.json.count isNumber: got "3"'),
        ("body $.json.nothing exists", "body $.json.nothing exists: got nothing"),
        ("body $.json.nothing == 1", "body $.json.nothing == 1: no match"),
        ("body $.json.name > 2", 'body $.json.name > 2: "nbfetch" and 2 are not both numbers'),
        ("body $.json.name matches (", "body $.json.name matches (: bad regular expression: "),
        ("duration < 0ms", "duration < 0ms: got "),
        ("py 1 / 0", "py 1 / 0: ZeroDivisionError: division by zero"),
        ("py undefined_name", "py undefined_name: NameError: name 'undefined_name' is not defined"),
        ("py json['nope']", "py json['nope']: KeyError: 'nope'"),
        (
            'py response.json()["count"] >= 2',
            "py response.json()[\"count\"] >= 2: KeyError: 'count'",
        ),
    ],
)
def test_a_failing_check_says_what_it_got(echo, text, message):
    result = run(text, echo)
    assert not result.passed
    assert result.message.startswith(message), result.message


def test_a_duration_is_shown_in_milliseconds(echo):
    result = run("duration < 0ms", echo)
    total_ms = echo.timing.total * 1000
    assert result.actual == f"{total_ms:.0f} ms"


def test_a_body_that_is_not_json_fails_a_jsonpath_check_saying_so(html):
    result = run("body $.title exists", html)
    assert not result.passed
    assert result.message.startswith("body $.title exists: the body is not JSON (text/html")
    assert run("body contains <h1>Hello", html).passed


def test_expected_is_expanded_from_the_scope(echo):
    scope = Scope(file_variables={"code": "200", "who": "nbfetch", "when": "soon"})
    assert run("status == {{code}}", echo, scope).passed
    assert run("body $.json.name == {{who}}", echo, scope).passed
    # The parser refuses "duration < soon"; an Assertion built in code is checked too.
    late = Assertion("duration", None, "<", "{{when}}", "duration < {{when}}", 1)
    assert check(late, echo, scope).message == (
        "duration < {{when}}: 'soon' is not a duration (500ms, 2s)"
    )


def test_an_undefined_variable_in_expected_is_a_failed_check_naming_it(echo):
    result = run("status == {{nope}}", echo, source="api.http")
    assert not result.passed
    assert "{{nope}} is not defined" in result.message


def test_py_sees_the_namespace_the_named_results_and_json(echo):
    class Earlier:
        response = echo

    scope = Scope(results={"login": Earlier()})
    namespace = {"expected_items": 3}
    result = run(
        'py len(json["json"]["items"]) == expected_items == len(login.response.json()["json"]["items"])',
        echo,
        scope,
        namespace=namespace,
    )
    assert result.passed, result.message
    # The check did not add its names to the caller's namespace.
    assert namespace == {"expected_items": 3}


def test_actual_is_short(echo):
    result = run("body == x", echo)
    assert not result.passed
    assert len(result.actual) <= MAX_ACTUAL and result.actual.endswith("…")
    assert len(result.message) < 300


def test_actual_and_the_message_are_scrubbed_unless_show_secrets(echo):
    scope = Scope()
    scope.secrets.add_request(echo.request)  # the run does this after each fetch
    text = "body $.headers.X-Api-Key == other"
    hidden = run(text, echo, scope)
    assert not hidden.passed and "k3y-0f-mine" not in hidden.actual + hidden.message
    assert hidden.actual == '"***"'
    shown = run(text, echo, scope, show_secrets=True)
    assert shown.actual == '"k3y-0f-mine"'
    # An exception's message (py) is scrubbed too.
    raised = run('py 1/0 if "k3y-0f-mine" else 0', echo, scope)
    assert "k3y-0f-mine" not in raised.message


def test_integers_compare_exactly_not_as_floats(raw_server):
    # Two ids a double cannot tell apart (above 2**53): as floats, each equals the other.
    body = b'{"id": 1234567890123456789, "ids": [9007199254740993], "f": 0.5}'
    response = nbfetch.fetch_sync(raw_server(answer_each(json_reply(body))).url + "/ids")
    for text, passed in [
        ("body $.id == 1234567890123456789", True),
        ("body $.id == 1234567890123456788", False),
        ("body $.id != 1234567890123456788", True),
        ('body $.id == "1234567890123456788"', False),
        ('body $.id == "1234567890123456789"', True),
        ("body $.id > 1234567890123456788", True),
        ("body $.ids contains 9007199254740992", False),
        ("body $.ids contains 9007199254740993", True),
        ("body $.f == 0.5", True),
        ("body $.f < 1", True),
        ("header content-length == " + str(len(body)), True),
    ]:
        assert run(text, response).passed is passed, text


def test_a_path_that_can_select_several_checks_every_match(raw_server):
    # Compared as one list with a scalar, "$.items[*].id != 1" passed although
    # an id is 1, and "$.one[*].id == 7" failed with "got [7]".
    body = (
        b'{"slides": [{"title": "Wake up"}, {"title": "Overview", "n": {"title": "x"}}],'
        b' "items": [{"id": 1}, {"id": 2}], "one": [{"id": 7}], "empty": []}'
    )
    response = nbfetch.fetch_sync(raw_server(answer_each(json_reply(body))).url + "/many")
    for text, passed in [
        ("body $.slides[*].title contains Overview", True),
        ('body $.slides[*].title == ["Wake up", "Overview"]', True),
        ("body $.slides[*].title isArray", False),  # every match is a string
        ("body $.slides[*].title isString", True),
        ("body $.items[*].id != 1", False),
        ("body $.items[*].id != 3", True),
        ("body $.items[*].id == 1", False),
        ("body $.items[*].id > 0", True),
        ("body $.items[*].id > 1", False),
        ("body $.items[*].id isNumber", True),
        ("body $.one[*].id == 7", True),
        ("body $.one[*].id >= 7", True),
        ("body $.items[*].id == [1, 2]", True),
        ("body $.items[*].id !contains 3", True),
        ("body $.items[*].id !contains 2", False),
        ("body $.empty[*] == []", True),
        ("body $.empty[*] !exists", True),
        ("body $.empty[*] != 1", False),  # no match: nothing holds it
        ("body $.empty[*] isNumber", False),
        ("body $..title contains x", True),
        ("body $.slides[1].* contains Overview", True),
        ("body $.slides[*].title contains Nope", False),
        ("body $.slides[*].nothing !exists", True),
        ("body $.slides[*].nothing exists", False),
        ('body $.slides[0].title == "Wake up"', True),  # a plain path: the one value
        ("body $.slides[0].title isString", True),
    ]:
        assert run(text, response).passed is passed, text
    got = run("body $..title == none", response).message
    assert got == 'body $..title == none: got ["Wake up", "Overview", "x"]'


def test_a_json_boolean_equals_only_a_boolean(raw_server):
    # Python's True == 1 made "$.flag == 1" and "$.zero == false" pass.
    body = b'{"flag": true, "off": false, "n": 1, "zero": 0, "list": [true, 1], "o": {"a": true}}'
    response = nbfetch.fetch_sync(raw_server(answer_each(json_reply(body))).url + "/bools")
    for text, passed in [
        ("body $.flag == 1", False),
        ("body $.flag != 1", True),
        ("body $.n == true", False),
        ("body $.off == 0", False),
        ("body $.zero == false", False),
        ("body $.flag == true", True),
        ("body $.off == false", True),
        ("body $.n == 1", True),
        ("body $.list == [1, 1]", False),
        ("body $.list == [true, 1]", True),
        ("body $.list contains 1", True),
        ("body $.list[*] == [true, 1]", True),
        ('body $.o == {"a": 1}', False),
        ('body $.o == {"a": true}', True),
    ]:
        assert run(text, response).passed is passed, text


def json_reply(body: bytes) -> bytes:
    head = f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}"
    return head.encode() + b"\r\n\r\n" + body


def test_json_nested_too_deep_for_python_is_not_json(raw_server):
    srv = raw_server(answer_each(json_reply(b"[" * 100_000 + b"]" * 100_000)))
    response = nbfetch.fetch_sync(srv.url + "/deep")
    result = run("body $[0] exists", response)
    assert not result.passed
    assert result.message.endswith("the body is not JSON (application/json)")
    assert run("py json is None", response).passed


def test_a_body_too_large_to_parse_on_the_loop_fails_saying_so(raw_server):
    body = b'{"pad": "' + b"x" * MAX_JSON_CHECKED + b'"}'
    srv = raw_server(answer_each(json_reply(body)))
    response = nbfetch.fetch_sync(srv.url + "/big")
    result = run("body $.pad exists", response)
    assert not result.passed
    assert f"the body ({len(body):,} bytes) is too large to check as JSON here" in result.message
    assert run("body contains xxxx", response).passed  # as text it is checked
    assert run(f"py len(response.json()['pad']) == {MAX_JSON_CHECKED}", response).passed


def test_a_body_too_large_to_search_on_the_loop_fails_saying_so(raw_server):
    body = b"x" * (MAX_TEXT_CHECKED + 1)
    srv = raw_server(answer_each(json_reply(body)))
    result = run("body contains y", nbfetch.fetch_sync(srv.url + "/huge"))
    assert not result.passed and "too large to check as text" in result.message
