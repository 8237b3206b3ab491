"""``parse_curl``: a pasted curl command as ``FetchOptions``, checked against the
real curl 7.88 binary on the same demo server, and round trips through ``to_curl``.

The behaviours asserted are curl's own, as its manual (``curl --manual``) states
and the binary does: no ``-L`` no redirect followed; ``-d`` pieces joined with
``&`` and ``--json`` pieces appended; ``-d @file`` without CR/LF; ``-G``;
``--data-urlencode``'s five forms; ``-b`` strings joined with ``;``.
"""

from __future__ import annotations

import asyncio
import email.parser
import email.policy
import json
import os
import shlex
import shutil
import ssl
import subprocess

import pytest
import trustme

from nbfetch import AsyncClient, DigestAuth
from nbfetch.core.errors import FetchTimeout, InvalidRequest, TLSError
from nbfetch.demo import DemoServer
from nbfetch.text.code import to_curl
from nbfetch.text.curl import parse_curl, split_command

CURL = shutil.which("curl")
needs_curl = pytest.mark.skipif(CURL is None, reason="the curl binary is not installed")


# -- words ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("command", "words"),
    [
        ("curl 'a b' \"c d\" e\\ f", ["curl", "a b", "c d", "e f"]),
        ("curl \\\n  -H 'x: 1' \\\r\n  http://h/", ["curl", "-H", "x: 1", "http://h/"]),
        ("a'b'\"c\"d", ["abcd"]),
        ('"a \\"q\\" \\$ \\x"', ['a "q" $ \\x']),  # POSIX: \ escapes only $ ` " \ newline
        ("$'a\\nb\\t\\x41\\u00e9\\'\\\\'", ["a\nb\tAé'\\"]),  # bash ANSI-C, as DevTools writes
        ("$'\\xff'", ["\udcff"]),  # a byte that is not UTF-8, kept exact
        ("curl http://h/ # a comment\n", ["curl", "http://h/"]),
        ("curl http://h/#frag", ["curl", "http://h/#frag"]),
        ("price='$5'", ["price=$5"]),
        ('$"a b"', ["a b"]),
        ("a $ b", ["a", "$", "b"]),
    ],
)
def test_split_command_as_a_posix_shell(command, words):
    assert split_command(command) == words


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash is not installed")
@pytest.mark.parametrize(
    "word", [r"$'\x'", r"$'a\u'", r"$'\U'", r"$'\q\?\\'", r"$'\xZ\cA\101'", r"$'\c'"]
)
def test_ansi_c_escapes_as_bash_reads_them(word):
    """An escape bash does not know (a backslash-x without a digit) stays as written."""
    bash = subprocess.run(
        ["bash", "-c", f"printf '%s' {word}"], capture_output=True, check=True
    ).stdout
    assert split_command(word) == [bash.decode("utf-8", "surrogateescape")]


@pytest.mark.parametrize(
    ("command", "message"),
    [
        ("curl 'x", "single quote"),
        ('curl "x', "double quote"),
        ("curl $'x", "$'...'"),
        ("curl $'\\UFFFFFFFF'", "not a Unicode character"),
        ("curl http://h | jq .", "'|' is shell syntax"),
        ("curl http://h > out", "'>' is shell syntax"),
        ('curl -H "Authorization: Bearer $TOKEN" http://h', "$TOKEN is expanded by a shell"),
        ("curl -d `cat f` http://h", "shell"),
        ("curl -d $(cat f) http://h", "$( is expanded"),
    ],
)
def test_split_command_refuses_what_needs_a_shell(command, message):
    with pytest.raises(InvalidRequest) as info:
        parse_curl(command)
    assert message in str(info.value)


# -- what each flag means ---------------------------------------------------------------------------
def test_a_plain_get_follows_no_redirect_and_asks_for_no_compression():
    o = parse_curl("curl http://h/x")
    assert (o.method, o.url) == ("GET", "http://h/x")
    assert o.fetch_kwargs == {"follow_redirects": False, "decompress": False}
    o = parse_curl("curl -L --compressed http://h/x")
    assert o.fetch_kwargs == {"follow_redirects": True, "max_redirects": 50, "decompress": True}
    assert parse_curl("curl -L --max-redirs 3 h").fetch_kwargs["max_redirects"] == 3
    assert parse_curl("curl -L --no-location h").fetch_kwargs["follow_redirects"] is False


def test_data_pieces_are_joined_as_curl_joins_them(tmp_path):
    (tmp_path / "f.txt").write_bytes(b"line1\r\nline2\n")
    o = parse_curl(f"curl -d a=1 -d @{tmp_path}/f.txt --data-binary @{tmp_path}/f.txt h")
    assert o.fetch_kwargs["body"] == b"a=1&line1line2&line1\r\nline2\n"
    assert o.method == "POST"
    assert o.fetch_kwargs["headers"] == [("Content-Type", "application/x-www-form-urlencoded")]
    assert parse_curl("curl --data-raw @x h").fetch_kwargs["body"] == b"@x"
    o = parse_curl("""curl --json '{"a":' --json '1}' h""")
    assert o.fetch_kwargs["body"] == b'{"a":1}'
    assert o.fetch_kwargs["headers"] == [
        ("Content-Type", "application/json"),
        ("Accept", "application/json"),
    ]
    assert parse_curl("curl --json x -d y h").fetch_kwargs["body"] == b"x&y"
    assert parse_curl("curl -d a=1 --json x h").fetch_kwargs["body"] == b"a=1x"
    o = parse_curl("curl -H 'content-type: text/plain' -d x h")
    assert o.fetch_kwargs["headers"] == [("content-type", "text/plain")]


def test_data_urlencode_forms(tmp_path):
    (tmp_path / "f.txt").write_text("line1\nline2 &=+\n")
    cases = {
        "b=x y&z=/~._-*!": b"b=x+y%26z%3D%2F~._-%2A%21",
        "=a b": b"a+b",
        "plain": b"plain",
        f"n@{tmp_path}/f.txt": b"n=line1%0Aline2+%26%3D%2B%0A",
        f"@{tmp_path}/f.txt": b"line1%0Aline2+%26%3D%2B%0A",
        "a@b=c": b"a@b=c",
        "ü=ö": "ü=%C3%B6".encode(),
    }
    for arg, body in cases.items():
        opts = parse_curl(f"curl --data-urlencode {shlex.quote(arg)} h")
        assert opts.fetch_kwargs["body"] == body, arg


def test_get_moves_the_data_into_the_query():
    o = parse_curl("curl -G -d a=1 --data-urlencode 'b=x y' 'http://h/p?z=1#f'")
    assert (o.method, o.url) == ("GET", "http://h/p?z=1&a=1&b=x+y#f")
    assert "body" not in o.fetch_kwargs and "headers" not in o.fetch_kwargs
    o = parse_curl("curl -G -I -d a=1 http://h/p")
    assert (o.method, o.url) == ("HEAD", "http://h/p?a=1")


def test_headers_and_the_headers_other_flags_set():
    o = parse_curl(
        "curl -H 'X-A: 1' -H 'X-Empty;' -H 'Accept:' -A agent -e 'http://r/;auto'"
        " -b 'a=1; b=2' -b c=3 --oauth2-bearer tok h"
    )
    assert o.fetch_kwargs["headers"] == [
        ("X-A", "1"),
        ("X-Empty", ""),
        ("Authorization", "Bearer tok"),
        ("Cookie", "a=1; b=2;c=3"),
        ("User-Agent", "agent"),
        ("Referer", "http://r/"),
    ]
    # curl's own headers yield to -H, whatever the order.
    o = parse_curl("curl -H 'User-Agent: H' -A A -A B h")
    assert o.fetch_kwargs["headers"] == [("User-Agent", "H")]
    o = parse_curl("curl -H 'Content-Type:' -d x h")
    assert "headers" not in o.fetch_kwargs


def test_auth_method_and_the_rest():
    o = parse_curl("curl -u 'al:pa:ss' -XPUT -sSLk -m 2.5 --connect-timeout 1 -o out.json -i h")
    kw = o.fetch_kwargs
    assert kw["auth"] == ("al", "pa:ss") and o.method == "PUT"
    assert (kw["request_timeout"], kw["connect_timeout"]) == (2.5, 1.0)
    assert o.client_kwargs == {"verify": False} and kw["follow_redirects"]
    assert (o.output, o.include) == ("out.json", True)
    d = parse_curl("curl --digest -u al:pw h").fetch_kwargs["auth"]
    assert isinstance(d, DigestAuth) and d.username == "al"
    assert parse_curl("curl -x proxy.local h").fetch_kwargs["proxy"] == "http://proxy.local:1080"
    assert parse_curl("curl -x https://p:3128 h").fetch_kwargs["proxy"] == "https://p:3128"
    assert parse_curl("curl -x '' h").fetch_kwargs["proxy"] is None
    proxy = parse_curl("curl -x u:ahost@host h").fetch_kwargs["proxy"]
    assert proxy == "http://u:ahost@host:1080"
    assert parse_curl("curl --url http://h/u").url == "http://h/u"
    assert parse_curl("curl -I h").method == "HEAD"
    o = parse_curl("curl -X GET -d x h")
    assert (o.method, o.fetch_kwargs["allow_body"]) == ("GET", True)


def test_form_parts(tmp_path):
    (tmp_path / "a.png").write_bytes(b"\x89PNG")
    (tmp_path / "t.txt").write_text("from a file")
    o = parse_curl(
        f"curl -F 'img=@{tmp_path}/a.png' -F 'doc=@{tmp_path}/t.txt;type=text/x;filename=n.txt'"
        f" -F 'note=<{tmp_path}/t.txt' -F t=1 --form-string 's=@x' h"
    )
    assert o.method == "POST"
    assert o.fetch_kwargs["data"] == [("note", "from a file"), ("t", "1"), ("s", "@x")]
    files = o.fetch_kwargs["files"]
    assert [(n, f, str(p), t) for n, (f, p, t) in files] == [
        ("img", "a.png", f"{tmp_path}/a.png", "image/png"),  # curl's type for .png
        ("doc", "n.txt", f"{tmp_path}/t.txt", "text/x"),
    ]


@pytest.mark.parametrize(
    ("command", "message"),
    [
        ("curl --foo http://h", "curl option --foo is not supported"),
        ("curl -sZ http://h", "curl option -Z is not supported (in a cluster of flags, -sZ...)"),
        ("curl --max-time=5 http://h", "curl takes --max-time VALUE, not --max-time=VALUE"),
        ("curl -b cookies.txt http://h", "names a cookie file"),
        ("curl -u al http://h", "curl would ask for the password"),
        ("curl a b", "one URL"),
        ("curl -s", "no URL"),
        ("curl -H", "-H needs a value"),
        ("curl -d x -F a=1 h", "one HTTP request method"),
        ("curl -I -d x h", "one HTTP request method"),
        ("curl -m 0 h", "positive number of seconds"),
        ("curl -d @- h", "standard input"),
        ("curl -d @/nonexistent/x h", "cannot read"),
        ("curl -x socks5://p:1 h", "HTTP(S) proxies only"),
        ("curl -H 'no colon' h", "must look like 'Name: value'"),
        ('curl ^"http://h/^" -H ^"a: 1^"', "Windows cmd.exe"),
    ],
)
def test_what_it_refuses_it_names(command, message):
    with pytest.raises(InvalidRequest) as info:
        parse_curl(command)
    assert message in str(info.value)


def test_devtools_copy_as_curl_bash():
    """Chrome's and Firefox's "Copy as cURL (bash)" output, as they write it."""
    chrome = r"""curl 'http://127.0.0.1:8000/anything?q=1' \
  -H 'accept: application/json, text/plain, */*' \
  -H 'accept-language: en-GB,en;q=0.9' \
  -H 'content-type: application/json' \
  -b 'sid=abc; theme=dark' \
  -H 'origin: http://127.0.0.1:8000' \
  -H 'sec-ch-ua: "Chromium";v="118", "Not=A?Brand";v="99"' \
  -H 'sec-ch-ua-mobile: ?0' \
  -H 'sec-fetch-mode: cors' \
  -H 'user-agent: Mozilla/5.0 (X11; Linux x86_64)' \
  --data-raw $'{"name":"caf\u00e9","note":"a\\nb"}' \
  --compressed"""
    o = parse_curl(chrome)
    assert o.method == "POST" and o.fetch_kwargs["decompress"] is True
    assert json.loads(o.fetch_kwargs["body"]) == {"name": "café", "note": "a\nb"}
    headers = dict(o.fetch_kwargs["headers"])
    assert headers["sec-ch-ua"] == '"Chromium";v="118", "Not=A?Brand";v="99"'
    assert headers["Cookie"] == "sid=abc; theme=dark"
    firefox = (
        "curl 'http://127.0.0.1:8000/anything' --compressed -X POST -H 'User-Agent: Mozilla/5.0'"
        " -H 'Accept: */*' -H 'Accept-Encoding: gzip, deflate, br' -H 'Connection: keep-alive'"
        " -H 'Cookie: a=b' -H 'Sec-Fetch-Dest: empty' -H 'TE: trailers' --data-raw 'x=1'"
    )
    o = parse_curl(firefox)
    assert o.method == "POST" and o.fetch_kwargs["body"] == b"x=1"
    assert ("TE", "trailers") in o.fetch_kwargs["headers"]


# -- round trips: curl -> FetchOptions -> to_curl -> parse_curl ------------------------------------
def _key(opts):
    """The options as comparable data (a DigestAuth compares by identity)."""
    kw = dict(opts.fetch_kwargs)
    if isinstance(kw.get("auth"), DigestAuth):
        kw["auth"] = ("digest", kw["auth"].username, kw["auth"]._password)
    return (opts.url, opts.method, kw, opts.client_kwargs, opts.include, opts.output)


ROUND_TRIPS = [
    "curl http://h/x",
    "curl -X DELETE http://h/x",
    "curl -X get http://h/x",
    "curl -H 'X-A: 1' -H 'X-A: 2' -H 'X-Empty;' -H 'Accept:' h",
    "curl -d a=1 -d 'b=2&c' h",
    "curl --data 'x' --data-ascii y h",
    "curl --data-raw '@not a file' h",
    "curl --data-binary $'a\\r\\nb\\x00c' h",
    "curl --data-binary $'\\xff\\xfe' h",
    "curl --data-urlencode 'q=a b' --data-urlencode =c h",
    'curl --json \'{"a": [1, "é"]}\' h',
    "curl --json '{}' -H 'Accept: text/plain' h",
    "curl -H 'Content-Type:' -d x h",
    "curl -H 'content-type: text/csv' -d $'a,b\\n1,2' h",
    "curl -X PUT -d x h",
    "curl -X GET -d x h",
    "curl -F a=1 -F 'b=@/etc/hostname' -F 'c=@/etc/hostname;type=text/x;filename=n' h",
    "curl --form-string 'a=@x;y' -F 'b=\"q\"' h",
    "curl -u al:pw h",
    "curl -u 'al:p w:x' --digest h",
    "curl --oauth2-bearer tok h",
    "curl -b 'a=1; b=2' -b c=3 h",
    "curl -A 'agent 1' h",
    "curl -e 'http://r/?x=1;auto' h",
    "curl -L h",
    "curl -L --max-redirs 7 h",
    "curl -k h",
    "curl --compressed h",
    "curl -I h",
    "curl -G -d a=1 -d b=2 'http://h/?z=0'",
    "curl -G -I --data-urlencode 'q=x y' h",
    "curl -m 2.5 --max-time 3 h",
    "curl --connect-timeout 0.5 h",
    "curl -x proxy:3128 h",
    "curl -x 'http://user:pw@proxy' h",
    "curl -x '' h",
    "curl --url 'http://h/a b' -i -o out.json",
    "curl -sSLf -v -# --http1.1 -g -N --fail-with-body --no-progress-meter --basic h",
]


@pytest.mark.parametrize("command", ROUND_TRIPS)
def test_round_trip_through_to_curl(command, tmp_path):
    opts = parse_curl(command)
    text = to_curl(opts, show_secrets=True)
    if "printf" in text:  # a NUL byte cannot be an argument: curl reads it on stdin
        assert text.startswith("printf '%b' '") and "--data-binary @-" in text
        return
    assert _key(parse_curl(text)) == _key(opts), text


# -- the real curl and nbfetch, on the same demo server ---------------------------------------------
def run_curl(args: list[str], timeout: float = 20) -> subprocess.CompletedProcess:
    """The curl binary with no ~/.curlrc (-q, first) and no proxy from the environment."""
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    return subprocess.run(
        [CURL, "-q", *args], capture_output=True, timeout=timeout, env=env, check=False
    )


def curl_echo(command: str) -> tuple[int, dict | None]:
    words = split_command(command)[1:]
    done = run_curl([*words, "-sS", "-w", "\n%{http_code}"])
    assert done.returncode == 0, done.stderr
    body, _, code = done.stdout.rpartition(b"\n")
    return int(code), json.loads(body) if body.strip() else None


async def _nbfetch(opts):
    async with AsyncClient(trust_env=False, **opts.client_kwargs) as client:
        return await client.fetch(opts.url, opts.method, **opts.fetch_kwargs)


def nbfetch_echo(command: str) -> tuple[int, dict | None]:
    r = asyncio.run(_nbfetch(parse_curl(command)))
    return r.status_code, r.json() if r.body else None


def multipart_parts(echo: dict) -> set:
    """A multipart body's parts (name, filename, type, content): the boundary and
    the order differ (curl sends the parts in command order, nbfetch the fields first)."""
    ctype = echo["headers"]["content-type"]
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        f"Content-Type: {ctype}\r\n\r\n".encode() + echo["data"].encode()
    )
    return {
        (
            part.get_param("name", header="content-disposition"),
            part.get_filename(),
            part.get("content-type"),
            part.get_payload(decode=True),
        )
        for part in message.iter_parts()
    }


def same_request(mine: dict, curls: dict) -> None:
    """Same method, URL, query and body; the same header fields, but for the
    User-Agent and the list of encodings each asks for (each names itself)."""
    for echo in (mine, curls):
        echo["headers"] = {k.lower(): v for k, v in echo["headers"].items()}
    assert mine["method"] == curls["method"]
    assert mine["url"] == curls["url"] and mine.get("args") == curls.get("args")
    ctype = curls["headers"].get("content-type", "")
    if ctype.startswith("multipart/form-data"):
        assert multipart_parts(mine) == multipart_parts(curls)
        skip = {"content-type", "content-length"}  # the boundary is random
    else:
        body = ("data", "json", "form", "gzipped")  # what the endpoint has of them
        assert [mine.get(k) for k in body] == [curls.get(k) for k in body]
        skip = set()
    assert ("accept-encoding" in mine["headers"]) == ("accept-encoding" in curls["headers"])
    skip |= {"accept-encoding"}
    if not curls["headers"]["user-agent"].startswith("curl/"):  # set by the command
        assert mine["headers"]["user-agent"] == curls["headers"]["user-agent"]
    skip |= {"user-agent"}
    strip = {k: v for k, v in mine["headers"].items() if k not in skip}
    assert strip == {k: v for k, v in curls["headers"].items() if k not in skip}


SAME_AS_CURL = [
    "curl {u}/anything",
    "curl -X DELETE '{u}/anything?a=1&a=2'",
    "curl -H 'X-A: 1' -H 'X-Empty;' -H 'Accept: text/plain' {u}/anything",
    "curl -d a=1 -d 'b=x y' {u}/anything",
    "curl -d @{f} --data-binary @{f} {u}/anything",
    "curl --data-urlencode 'q=a b&c' --data-urlencode =é --data-urlencode n@{f} {u}/anything",
    'curl --json \'{{"a": [1, "é"]}}\' {u}/anything',
    "curl --json '{{\"a\":' --json '1}}' {u}/anything",
    "curl -H 'Content-Type:' -d x {u}/anything",
    "curl -H 'content-type: text/csv' --data-raw $'a,b\\n1,2' -X PUT {u}/anything",
    "curl -X GET -d x {u}/anything",
    "curl -G -d a=1 --data-urlencode 'b=x y' '{u}/anything?z=0'",
    "curl -u 'al:pa:ss' -A 'agent/1' -e '{u}/from;auto' {u}/anything",
    "curl -b 'a=1; b=2' -b c=3 --oauth2-bearer tok {u}/anything",
    "curl -F a=1 -F 'b=@{f}' -F 'c=@{f};type=text/x;filename=n.txt' -F 'd=<{f}' {u}/anything",
    "curl --compressed {u}/gzip",
    "curl -sSL {u}/redirect/2",
    "curl -H 'X-Name: café' -A 'agent-é' -H $'X-Raw: caf\\xe9' {u}/anything",  # bytes as given
]


@needs_curl
def test_form_part_parameters_and_quotes_as_curl(demo, tmp_path):
    """curl reads ``;type=``, ``;filename=``, ``"quoted"`` words and the spaces around
    an unquoted one in a text part too, and ``@"path"`` for a path with ``,`` or ``;``."""
    odd = tmp_path / 'a,b;c "d".txt'
    odd.write_text("odd")
    (tmp_path / "x,y.txt").write_text("xy")
    command = (
        f"curl -F 'a=1,2;type=text/x' -F 'b= 2 ;filename=n.txt' -F 'c=\"q;type=z\"'"
        f' -F \'j={{"k":1}};type=application/json\' -F \'d=@"{tmp_path}/a,b;c \\"d\\".txt"\''
        f' -F \'e=@"{tmp_path}/x,y.txt";filename="x;y"\' {demo.url}/anything'
    )
    (_, mine), (_, curls) = nbfetch_echo(command), curl_echo(command)
    same_request(mine, curls)
    assert len(multipart_parts(curls)) == 6


@pytest.mark.parametrize("flag", ["-d", "--data-binary", "--json", "--data-urlencode", "-F"])
def test_files_read_into_the_command_are_regular_and_bounded(flag, tmp_path):
    """A FIFO would block the kernel forever and /dev/zero never end; a big file
    is refused before it is read (a -F name=@file part is streamed instead)."""
    os.mkfifo(tmp_path / "fifo")
    big = tmp_path / "big.bin"
    with open(big, "wb") as file:
        file.truncate(10 * 1024 * 1024 + 1)  # sparse: no disk used
    prefix = "a=<" if flag == "-F" else "@"
    for path, message in [
        (tmp_path / "fifo", "is not a regular file"),
        ("/dev/zero", "is not a regular file"),
        (big, "holds more than 10,485,760 bytes"),
    ]:
        with pytest.raises(InvalidRequest, match=message):
            parse_curl(f"curl {flag} '{prefix}{path}' h")


@pytest.mark.parametrize(
    ("part", "message"),
    [
        ("a=x;y", "'y' is not a part parameter"),
        ("a=@f,g", "several files"),
        ("a=1;headers=X: 1", "headers"),
    ],
)
def test_form_part_parameters_it_does_not_read(part, message):
    with pytest.raises(InvalidRequest, match=message):
        parse_curl(f"curl -F {shlex.quote(part)} h")


@needs_curl
def test_double_dash_ends_the_options_as_in_curl(demo):
    command = f"curl -sS -d x -- {demo.url}/anything"
    done = run_curl(split_command(command)[1:])
    assert done.returncode == 0, done.stderr
    (_, mine), curls = nbfetch_echo(command), json.loads(done.stdout)
    same_request(mine, curls)


@needs_curl
@pytest.mark.parametrize("globoff", ["", "-g "])
def test_a_backslash_before_brackets_is_dropped_as_curl_globbing_drops_it(globoff, demo):
    """Chrome's "Copy as cURL (bash)" writes ``\\[ \\] \\{ \\}`` in a URL; curl's
    globbing drops the backslash, ``-g`` keeps it. (nbfetch percent-encodes the
    brackets curl sends raw: the query the server decodes is the same.)"""
    command = f"curl {globoff}'{demo.url}/anything?ids\\[\\]=1&f=\\{{a\\}}'"
    (_, mine), (_, curls) = nbfetch_echo(command), curl_echo(command)
    assert mine["args"] == curls["args"]
    kept = "\\" if globoff else ""
    assert curls["args"] == {f"ids{kept}[{kept}]": "1", "f": f"{kept}{{a{kept}}}"}


@needs_curl
@pytest.mark.parametrize("template", SAME_AS_CURL)
def test_nbfetch_sends_what_curl_sends(template, demo, tmp_path):
    (tmp_path / "f.txt").write_bytes(b"line1\r\nline2 &=+\n")
    command = template.format(u=demo.url, f=tmp_path / "f.txt")
    (status, mine), (curl_status, curls) = nbfetch_echo(command), curl_echo(command)
    assert status == curl_status == 200
    same_request(mine, curls)


@needs_curl
@pytest.mark.parametrize(("flags", "status"), [("", 302), ("-L", 200), ("-L --max-redirs 1", None)])
def test_redirects_are_followed_only_with_L(flags, status, demo):
    command = f"curl {flags} {demo.url}/redirect/2"
    done = run_curl([*split_command(command)[1:], "-s", "-o", os.devnull, "-w", "%{http_code}"])
    if status is None:  # curl: "Maximum (1) redirects followed", exit 47
        assert done.returncode == 47
        with pytest.raises(Exception, match="redirect"):
            nbfetch_echo(command)
        return
    assert int(done.stdout) == status
    assert asyncio.run(_nbfetch(parse_curl(command))).status_code == status


@needs_curl
def test_head_and_max_time_as_curl(demo):
    command = f"curl -I {demo.url}/get"
    done = run_curl([*split_command(command)[1:], "-s", "-o", os.devnull, "-w", "%{http_code}"])
    r = asyncio.run(_nbfetch(parse_curl(command)))
    assert (r.status_code, r.request.method, r.body) == (int(done.stdout), "HEAD", b"")
    command = f"curl -m 0.5 {demo.url}/delay/5"
    assert run_curl([*split_command(command)[1:], "-s"]).returncode == 28  # curl's timeout
    with pytest.raises(FetchTimeout) as info:
        asyncio.run(_nbfetch(parse_curl(command)))
    assert info.value.timeout == "request_timeout"


@pytest.fixture(scope="module")
def tls_demo():
    """The demo server over TLS, with a certificate from a CA nobody trusts."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    trustme.CA().issue_cert("127.0.0.1").configure_cert(ctx)
    server = DemoServer(ssl_context=ctx).start()
    yield server
    server.stop()


@needs_curl
def test_insecure_as_curl(tls_demo):
    command = f"curl {tls_demo.url}/anything"
    assert run_curl([*split_command(command)[1:], "-s"]).returncode == 60  # bad certificate
    with pytest.raises(TLSError):
        asyncio.run(_nbfetch(parse_curl(command)))
    command = f"curl -k {tls_demo.url}/anything"
    same_request(nbfetch_echo(command)[1], curl_echo(command)[1])


@pytest.mark.parametrize(
    "command",
    [
        "curl --user=al:hunter22 http://h",
        "curl -b hunter22token http://h",
        "curl -H 'Authorization Bearer hunter22' http://h",
        "curl -x socks5://al:hunter22@p:1 http://h",
        "curl --max-time hunter22 http://h",
        "curl -Zuhunter22 http://h",
        "curl --form 'token=hunter22;bogus=hunter22' http://h",
    ],
)
def test_errors_do_not_repeat_a_secret(command):
    with pytest.raises(InvalidRequest) as info:
        parse_curl(command)
    assert "hunter22" not in str(info.value) and "hunter22" not in repr(info.value)
