"""The API gateway: publishable and secret keys in, short-lived JWTs of their role out.

The rules are read off what each service receives (an echo service behind the gateway);
the Realtime stand-in behind it is driven by the official ``realtime`` client with each
kind of key.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import anyio
import httpx
import jwt
import pytest
from aiohttp import web

from devstack.gateway import MINTED_TTL_S, ApiKeys, Gateway
from devstack.jwt import Keyring
from tests.devstack.conftest import (
    API_KEYS,
    HS_SECRET,
    KEY_KINDS,
    Keys,
    RealtimeEnv,
    new_org,
    running,
    sub_topic,
    upgrade_headers,
)

pytestmark = pytest.mark.anyio

BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/130.0 Safari/537.36"
KEYS = ApiKeys.generate(HS_SECRET)


@pytest.fixture
async def echo() -> AsyncIterator[httpx.AsyncClient]:
    """Every path answers with the headers the service behind the gateway received."""

    async def handler(request: web.Request) -> web.Response:
        return web.json_response(dict(request.headers))

    app = web.Application()
    Gateway(KEYS, Keyring(HS_SECRET)).install(app)
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    port = runner.addresses[0][1]
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            yield client
    finally:
        await runner.cleanup()


def claims_of(authorization: str) -> dict[str, Any]:
    scheme, _, token = authorization.partition(" ")
    assert scheme == "Bearer"
    return dict(jwt.decode(token, HS_SECRET, algorithms=["HS256"]))


@pytest.mark.parametrize("prefix", ["/rest/v1", "/storage/v1", "/realtime/v1/api"])
@pytest.mark.parametrize(("kind", "role"), [("publishable", "anon"), ("secret", "service_role")])
async def test_an_sb_key_becomes_a_short_lived_jwt_of_its_role(
    echo: httpx.AsyncClient, prefix: str, kind: str, role: str
) -> None:
    key = getattr(KEYS, kind)
    got = (await echo.get(f"{prefix}/tasks", headers={"apikey": key})).json()

    claims = claims_of(got["Authorization"])
    assert claims["role"] == role
    assert claims["exp"] - claims["iat"] == MINTED_TTL_S


async def test_bearer_equal_to_the_apikey_is_replaced_too(echo: httpx.AsyncClient) -> None:
    key = KEYS.publishable
    got = (
        await echo.get("/rest/v1/t", headers={"apikey": key, "Authorization": f"Bearer {key}"})
    ).json()
    assert claims_of(got["Authorization"])["role"] == "anon"


async def test_a_real_jwt_in_authorization_passes_through(echo: httpx.AsyncClient) -> None:
    user = jwt.encode({"role": "authenticated", "sub": "user_1", "exp": 4102444800}, "x" * 32)
    headers = {"apikey": KEYS.publishable, "Authorization": f"Bearer {user}"}
    got = (await echo.get("/rest/v1/t", headers=headers)).json()
    assert got["Authorization"] == f"Bearer {user}"


async def test_bearer_with_another_sb_key_is_refused(echo: httpx.AsyncClient) -> None:
    headers = {"apikey": KEYS.publishable, "Authorization": f"Bearer {KEYS.secret}"}
    response = await echo.get("/rest/v1/t", headers=headers)
    assert response.status_code == 401
    assert response.headers["sb-error-code"] == "UNAUTHORIZED_INVALID_JWT_FORMAT"
    assert response.json() == {"code": "UNAUTHORIZED_INVALID_JWT_FORMAT", "message": "Invalid JWT"}


async def test_an_unknown_sb_key_is_an_invalid_api_key(echo: httpx.AsyncClient) -> None:
    response = await echo.get("/rest/v1/t", headers={"apikey": "sb_publishable_not_ours_12345"})
    assert response.status_code == 401
    assert response.headers["sb-error-code"] == "UNAUTHORIZED_INVALID_API_KEY"
    assert response.json() == {"message": "Invalid API key"}


@pytest.mark.parametrize("path", ["/rest/v1/t", "/realtime/v1/websocket?vsn=1.0.0"])
async def test_a_secret_key_from_a_browser_is_refused(echo: httpx.AsyncClient, path: str) -> None:
    response = await echo.get(path, headers={"apikey": KEYS.secret, "User-Agent": BROWSER})
    assert response.status_code == 401
    assert response.headers["sb-error-code"] == "UNAUTHORIZED_INVALID_API_KEY_TYPE"
    assert response.json()["message"] == "Forbidden use of secret API key in browser"


async def test_a_publishable_key_from_a_browser_is_fine(echo: httpx.AsyncClient) -> None:
    headers = {"apikey": KEYS.publishable, "User-Agent": BROWSER}
    assert (await echo.get("/rest/v1/t", headers=headers)).status_code == 200


async def test_the_websocket_gets_the_jwt_in_x_api_key(echo: httpx.AsyncClient) -> None:
    got = (await echo.get(f"/realtime/v1/websocket?apikey={KEYS.publishable}&vsn=1.0.0")).json()
    assert claims_of(f"Bearer {got['x-api-key']}")["role"] == "anon"
    assert "Authorization" not in got


async def test_legacy_keys_still_work_and_are_forwarded_as_the_bearer(
    echo: httpx.AsyncClient,
) -> None:
    got = (await echo.get("/rest/v1/t", headers={"apikey": KEYS.anon})).json()
    assert got["Authorization"] == f"Bearer {KEYS.anon}"


async def test_missing_and_foreign_legacy_keys_are_refused_with_the_gateways_text(
    echo: httpx.AsyncClient,
) -> None:
    user = jwt.encode({"role": "authenticated", "exp": 4102444800}, HS_SECRET)
    missing = await echo.get("/rest/v1/t")
    foreign = await echo.get("/rest/v1/t", headers={"apikey": user})
    assert (missing.status_code, missing.json()["message"]) == (401, "No API key found in request")
    assert (foreign.status_code, foreign.json()["message"]) == (401, "Invalid API key")


async def test_paths_outside_the_services_are_not_the_gateways(echo: httpx.AsyncClient) -> None:
    assert (await echo.get("/__devstack/anything")).status_code == 200


# -- Realtime behind the gateway, with the official client --------------------------------


@pytest.fixture(params=KEY_KINDS)
async def rt_gw(
    database_url: str, keys: Keys, request: pytest.FixtureRequest
) -> AsyncIterator[RealtimeEnv]:
    async with running(database_url, keys, key_kind=str(request.param), behind_gateway=True) as env:
        yield env


async def test_official_client_receives_private_db_broadcasts_with_each_key_kind(
    rt_gw: RealtimeEnv,
) -> None:
    org = new_org()
    client = await rt_gw.client()
    await client.set_auth(rt_gw.mint(org))
    received: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    channel = client.channel(sub_topic(org), {"config": {"private": True}})
    channel.on_broadcast("job.created", received.put_nowait)
    assert await _subscribe(channel) == "SUBSCRIBED"

    event_id = await rt_gw.insert_event(org, "events", "job.created", {"n": 1})

    with anyio.fail_after(10):
        message = await received.get()
    assert message["payload"]["id"] == event_id


async def test_a_public_join_without_a_user_token_uses_the_socket_token(
    rt_gw: RealtimeEnv,
) -> None:
    # The join's access_token is the client's API key: an sb_ key means "the socket's".
    client = await rt_gw.client()
    channel = client.channel("room-1", {"config": {}})
    assert await _subscribe(channel) == "SUBSCRIBED"
    [joined] = rt_gw.realtime.control.stats()["channels"]["room-1"]
    assert joined["private"] is False


async def _subscribe(channel: Any) -> str:
    """Subscribe and wait (bounded) for the first state the client reports."""
    states: asyncio.Queue[str] = asyncio.Queue()
    await channel.subscribe(lambda state, _err: states.put_nowait(str(state.value)))
    with anyio.fail_after(15):
        return await states.get()


async def test_an_sb_access_token_push_is_ignored(rt_gw: RealtimeEnv) -> None:
    org = new_org()
    async with rt_gw.raw() as c:
        join_ref, _ = await c.join(sub_topic(org), {"private": True}, token=rt_gw.mint(org))
        await c.push(
            f"realtime:{sub_topic(org)}",
            "access_token",
            {"access_token": API_KEYS.publishable},
            join_ref=join_ref,
        )
        await c.heartbeat()
    assert [m.event for m in c.seen] == ["phx_reply", "phx_reply"]


async def test_realtime_itself_still_accepts_only_jwts(database_url: str, keys: Keys) -> None:
    async with running(database_url, keys) as env, aiohttp.ClientSession() as session:
        url = f"{env.base}/realtime/v1/websocket?apikey={API_KEYS.publishable}&vsn=1.0.0"
        async with session.get(url, headers=upgrade_headers()) as resp:
            refusal = (resp.status, json.loads(await resp.text()))
    assert refusal == (401, {"error": "The token provided is not a valid JWT"})
