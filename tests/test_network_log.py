"""The process's network log (client/netlog.py): every fetch of every client,
newest first, in a bounded ring of redacted summaries."""

import json

import pytest

import nbfetch
from nbfetch import AsyncClient
from nbfetch.client.netlog import NetworkLog

pytestmark = [pytest.mark.anyio, pytest.mark.loop_watchdog]


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.fixture
def log():
    log = NetworkLog(size=5).enable()
    yield log
    log.disable()
    log.clear()


async def test_fetches_of_every_client_are_logged_newest_first(log, demo):
    async with AsyncClient() as a, AsyncClient() as b:
        await a.fetch(demo.url + "/get?n=1")
        await b.fetch(demo.url + "/status/404")
    await nbfetch.fetch(demo.url + "/post", "POST", json={"x": 1})
    rows = log.rows()
    assert [r["method"] for r in rows] == ["POST", "GET", "GET"]
    assert [r["status"] for r in rows] == [200, 404, 200]
    assert log.rows(status=404)[0]["url"].endswith("/status/404")
    assert len(log.rows(text="post")) == 1


async def test_the_ring_keeps_the_last_size_fetches(log, demo):
    async with AsyncClient() as client:
        for i in range(8):
            await client.fetch(demo.url + f"/get?i={i}")
    assert len(log) == 5
    assert log.rows()[0]["url"].endswith("i=7")
    assert log.rows()[-1]["url"].endswith("i=3")


async def test_failures_are_logged_and_secrets_never_shown(log, demo, tmp_path):
    url = demo.url.replace("http://", "http://user:hunter2pw@")
    async with AsyncClient() as client:
        await client.fetch(
            url + "/get?token=sekrit-token-1",
            headers={"Authorization": "Bearer sekrit-bearer-2", "Cookie": "sid=sekrit-cookie-3"},
        )
        with pytest.raises(nbfetch.FetchError):
            await client.fetch("http://127.0.0.1:9/refused")
    rows = log.rows()
    assert rows[0]["status"] in (None, 0) or rows[0].get("error")
    everything = json.dumps(rows, default=str) + repr(log) + log.text()
    everything += json.dumps(log.to_har(), default=str)
    for entry in log:
        everything += json.dumps(entry.detail(), default=str)
    for secret in ("hunter2pw", "sekrit-token-1", "sekrit-bearer-2", "sekrit-cookie-3"):
        assert secret not in everything, secret
