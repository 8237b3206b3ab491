"""The .http parser (nbfetch.httpfile.parse): requests, variables, settings,
bodies, scripts it skips, ?? assertions, and the errors it gives.

Examples marked "REST Client README" are from Huachao/vscode-restclient
README.md (commit 6649589); the rules they check are in its
src/utils/httpRequestParser.ts and src/utils/selector.ts.
"""

import os

import pytest

from nbfetch import InvalidRequest
from nbfetch.httpfile import Assertion, parse_assertion, parse_http, read_http_file


def one(text):
    file = parse_http(text)
    assert len(file.requests) == 1, file.requests
    return file.requests[0]


# -- the request line ----------------------------------------------------------------
@pytest.mark.parametrize(
    "line",
    [
        "GET https://example.com/comments/1 HTTP/1.1",
        "GET https://example.com/comments/1",
        "https://example.com/comments/1",
        "get https://example.com/comments/1",
    ],
)
def test_the_three_request_lines_of_the_rest_client_readme_are_the_same(line):
    block = one(line)
    assert (block.method, block.url, block.line) == ("GET", "https://example.com/comments/1", 1)


def test_any_capitalised_method_and_templates_with_spaces_in_the_url():
    block = one("PURGE {{base}}/items?n={{$randomInt 1 10}} HTTP/1.1")
    assert (block.method, block.url) == ("PURGE", "{{base}}/items?n={{$randomInt 1 10}}")


def test_query_continuation_lines_join_the_url():  # REST Client README, "Query Strings"
    block = one("GET https://example.com/comments\n    ?page=2\n    &pageSize=10\nAccept: */*")
    assert block.url == "https://example.com/comments?page=2&pageSize=10"
    assert block.headers == [("Accept", "*/*")]


def test_an_assertion_right_after_the_request_line_is_not_a_query_line():
    # "??" is never REST Client's "?" continuation: joined to the URL, the check
    # would never run and the run would pass.
    block = one("GET http://h/json\n?? status == 200\n  ?? header x exists")
    assert block.url == "http://h/json"
    assert [(a.subject, a.line) for a in block.assertions] == [("status", 2), ("header", 3)]
    assert one("GET http://h/json\n?a=1\n?? status == 200").url == "http://h/json?a=1"
    with pytest.raises(InvalidRequest, match=r"cell line 2: '\?\? stauts…': the subject must be"):
        parse_http("GET http://h/json\n?? stauts == 200")


@pytest.mark.parametrize("indent", ["  ", "    ", "\t"])
@pytest.mark.parametrize("query", ["", "?a=1\n", "  &b=2\n"])
def test_an_indented_check_comment_or_handler_never_continues_the_url(indent, query):
    # JetBrains' indented continuation is for the request target only: joined to
    # the URL, "  ?? status == 200" would never run and the run would pass.
    url = "http://h/json" + query.replace("\n", "").strip()
    block = one(f"GET http://h/json\n{query}{indent}?? status == 200\n")
    assert (block.url, [a.subject for a in block.assertions]) == (url, ["status"])
    for line in ("# @no-redirect", "// note", "# note", "> {% client.log(1) %}"):
        assert one(f"GET http://h/json\n{query}{indent}{line}\n").url == url
    with pytest.raises(InvalidRequest, match="expected a header"):
        parse_http(f"GET http://h/json\n{query}{indent}< ./body.json\n")


def test_a_request_target_and_a_header_value_continued_on_indented_lines():
    # JetBrains' http-request-in-editor-spec, spec.md 3.2.2 and 4.2.1 (commit ad74311)
    assert one("http://example.com/\n    api\n    /get").url == "http://example.com/api/get"
    block = one("GET http://example.com/\n    %20api%20\n    +/get+ HTTP/1.1\n  Accept: x/y")
    assert (block.url, block.headers) == ("http://example.com/%20api%20+/get+", [("Accept", "x/y")])
    block = one("GET http://h/\nX-Long: one\n    two\nAccept: */*")
    assert block.headers == [("X-Long", "one two"), ("Accept", "*/*")]


# -- headers and body ----------------------------------------------------------------
def test_headers_then_a_blank_line_then_the_body():  # REST Client README, "Request Body"
    text = """POST https://example.com/comments HTTP/1.1
Content-Type: application/xml
Authorization: token xxx

<request>
    <name>sample</name>
</request>


"""
    block = one(text)
    assert block.headers == [("Content-Type", "application/xml"), ("Authorization", "token xxx")]
    assert block.header_lines == [2, 3]
    assert block.body == "<request>\n    <name>sample</name>\n</request>"
    assert block.body_line == 5


def test_comment_lines_are_dropped_everywhere_as_rest_client_does():
    text = """# a comment
// another
GET http://h/x
# between headers
Accept: text/plain

line one
# not sent
line two
"""
    block = one(text)
    assert block.headers == [("Accept", "text/plain")]
    assert block.body == "line one\nline two"


@pytest.mark.parametrize(
    "line, path, templates, encoding",
    [
        ("< ./demo.xml", "./demo.xml", False, None),
        (
            "< C:\\Users\\Default\\Desktop\\demo.xml",
            "C:\\Users\\Default\\Desktop\\demo.xml",
            False,
            None,
        ),
        ("<@ ./demo.xml", "./demo.xml", True, None),
        ("<@latin1 ./my demo.xml  ", "./my demo.xml", True, "latin1"),
    ],
)
def test_a_body_from_a_file_is_only_named_not_read(line, path, templates, encoding):
    block = one(f"POST http://h/x\nContent-Type: application/xml\n\n{line}\n")
    assert block.body is None
    assert (block.body_file, block.body_file_templates, block.body_file_encoding) == (
        path,
        templates,
        encoding,
    )


def test_a_multipart_body_keeps_its_file_lines_for_when_it_runs():  # REST Client README
    text = """POST https://api.example.com/user/upload
Content-Type: multipart/form-data; boundary=----WebKitFormBoundary7MA4YWxkTrZu0gW

------WebKitFormBoundary7MA4YWxkTrZu0gW
Content-Disposition: form-data; name="image"; filename="1.png"
Content-Type: image/png

< ./1.png
------WebKitFormBoundary7MA4YWxkTrZu0gW--
"""
    block = one(text)
    assert block.body_file is None
    assert "\n< ./1.png\n" in block.body


def test_a_pasted_response_after_the_request_is_not_its_body():
    block = one("GET http://h/x\n\nHTTP/1.1 200 OK\nContent-Type: text/plain\n\nhello")
    assert block.body is None


def test_crlf_a_bom_tabs_and_line_separators_inside_a_body():
    text = '\ufeffPOST\thttp://h/x\r\n{{name}}:\tv\r\n\r\n{"a": "x\u2028y\x0cz"}\r\n'
    block = one(text)
    assert (block.method, block.url, block.headers) == ("POST", "http://h/x", [("{{name}}", "v")])
    assert block.body == '{"a": "x\u2028y\x0cz"}'  # split at CRLF and LF only


# -- separators, names, settings ------------------------------------------------------
def test_separators_titles_names_and_settings():
    text = """### Log in
# @name login
// @no-redirect
# @no-cookie-jar
# @timeout 5 s
POST http://h/token

###

GET http://h/me
### last one
// @name=second
GET http://h/x
"""
    file = parse_http(text, source="api.http")
    first, anonymous, second = file.requests
    assert (first.title, first.name, first.line, first.source) == ("Log in", "login", 6, "api.http")
    assert first.settings == {"no-redirect": "", "no-cookie-jar": "", "timeout": "5 s"}
    assert (anonymous.title, anonymous.name, anonymous.settings) == (None, None, {})
    assert (second.title, second.name) == ("last one", "second")


def test_repeated_settings_are_kept_line_by_line():  # REST Client README, "Prompt Variables"
    block = one("# @prompt username\n# @prompt otp Your one-time password\nGET http://h/")
    assert block.settings["prompt"] == "username\notp Your one-time password"


def test_a_cell_of_several_requests():
    file = parse_http("GET http://h/a\n###\n\n###\nGET http://h/b\n")
    assert [r.url for r in file.requests] == ["http://h/a", "http://h/b"]


# -- variables -----------------------------------------------------------------------
def test_file_variables_anywhere_apply_to_the_whole_file():  # REST Client README
    text = """@hostname = api.example.com
@port = 8080
@host = {{hostname}}:{{port}}

###

@name = Strunk & White

GET https://{{host}}/authors/{{%name}} HTTP/1.1

###

@authToken = {{login.response.headers.X-AuthToken}}
PATCH https://{{host}}/authors/{{%name}} HTTP/1.1
"""
    file = parse_http(text)
    assert file.variables == {
        "hostname": "api.example.com",
        "port": "8080",
        "host": "{{hostname}}:{{port}}",
        "name": "Strunk & White",
        "authToken": "{{login.response.headers.X-AuthToken}}",
    }
    assert [r.variables for r in file.requests] == [
        {"name": "Strunk & White"},
        {"authToken": "{{login.response.headers.X-AuthToken}}"},
    ]


def test_a_later_definition_wins_and_values_take_rest_client_escapes():
    file = parse_http("@x = 1\n@x = two\\nlines\\t\\\\ \nGET http://h/")
    assert file.variables == {"x": "two\nlines\t\\"}


# -- what is parsed and not run -------------------------------------------------------
def test_jetbrains_scripts_and_response_references_are_skipped_with_a_note():
    text = """< {%
    request.variables.set("x", "1")
%}
POST http://h/post
Content-Type: application/json

{"a": 1}

> {%
    client.test("ok", function() { client.assert(response.status === 200); });
%}
> ./handler.js
<> ./previous-response.json

?? status == 200
"""
    block = one(text)
    assert block.body == '{"a": 1}'
    assert block.assertions[0].text == "?? status == 200"
    assert block.settings["ignored"] == (
        "not run: the pre-request script at line 1; the response handler at line 9;"
        " the response handler ./handler.js (line 12);"
        " the response reference ./previous-response.json (line 13)"
    )


def test_a_one_line_handler_and_an_httpyac_script_block():
    text = "{{\n  exports.x = 1;\n}}\nGET http://h/\n\n> {% client.log(1) %}\n?? status == 200"
    block = one(text)
    assert block.url == "http://h/"
    assert len(block.assertions) == 1
    assert "pre-request script at line 1" in block.settings["ignored"]


# -- ?? assertions --------------------------------------------------------------------
def test_assertions_after_headers_or_after_the_body():
    file = parse_http(
        "GET http://h/a\nAccept: */*\n?? status == 200\n###\n"
        'POST http://h/b\n\n{"x": 1}\n\n?? body $.x == 1\n# fine\n?? duration < 500ms\n'
    )
    a, b = file.requests
    assert [x.line for x in a.assertions] == [3]
    assert b.body == '{"x": 1}'
    assert [(x.subject, x.argument, x.line) for x in b.assertions] == [
        ("body", "$.x", 9),
        ("duration", None, 11),
    ]


@pytest.mark.parametrize(
    "text, subject, argument, operator, expected",
    [
        ("status == 200", "status", None, "==", "200"),
        ("status===201", "status", None, "==", "201"),
        ("status\t!=\t500", "status", None, "!=", "500"),
        ("header\tcontent-type\tcontains\tjson", "header", "content-type", "contains", "json"),
        ("header content-type contains json", "header", "content-type", "contains", "json"),
        ("header content-type includes json", "header", "content-type", "contains", "json"),
        ("header x-request-id exists", "header", "x-request-id", "exists", None),
        ("header x-debug !exists", "header", "x-debug", "!exists", None),
        ('body contains "ok"', "body", None, "contains", '"ok"'),
        ("body $.items.length > 0", "body", "$.items.length", ">", "0"),
        ("body $['a b'][0] startswith x y", "body", "$['a b'][0]", "startsWith", "x y"),
        ("body $.token exists", "body", "$.token", "exists", None),
        ("body foo == bar", "body", "$.foo", "==", "bar"),  # httpyac's body.spec.ts
        ("body $.ok isTrue", "body", "$.ok", "isTrue", None),
        ("body matches ^\\{.*\\}$", "body", None, "matches", "^\\{.*\\}$"),
        ("duration < 500ms", "duration", None, "<", "500ms"),
        ("duration <= 1.5 s", "duration", None, "<=", "1.5 s"),
        ("duration < 500", "duration", None, "<", "500"),
        ('py response.json()["count"] >= 2', "py", 'response.json()["count"] >= 2', None, None),
    ],
)
def test_the_assertion_grammar(text, subject, argument, operator, expected):
    assertion = parse_assertion(text, 7)
    assert assertion == Assertion(subject, argument, operator, expected, "?? " + text, 7)


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "the subject must be one of status, header, body, duration, py"),
        ("bogus == 1", "the subject must be one of"),
        ("js response.parsedBody.x == 1", "httpyac's JavaScript; nbfetch runs Python: ?? py"),
        ("status", "no operator"),
        ("status is 200", "'is' is not an operator"),
        ("status ==", "== needs a value to compare with"),
        ("header", "?? header needs a header name"),
        ("header == x", "?? header needs a header name"),
        ("header etag exists yes", "exists takes no value"),
        ("body $.a[?(@.b)] exists", "unsupported bracket"),
        ("duration < soon", "a duration is a number of ms or s"),
        ("py", "?? py needs a Python expression"),
        ("py 1 +", "not a Python expression"),
    ],
)
def test_a_bad_assertion_names_the_source_the_line_and_the_grammar(text, message):
    with pytest.raises(InvalidRequest) as info:
        parse_assertion(text, 12, "api.http")
    subject, *rest = text.split(None, 1) or [""]
    head = f"?? {subject}" + ("…" if rest else "")
    assert str(info.value).startswith(f"api.http line 12: '{head}': ")
    assert message in str(info.value)
    assert "?? status == 200" in info.value.hint


def test_a_bad_assertion_in_a_file_names_its_line():
    with pytest.raises(InvalidRequest, match=r"^api\.http line 3: '\?\? status…'"):
        parse_http("GET http://h/\n\n?? status is 200\n", source="api.http")


# -- syntax errors ----------------------------------------------------------------------
@pytest.mark.parametrize(
    "text, message",
    [
        ("GET http://h/\nAuthorization Bearer s3cr3t", "line 2: expected a header 'Name: value'"),
        ("@x 1\nGET http://h/", "line 1: '@x…' must look like '@name = value'"),
        ("?? status == 200\nGET http://h/", "line 1: a ?? assertion must follow a request"),
        ("# @name login\n", "line 1: settings (# @name, # @...) but no request after them"),
        ("# @name 1st\nGET http://h/", "line 1: request name '1st' must be a letter"),
        ("# @timeout soon\nGET http://h/", "line 1 (# @timeout): 'soon' is not a duration"),
        ("GET http://h/\n\n> {%\n client.log(1)\n", "line 3: the script starting here has no"),
        ("GET http://h/\n\n?? status == 200\nmore body", "line 4: 'more…' after the"),
    ],
)
def test_syntax_errors_name_the_source_and_line(text, message):
    with pytest.raises(InvalidRequest) as info:
        parse_http(text, source="api.http")
    assert f"api.http {message}" in str(info.value)
    assert "s3cr3t" not in str(info.value)  # a header line without ':' may be a credential


# -- files -------------------------------------------------------------------------------
def test_read_http_file_knows_its_folder_and_reads_no_body_file(tmp_path):
    api = tmp_path / "api.http"
    api.write_text("\ufeffPOST http://h/x\n\n< ./missing.json\n", encoding="utf-8")
    file = read_http_file(api)
    assert (file.source, file.directory) == (str(api), str(tmp_path.resolve()))
    assert file.requests[0].body_file == "./missing.json"  # not read: it does not even exist


def test_read_http_file_errors(tmp_path):
    with pytest.raises(InvalidRequest, match=r"cannot read .*nope\.http: No such file"):
        read_http_file(tmp_path / "nope.http")
    bad = tmp_path / "latin.http"
    bad.write_bytes(b"GET http://h/\xe9\n")
    with pytest.raises(InvalidRequest, match=r"latin\.http: not UTF-8 text"):
        read_http_file(bad)
    big = tmp_path / "big.http"
    with open(big, "wb") as f:
        f.truncate(4 * 1024 * 1024 + 1)
    with pytest.raises(InvalidRequest, match=r"big\.http: 4,194,305 bytes; a \.http file may have"):
        read_http_file(big)


@pytest.mark.timeout(30)
def test_a_run_of_inner_spaces_is_linear_work():
    # A lazy "(.*?)\s*$" rescans the run from each of its characters: 20,000
    # spaces took seconds, 400,000 would take many minutes; linear is milliseconds.
    sp = " " * 400_000
    text = (
        f"@v = a{sp}b\n# @note a{sp}b\nPOST http://h/a{sp}b HTTP/1.1\nX-A: a{sp}b\n\n< ./a{sp}b\n"
    )
    block = one(text)
    assert block.url == f"http://h/a{sp}b"
    assert block.headers == [("X-A", f"a{sp}b")]
    assert block.settings["note"] == block.variables["v"] == f"a{sp}b"
    assert block.body_file == f"./a{sp}b"


@pytest.mark.timeout(20)
def test_a_http_file_that_is_no_regular_file_is_refused(tmp_path):
    # /dev/zero stats as 0 bytes and was read until memory ran out; a FIFO blocked.
    (tmp_path / "zero.http").symlink_to("/dev/zero")
    os.mkfifo(tmp_path / "fifo.http")
    for name in ("zero.http", "fifo.http"):
        with pytest.raises(InvalidRequest, match=f"{name}: not a regular file"):
            read_http_file(tmp_path / name)


@pytest.mark.parametrize(
    "text",
    [
        "@ token = s3cr3t-value\nGET http://h/\n",
        "@api_key: s3cr3t-value\nGET http://h/\n",
        "GET http://h/\n\n?? header authorization eq Bearer s3cr3t-value\n",
        "GET http://h/\n\n?? header x-key s3cr3t-value\n",
        "GET http://h/\n\n?? header x-key exists s3cr3t-value\n",
        "GET http://h/\n\n?? status == 200\npassword=s3cr3t-value\n",
        "GET http://h/\n\n?? status == 200\n\npassword s3cr3t-value\n",
    ],
)
def test_a_syntax_error_never_quotes_a_value(text):
    with pytest.raises(InvalidRequest) as info:
        parse_http(text, source="api.http")
    assert "s3cr3t" not in str(info.value)
    assert str(info.value).startswith("api.http line ")


def test_a_file_has_at_most_ten_thousand_requests():
    # Each "###" is a Python step of the parse on the event loop: 4 MiB of them
    # took 5.6 s; the count is found with the separators, before any request.
    assert len(parse_http("###\nGET http://h/\n" * 10_000).requests) == 10_000
    with pytest.raises(InvalidRequest, match=r"^api\.http line 10001: more than 10,000 '###'"):
        parse_http("###\n" * (1 << 20), source="api.http")
