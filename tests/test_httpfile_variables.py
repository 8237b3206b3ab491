"""{{templates}} in .http files: the lookup order, environments, dynamic
variables, request references, secrets, and the FetchOptions a block becomes,
sent to the real demo server."""

import pytest

from nbfetch import AsyncClient
from nbfetch.httpfile import Scope, parse_http, to_options


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
    opts = to_options(file.requests[0], scope)
    async with AsyncClient() as client:
        r = await client.fetch(opts.url, opts.method, **opts.fetch_kwargs)
    echo = r.json()
    assert echo["args"] == {"n": "3"}
    assert echo["json"]["user"] == "ada"
    assert len(echo["json"]["id"]) == 36
    assert echo["headers"]["Authorization"] == "Bearer tok-9f8e7d"
    assert scope.secrets.scrub(r.text).count("tok-9f8e7d") == 0
