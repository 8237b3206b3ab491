"""Copy as curl / ``.http`` / Python: the code each writer makes runs, and sends
what nbfetch sends, on the demo server's echo endpoint.

* Python for nbfetch, httpx and requests is run in a fresh interpreter (one per
  library; each snippet ``exec``'d in a namespace of its own; nbfetch's with
  top-level ``await`` as in a notebook cell).
* ``.http`` blocks are read back with the httpfile parser (``parse_http``,
  ``to_options``) and fetched.
* ``options_from_response`` of a fetch, written by ``to_curl``, is run by the
  real curl binary.
* Masked output holds none of the secrets, and still runs (sending ``***``).
"""

from __future__ import annotations

import ast
import asyncio
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from test_curl import CURL, curl_echo, multipart_parts, same_request

from nbfetch import AsyncClient
from nbfetch.httpfile import Scope, parse_http, to_options
from nbfetch.text.code import options_from_response, to_curl, to_http, to_python
from nbfetch.text.curl import parse_curl
from nbfetch.text.options import FetchOptions

ROOT = Path(__file__).resolve().parents[1]

COMMANDS = [
    "curl '{u}/anything?a=1'",
    "curl -X DELETE '{u}/anything?a=1&a=2'",
    "curl -H 'X-A: 1' -H 'X-Empty;' -H 'Accept: text/plain' {u}/anything",
    "curl -d a=1 -d 'b=x y' {u}/anything",
    'curl --json \'{{"a": [1, "é"]}}\' {u}/anything',
    "curl -H 'Content-Type:' --data-binary $'\\xff\\x00\\x01' {u}/anything",
    "curl -H 'content-type: text/csv' --data-raw $'a,b\\n1,2' -X PUT {u}/anything",
    "curl -X GET -d x {u}/anything",
    "curl -u 'al:pa:ss' -A 'agent/1' -e '{u}/from' {u}/anything",
    "curl -b 'a=1; b=2' --oauth2-bearer tok {u}/anything",
    "curl -F a=1 -F 'b=@{f}' -F 'c=@{f};type=text/x;filename=n.txt' {u}/anything",
    "curl -F a=1 -F b=2 {u}/anything",
    "curl -L {u}/redirect/2",
    "curl {u}/redirect/1",
    "curl -m 30 --connect-timeout 5 --compressed {u}/gzip",
]


@pytest.fixture
def upload(tmp_path):
    path = tmp_path / "f.txt"
    path.write_bytes(b"line1\r\nline2 &=+\n")
    return path


def commands(demo, upload) -> list[str]:
    return [c.format(u=demo.url, f=upload) for c in COMMANDS]


async def _fetch(opts: FetchOptions):
    async with AsyncClient(trust_env=False, **opts.client_kwargs) as client:
        return await client.fetch(opts.url, opts.method, **opts.fetch_kwargs)


def fetched(opts: FetchOptions) -> dict:
    r = asyncio.run(_fetch(opts))
    return {"status": r.status_code, "echo": r.json() if r.body else None}


def assert_same_echo(got: dict, want: dict, opts: FetchOptions) -> None:
    """The same status, method, URL, query and body, and the same values for the
    headers the command set (each library adds its own User-Agent and so on)."""
    assert got["status"] == want["status"]
    if want["echo"] is None:
        assert got["echo"] is None
        return
    got, want = got["echo"], want["echo"]
    for echo in (got, want):
        echo["headers"] = {k.lower(): v for k, v in echo["headers"].items()}
    assert (got["method"], got["url"], got.get("args")) == (
        want["method"],
        want["url"],
        want.get("args"),
    )
    headers = opts.fetch_kwargs.get("headers", [])
    names = {n.lower() for n, _ in (headers.items() if isinstance(headers, dict) else headers)}
    names |= {"authorization"} if "auth" in opts.fetch_kwargs else set()
    names |= {"cookie"} if "cookies" in opts.fetch_kwargs else set()
    if want["headers"].get("content-type", "").startswith("multipart/"):
        assert multipart_parts(got) == multipart_parts(want)
        assert got["headers"]["content-type"].startswith("multipart/form-data; boundary=")
    else:
        names.add("content-type")
        body = ("data", "json", "form", "gzipped")
        assert [got.get(k) for k in body] == [want.get(k) for k in body]
    assert {n: got["headers"].get(n) for n in names} == {n: want["headers"].get(n) for n in names}


RUNNER = """
import ast, asyncio, json, sys
out = []
for code in json.load(open(sys.argv[1])):
    namespace = {"__name__": "__snippet__"}
    compiled = compile(code, "<snippet>", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    result = eval(compiled, namespace)
    if asyncio.iscoroutine(result):
        asyncio.run(result)
    r = namespace["response"]
    body = r.body if hasattr(r, "body") else r.content  # nbfetch's Response has .body
    out.append({"status": r.status_code, "echo": r.json() if body else None})
print(json.dumps(out))
"""


def run_snippets(snippets: list[str], tmp_path) -> list[dict]:
    """Each snippet in a fresh namespace of one fresh interpreter; its ``response``."""
    (tmp_path / "snippets.json").write_text(json.dumps(snippets))
    (tmp_path / "runner.py").write_text(RUNNER)
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env["PYTHONPATH"] = str(ROOT)
    done = subprocess.run(
        [sys.executable, str(tmp_path / "runner.py"), str(tmp_path / "snippets.json")],
        capture_output=True,
        timeout=50,
        env=env,
        cwd=tmp_path,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()
    return json.loads(done.stdout)


@pytest.mark.parametrize("library", ["nbfetch", "httpx", "requests"])
def test_python_code_sends_what_nbfetch_sends(library, demo, upload, tmp_path):
    options = [parse_curl(c) for c in commands(demo, upload)]
    snippets = [to_python(o, library, show_secrets=True) for o in options]
    results = run_snippets(snippets, tmp_path)
    for opts, snippet, got in zip(options, snippets, results, strict=True):
        try:
            assert_same_echo(got, fetched(opts), opts)
        except AssertionError as exc:
            raise AssertionError(f"{snippet}\n{exc}") from None


SECRETS = ["hunter22", "tok-SECRET-1", "KEY12345", "SESSION99", "pw-in-url"]


@pytest.mark.parametrize("library", ["nbfetch", "httpx", "requests"])
def test_masked_code_holds_no_secret_and_still_runs(library, demo, tmp_path):
    options = [
        parse_curl(f"curl -u al:hunter22 '{demo.url}/anything?api_key=KEY12345&page=2'"),
        parse_curl(
            f"curl -H 'Authorization: Bearer tok-SECRET-1' -b 'sid=SESSION99; t=1' {demo.url}/anything"
            " -d 'user=al&password=hunter22'"
        ),
        parse_curl(f'curl --json \'{{"password": "hunter22", "n": 1}}\' {demo.url}/anything'),
    ]
    snippets = [to_python(o, library) for o in options]
    for text in [*snippets, *map(to_curl, options), *map(to_http, options)]:
        assert not any(secret in text for secret in SECRETS), text
    basic, bearer, body = (r["echo"] for r in run_snippets(snippets, tmp_path))
    headers = {k.lower(): v for k, v in bearer["headers"].items()}
    assert headers["authorization"] == "Bearer ***"
    assert headers["cookie"] == "***"  # redact_header masks a Cookie whole
    assert bearer["form"] == {"user": "al", "password": "***"}
    assert basic["args"] == {"api_key": "***", "page": "2"}
    assert body["json"] == {"password": "***", "n": 1}


@pytest.mark.skipif(CURL is None, reason="the curl binary is not installed")
def test_a_short_secret_is_masked_only_where_it_is(demo):
    """``-u admin:admin`` masks the password, not the ``/admin/`` of the URL nor
    (``-u al:http``) its scheme: the masked command still goes where nbfetch goes."""
    for command in [
        f"curl -u admin:admin {demo.url}/anything/admin/users",
        f"curl -u al:http -H 'X-Api-Key: POST' -d 'password=abc&x=abc' {demo.url}/anything",
    ]:
        opts = parse_curl(command)
        want = fetched(opts)["echo"]
        text = to_curl(opts)
        [echo] = curl_echoes(text)
        assert echo["url"] == want["url"], text
        assert echo["headers"]["Authorization"].startswith("Basic ")
    assert echo["form"] == {"password": "***", "x": "abc"}  # masked where it is
    assert echo["headers"]["X-Api-Key"] == "***"


@pytest.mark.parametrize(
    "command",
    [
        """curl --data-raw '{"user": "al", "password": "hunter2secret"}' http://h/""",
        "curl -H 'Content-Type: text/plain' --data-raw '[{\"token\": \"hunter2secret\"}]' h",
        "curl 'http://h/cb?code=hunter2secret&state=x'",
        "curl -d 'grant_type=authorization_code&code=hunter2secret' http://h/token",
    ],
)
def test_json_bodies_of_any_type_and_oauth_codes_are_masked(command):
    opts = parse_curl(command)
    for text in [
        to_curl(opts),
        to_http(opts),
        *(to_python(opts, lib) for lib in ("nbfetch", "httpx", "requests")),
    ]:
        assert "hunter2secret" not in text, text
        assert "***" in text


def test_every_writer_parses_for_each_flag(tmp_path):
    """Flags the demo server cannot check (a proxy, TLS, Digest): the code compiles."""
    for command in [
        "curl -x http://u:pw@proxy:3128 -k --digest -u al:pw -m 2 --connect-timeout 1 http://h/",
        "curl -x '' -L --max-redirs 2 -o out.json -i http://h/",
    ]:
        opts = parse_curl(command)
        for library in ("nbfetch", "httpx", "requests"):
            ast.parse(to_python(opts, library, show_secrets=True).replace("await ", ""))
    opts = parse_curl("curl -x http://u:pw1234@proxy:3128 --digest -u al:pw5678 http://h/")
    for library in ("nbfetch", "httpx", "requests"):
        text = to_python(opts, library)
        assert "pw1234" not in text and "pw5678" not in text
    with pytest.raises(ValueError, match="library must be one of"):
        to_python(opts, "urllib3")


def run_curl_text(text: str, options: str = "") -> bytes:
    """A command ``to_curl`` wrote (after its comment lines), run by sh and the curl
    binary: what curl wrote out."""
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    command = re.sub(
        r"^((?:printf .*\| )?)curl ", rf"\1{CURL} -q -sS {options}", text, count=1, flags=re.M
    )
    done = subprocess.run(
        ["sh", "-c", command], capture_output=True, timeout=20, check=False, env=env
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def curl_echoes(text: str) -> list[dict]:
    """The echo of each request a command made (curl writes them one after the other)."""
    decoder, out, rest = json.JSONDecoder(), [], run_curl_text(text).decode().strip()
    while rest:
        echo, end = decoder.raw_decode(rest)
        out.append(echo)
        rest = rest[end:].strip()
    return out


@pytest.mark.skipif(CURL is None, reason="the curl binary is not installed")
def test_curl_does_not_glob_the_url(demo):
    opts = FetchOptions(url=f"{demo.url}/anything?fields={{id,name}}&r=[1-3]")
    echoes = curl_echoes(to_curl(opts))
    assert [e["args"] for e in echoes] == [fetched(opts)["echo"]["args"]]


@pytest.mark.skipif(CURL is None, reason="the curl binary is not installed")
@pytest.mark.parametrize("method", ["DELETE", "PUT", "POST"])
def test_curl_x_is_not_sent_again_after_a_redirect(method, demo):
    """curl -X M -L sends M on every hop; nbfetch sends GET after a 303: the
    command follows no redirect rather than repeat a DELETE somewhere else."""
    opts = FetchOptions(url=f"{demo.url}/redirect-to?url=/anything&status_code=303", method=method)
    assert fetched(opts)["echo"]["method"] == "GET"
    text = to_curl(opts)
    assert text.startswith(f"# redirects are not followed: curl -X {method} -L")
    assert run_curl_text(text, "-o /dev/null -w '%{http_code}' ") == b"303"  # not /anything


@pytest.mark.skipif(CURL is None, reason="the curl binary is not installed")
def test_a_body_starting_with_at_is_not_a_file_for_curl(demo, upload):
    """``--json @path`` would upload the file at path: the body is sent as is."""
    headers = [("Content-Type", "application/json"), ("Accept", "application/json")]
    kwargs = {"body": f"@{upload}", "headers": headers}
    opts = FetchOptions(url=f"{demo.url}/anything", method="POST", fetch_kwargs=kwargs)
    text = to_curl(opts)
    [echo] = curl_echoes(text)
    assert echo["data"] == fetched(opts)["echo"]["data"] == f"@{upload}", text


@pytest.mark.skipif(CURL is None, reason="the curl binary is not installed")
def test_curl_form_parts_with_syntax_in_them(demo, tmp_path):
    """Paths and file names with ``, ; "``, in-memory content and a text with spaces
    around it: curl -F sends the parts nbfetch sends (and parse_curl reads them back)."""
    odd = tmp_path / 'a,b;c "d".txt'
    odd.write_text("odd")
    files = [
        ("f", str(odd)),
        ("g", ("x;y,z.txt", odd)),
        ("m", ("m.json", b'{"a": "@x;y"}', "application/json")),
        ("n", (None, b" spaced ", "text/x")),
    ]
    kwargs = {"data": [("t", " two words "), ("u", "a;b")], "files": files}
    opts = FetchOptions(url=f"{demo.url}/anything", method="POST", fetch_kwargs=kwargs)

    def parts(echo):
        echo["headers"] = {k.lower(): v for k, v in echo["headers"].items()}
        return multipart_parts(echo)

    text = to_curl(opts)
    [echo] = curl_echoes(text)
    assert parts(echo) == parts(fetched(opts)["echo"]), text
    assert len(parts(echo)) == 6
    [again] = curl_echoes(to_curl(parse_curl(text)))
    assert parts(again) == parts(echo)


def test_nul_bytes_go_through_a_pipe(demo):
    opts = parse_curl(f"curl -H 'Content-Type:' --data-binary $'a\\x00b' {demo.url}/anything")
    text = to_curl(opts, show_secrets=True)
    assert text.startswith("printf '%b' '\\0141\\0000\\0142' | curl")
    done = subprocess.run(
        ["sh", "-c", text.replace("curl ", f"{CURL} -q -s ", 1)],
        capture_output=True,
        timeout=20,
        check=False,
    )
    assert json.loads(done.stdout)["data"] == "a\x00b"


# -- .http ---------------------------------------------------------------------------------------
HTTP_COMMANDS = [
    "curl '{u}/anything?a=1'",
    "curl -X DELETE '{u}/anything?a=1&a=2'",
    "curl -H 'X-A: 1' -H 'Accept: text/plain' {u}/anything",
    "curl -d a=1 -d 'b=x y' {u}/anything",
    'curl --json \'{{"a": [1, "é"]}}\' {u}/anything',
    "curl -H 'content-type: text/csv' --data-raw $'a,b\\n1,2' -X PUT {u}/anything",
    "curl -u 'al:pa:ss' -A 'agent/1' -e '{u}/from' {u}/anything",
    "curl -b 'a=1; b=2' --oauth2-bearer tok {u}/anything",
    "curl -F a=1 -F 'b=@{f}' -F 'c=@{f};type=text/x;filename=n.txt' {u}/anything",
    "curl -L {u}/redirect/2",
    "curl {u}/redirect/1",
    "curl -m 30 --connect-timeout 5 {u}/anything",
]


def test_http_blocks_read_back_with_the_httpfile_parser(demo, upload):
    for command in HTTP_COMMANDS:
        opts = parse_curl(command.format(u=demo.url, f=upload))
        text = to_http(opts, show_secrets=True)
        parsed = parse_http(text)
        assert len(parsed.requests) == 1, text
        again = to_options(parsed.requests[0], Scope(file_variables=parsed.variables))
        kw, again_kw = opts.fetch_kwargs, again.fetch_kwargs
        assert again_kw.get("follow_redirects", True) == kw["follow_redirects"], text
        for name in ("request_timeout", "connect_timeout"):
            assert again_kw.get(name) == kw.get(name), text
        # Redirects as the original; decoding is not a .http setting.
        again_kw["decompress"] = kw["decompress"]
        again_kw.setdefault("follow_redirects", True)
        if kw["follow_redirects"]:
            again_kw["max_redirects"] = kw["max_redirects"]
        try:
            assert_same_echo(fetched(again), fetched(opts), opts)
        except AssertionError as exc:
            raise AssertionError(f"{text}\n{exc}") from None


def test_http_block_settings_and_what_it_cannot_say():
    text = to_http(parse_curl("curl -k -x proxy:1 --digest -u al:pw12345 -m 2 http://h/"))
    assert text.splitlines() == [
        "# not expressible in .http: verify=False (curl -k)",
        "# not expressible in .http: proxy=http://proxy:1",
        "# not expressible in .http: decompress=False (nbfetch sends no Accept-Encoding)",
        "# @no-redirect",
        "# @timeout 2",
        "GET http://h/",
        "Authorization: Digest al ***",
    ]


@pytest.mark.parametrize(
    ("body", "note"),
    [
        ("line1\n### heading\nline3", "line 2 starts with '#'"),
        ("a\n?? status == 200", "line 2 starts with '??'"),
        ("< /etc/passwd", "line 1 starts with '<'"),
        ("  // x", "line 1 starts with '//'"),
        ("HTTP/1.1 200 OK", "line 1 starts with 'HTTP/'"),
        ("> {% x %}", "line 1 starts with '>'"),
        ("Hello {{name}}", "'{{' would be read as a template"),
    ],
)
def test_a_body_http_reads_as_syntax_is_not_written_as_a_body(body, note):
    """ "< /etc/passwd" would send that file, "###" starts a request: never a body
    that the parser reads otherwise; a comment says why it is not there."""
    opts = FetchOptions("http://h/a", "POST", {"body": body, "headers": {"Content-Type": "a/b"}})
    text = to_http(opts)
    assert text.startswith(f"# the body is not shown: its {note}"), text
    [request] = parse_http(text).requests
    assert to_options(request, Scope()).fetch_kwargs.get("body") in (None, b"", "")
    assert body not in text
    files = {"f": (None, body.encode(), "text/plain")}
    text = to_http(FetchOptions("http://h/a", "POST", {"files": files}))
    assert text.startswith(f"# the body is not shown: a part's {note}"), text


def test_http_notes_what_it_sends_otherwise():
    def http(kwargs, url="http://h/a"):
        return to_http(FetchOptions(url, "POST", kwargs)).splitlines()[0]

    assert http({"body": "a\r\nb"}) == "# .http sends the body's lines joined with LF, not CR LF"
    assert http({"body": "a\n"}) == "# .http sends the body without its final newline"
    assert http({"json": {"t": "{{x}}"}}).endswith("'{{' would be read as a template")
    assert http({"headers": {"X": "{{x}}"}}).endswith("is read as a template by .http")
    assert http({"decompress": False}).endswith(
        "decompress=False (nbfetch sends no Accept-Encoding)"
    )


# -- options as the notebook and the .http runner make them -------------------------------------
def nbfetch_options(demo, upload) -> list[FetchOptions]:
    """fetch() keyword arguments in the shapes nbfetch takes them, not only the ones
    parse_curl makes: json=, data= dicts, files=, params=, cookies=, a str body."""
    u = demo.url
    return [
        FetchOptions(
            f"{u}/anything?x=1",
            "POST",
            {"json": {"a": [1, "é"]}, "params": {"p": "1 2"}, "headers": {"X-A": "1"}},
        ),
        FetchOptions(
            f"{u}/anything",
            "POST",
            {"data": {"a": "1", "b": ["x", "y"]}, "cookies": {"c": "1"}, "auth": ("al", "pw")},
        ),
        FetchOptions(
            f"{u}/anything",
            "PUT",
            {"body": "text body", "headers": [("Content-Type", "text/plain")]},
        ),
        FetchOptions(f"{u}/anything", "POST", {"body": b"raw, no type"}),
        FetchOptions(  # a str sent as ISO-8859-1, bytes as given, else UTF-8 (core.headers)
            f"{u}/anything",
            fetch_kwargs={"headers": {"X-Latin": "café", "X-Raw": b"\xff\xe9", "X-Utf8": "日本"}},
        ),
        FetchOptions(f"{u}/anything", "POST", {"data": {"t": "1"}, "files": {"f": str(upload)}}),
        FetchOptions(f"{u}/redirect/1"),
        FetchOptions(f"{u}/redirect/1", fetch_kwargs={"follow_redirects": False}),
    ]


@pytest.mark.skipif(CURL is None, reason="the curl binary is not installed")
def test_nbfetch_options_through_every_writer(demo, upload, tmp_path):
    options = nbfetch_options(demo, upload)
    wanted = [fetched(o) for o in options]
    for opts, want in zip(options, wanted, strict=True):
        status, echo = curl_echo(to_curl(opts, show_secrets=True))
        assert status == want["status"]
        if echo is not None:
            same_request(dict(want["echo"]), echo)
        parsed = parse_http(to_http(opts, show_secrets=True))
        assert_same_echo(fetched(to_options(parsed.requests[0], Scope())), want, opts)
    for library in ("nbfetch", "httpx", "requests"):
        snippets = [to_python(o, library, show_secrets=True) for o in options]
        results = run_snippets(snippets, tmp_path)
        for opts, snippet, got, want in zip(options, snippets, results, wanted, strict=True):
            try:
                assert_same_echo(got, want, opts)
            except AssertionError as exc:
                raise AssertionError(f"{snippet}\n{exc}") from None


# -- options_from_response ----------------------------------------------------------------------
@pytest.mark.skipif(CURL is None, reason="the curl binary is not installed")
def test_copy_as_curl_from_a_response_is_what_was_sent(demo, upload):
    for command in [
        f"curl -u al:pw -H 'X-A: 1' -b 'a=1' '{demo.url}/anything?q=1'",
        f"curl --json '{{\"a\": 1}}' -X PATCH {demo.url}/anything",
        f"curl -d a=1 --compressed {demo.url}/anything",
        f"curl -F a=1 -F 'b=@{upload};type=text/x;filename=n.txt' {demo.url}/anything",
    ]:
        response = asyncio.run(_fetch(parse_curl(command)))
        sent = options_from_response(response)
        assert sent.method == response.request.method
        status, echo = curl_echo(to_curl(sent, show_secrets=True))
        assert status == response.status_code
        same_request(response.json(), echo)


@pytest.mark.skipif(CURL is None, reason="the curl binary is not installed")
def test_copy_as_curl_of_an_in_memory_upload(demo):
    """Its part is a text part with its type; a part no argument can hold (a NUL
    byte) is left out with a comment, and the request is still a POST."""
    for content, parts in [(b"in memory", 1), (b"a\x00b", 0)]:
        files = {"f": ("n.bin", content, "application/x")}
        opts = FetchOptions(f"{demo.url}/anything", "POST", {"files": files})
        r = asyncio.run(_fetch(opts))
        text = to_curl(options_from_response(r))
        [echo] = curl_echoes(text)
        assert echo["method"] == "POST", text
        assert echo["data"].count("in memory") == parts
        assert ("left out" in text) == (not parts)


def test_options_from_a_redirected_response_are_the_first_request(demo):
    async def go():
        async with AsyncClient(trust_env=False) as client:
            followed = await client.fetch(f"{demo.url}/redirect/1", "GET")
            stopped = await client.fetch(f"{demo.url}/redirect/1", follow_redirects=False)
            return followed, stopped

    followed, stopped = asyncio.run(go())
    assert options_from_response(followed).url == f"{demo.url}/redirect/1"
    assert "follow_redirects" not in options_from_response(followed).fetch_kwargs
    assert options_from_response(stopped).fetch_kwargs["follow_redirects"] is False
    assert "-L" not in to_curl(options_from_response(stopped))
