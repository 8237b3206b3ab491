"""{{templates}} in .http files: the lookup order, environments, dynamic
variables, request references, secrets, and the FetchOptions a block becomes,
sent to the real demo server.

The definitions followed are VS Code REST Client's (Huachao/vscode-restclient
README.md, "Variables", and src/utils/httpVariableProviders/
systemVariableProvider.ts) and JetBrains' http-client.env.json /
http-client.private.env.json pair.
"""

import json
import os
import re
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime

import pytest
from conftest import answer_each

from nbfetch import AsyncClient, InvalidRequest
from nbfetch.httpfile import (
    Environment,
    HttpRequestBlock,
    Scope,
    load_environment,
    parse_http,
    read_http_file,
    to_options,
)
from nbfetch.httpfile.jsonpath import MAX_JSON_DOCUMENT
from nbfetch.httpfile.requests import MAX_BODY_FILE


async def send(opts):
    async with AsyncClient() as client:
        return await client.fetch(opts.url, opts.method, **opts.fetch_kwargs)


def expand(text, **scope):
    return Scope(**scope).expand(text, "test line 1 (URL)")


@dataclass
class Result:
    """What the runner binds a named request to: ``.response`` and ``.error``
    (B's RequestResult has these and more)."""

    response: object = None
    error: BaseException | None = None


# -- against the demo server ------------------------------------------------------------
@pytest.mark.anyio
async def test_an_expanded_request_runs_against_the_demo_server(demo):
    text = f"""@base = {demo.url}
@user = ada

POST {{{{base}}}}/post?n={{{{n}}}}
Content-Type: application/json
Authorization: Bearer {{{{token}}}}

{{"user": "{{{{user}}}}", "id": "{{{{$uuid}}}}"}}
"""
    file = parse_http(text)
    scope = Scope(file_variables=file.variables, namespace={"n": 3, "token": "tok-9f8e7d"})
    r = await send(to_options(file.requests[0], scope))
    echo = r.json()
    assert echo["args"] == {"n": "3"}
    assert echo["json"]["user"] == "ada"
    assert uuid.UUID(echo["json"]["id"]).version == 4
    assert echo["headers"]["Authorization"] == "Bearer tok-9f8e7d"
    assert "tok-9f8e7d" not in scope.secrets.scrub(r.text)


@pytest.mark.anyio
async def test_what_the_old_cell_parser_did_still_works(demo):
    """nbfetch.notebook.magics.parse_http_file's cells: a URL alone is a GET,
    comments are skipped, {{obj.attr}} reads the notebook's variables."""

    class Config:
        base = demo.url
        page = 2

    cell = "# list the things\n{{cfg.base}}/get?page={{cfg.page}}\n// done\n"
    block = parse_http(cell).requests[0]
    opts = to_options(block, Scope(namespace={"cfg": Config()}))
    assert (opts.method, opts.url) == ("GET", f"{demo.url}/get?page=2")
    assert (await send(opts)).json()["args"] == {"page": "2"}


@pytest.mark.anyio
async def test_no_redirect_and_timeouts_become_fetch_options(demo):
    file = parse_http(
        f"# @no-redirect\n# @timeout 20\n# @connection-timeout 500 ms\nGET {demo.url}/redirect/1"
    )
    opts = to_options(file.requests[0], Scope())
    kw = opts.fetch_kwargs
    assert (kw["follow_redirects"], kw["request_timeout"], kw["connect_timeout"]) == (
        False,
        20.0,
        0.5,
    )
    r = await send(opts)
    assert (r.status_code, r.headers["location"]) == (302, "/get")


@pytest.mark.anyio
async def test_a_multipart_body_with_a_file_is_sent_with_crlf(demo, tmp_path):
    (tmp_path / "note.txt").write_text("hello {{user}}", encoding="utf-8")
    text = f"""POST {demo.url}/post
Content-Type: multipart/form-data; boundary=XyZ

--XyZ
Content-Disposition: form-data; name="title"

{{{{title}}}}
--XyZ
Content-Disposition: form-data; name="note"; filename="note.txt"

< ./note.txt
--XyZ--
"""
    file = parse_http(text, directory=str(tmp_path))
    scope = Scope(namespace={"title": "Notes", "user": "ada"}, directory=file.directory)
    echo = (await send(to_options(file.requests[0], scope))).json()
    assert echo["data"] == (
        '--XyZ\r\nContent-Disposition: form-data; name="title"\r\n\r\nNotes\r\n'
        '--XyZ\r\nContent-Disposition: form-data; name="note"; filename="note.txt"\r\n\r\n'
        "hello {{user}}\r\n--XyZ--"  # "<" sends the file as it is; "<@" would expand it
    )


@pytest.mark.anyio
async def test_a_form_body_joins_its_ampersand_lines(demo):  # REST Client README
    text = f"POST {demo.url}/post\nContent-Type: application/x-www-form-urlencoded\n\n"
    text += "name=foo\n&password={{password}}\n"
    scope = Scope(namespace={"password": "hunter22"})
    echo = (await send(to_options(parse_http(text).requests[0], scope))).json()
    assert echo["form"] == {"name": "foo", "password": "hunter22"}
    assert scope.secrets.scrub("hunter22") == "***"  # a secret-named variable


@pytest.mark.anyio
async def test_rest_client_basic_and_digest_authorization_forms(demo, httpbin):
    """REST Client README, "Basic Auth" and "Digest Auth": the three Basic forms
    are the same request; "Digest user passwd" answers the challenge."""
    text = f"""GET {demo.url}/basic-auth/user/pa55word
Authorization: Basic user:pa55word
###
GET {demo.url}/basic-auth/user/pa55word
Authorization: Basic dXNlcjpwYTU1d29yZA==
###
GET {demo.url}/basic-auth/user/pa55word
Authorization: Basic user {{{{password}}}}
###
GET {httpbin.url}/digest-auth/auth/user/pa55word
Authorization: Digest user pa55word
###
GET {demo.url}/basic-auth/user/pa55word
Authorization: Bearer not basic
"""
    scope = Scope(namespace={"password": "pa55word"})
    *ok, bearer = [to_options(block, scope) for block in parse_http(text).requests]
    assert [(await send(opts)).status_code for opts in ok] == [200, 200, 200, 200]
    assert "auth" not in ok[1].fetch_kwargs  # base64 already: sent as written
    assert bearer.fetch_kwargs["headers"] == [("Authorization", "Bearer not basic")]
    assert scope.secrets.scrub("pa55word") == "***"


@pytest.mark.anyio
async def test_httpyac_graphql_bodies_without_the_header(demo):
    """httpyac's gqlHttpRegionParser.ts: a JSON body starting "query NAME" or
    "mutation" is a GraphQL query, its name the operationName."""
    text = f"""POST {demo.url}/post
Content-Type: application/json

query launches($limit: Int!) {{
  launchesPast(limit: $limit) {{ mission_name }}
}}

{{"limit": {{{{limit}}}}}}
###
POST {demo.url}/post
Content-Type: text/plain

query is only text here
"""
    graphql, text_body = parse_http(text).requests
    sent = (await send(to_options(graphql, Scope(namespace={"limit": 10})))).json()["json"]
    assert sent == {
        "query": "query launches($limit: Int!) {\n  launchesPast(limit: $limit) { mission_name }\n}",
        "variables": {"limit": 10},
        "operationName": "launches",
    }
    assert to_options(text_body, Scope()).fetch_kwargs["body"] == b"query is only text here"


# -- lookup order -------------------------------------------------------------------------
def test_block_then_file_then_environment_then_notebook():
    env = Environment("dev", {"a": "env", "b": "env", "c": "env"})
    ns = {"a": "ns", "b": "ns", "c": "ns", "d": "ns"}
    scope = Scope(file_variables={"a": "file", "b": "file"}, environment=env, namespace=ns)
    block = HttpRequestBlock("GET", "/", variables={"a": "block"})
    assert scope.for_request(block).expand("{{a}} {{b}} {{c}} {{d}}", "x") == "block file env ns"
    assert scope.expand("{{a}}", "x") == "file"  # the block's own stay in its scope


def test_values_expand_in_turn_and_a_loop_is_an_error():
    scope = Scope(file_variables={"host": "{{name}}:{{port}}", "name": "h", "port": "80"})
    assert scope.expand("http://{{ host }}/", "x") == "http://h:80/"
    looped = Scope(file_variables={"a": "{{b}}", "b": "x{{a}}"})
    with pytest.raises(InvalidRequest, match=r"\{\{a\}\} refers to itself \(a -> b -> a\), in x"):
        looped.expand("{{a}}", "x")


def test_a_loop_names_each_variable_once():
    # Variables before the first request are the block's and the file's: each
    # level was expanded in turn and named again.
    text = "@a = {{b}}\n@b = {{c}}\n@c = {{a}}\nGET http://h/{{a}}\n"
    http = parse_http(text, "api.http")
    with pytest.raises(InvalidRequest, match=r"refers to itself \(a -> b -> c -> a\), in api"):
        to_options(http.requests[0], Scope(file_variables=http.variables))


def test_a_value_may_name_itself_from_the_level_below():
    env = Environment("dev", {"baseUrl": "http://127.0.0.1:8000"})
    scope = Scope(file_variables={"baseUrl": "{{baseUrl}}/v2"}, environment=env)
    block = HttpRequestBlock("GET", "/", variables={"baseUrl": "{{baseUrl}}/items"})
    assert scope.for_request(block).expand("{{baseUrl}}", "x") == "http://127.0.0.1:8000/v2/items"
    scope = Scope(file_variables={"token": "Bearer {{token}}"}, namespace={"token": "t"})
    assert scope.expand("{{token}}", "x") == "Bearer t"
    with pytest.raises(InvalidRequest, match=r"\{\{me\}\} refers to itself \(me -> me\)"):
        Scope(file_variables={"me": "{{me}}"}).expand("{{me}}", "x")


def test_an_expansion_is_bounded_and_each_variable_expanded_once():
    class Counter:
        reads = 0

        @property
        def value(self):
            Counter.reads += 1
            return "x"

    names = {f"v{i}": f"{{{{v{i + 1}}}}}" * 2 for i in range(14)}
    names["v14"] = "{{counter.value}}"
    scope = Scope(file_variables=names, namespace={"counter": Counter()})
    assert scope.expand("{{v9}}", "x") == "x" * 32
    assert len(scope.expand("{{v0}}", "x")) == 2**14
    assert Counter.reads == 2  # once per expand(), not 2**14 times
    wide = Scope(file_variables={"a": "{{b}}" * 1000, "b": "y" * 2000})
    with pytest.raises(InvalidRequest, match="x: expands to over 1,048,576 characters"):
        wide.expand("{{a}}", "x")
    deep = Scope(file_variables={f"d{i}": f"{{{{d{i + 1}}}}}" for i in range(40)})
    with pytest.raises(InvalidRequest, match="variables nest deeper than 16"):
        deep.expand("{{d0}}", "x")


def test_an_undefined_name_says_which_and_where():
    block = parse_http("GET http://h/{{missing}}", source="api.http").requests[0]
    with pytest.raises(InvalidRequest) as info:
        to_options(block, Scope())
    assert str(info.value).startswith("{{missing}} is not defined (in api.http line 1 (URL))")
    assert "@missing = value" in info.value.hint
    block = parse_http("GET http://h/\nX-A: 1\nX-Key: {{k}}", source="api.http").requests[0]
    with pytest.raises(InvalidRequest, match=r"\(in api.http line 3 \(header X-Key\)\)"):
        to_options(block, Scope())
    block = parse_http("POST http://h/\n\n\n{{nope}}", source="c").requests[0]
    with pytest.raises(
        InvalidRequest, match=r"\{\{nope\}\} is not defined \(in c line 4 \(body\)\)"
    ):
        to_options(block, Scope())


def test_an_undefined_name_in_a_body_names_the_line_it_is_on(tmp_path):
    (tmp_path / "part.txt").write_text("x", encoding="utf-8")
    text = "POST http://h/\n\nline1\nline2\nline3 {{nope}}\n"
    block = parse_http(text, source="api.http").requests[0]
    with pytest.raises(
        InvalidRequest, match=r"\{\{nope\}\} is not defined \(in api.http line 5 \(body\)\)"
    ):
        to_options(block, Scope())
    text = "POST http://h/\n\n{{a}}\n< ./part.txt\nb\n{{a}} {{nope}}\n"
    block = parse_http(text, source="api.http", directory=str(tmp_path)).requests[0]
    scope = Scope(file_variables={"a": "1"}, directory=str(tmp_path))
    with pytest.raises(InvalidRequest, match=r"\(in api.http line 6 \(body\)\)"):
        to_options(block, scope)
    scope = Scope(file_variables={"a": "{{nope}}"}, directory=str(tmp_path))
    with pytest.raises(InvalidRequest, match=r"\{\{nope\}\} is not defined \(in api.http line 3 "):
        to_options(block, scope)  # a value's template: the line of the name using it


def test_a_variable_has_one_value_in_the_whole_request():
    text = "@id = {{$uuid}}\nPOST http://h/{{id}}\nX-Id: {{id}}\n\n{{id}}"
    block = parse_http(text).requests[0]
    opts = to_options(block, Scope(file_variables={"id": "{{$uuid}}"}))
    ids = {opts.url[len("http://h/") :], opts.fetch_kwargs["headers"][0][1]}
    assert ids == {opts.fetch_kwargs["body"].decode()}
    assert to_options(block, Scope(file_variables={"id": "{{$uuid}}"})).url != opts.url
    # the scope of the request, given to to_options, keeps the same values for its checks
    request = Scope(file_variables={"id": "{{$uuid}}"}).for_request(block)
    opts = to_options(block, request)
    assert opts.url == "http://h/" + request.expand("{{id}}", "?? line")


def test_a_prompt_variable_says_nbfetch_does_not_ask():
    block = parse_http("# @prompt otp Your one-time password\nGET http://h/{{otp}}").requests[0]
    with pytest.raises(InvalidRequest) as info:
        to_options(block, Scope())
    assert info.value.hint.startswith("# @prompt otp: nbfetch does not ask")


def test_notebook_values_down_a_dotted_path():
    class User:
        name = "ada"
        _private = "no"

    ns = {"user": User(), "cfg": {"api": {"version": 2}}, "n": 3, "flag": True, "items": [1, 2]}
    assert expand("{{user.name}} {{cfg.api.version}} {{n}}", namespace=ns) == "ada 2 3"
    assert expand("{{flag}} {{items}} {{cfg.api}}", namespace=ns) == 'true [1, 2] {"version": 2}'
    with pytest.raises(InvalidRequest, match=r"\{\{user.email\}\}: user has no 'email'"):
        expand("{{user.email}}", namespace=ns)
    with pytest.raises(InvalidRequest, match="user has no '_private'"):
        expand("{{user._private}}", namespace=ns)


def test_percent_encodes_a_value():  # REST Client README, "File Variables"
    scope = Scope(file_variables={"name": "Strunk & White/ü"})
    assert scope.expand("/authors/{{%name}}", "x") == "/authors/Strunk%20%26%20White%2F%C3%BC"


# -- dynamic variables --------------------------------------------------------------------
def test_guid_uuid_and_timestamps():
    for name in ("$guid", "$uuid", "$random.uuid"):
        assert uuid.UUID(expand(f"{{{{{name}}}}}")).version == 4
    before = int(time.time())
    stamp = int(expand("{{$timestamp}}"))
    assert before <= stamp <= int(time.time())
    day_ago = int(expand("{{$timestamp -1 d}}"))
    assert before - 86400 <= day_ago <= int(time.time()) - 86400
    assert int(expand("{{$timestamp 3 h}}")) >= before + 3 * 3600


def test_datetime_formats():
    now = datetime.now(timezone.utc)
    rfc = expand("{{$datetime rfc1123}}")
    assert re.fullmatch(r"\w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d GMT", rfc)
    assert abs(parsedate_to_datetime(rfc) - now) < timedelta(minutes=5)
    iso = expand("{{$datetime iso8601}}")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", iso)
    later = datetime.fromisoformat(expand("{{$datetime iso8601 1 y}}").replace("Z", "+00:00"))
    assert later.year == now.year + 1 or (now.month, now.day) == (2, 29)
    assert expand("{{$datetime 'YYYY-MM-DD'}}") in {
        now.strftime("%Y-%m-%d"),
        datetime.now(timezone.utc).strftime("%Y-%m-%d"),
    }
    custom = expand('{{$datetime "DD MMM YYYY [at] HH:mm" 2 d}}')
    assert re.fullmatch(r"\d\d \w{3} \d{4} at \d\d:\d\d", custom)
    local = expand("{{$localDatetime iso8601}}")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d", local)
    assert re.fullmatch(r".* [+-]\d{4}", expand("{{$localDatetime rfc1123}}"))


def test_a_month_later_keeps_to_the_month_as_moment_does():
    from nbfetch.httpfile.variables import _add_months

    jan31 = datetime(2025, 1, 31, tzinfo=timezone.utc)
    assert _add_months(jan31, 1).date().isoformat() == "2025-02-28"
    assert _add_months(jan31, -2).date().isoformat() == "2024-11-30"


def test_random_int_excludes_max():
    seen = {int(expand("{{$randomInt 1 3}}")) for _ in range(200)}
    assert seen == {1, 2}
    assert 0 <= int(expand("{{$randomInt}}")) < 1000  # JetBrains' form


@pytest.mark.parametrize(
    "template, message",
    [
        ("{{$randomInt 5 5}}", "write {{$randomInt MIN MAX}} with MIN < MAX"),
        ("{{$randomInt a b}}", "write {{$randomInt MIN MAX}}"),
        ("{{$timestamp 1 fortnight}}", "write {{$timestamp}} or {{$timestamp -1 d}}"),
        ("{{$datetime}}", 'write {{$datetime rfc1123|iso8601|"FORMAT" [offset unit]}}'),
        ("{{$aadToken}}", "{{$aadToken}} is not a dynamic variable nbfetch knows"),
        ("{{$randomInt 0 %s}}" % ("9" * 5000), "write {{$randomInt MIN MAX}}"),
        ("{{$timestamp 99999999999 y}}", "the offset 99999999999 y is out of range"),
        ("{{$timestamp 99999999999999999 d}}", "the offset 99999999999999999 d is out of"),
        ("{{$datetime iso8601 9999999 d}}", "the offset 9999999 d is out of range"),
    ],
)
def test_a_malformed_dynamic_variable_is_an_error(template, message):
    with pytest.raises(InvalidRequest) as info:
        expand(template)
    assert message in str(info.value)
    assert "(in test line 1 (URL))" in str(info.value)


def test_process_env_direct_and_indirect(monkeypatch):
    monkeypatch.setenv("NBFETCH_TEST_SECRET", "XlII3JUaEZldVg=")
    scope = Scope(environment=Environment("dev", {"secretKey": "NBFETCH_TEST_SECRET"}))
    assert scope.expand("{{$processEnv NBFETCH_TEST_SECRET}}", "x") == "XlII3JUaEZldVg="
    assert scope.expand("{{$processEnv %secretKey}}", "x") == "XlII3JUaEZldVg="
    assert scope.secrets.scrub("key=XlII3JUaEZldVg=") == "key=***"
    monkeypatch.delenv("NBFETCH_TEST_SECRET")
    with pytest.raises(InvalidRequest, match="the environment variable 'NBFETCH_TEST_SECRET' is"):
        scope.expand("{{$processEnv %secretKey}}", "x")


def test_dotenv_beside_the_file_without_touching_os_environ(tmp_path):
    (tmp_path / ".env").write_text("API_KEY=k-123456\nNAME_OF_KEY=API_KEY\n", encoding="utf-8")
    environ = dict(os.environ)
    env = load_environment(None, tmp_path)
    assert os.environ == environ
    scope = Scope(environment=env, file_variables={"which": "API_KEY"})
    assert scope.expand("{{$dotenv API_KEY}} {{$dotenv %which}}", "x") == "k-123456 k-123456"
    assert scope.secrets.scrub("k-123456") == "***"
    with pytest.raises(InvalidRequest, match=r"'NOPE' is not in .*\.env \(in x\)"):
        scope.expand("{{$dotenv NOPE}}", "x")
    with pytest.raises(InvalidRequest, match=r"there is no \.env file beside the \.http file"):
        Scope().expand("{{$dotenv API_KEY}}", "x")


# -- environments -------------------------------------------------------------------------
def write_envs(folder, public, private=None):
    (folder / "http-client.env.json").write_text(json.dumps(public), encoding="utf-8")
    if private is not None:
        (folder / "http-client.private.env.json").write_text(json.dumps(private), encoding="utf-8")


def test_shared_then_named_then_the_private_overrides(tmp_path):
    write_envs(
        tmp_path,
        {
            "$shared": {"version": "v1", "host": "shared-host"},
            "dev": {"host": "127.0.0.1:8000", "user": "ada", "port": 8000, "debug": True},
            "prod": {"host": "api.example.com"},
        },
        {"dev": {"password": "s3cr3t-pw", "user": "bob"}, "$shared": {"apiKey": "shared-key"}},
    )
    env = load_environment("dev", tmp_path)
    assert env.values == {
        "version": "v1",
        "host": "127.0.0.1:8000",
        "user": "bob",
        "port": "8000",
        "debug": "true",
        "password": "s3cr3t-pw",
        "apiKey": "shared-key",
    }
    assert env.secret_names == {"password", "user", "apiKey"}
    assert "s3cr3t-pw" not in repr(env)
    scope = Scope(environment=env)
    assert scope.secrets.scrub("s3cr3t-pw shared-key bob") == "*** *** bob"  # bob: too short
    assert load_environment(None, tmp_path).values == {
        "version": "v1",
        "host": "shared-host",
        "apiKey": "shared-key",
    }


def test_shared_reference_in_an_environment(tmp_path):  # REST Client README, "Environment"
    write_envs(
        tmp_path,
        {"$shared": {"prodToken": "foo-token"}, "production": {"token": "{{$shared prodToken}}"}},
    )
    scope = Scope(environment=load_environment("production", tmp_path))
    assert scope.expand("{{token}}", "x") == "foo-token"
    with pytest.raises(InvalidRequest, match="'nope' is not in the \\$shared environment"):
        scope.expand("{{$shared nope}}", "x")


def test_a_named_value_wins_over_a_shared_one_whichever_file(tmp_path):
    write_envs(
        tmp_path,
        {"dev": {"host": "dev-host"}},
        {"$shared": {"host": "private-shared-host"}},
    )
    env = load_environment("dev", tmp_path)
    assert (env.values, env.secret_names) == ({"host": "dev-host"}, {"host"})
    scope = Scope(environment=env)
    assert scope.secrets.scrub("private-shared-host") == "***"
    assert scope.expand("{{$shared host}}", "x") == "private-shared-host"


def test_an_environment_in_the_private_file_only(tmp_path):
    write_envs(tmp_path, {"dev": {}}, {"local": {"token": "t-0123"}})
    assert load_environment("local", tmp_path).values == {"token": "t-0123"}


def test_an_unknown_environment_names_the_files_and_the_known_ones(tmp_path):
    write_envs(tmp_path, {"dev": {}, "prod": {}, "$shared": {}}, {"local": {}})
    with pytest.raises(InvalidRequest) as info:
        load_environment("staging", tmp_path)
    assert "environment 'staging' is not defined in" in str(info.value)
    assert "http-client.env.json or" in str(info.value)
    assert info.value.hint == "the environments there: dev, local, prod"
    (tmp_path / "empty").mkdir()
    with pytest.raises(InvalidRequest, match=r"environment 'dev': there is no http-client"):
        load_environment("dev", tmp_path / "empty")


def test_an_object_in_an_environment_is_said_to_be_no_variable(tmp_path):
    # JetBrains' SSLConfiguration and the like: objects, not template values.
    write_envs(tmp_path, {"dev": {"ssl": {"a": 1}, "n": 1, "over": [1]}}, {"dev": {"over": "x"}})
    env = load_environment("dev", tmp_path)
    assert env.values == {"n": "1", "over": "x"}
    with pytest.raises(InvalidRequest) as info:
        Scope(environment=env).expand("{{ssl}}", "x")
    assert str(info.value).startswith(
        f"{{{{ssl}}}}: ssl is an object or array in {tmp_path / 'http-client.env.json'}"
        " (not a variable) (in x)"
    )


@pytest.mark.parametrize(
    "content, message",
    [
        ('{"dev": {"a": 1,}}', r"http-client.env.json line 1: not valid JSON"),
        ('["dev"]', "must be an object of environments"),
        ('{"dev": "x"}', "must be an object of environments"),
    ],
)
def test_a_bad_environment_file_is_a_clear_error(tmp_path, content, message):
    (tmp_path / "http-client.env.json").write_text(content, encoding="utf-8")
    with pytest.raises(InvalidRequest, match=message):
        load_environment("dev", tmp_path)


def test_env_file_a_json_with_its_private_file_or_a_dotenv(tmp_path, monkeypatch):
    (tmp_path / "team.env.json").write_text('{"dev": {"a": "1"}}', encoding="utf-8")
    (tmp_path / "team.private.env.json").write_text('{"dev": {"b": "22-secret"}}')
    env = load_environment("dev", None, env_file=tmp_path / "team.env.json")
    assert (env.values, env.secret_names) == ({"a": "1", "b": "22-secret"}, {"b"})
    (tmp_path / "ci.env").write_text("TOKEN=tok-abcdef\n", encoding="utf-8")
    # A relative env_file is from the working directory, not the .http file's folder.
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path)
    env = load_environment(None, tmp_path / "sub", env_file="ci.env")
    assert (env.values, env.secret_names) == ({"TOKEN": "tok-abcdef"}, {"TOKEN"})
    with pytest.raises(
        InvalidRequest, match=r"ci\.env is a dotenv file, which has no environments"
    ):
        load_environment("dev", tmp_path, env_file="ci.env")
    with pytest.raises(InvalidRequest, match=r"environment file .*nope\.json does not exist"):
        load_environment("dev", tmp_path, env_file="nope.json")


def test_an_undefined_environment_names_only_files_that_exist(tmp_path):
    with pytest.raises(InvalidRequest) as exc:
        load_environment("dev", tmp_path)
    assert exc.value.message == (
        f"environment 'dev': there is no http-client.env.json or"
        f" http-client.private.env.json in {tmp_path}"
    )
    (tmp_path / "http-client.private.env.json").write_text('{"ci": {}}')
    with pytest.raises(InvalidRequest) as exc:
        load_environment("dev", tmp_path)
    assert exc.value.message == (
        f"environment 'dev' is not defined in {tmp_path / 'http-client.private.env.json'}"
    )


# -- request references -------------------------------------------------------------------
@pytest.fixture
async def login(demo):
    """A real response to name: POST /post echoes a token in its JSON."""
    async with AsyncClient() as client:
        return await client.fetch(
            demo.url + "/post?x=1",
            "POST",
            json={"user": "ada", "access_token": "eyJ-secret-token"},
            headers={"X-Token": "hdr-token-1"},
        )


@pytest.mark.anyio
async def test_references_to_a_named_response_and_its_request(login):
    scope = Scope(results={"login": Result(login)})
    assert scope.expand("{{login.response.body.$.json.user}}", "x") == "ada"
    assert scope.expand("{{login.response.body.$.args}}", "x") == '{"x": "1"}'
    assert scope.expand("{{login.response.headers.content-type}}", "x") == "application/json"
    assert scope.expand("{{login.request.headers.x-token}}", "x") == "hdr-token-1"
    assert scope.expand("{{login.request.body.$.user}}", "x") == "ada"
    assert json.loads(scope.expand("{{login.response.body.*}}", "x"))["json"]["user"] == "ada"
    # a value under a secret name is remembered, for every display to scrub
    assert scope.expand("{{login.response.body.$.json.access_token}}", "x") == "eyJ-secret-token"
    assert scope.secrets.scrub("Bearer eyJ-secret-token") == "Bearer ***"
    # a file variable may hold a reference (REST Client README, "Request Variables")
    scope.file_variables["authToken"] = "{{login.request.headers.X-Token}}"
    assert scope.for_request(HttpRequestBlock("GET", "/")).expand("{{authToken}}", "x") == (
        "hdr-token-1"
    )


@pytest.mark.anyio
async def test_a_notebook_variable_with_a_response_is_a_named_request(login):
    scope = Scope(namespace={"login": Result(login)})
    assert scope.expand("{{login.response.body.$.json.user}}", "x") == "ada"
    assert scope.expand("{{login.response.status_code}}", "x") == "200"  # attributes too


@pytest.mark.anyio
@pytest.mark.parametrize(
    "template, message",
    [
        (
            "{{login.response.body.$.nope}}",
            "$.nope matched nothing in the response body of 'login'",
        ),
        ("{{login.response.headers.X-Nope}}", "the response of 'login' has no header 'X-Nope'"),
        ("{{login.response.body}}", "say which part: login.response.body.* or a JSONPath"),
        ("{{login.response.body.//reply[1]}}", "is neither * nor a JSONPath ($.x) (XPath is not"),
        ("{{login.response.body.$[?(@.a)]}}", "unsupported bracket"),
        ("{{other.response.body.$.x}}", "no request named 'other' has run"),
    ],
)
async def test_a_reference_that_cannot_be_resolved_says_why(login, template, message):
    scope = Scope(results={"login": Result(login)})
    with pytest.raises(InvalidRequest) as info:
        scope.expand(template, "api.http line 9 (URL)")
    assert message in str(info.value)
    assert "api.http line 9" in str(info.value)


@pytest.mark.anyio
async def test_a_reference_to_a_failed_or_non_json_request(demo, raw_server):
    failed = Result(None, InvalidRequest("{{x}} is not defined"))
    with pytest.raises(InvalidRequest, match=r"the request 'login' failed: \{\{x\}\} is not def"):
        Scope(results={"login": failed}).expand("{{login.response.body.$.a}}", "x")
    async with AsyncClient() as client:
        html = await client.fetch(demo.url + "/html")
    with pytest.raises(InvalidRequest, match="the response body of 'page' is not JSON \\(in x"):
        Scope(results={"page": Result(html)}).expand("{{page.response.body.$.a}}", "x")
    # A 4xx or 5xx is named: a login refused has no token to find.
    body = b'{"error": "no"}'
    srv = raw_server(
        answer_each(
            b"HTTP/1.1 403 Forbidden\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
        )
    )
    async with AsyncClient() as client:
        refused = await client.fetch(demo.url + "/status/401")
        denied = await client.fetch(srv.url + "/token")
    for result, template, message in [
        (refused, "{{login.response.body.$.a}}", "is not JSON (it got status 401)"),
        (refused, "{{login.response.headers.X-Token}}", "no header 'X-Token' (it got status 401)"),
        (
            denied,
            "{{login.response.body.$.token}}",
            "matched nothing in the response body of 'login' (it got status 403)",
        ),
    ]:
        with pytest.raises(InvalidRequest) as info:
            Scope(results={"login": Result(result)}).expand(template, "x")
        assert message in info.value.message


@pytest.mark.anyio
@pytest.mark.parametrize(
    "body, message",
    [
        # past what is parsed on the loop (json.loads holds it 160-380 ms for 4 MiB)
        (b'{"pad": "' + b"x" * MAX_JSON_DOCUMENT + b'"}', "more than the 512 KiB read for"),
        # nested deeper than Python recurses: a RecursionError, not a crash of the run
        (b"[" * 200_000 + b"]" * 200_000, "is not JSON"),
    ],
    ids=["larger than parsed on the loop", "nested too deep"],
)
async def test_a_reference_into_a_hostile_body_is_a_clear_error(raw_server, body, message):
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
    server = raw_server(answer_each(head + b"Content-Length: %d\r\n\r\n" % len(body) + body))
    async with AsyncClient() as client:
        page = await client.fetch(server.url + "/")
    with pytest.raises(InvalidRequest, match=message):
        Scope(results={"page": Result(page)}).expand("{{page.response.body.$.a}}", "x")


# -- bodies from files ----------------------------------------------------------------------
def block_with_body(line, tmp_path, ctype="application/json", source="api.http"):
    text = f"POST http://h/\nContent-Type: {ctype}\n\n{line}\n"
    file = parse_http(text, source=source, directory=str(tmp_path), confined=source != "cell")
    return file.requests[0], Scope(directory=file.directory, namespace={"name": "ada"})


def test_body_files_resolve_from_the_http_files_folder(tmp_path):
    (tmp_path / "a.json").write_text('{"n": "{{name}}"}', encoding="utf-8")
    block, scope = block_with_body("< ./a.json", tmp_path)
    assert to_options(block, scope).fetch_kwargs["body"] == b'{"n": "{{name}}"}'
    block, scope = block_with_body("<@ ./a.json", tmp_path)
    assert to_options(block, scope).fetch_kwargs["body"] == b'{"n": "ada"}'
    (tmp_path / "l.txt").write_bytes("{{name}} café".encode("latin-1"))
    block, scope = block_with_body("<@latin1 l.txt", tmp_path, "text/plain")
    assert to_options(block, scope).fetch_kwargs["body"] == "ada café".encode()


def test_a_files_body_files_stay_in_its_folder(tmp_path):
    (tmp_path / "api").mkdir()
    (tmp_path / "api" / "sub").mkdir()
    (tmp_path / "secret.txt").write_text("s3cr3t", encoding="utf-8")
    (tmp_path / "api" / "sub" / "ok.txt").write_text("ok", encoding="utf-8")
    (tmp_path / "api" / "link.txt").symlink_to(tmp_path / "secret.txt")
    for spec in ("../secret.txt", str(tmp_path / "secret.txt"), "link.txt", "~/.bashrc"):
        block, scope = block_with_body(f"< {spec}", tmp_path / "api")
        with pytest.raises(InvalidRequest) as info:
            to_options(block, scope)
        assert f"{spec} is outside {tmp_path / 'api'}, the folder of api.http" in str(info.value)
    block, scope = block_with_body("<@ sub/ok.txt", tmp_path / "api")
    assert to_options(block, scope).fetch_kwargs["body"] == b"ok"
    # a cell is the reader's own text: relative to its folder, or anywhere
    for spec in ("../secret.txt", tmp_path / "secret.txt"):
        block, scope = block_with_body(f"< {spec}", tmp_path / "api", source="cell")
        assert to_options(block, scope).fetch_kwargs["body"] == b"s3cr3t"


def test_body_file_errors(tmp_path):
    block, scope = block_with_body("< ./missing.json", tmp_path)
    with pytest.raises(InvalidRequest, match=r"api.http line 4 \(body\): cannot read .*missing"):
        to_options(block, scope)
    (tmp_path / "bad.txt").write_bytes(b"\xff\xfe{{")
    block, scope = block_with_body("<@ bad.txt", tmp_path)
    with pytest.raises(InvalidRequest, match=r"cannot decode .*bad\.txt"):
        to_options(block, scope)
    (tmp_path / "dir").mkdir()
    block, scope = block_with_body("< dir", tmp_path)
    with pytest.raises(InvalidRequest, match="dir is not a file"):
        to_options(block, scope)
    os.mkfifo(tmp_path / "fifo")  # opening it would wait for a writer
    block, scope = block_with_body("< fifo", tmp_path)
    with pytest.raises(InvalidRequest, match="fifo is not a file"):
        to_options(block, scope)
    block = parse_http("POST http://h/\n\n< /dev/zero").requests[0]  # endless: never read
    with pytest.raises(InvalidRequest, match="/dev/zero is not a file"):
        to_options(block, Scope())


def test_a_body_from_files_is_bounded(tmp_path):
    with open(tmp_path / "big.bin", "wb") as f:
        f.truncate(MAX_BODY_FILE + 1)
    block, scope = block_with_body("< big.bin", tmp_path)
    with pytest.raises(InvalidRequest, match=r"big\.bin makes the body 10,485,761 bytes; a body"):
        to_options(block, scope)
    (tmp_path / "half.txt").write_bytes(b"x" * (MAX_BODY_FILE // 2))
    block, scope = block_with_body("< half.txt\n< half.txt\n", tmp_path, "text/plain")
    with pytest.raises(InvalidRequest, match=r"half\.txt makes the body 10,485,761 bytes"):
        to_options(block, scope)  # the two and the newline between them
    block, scope = block_with_body("{{big}}\n" * 11, tmp_path, "text/plain")
    scope.namespace["big"] = "y" * (MAX_BODY_FILE // 10)
    # the line of the template that passed the bound (the 10th)
    with pytest.raises(InvalidRequest, match=r"line 13 \(body\): expands to over 10,485,760"):
        to_options(block, scope)


# -- other body rules -----------------------------------------------------------------------
def test_ndjson_ends_with_a_newline_and_graphql_becomes_json():
    ndjson = parse_http('POST http://h/\nContent-Type: application/x-ndjson\n\n{"a":1}\n{"b":2}')
    assert to_options(ndjson.requests[0], Scope()).fetch_kwargs["body"] == b'{"a":1}\n{"b":2}\n'
    text = """POST http://h/graphql
Content-Type: application/json
X-Request-Type: GraphQL

query ($name: String!) {
  user(login: $name) { id }
}

{"name": "{{name}}"}
"""
    opts = to_options(parse_http(text).requests[0], Scope(namespace={"name": "ada"}))
    assert opts.fetch_kwargs["headers"] == [("Content-Type", "application/json")]
    assert json.loads(opts.fetch_kwargs["body"]) == {
        "query": "query ($name: String!) {\n  user(login: $name) { id }\n}",
        "variables": {"name": "ada"},
    }
    bad = parse_http("POST http://h/\nX-Request-Type: GraphQL\n\n{ a }\n\n{nope", source="q")
    with pytest.raises(InvalidRequest, match=r"q line 4 \(body: GraphQL variables\): not JSON"):
        to_options(bad.requests[0], Scope())


def test_a_path_with_a_host_header_and_an_empty_url():
    block = parse_http("GET /items\nHost: 127.0.0.1:8443").requests[0]
    assert to_options(block, Scope()).url == "https://127.0.0.1:8443/items"
    block = parse_http("GET {{base}}/x", source="a.http").requests[0]
    assert to_options(block, Scope(namespace={"base": "h"})).url == "h/x"
    block = parse_http("{{empty}}", source="a.http").requests[0]
    with pytest.raises(InvalidRequest, match=r"a\.http line 1: the URL is empty"):
        to_options(block, Scope(namespace={"empty": ""}))


def test_secrets_the_request_sends_are_remembered():
    text = "GET http://u:pa55word@h/?api_key=k-777777\nAuthorization: Basic {{basic}}\nX-Api-Key: {{k}}"
    scope = Scope(namespace={"basic": "dXNlcjpzM2NyM3Q=", "k": "key-4242"})
    to_options(parse_http(text).requests[0], scope)
    shown = scope.secrets.scrub("pa55word k-777777 dXNlcjpzM2NyM3Q= s3cr3t key-4242")
    assert shown == "*** *** *** *** ***"


def test_the_percent_encoded_form_of_a_secret_is_secret_too():
    env = Environment("dev", {"pw": "p@ss w/rd+1"}, secret_names={"pw"})
    scope = Scope(environment=env)
    url = scope.expand("http://h/login?p={{%pw}}", "x")
    assert url == "http://h/login?p=p%40ss%20w%2Frd%2B1"
    assert scope.secrets.scrub(url) == "http://h/login?p=***"
    plain = Scope(file_variables={"q": "a b"})
    plain.expand("{{%q}}", "x")
    assert not plain.secrets  # a value that is no secret stays shown


@pytest.mark.timeout(30)
def test_many_open_braces_without_a_close_are_linear_work():
    # 1 MB on one line: the lazy pattern rescanned the rest of the line from each
    # "{{" (80 KB took 99 s), hours here; linear work is milliseconds.
    assert expand("{{" * 500_000) == "{{" * 500_000
    text = "{{ " + " " * 500_000 + "{{ a }} {{}} {{x"
    assert expand(text, namespace={"a": "A"}) == "{{ " + " " * 500_000 + "A {{}} {{x"
    assert expand('{{ $datetime "YYYY" }}') == str(datetime.now(timezone.utc).year)


@pytest.mark.timeout(30)
def test_an_include_line_with_a_run_of_inner_spaces_is_linear_work(tmp_path):
    # requests.py's include line had the lazy path before "[ \t]*$" (quadratic).
    (tmp_path / "a b").write_text("FILE")
    text = "POST http://h/\n\nfirst line\n< ./a b  \nlast line\n"
    block = parse_http(text, "api.http", str(tmp_path)).requests[0]
    opts = to_options(block, Scope(directory=str(tmp_path)))
    assert opts.fetch_kwargs["body"] == b"first line\nFILE\nlast line"
    text = f"POST http://h/\n\nfirst line\n< ./a{' ' * 400_000}b  \n"
    block = parse_http(text, "api.http", str(tmp_path)).requests[0]
    with pytest.raises(InvalidRequest, match=r"cannot read .*/a {400000}b: File name too long"):
        to_options(block, Scope(directory=str(tmp_path)))


@pytest.mark.timeout(20)
@pytest.mark.parametrize("kind", ["fifo", "device"])
@pytest.mark.parametrize("name", ["http-client.env.json", "http-client.private.env.json", ".env"])
def test_an_environment_file_that_is_no_regular_file_is_refused(tmp_path, kind, name):
    # A FIFO blocked the read (nbfetch run hung); /dev/zero stats as 0 bytes and
    # was read until memory ran out.
    target = tmp_path / name
    os.mkfifo(target) if kind == "fifo" else target.symlink_to("/dev/zero")
    if name.endswith(".json"):
        with pytest.raises(InvalidRequest, match=f"{re.escape(name)}: not a regular file"):
            load_environment("dev", tmp_path)
        with pytest.raises(InvalidRequest, match="not a regular file"):
            load_environment(None, tmp_path, env_file=target)
    else:
        with pytest.raises(InvalidRequest, match=r"\.env: not a regular file"):
            load_environment(None, tmp_path, env_file=target)


def test_a_template_never_reads_the_kernels_own_names():
    # A .http file someone else wrote must not post the input history or reach
    # the interpreter: the first name is a notebook variable the user bound.
    ns = {
        "In": ["", "token = 'k'"],
        "Out": {},
        "_": "last",
        "__": "x",
        "_ih": [],
        "_i1": "a",
        "_oh": {},
        "_dh": [],
        "exit": 1,
        "quit": 1,
        "get_ipython": print,
        "__builtins__": __builtins__,
        "_private": "p",
        "cfg": {"base": "b"},
    }
    scope = Scope(namespace=ns)
    for name in (
        "In",
        "Out",
        "_",
        "__",
        "_ih",
        "_i1",
        "_oh",
        "_dh",
        "exit",
        "quit",
        "get_ipython",
        "__builtins__.open",
        "_private",
    ):
        with pytest.raises(InvalidRequest, match="is not defined") as info:
            scope.expand(f"{{{{{name}}}}}", "x")
        assert "the kernel's own" in info.value.hint
    assert scope.expand("{{cfg.base}}", "x") == "b"
    with pytest.raises(InvalidRequest, match="no request named 'Out' has run"):
        scope.expand("{{Out.response.body.*}}", "x")
    scope = Scope(namespace={"_": Result()}, file_variables={"_a": "file"})
    assert scope.expand("{{_a}}", "x") == "file"  # the file's own variables may start with _
    with pytest.raises(InvalidRequest, match="no request named '_' has run"):
        scope.expand("{{_.response.body.*}}", "x")


def test_confinement_is_a_flag_of_the_file_not_its_name(tmp_path, monkeypatch):
    (tmp_path / "secret.txt").write_text("s3cr3t", encoding="utf-8")
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "sub")
    for name in ("cell", "api.http"):  # a file literally named "cell" skipped the check
        (tmp_path / "sub" / name).write_text("POST http://h/\n\n< ../secret.txt\n")
        http = read_http_file(name)
        assert http.confined and http.requests[0].confined
        with pytest.raises(InvalidRequest, match=r"\.\./secret\.txt is outside"):
            to_options(http.requests[0], Scope(directory=http.directory))
    cell = parse_http("POST http://h/\n\n< ../secret.txt\n", "cell", str(tmp_path / "sub"))
    assert not cell.requests[0].confined  # a cell is the reader's own text
    assert (
        to_options(cell.requests[0], Scope(directory=cell.directory)).fetch_kwargs["body"]
        == b"s3cr3t"
    )


@pytest.mark.timeout(30)
def test_an_escaped_template_is_sent_as_written():
    # httpyac's escape: "\{\{name\}\}" is the text "{{name}}" (a Handlebars
    # template in a body), never looked up.
    text = r'{"text": "\{\{ping\}\} \{\{#user~\}\}", "n": "{{n}}"}'
    assert expand(text, namespace={"n": "1"}) == '{"text": "{{ping}} {{#user~}}", "n": "1"}'
    block = parse_http("POST http://h/\n\n" + text, "api.http").requests[0]
    body = to_options(block, Scope(namespace={"n": "1"})).fetch_kwargs["body"]
    assert body == b'{"text": "{{ping}} {{#user~}}", "n": "1"}'
    assert expand(r"\{\{" * 500_000) == r"\{\{" * 500_000  # linear work too
