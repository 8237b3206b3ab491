"""Real ``.http`` files, as VS Code REST Client, JetBrains HTTP Client and httpyac
document them, through nbfetch's parser and runner.

The files under ``tests/httpfiles/`` are copied verbatim from those projects'
documentation and examples; each one's first line names the repository, the
path and the commit (``tests/httpfiles/README.md`` lists them and their
licences):

- ``vscode-restclient/``: github.com/Huachao/vscode-restclient, README.md and
  examples/query-method-examples.http (MIT License)
- ``jetbrains/``: github.com/JetBrains/http-request-in-editor-spec, spec.md (CC BY 4.0)
- ``httpyac/``: github.com/httpyac/httpyac.github.io, examples/ (MIT License)

Every file parses, with the request count and fields the file holds; the few
that use what nbfetch's grammar leaves out (``unsupported/``) are refused with
an ``InvalidRequest`` naming the file and the line. Then the requests run
against the demo server: every host the files name is mapped to it with
``hostname_mapping`` (https ones to a TLS demo server with a trustme
certificate for those names), and a resolver that refuses every name keeps
anything unmapped from leaving 127.0.0.1.
"""

from __future__ import annotations

import json
import re
import shutil
import ssl
import uuid
from pathlib import Path

import pytest
import trustme

from nbfetch import AsyncClient
from nbfetch.core.errors import InvalidRequest
from nbfetch.demo.server import DemoServer
from nbfetch.httpfile import Scope, arun_http, read_http_file

# The async tests run under the loop watchdog: running a file (reading it, its
# body files, expanding) never blocks the event loop for more than 100 ms.
pytestmark = [pytest.mark.anyio, pytest.mark.loop_watchdog]

CORPUS = Path(__file__).resolve().parent / "httpfiles"

#: Every host the corpus names, and the ports its URLs use.
HOSTS = [
    "example.com",
    "api.example.com",
    "example.org",
    "httpbin.org",
    "api.github.com",
    "www.google.de",
    "postman-echo.com",
    "main--spacex-l4uc6p.apollographos.net",
]

# -- what each file holds ------------------------------------------------------------
#: file -> [(method, url as written)] for each request, in order
REQUESTS = {
    "vscode-restclient/requests.http": [
        ("GET", "https://example.com/comments/1"),
        ("GET", "https://example.com/topics/1"),
        ("POST", "https://example.com/comments"),
        ("GET", "https://example.com/comments?page=2&pageSize=10"),
        ("GET", "https://example.com/comments?page=2&pageSize=10"),  # the query over 3 lines
    ],
    "vscode-restclient/bodies.http": [
        ("POST", "https://api.example.com/user/upload"),
        ("POST", "https://api.example.com/login"),
        ("POST", "https://api.github.com/graphql"),
    ],
    "vscode-restclient/basic-auth.http": [("GET", "https://httpbin.org/basic-auth/user/passwd")]
    * 3,
    "vscode-restclient/file-variables.http": [
        ("GET", "https://{{host}}/authors/{{%name}}"),
        ("PATCH", "https://{{host}}/authors/{{%name}}"),
    ],
    "vscode-restclient/request-variables.http": [
        ("POST", "{{baseUrl}}/api/login"),
        ("POST", "{{baseUrl}}/comments"),
        ("GET", "{{baseUrl}}/comments/{{commentId}}"),
        ("GET", "{{baseUrl}}/comments/{{commentId}}/replies"),
        (
            "GET",
            "{{baseUrl}}/comments/{{commentId}}/replies/{{getReplies.response.body.//reply[1]/@id}}",
        ),
    ],
    "vscode-restclient/system-variables.http": [("POST", "https://api.example.com/comments")],
    "vscode-restclient/query-method-examples.http": [("QUERY", "https://httpbin.org/anything")] * 6
    + [("POST", "https://httpbin.org/anything")],
    "jetbrains/spec-requests.http": [
        ("POST", "http://example.com/api/add"),
        ("GET", "http://example.com"),
        ("GET", "http://example.com"),
        ("GET", "http://example.com"),
        ("GET", "http://example.com/api/get?id=42"),
        ("GET", "http://example.com/api/get#q=hello+world"),
        ("GET", "http://example.com/api/get?id=15"),
    ],
    "jetbrains/spec-handlers.http": [
        ("POST", "http://example.com/auth"),
        ("GET", "http://example.com/auth"),
        ("GET", "http://example.com"),
    ],
    "jetbrains/spec-bodies.http": [
        ("POST", "http://example.com/api/add"),
        ("POST", "http://example.com/api/add"),
        ("POST", "http://example.com/api/upload"),
        ("POST", "http://example.com/add"),
        ("POST", "http://example.com/add"),
    ],
    "jetbrains/spec-multiline-url.http": [  # spec 4.2.1: each line trimmed, then joined
        ("GET", "http://example.com/api/get"),
        ("GET", "http://example.com/%20api%20+/get+"),
    ],
    "jetbrains/spec-variables.http": [("GET", "http://{{host}}/api/get?id={{ element-id }}")],
    "httpyac/assert.http": [("GET", "https://httpbin.org/anything")] * 4,
    "httpyac/settings.http": [
        ("GET", "https://httpbin.org/absolute-redirect/2"),
        ("GET", "https://www.google.de"),
    ],
    "httpyac/intellij-scripts.http": [
        ("POST", "https://postman-echo.com/post"),
        ("GET", "http://example.org/{{firstname}}"),
    ],
    "httpyac/graphql.http": [("POST", "https://main--spacex-l4uc6p.apollographos.net/graphql")],
    "httpyac/intellij-environments/test.http": [
        ("GET", "https://httpbin.org/anything?var={{foo}}")
    ],
}

#: Files that use what nbfetch's grammar leaves out: (line, what the error says).
UNSUPPORTED = {
    # httpyac's JavaScript assertion; nbfetch's escape hatch is "?? py"
    "httpyac/unsupported/assert-js.http": (4, "?? py"),
    # httpyac takes a body right after the request line, with no blank line
    "httpyac/unsupported/name-ref.http": (8, "header"),
}


def parse(name: str):
    return read_http_file(CORPUS / name)


def test_every_file_is_listed_and_cites_its_source():
    found = {str(p.relative_to(CORPUS)) for p in CORPUS.rglob("*.http")}
    assert found == set(REQUESTS) | set(UNSUPPORTED)
    for name in found:
        first = (CORPUS / name).read_text(encoding="utf-8").splitlines()[0]
        assert re.match(r"# Source: github\.com/[\w.-]+/[\w.-]+ .*@ [0-9a-f]{40} \(", first), name


@pytest.mark.parametrize("name", sorted(REQUESTS))
def test_each_file_parses_to_the_requests_it_holds(name):
    http = parse(name)
    assert [(b.method, b.url) for b in http.requests] == REQUESTS[name]
    assert all(b.source == str(CORPUS / name) for b in http.requests)
    lines = (CORPUS / name).read_text(encoding="utf-8").splitlines()
    for block in http.requests:  # each block points at its request line
        words = lines[block.line - 1].split()
        target = words[1] if words[0] == block.method and len(words) > 1 else words[0]
        assert block.url.startswith(target)  # continuation lines joined after it


@pytest.mark.parametrize("name", sorted(UNSUPPORTED))
def test_what_the_grammar_leaves_out_is_refused_naming_the_line(name):
    line, says = UNSUPPORTED[name]
    with pytest.raises(InvalidRequest) as info:
        parse(name)
    message = str(info.value)
    assert f"{CORPUS / name} line {line}:" in message
    assert says in message + str(info.value.hint or "")


# -- fields, file by file --------------------------------------------------------------
def test_rest_client_requests_headers_bodies_and_graphql():
    requests = parse("vscode-restclient/requests.http").requests
    assert requests[2].headers == [("content-type", "application/json")]
    assert json.loads(requests[2].body) == {
        "name": "sample",
        "time": "Wed, 21 Oct 2015 18:27:50 GMT",
    }
    assert [b.body for b in requests if b.method == "GET"] == [None] * 4

    upload, login, graphql = parse("vscode-restclient/bodies.http").requests
    # REST Client's mixed multipart body: the "< ./1.png" line stays in the text
    # (read when the request runs), the body is not one file.
    assert upload.body_file is None
    assert upload.body.splitlines()[0] == "------WebKitFormBoundary7MA4YWxkTrZu0gW"
    assert "< ./1.png" in upload.body.splitlines()
    assert login.body == "name=foo\n&password=bar"
    assert ("X-REQUEST-TYPE", "GraphQL") in graphql.headers
    assert graphql.body.startswith("query ($name: String!, $owner: String!) {")
    assert json.loads(graphql.body[graphql.body.rindex("\n{") :]) == {
        "name": "vscode-restclient",
        "owner": "Huachao",
    }


def test_rest_client_variables_and_names():
    http = parse("vscode-restclient/file-variables.http")
    assert http.variables == {
        "hostname": "api.example.com",
        "port": "8080",
        "host": "{{hostname}}:{{port}}",
        "contentType": "application/json",
        "createdAt": "{{$datetime iso8601}}",
        "modifiedBy": "{{$processEnv USERNAME}}",
        "name": "Strunk & White",  # defined in a later block, it serves the whole file
    }
    assert http.requests[1].headers == [("Content-Type", "{{contentType}}")]

    http = parse("vscode-restclient/request-variables.http")
    assert http.variables == {
        "baseUrl": "https://example.com/api",
        "authToken": "{{login.response.headers.X-AuthToken}}",
        "commentId": "{{createComment.response.body.$.id}}",
    }
    assert [b.name for b in http.requests] == [
        "login",
        "createComment",
        "getCreatedComment",
        "getReplies",
        "getFirstReply",
    ]


def test_rest_client_query_method_titles_and_block_variables():
    http = parse("vscode-restclient/query-method-examples.http")
    assert [b.title for b in http.requests] == [
        "QUERY with JSON body",
        "QUERY with XML body",
        "QUERY with URL-encoded form data",
        "QUERY with Accept header",
        "QUERY with Authorization",
        "Using QUERY (safe, idempotent - can be cached)",
        "Using POST (not safe, potentially not idempotent)",
    ]
    assert http.requests[4].variables == {"token": "your-bearer-token"}
    assert http.requests[1].body.startswith('<?xml version="1.0" encoding="UTF-8"?>')


def test_jetbrains_spec_bodies_files_and_skipped_scripts():
    add = parse("jetbrains/spec-requests.http").requests
    assert add[0].body == "{\n  “name”: “entity”,\n  “value”: “content”\n}"
    assert add[-1].headers == [("From", "user@example.com")]

    bodies = parse("jetbrains/spec-bodies.http").requests
    assert bodies[0].body == "{ “key”: “value” }"
    assert (bodies[1].body, bodies[1].body_file) == (None, "./input.json")
    assert bodies[2].body.splitlines()[-2:] == ["< ./input.txt", "--abcd--"]
    assert bodies[3].body == "message-body"  # spec 4.2.2: the blank lines around it trimmed
    assert bodies[4].body_file == "input.txt"

    auth, handler, ref = parse("jetbrains/spec-handlers.http").requests
    assert auth.body_file == "input.json"
    # The JavaScript handler and the response reference are not run: said, not dropped.
    assert "response handler" in auth.settings["ignored"]
    assert "previous-response.200.json" in auth.settings["ignored"]
    assert "response handler" in handler.settings["ignored"]
    assert "response reference" in ref.settings["ignored"]
    assert [b.assertions for b in (auth, handler, ref)] == [[], [], []]


def test_httpyac_assertions_settings_and_scripts():
    checks = [b.assertions[0] for b in parse("httpyac/assert.http").requests]
    assert [(a.subject, a.argument, a.operator, a.expected) for a in checks] == [
        ("status", None, "==", "200"),
        ("header", "content-type", "==", "application/json"),
        ("body", "$.form", "exists", None),  # httpyac's property path, as a JSONPath
        ("duration", None, "<", "200"),
    ]
    assert [a.line for a in checks] == [5, 11, 17, 23]

    redirect, google = parse("httpyac/settings.http").requests
    assert "no-redirect" in redirect.settings and "no-cookie-jar" not in redirect.settings
    assert "no-cookie-jar" in google.settings and "no-redirect" not in google.settings

    post, pre = parse("httpyac/intellij-scripts.http").requests
    assert json.loads(post.body) == {"foo": "bar"}
    assert "response handler" in post.settings["ignored"]
    assert "pre-request script" in pre.settings["ignored"]


# -- running against the demo server ------------------------------------------------------
@pytest.fixture(scope="module")
def servers():
    """A plain and a TLS demo server; the TLS one has a certificate for every host."""
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(*HOSTS).configure_cert(server_context)
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    plain, tls = DemoServer().start(), DemoServer(ssl_context=server_context).start()
    yield plain, tls, client_context
    plain.stop()
    tls.stop()


async def _refuse(host, port):
    # hostname_mapping maps every name the corpus uses to 127.0.0.1 (no lookup);
    # any other name would be looked up on the network: refused instead.
    raise OSError(f"{host!r} is not mapped to the demo server (the corpus test stays offline)")


@pytest.fixture
def client(servers):
    """A new client for each run: every corpus host goes to a demo server."""
    plain, tls, client_context = servers
    mapping = {}
    for host in HOSTS:
        mapping[(host, 80)] = ("127.0.0.1", plain.port)
        mapping[(host, 443)] = ("127.0.0.1", tls.port)
        mapping[(host, 8080)] = ("127.0.0.1", tls.port)  # https://api.example.com:8080

    def make():
        return AsyncClient(
            hostname_mapping=mapping, verify=client_context, resolver=_refuse, trust_env=False
        )

    return make


async def run(client, name: str | Path, **kwargs):
    async with client() as c:
        return await arun_http(
            name if isinstance(name, Path) else CORPUS / name, client=c, **kwargs
        )


def from_demo(result) -> bool:
    """The response came from a demo server (not from anywhere else)."""
    return result.response is not None and result.response.headers.get("server") == "nbfetch-demo"


async def test_rest_client_query_method_examples_run_on_the_demo_server(client):
    run_ = await run(client, "vscode-restclient/query-method-examples.http")
    assert len(run_) == 7 and all(from_demo(r) for r in run_)
    echoed = [r.response.json() for r in run_]
    assert [e["method"] for e in echoed] == ["QUERY"] * 6 + ["POST"]
    assert echoed[0]["json"]["pagination"] == {"page": 1, "limit": 10}
    assert echoed[1]["data"].startswith("<?xml")
    assert echoed[2]["form"] == {"search": "keyword", "category": "all", "page": "1"}
    assert echoed[4]["headers"]["Authorization"] == "Bearer your-bearer-token"
    assert echoed[0]["url"] == "https://httpbin.org/anything"  # the Host header as written
    assert run_.passed


async def test_rest_client_requests_reach_the_demo_server(client):
    run_ = await run(client, "vscode-restclient/requests.http")
    assert all(from_demo(r) for r in run_)
    assert [r.response.status_code for r in run_] == [404] * 5  # no /comments there
    targets = [r.response.request.url.target for r in run_]
    assert targets[3] == targets[4] == "/comments?page=2&pageSize=10"


async def test_rest_client_basic_auth(client):
    run_ = await run(client, "vscode-restclient/basic-auth.http")
    # REST Client's three equivalent forms: "user:passwd" and "user passwd" are
    # base64-encoded by the client, the third is already (RFC 7617)
    assert [r.response.status_code for r in run_] == [200, 200, 200]
    assert all(r.response.json() == {"authenticated": True, "user": "user"} for r in run_)
    assert "passwd" not in repr(run_)  # the credentials masked in the table


def test_rest_client_file_variables_expand(monkeypatch):
    monkeypatch.setenv("USERNAME", "ada")
    http = parse("vscode-restclient/file-variables.http")
    scope = Scope(file_variables=http.variables, directory=http.directory)
    assert scope.expand("{{host}}", "test") == "api.example.com:8080"  # from two others
    assert scope.expand("{{modifiedBy}}", "test") == "ada"
    created = scope.expand("{{createdAt}}", "test")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", created)


async def test_rest_client_file_variables_run(client, monkeypatch):
    monkeypatch.setenv("USERNAME", "ada")
    get, patch = await run(client, "vscode-restclient/file-variables.http")
    assert from_demo(get) and from_demo(patch), (get.error, patch.error)
    for result in (get, patch):
        # @host from two other variables; {{%name}} percent-encoded; @name defined
        # in the GET's block serves the PATCH too (REST Client: file-wide)
        assert result.response.request.url.netloc == "api.example.com:8080"
        assert result.response.request.url.target == "/authors/Strunk%20%26%20White"
    sent = json.loads(patch.response.request.body)
    assert sent["modified_by"] == "ada"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", sent["created_at"])


async def test_rest_client_system_variables(client, tmp_path):
    shutil.copy(CORPUS / "vscode-restclient/system-variables.http", tmp_path)
    (tmp_path / ".env").write_text("USERNAME=grace\n")
    (result,) = await run(client, tmp_path / "system-variables.http")
    assert from_demo(result), result.error
    sent = json.loads(result.response.request.body)
    assert sent["user_name"] == "grace"
    uuid.UUID(sent["request_id"])
    assert int(sent["created_at"]) < int(sent["updated_at"])
    assert 5 <= int(sent["review_count"]) < 200
    assert re.fullmatch(r"\d{4}-\d\d-\d\d", sent["custom_date"])
    assert result.response.request.headers["date"].endswith(" GMT")


async def test_rest_client_chain_fails_clearly_when_the_header_is_missing(client):
    run_ = await run(client, "vscode-restclient/request-variables.http")
    login, create, *rest = run_
    assert from_demo(login) and login.response.status_code == 404
    # The demo's 404 has no X-AuthToken header: the next request is not sent, and
    # says which reference it could not resolve.
    assert create.response is None and isinstance(create.error, InvalidRequest)
    assert "X-AuthToken" in str(create.error)
    assert all(r.response is None and r.error is not None for r in rest)  # all need it
    assert not run_.passed


async def test_jetbrains_spec_requests_and_handlers_run(client):
    requests = await run(client, "jetbrains/spec-requests.http")
    assert [r.response.status_code for r in requests] == [404, 200, 200, 200, 404, 404, 404]
    assert requests[5].response.request.url.target == "/api/get"  # the fragment stays here
    assert requests[6].response.request.headers["from"] == "user@example.com"

    path = await run(client, "jetbrains/spec-multiline-url.http")
    assert [r.response.request.url.target for r in path] == ["/api/get", "/%20api%20+/get+"]

    handlers = await run(client, "jetbrains/spec-handlers.http")
    auth, handler, ref = handlers
    # "< input.json" is read when the request runs: there is none beside the file.
    assert isinstance(auth.error, InvalidRequest) and "input.json" in str(auth.error)
    assert [handler.response.status_code, ref.response.status_code] == [404, 200]


async def test_the_table_says_which_scripts_were_not_run(client, tmp_path):
    shutil.copy(CORPUS / "jetbrains/spec-handlers.http", tmp_path)
    (tmp_path / "input.json").write_text("{}")
    table = repr(await run(client, tmp_path / "spec-handlers.http"))
    notes = [line.strip() for line in table.splitlines() if "not run" in line]
    assert notes == [
        "note: not run: the response handler at line 7;"
        " the response reference previous-response.200.json (line 8)",
        "note: not run: the response handler at line 12",
        "note: not run: the response reference previous-response.200.json (line 16)",
    ]


async def test_jetbrains_spec_bodies_as_sent(client, tmp_path):
    shutil.copy(CORPUS / "jetbrains/spec-bodies.http", tmp_path)
    (tmp_path / "input.json").write_text('{"from": "input.json"}')
    (tmp_path / "input.txt").write_text("from input.txt")
    run_ = await run(client, tmp_path / "spec-bodies.http")
    assert all(from_demo(r) for r in run_), [r.error for r in run_]
    sent = [r.response.request.body for r in run_]
    assert sent[0] == "{ “key”: “value” }".encode()  # UTF-8 (spec 4.1.3)
    assert sent[1] == b'{"from": "input.json"}'
    assert b'filename="input.txt"\r\n\r\nfrom input.txt\r\n--abcd--' in sent[2]
    assert sent[3] == b"message-body"
    assert sent[4] == b"from input.txt"


async def test_jetbrains_variables_from_the_namespace(client):
    namespace = {"host": "example.com", "element-id": "42"}
    (result,) = await run(client, "jetbrains/spec-variables.http", namespace=namespace)
    assert from_demo(result), result.error
    assert result.response.request.url.target == "/api/get?id=42"


async def test_httpyac_assertions_pass_on_the_demo_server(client):
    run_ = await run(client, "httpyac/assert.http")
    assert [[a.passed for a in r.assertions] for r in run_] == [[True]] * 4
    assert run_.passed


async def test_httpyac_no_redirect_and_no_cookie_jar(client):
    redirect, google = await run(client, "httpyac/settings.http")
    assert redirect.response.status_code == 302  # # @no-redirect: not followed
    assert redirect.response.headers["location"].endswith("/absolute-redirect/1")
    assert from_demo(google) and google.response.status_code == 200


async def test_httpyac_intellij_scripts_are_skipped_not_run(client):
    post, pre = await run(client, "httpyac/intellij-scripts.http")
    assert from_demo(post) and json.loads(post.response.json()["data"]) == {"foo": "bar"}
    # The pre-request script that would set {{firstname}} is not run: the name is
    # undefined, a clear error before anything is sent.
    assert pre.response is None and isinstance(pre.error, InvalidRequest)
    assert "{{firstname}} is not defined" in str(pre.error)


async def test_rest_client_bodies_as_sent(client, tmp_path):
    shutil.copy(CORPUS / "vscode-restclient/bodies.http", tmp_path)
    png = b"\x89PNG\r\n\x1a\n(an image)"
    (tmp_path / "1.png").write_bytes(png)
    upload, login, graphql = await run(client, tmp_path / "bodies.http")
    assert all(from_demo(r) for r in (upload, login, graphql))
    # The multipart parts with CRLF line ends, the "< ./1.png" line replaced by the file
    sent = upload.response.request.body
    assert b'filename="1.png"\r\nContent-Type: image/png\r\n\r\n' + png + b"\r\n" in sent
    assert sent.endswith(b"------WebKitFormBoundary7MA4YWxkTrZu0gW--")
    # "&" lines joined (the demo's /login answers with a redirect to /whoami)
    assert login.response.history[0].request.body == b"name=foo&password=bar"
    # X-REQUEST-TYPE: GraphQL: the query and the variables as GraphQL's JSON request
    query = json.loads(graphql.response.request.body)
    assert query["variables"] == {"name": "vscode-restclient", "owner": "Huachao"}
    assert query["query"].startswith("query ($name: String!, $owner: String!) {")
    assert "x-request-type" not in graphql.response.request.headers


async def test_httpyac_graphql_reaches_the_demo_server(client):
    (result,) = await run(client, "httpyac/graphql.http")
    assert from_demo(result) and result.response.status_code == 404


async def test_httpyac_graphql_body_is_sent_as_graphql_json(client):
    (result,) = await run(client, "httpyac/graphql.http")
    # httpyac takes a JSON body that starts with a query for GraphQL, no header needed
    sent = json.loads(result.response.request.body)
    assert sent["variables"] == {"limit": 10}
    assert sent["query"].startswith("query launchesQuery($limit: Int!){")


@pytest.mark.parametrize("env, sent", [("dev", "private"), ("prod", "prod")])
async def test_intellij_environments_with_a_private_override(client, env, sent):
    run_ = await run(client, "httpyac/intellij-environments/test.http", env=env)
    assert run_[0].response.json()["args"] == {"var": sent}
    table = repr(run_)
    if env == "dev":  # the private file's value is a secret: masked in the table
        assert "var=private" not in table
    else:
        assert "var=prod" in table


async def test_an_unmapped_name_is_refused_not_looked_up(client):
    async with client() as c:
        with pytest.raises(Exception, match="not mapped to the demo server"):
            await c.fetch("https://unmapped.example/")
