"""Digest auth (issue 17 item 6, RFC 7616): the pure answer of core/auth.py and
the client answering pytest-httpbin's ``/digest-auth`` challenge once."""

import hashlib

import pytest

import nbfetch
from nbfetch import AsyncClient, DigestAuth
from nbfetch.core.auth import parse_challenges

PASSWORD = "s3cret-Passw0rd-42"

pytestmark = [pytest.mark.anyio, pytest.mark.loop_watchdog]


def retries(r):
    return [e.details for e in r.events if e.name == "retry"]


def fields(value: str) -> dict:
    """The auth-params of an Authorization value, as the server reads them."""
    [(scheme, params)] = parse_challenges([value])
    assert scheme == "digest"
    return params


# -- the answer, without a network ----------------------------------------------------


async def test_rfc_7616_md5_example():
    # RFC 7616 section 3.9.1 (MD5 variant), its values and its answer.
    challenge = (
        'Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm=MD5,'
        ' nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",'
        ' opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"'
    )
    value = DigestAuth("Mufasa", "Circle of Life").authorization(
        [challenge],
        "GET",
        "/dir/index.html",
        cnonce="f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
    )
    got = fields(value)
    assert got["response"] == "8ca523f5e9506fed4657c9700eebdbec"
    assert (got["nc"], got["qop"], got["algorithm"]) == ("00000001", "auth", "MD5")
    assert got["opaque"] == "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"


async def test_the_strongest_algorithm_offered_is_chosen_and_userhash_hides_the_name():
    challenges = [
        'Digest realm="r", nonce="n1", qop="auth", algorithm=MD5',
        'Basic realm="r", Digest realm="r", nonce="n2", qop="auth", algorithm=SHA-256,'
        " userhash=true",
    ]
    got = fields(DigestAuth("joe", "pw").authorization(challenges, "GET", "/", cnonce="c"))
    assert got["algorithm"] == "SHA-256" and got["nonce"] == "n2"
    assert got["userhash"] == "true"
    assert got["username"] == hashlib.sha256(b"joe:r").hexdigest()


async def test_sess_variant_hashes_nonce_and_cnonce_into_a1():
    challenge = 'Digest realm="r", nonce="n", qop="auth", algorithm=SHA-256-sess'
    got = fields(DigestAuth("joe", "pw").authorization([challenge], "GET", "/x", cnonce="c"))

    def h(text):
        return hashlib.sha256(text.encode()).hexdigest()

    a1 = h(f"{h('joe:r:pw')}:n:c")
    assert got["algorithm"] == "SHA-256-sess"
    assert got["response"] == h(f"{a1}:n:00000001:c:auth:{h('GET:/x')}")


async def test_challenges_that_cannot_be_answered():
    auth = DigestAuth("joe", "pw")
    for challenge in (
        'Basic realm="r"',
        'Digest realm="r", nonce="n", qop="auth-int"',  # only auth-int
        'Digest realm="r", nonce="n", qop="auth", algorithm=SHA-512',  # not RFC 7616's
        'Digest nonce="n", qop="auth"',  # no realm
        'Digest realm="unterminated, nonce="n", qop="auth"',
    ):
        assert auth.authorization([challenge], "GET", "/", cnonce="c") is None, challenge


async def test_the_password_is_masked():
    auth = DigestAuth("joe", PASSWORD)
    assert PASSWORD not in repr(auth) and PASSWORD not in str(auth)
    with pytest.raises(nbfetch.InvalidRequest):
        DigestAuth("joe", None)
    with pytest.raises(nbfetch.InvalidRequest):
        DigestAuth("joe\r\nX-Injected: 1", "pw")


# -- against httpbin --------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", ["MD5", "SHA-256"])
async def test_digest_against_httpbin(httpbin, algorithm):
    seen = []
    async with AsyncClient() as c:
        r = await c.fetch(
            f"{httpbin.url}/digest-auth/auth/user/{PASSWORD}/{algorithm}",
            auth=DigestAuth("user", PASSWORD),
            trace=seen.append,
        )
    assert r.status_code == 200, r.text
    assert r.json() == {"authenticated": True, "user": "user"}
    assert retries(r) == [
        {"attempt": 2, "reason": "401: answering the Digest challenge", "delay": 0.0}
    ]
    sent = fields(r.request.headers["authorization"])
    assert sent["algorithm"] == algorithm and sent["qop"] == "auth"
    # The password is never sent, never in an event, never in a repr (but
    # httpbin's URL spells it: taken out first).
    everything = repr(seen) + "".join(e.describe() for e in seen) + str(r.request.headers.raw)
    assert PASSWORD not in everything.replace(f"/user/{PASSWORD}/", "/user/…/")


async def test_wrong_password_is_a_401_response_after_exactly_one_retry(httpbin):
    async with AsyncClient() as c:
        r = await c.fetch(
            f"{httpbin.url}/digest-auth/auth/user/{PASSWORD}/SHA-256",
            auth=DigestAuth("user", "wrong-password"),
            retries=3,  # a 401 is not a status to retry
        )
    assert r.status_code == 401
    assert len(retries(r)) == 1
    assert [e.name for e in r.events].count("request.headers_sent") == 2
    with pytest.raises(nbfetch.HTTPStatusError) as info:
        r.raise_for_status()
    assert "wrong-password" not in str(info.value)


async def test_a_body_that_cannot_be_replayed_is_not_answered(raw_server):
    def challenge(conn, server):
        data = b""
        while not data.endswith(b"0\r\n\r\n"):  # the head and the chunked body
            piece = conn.recv(65536)
            if not piece:
                break
            data += piece
        server.received.append(data)
        conn.sendall(
            b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n"
            b'WWW-Authenticate: Digest realm="r", nonce="n", qop="auth"\r\n\r\n'
        )

    server = raw_server(challenge)

    async def body():
        yield b"once"

    async with AsyncClient() as c:
        r = await c.fetch(server.url + "/", "PUT", body=body(), auth=DigestAuth("u", PASSWORD))
    assert r.status_code == 401 and retries(r) == []
    assert server.connections == 1 and len(server.received) == 1


async def test_a_challenge_from_another_origin_after_a_redirect_is_not_answered(raw_server):
    def challenge(conn, server):
        server.read_request(conn)
        conn.sendall(
            b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n"
            b'WWW-Authenticate: Digest realm="r", nonce="n", qop="auth"\r\n\r\n'
        )

    other = raw_server(challenge)

    def redirect(conn, server):
        server.read_request(conn)
        conn.sendall(
            f"HTTP/1.1 302 Found\r\nLocation: {other.url}/\r\nContent-Length: 0\r\n\r\n".encode()
        )

    first = raw_server(redirect)
    async with AsyncClient() as c:
        r = await c.fetch(first.url + "/", auth=DigestAuth("u", PASSWORD))
    assert r.status_code == 401 and retries(r) == []
    assert len(other.received) == 1 and b"authorization" not in other.received[0].lower()


def scripted(*heads: bytes):
    """A raw handler answering request ``n`` with ``heads[n - 1]`` (the last one
    after that), each with an empty body on a kept-alive connection."""

    def handler(conn, server):
        while server.read_request(conn):
            head = heads[min(len(server.received), len(heads)) - 1]
            conn.sendall(head + b"\r\nContent-Length: 0\r\n\r\n")

    return handler


CHALLENGE = (
    b"HTTP/1.1 401 Unauthorized\r\n"
    b'WWW-Authenticate: Digest realm="r", nonce="abc", qop="auth", algorithm=SHA-256'
)


def authorization(request: bytes) -> dict | None:
    for line in request.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.lower() == b"authorization":
            scheme = value.strip().decode().partition(" ")[0]
            return {"scheme": scheme, **(fields(value.decode()) if scheme == "Digest" else {})}
    return None


async def test_digest_auth_wins_over_the_urls_userinfo_and_never_sends_basic(raw_server):
    import base64

    srv = raw_server(scripted(CHALLENGE, b"HTTP/1.1 200 OK"))
    url = srv.url.replace("http://", f"http://u:{PASSWORD}@") + "/"
    async with AsyncClient() as c:
        r = await c.fetch(url, auth=DigestAuth("u", PASSWORD))
    assert r.status_code == 200
    assert [authorization(q) and authorization(q)["scheme"] for q in srv.received] == [
        None,
        "Digest",
    ]
    secret = base64.b64encode(f"u:{PASSWORD}".encode())
    assert not any(secret in q or PASSWORD.encode() in q for q in srv.received)


async def test_each_attempt_after_a_digest_answer_sends_a_fresh_answer(raw_server):
    # RFC 7616 3.4: each request with the nonce counts up nc with a new cnonce;
    # a replayed Authorization (same nc and cnonce) is refused by a strict server.
    unavailable = b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 0"
    srv = raw_server(scripted(CHALLENGE, unavailable, unavailable, b"HTTP/1.1 200 OK"))
    async with AsyncClient(retries=2) as c:
        r = await c.fetch(srv.url + "/", auth=DigestAuth("u", PASSWORD))
    assert r.status_code == 200 and len(srv.received) == 4
    answers = [authorization(q) for q in srv.received[1:]]
    assert [a["nc"] for a in answers] == ["00000001", "00000002", "00000003"]
    assert len({a["cnonce"] for a in answers}) == 3 and len({a["response"] for a in answers}) == 3
    # ... and each is right, as the server checks it (RFC 7616 section 3.4.1).
    sha = lambda text: hashlib.sha256(text.encode()).hexdigest()  # noqa: E731
    a1, a2 = sha(f"u:r:{PASSWORD}"), sha("GET:/")
    for a in answers:
        assert a["response"] == sha(f"{a1}:abc:{a['nc']}:{a['cnonce']}:auth:{a2}")


def test_the_work_on_a_hostile_www_authenticate_is_bounded():
    # 64 schemes and parameters in all the values of a response, not 32000.
    assert len(parse_challenges(["a " * 32000])) == 64
    many = ["Basic realm=x"] * 1000 + ['Digest realm="r", nonce="n", qop="auth"']
    assert len(parse_challenges(many)) == 32  # the budget is shared by the values


async def test_a_huge_challenge_is_answered_as_no_challenge_without_holding_the_loop(raw_server):
    srv = raw_server(scripted(b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: " + b"a " * 32000))
    async with AsyncClient() as c:
        for _ in range(3):
            r = await c.fetch(srv.url + "/", auth=DigestAuth("u", PASSWORD))
            assert r.status_code == 401 and retries(r) == []
