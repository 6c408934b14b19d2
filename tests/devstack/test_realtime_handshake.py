"""Realtime stand-in: upgrade checks (§1) with the server's statuses and bodies."""

from __future__ import annotations

import time

import aiohttp
import jwt
import pytest

from devstack.realtime import RealtimeSettings
from tests.devstack.conftest import HS_SECRET, Keys, RealtimeEnv, running, upgrade_headers

pytestmark = pytest.mark.anyio


async def _refusal(
    rt: RealtimeEnv, url: str, headers: dict[str, str] | None = None
) -> tuple[int, str]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(url, headers={**upgrade_headers(), **(headers or {})}) as resp,
    ):
        return resp.status, await resp.text()


async def test_garbage_apikey_is_refused_as_not_a_jwt(rt: RealtimeEnv) -> None:
    status, body = await _refusal(rt, rt.ws_url(apikey="garbage"))
    assert (status, body) == (401, '{"error": "The token provided is not a valid JWT"}')


async def test_publishable_sb_key_is_refused_as_not_a_jwt(rt: RealtimeEnv) -> None:
    status, body = await _refusal(rt, rt.ws_url(apikey="sb_publishable_abc123"))
    assert (status, body) == (401, '{"error": "The token provided is not a valid JWT"}')


async def test_missing_apikey_is_refused(rt: RealtimeEnv) -> None:
    status, body = await _refusal(rt, rt.ws_url(apikey=None))
    assert (status, body) == (401, '{"error": "API key is missing"}')


async def test_expired_socket_token_is_refused_without_seconds(rt: RealtimeEnv) -> None:
    token = jwt.encode({"role": "anon", "exp": int(time.time()) - 10}, HS_SECRET, "HS256")
    status, body = await _refusal(rt, rt.ws_url(apikey=token))
    assert (status, body) == (401, '{"error": "Token has expired"}')


async def test_token_without_role_is_refused(rt: RealtimeEnv) -> None:
    token = jwt.encode({"exp": int(time.time()) + 60}, HS_SECRET, "HS256")
    status, body = await _refusal(rt, rt.ws_url(apikey=token))
    assert (status, body) == (401, '{"error": "Fields `role` and `exp` are required in JWT"}')


async def test_bad_signature_is_refused(rt: RealtimeEnv) -> None:
    token = jwt.encode({"role": "anon", "exp": int(time.time()) + 60}, "x" * 40, "HS256")
    status, body = await _refusal(rt, rt.ws_url(apikey=token))
    assert (status, body) == (401, '{"error": "Failed to validate JWT signature"}')


async def test_unknown_kid_is_refused_with_the_kid_text(rt: RealtimeEnv) -> None:
    status, body = await _refusal(rt, rt.ws_url(apikey=rt.mint("org_x", kid="nope")))
    assert status == 401
    assert body == (
        '{"error": "Failed to generate JWT signer for key ID (kid) \\"nope\\", '
        'check your JWT secret or JWKS configuration"}'
    )


async def test_invalid_vsn_is_403_with_an_empty_body(rt: RealtimeEnv) -> None:
    status, body = await _refusal(rt, rt.ws_url(vsn="3.0.0"))
    assert (status, body) == (403, "")


async def test_x_api_key_header_wins_over_the_query(rt: RealtimeEnv) -> None:
    url = rt.ws_url(apikey="garbage")
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(url, headers={"x-api-key": rt.anon_key}) as ws,
    ):
        assert not ws.closed


async def test_missing_vsn_means_v1(rt: RealtimeEnv) -> None:
    async with aiohttp.ClientSession() as session, session.ws_connect(rt.ws_url(vsn=None)) as ws:
        await ws.send_json({"topic": "phoenix", "event": "heartbeat", "payload": {}, "ref": "1"})
        reply = await ws.receive_json(timeout=5)
    assert reply["ref"] == "1"


async def test_refusal_waits_the_connect_error_delay(database_url: str, keys: Keys) -> None:
    settings = RealtimeSettings(join_error_delay_s=0, connect_error_delay_s=0.4)
    async with running(database_url, keys, settings) as env:
        started = time.monotonic()
        status, _ = await _refusal(env, env.ws_url(apikey="garbage"))
        elapsed = time.monotonic() - started
    assert status == 401
    assert elapsed >= 0.4
