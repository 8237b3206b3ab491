"""The demo server's small API for the .http tutorial: POST /token, GET /me, GET /items.

Against the real server on 127.0.0.1: a login gives a stateless bearer token
(an HMAC of the user and its expiry with a key that dies with the server), /me
honours only tokens this server signed, and every input is bounded.
"""

import pytest

from nbfetch import AsyncClient
from nbfetch.demo.server import DEMO_PASSWORD, MAX_ITEMS, DemoServer

pytestmark = pytest.mark.anyio


async def login(client, demo, **kwargs):
    return await client.fetch(demo.url + "/token", "POST", **kwargs)


async def test_token_from_json_then_me(demo):
    async with AsyncClient() as c:
        r = await login(c, demo, json={"user": "ada", "password": DEMO_PASSWORD})
        assert r.status_code == 200
        body = r.json()
        assert set(body) == {"access_token", "token_type", "expires_in"}
        assert (body["token_type"], body["expires_in"]) == ("bearer", 3600)
        assert r.headers["cache-control"] == "no-store"  # RFC 6749 section 5.1
        auth = {"Authorization": "Bearer " + body["access_token"]}
        me = await c.fetch(demo.url + "/me", headers=auth)
    assert (me.status_code, me.json()) == (200, {"user": "ada"})


async def test_token_from_a_form_and_a_unicode_user(demo):
    async with AsyncClient() as c:
        r = await login(c, demo, data={"user": "Zoë 🐍", "password": DEMO_PASSWORD})
        token = r.json()["access_token"]
        me = await c.fetch(demo.url + "/me", headers={"Authorization": f"bearer {token}"})
    assert me.json() == {"user": "Zoë 🐍"}


@pytest.mark.parametrize(
    "credentials",
    [
        {"user": "ada", "password": "wrong"},
        {"user": "ada"},
        {"user": "ada", "password": 12},
        {"user": "ada", "password": "sécret"},
    ],
)
async def test_wrong_password_is_401_with_a_json_error(demo, credentials):
    async with AsyncClient() as c:
        r = await login(c, demo, json=credentials)
    assert r.status_code == 401
    assert r.json() == {"error": "wrong user or password"}
    assert r.headers["www-authenticate"].startswith("Bearer")
    assert "access_token" not in r.text


@pytest.mark.parametrize(
    "kwargs",
    [
        {"json": {"password": DEMO_PASSWORD}},  # no user
        {"json": {"user": "", "password": DEMO_PASSWORD}},
        {"json": {"user": "x" * 65, "password": DEMO_PASSWORD}},
        {"json": {"user": ["ada"], "password": DEMO_PASSWORD}},
        {"json": ["ada", DEMO_PASSWORD]},
        {"body": b"{not json", "headers": {"Content-Type": "application/json"}},
        {
            "body": b'{"user": "\\ud800", "password": "secret"}',
            "headers": {"Content-Type": "application/json"},
        },
        {"body": b"user=ada&password=secret", "headers": {"Content-Type": "text/plain"}},
    ],
)
async def test_bad_token_requests_are_400(demo, kwargs):
    async with AsyncClient() as c:
        r = await login(c, demo, **kwargs)
    assert r.status_code == 400, r.text
    assert r.json()["error"].startswith("bad request")


async def test_token_body_is_bounded_and_get_is_refused(demo):
    async with AsyncClient() as c:
        big = await login(c, demo, json={"user": "ada", "password": "x" * 5000})
        get = await c.fetch(demo.url + "/token")
    assert big.status_code == 413
    assert (get.status_code, get.headers["allow"]) == (405, "POST")


async def test_me_without_a_token_names_the_scheme(demo):
    async with AsyncClient() as c:
        r = await c.fetch(demo.url + "/me")
    assert r.status_code == 401
    # RFC 6750 section 3: no error code when the request had no credentials.
    assert r.headers["www-authenticate"] == 'Bearer realm="nbfetch demo"'
    assert "/token" in r.json()["error"]


async def test_me_refuses_forged_tampered_expired_and_foreign_tokens(demo):
    token = demo.issue_token("ada")
    name, expiry, signature = token.split(".")
    other = DemoServer().start()  # another server: another key
    try:
        foreign = other.issue_token("ada")
    finally:
        other.stop()
    bad = [
        "Bearer " + demo.issue_token("ada", lifetime=-10),  # expired
        "Bearer " + f"{demo.issue_token('eve').split('.')[0]}.{expiry}.{signature}",  # user swapped
        "Bearer " + f"{name}.{int(expiry) + 10**6}.{signature}",  # lifetime stretched
        "Bearer " + foreign,
        "Bearer " + token[:-1] + ("0" if token[-1] != "0" else "1"),
        "Bearer " + token + "é",
        "Bearer not-a-token",
        "Bearer " + "a." * 300,
        "Basic " + token,  # right token, wrong scheme
    ]
    async with AsyncClient() as c:
        assert (await c.fetch(demo.url + "/me", headers={"Authorization": "Bearer " + token})).ok
        for value in bad:
            r = await c.fetch(demo.url + "/me", headers={"Authorization": value})
            assert r.status_code == 401, value
            assert r.headers["www-authenticate"] == (
                'Bearer realm="nbfetch demo", error="invalid_token"'
            )


async def test_items(demo):
    async with AsyncClient() as c:
        r = await c.fetch(demo.url + "/items?n=3")
        default = await c.fetch(demo.url + "/items")
        empty = await c.fetch(demo.url + "/items?n=0")
        most = await c.fetch(demo.url + f"/items?n={MAX_ITEMS}")
        too_many = await c.fetch(demo.url + f"/items?n={MAX_ITEMS + 1}")
        negative = await c.fetch(demo.url + "/items?n=-1")
        nan = await c.fetch(demo.url + "/items?n=three")
    body = r.json()
    assert body["count"] == 3
    assert [item["id"] for item in body["items"]] == [1, 2, 3]
    assert body["items"][0] == {"id": 1, "name": "item 1", "price": 1.5}
    assert default.json()["count"] == 3
    assert empty.json() == {"items": [], "count": 0}
    assert len(most.json()["items"]) == MAX_ITEMS
    assert [x.status_code for x in (too_many, negative, nan)] == [400, 400, 400]


def test_the_endpoints_are_listed():
    from nbfetch.demo.server import ENDPOINTS

    assert "secret" in ENDPOINTS["/token"]
    assert {"/token", "/me", "/items?n=3"} <= set(ENDPOINTS)


async def test_json_is_httpbins_slideshow(demo):
    async with AsyncClient() as c:
        r = await c.fetch(demo.url + "/json")
    slideshow = r.json()["slideshow"]
    assert slideshow["slides"][0]["title"] == "Wake up to WonderWidgets!"
    assert slideshow["author"] == "Yours Truly"
