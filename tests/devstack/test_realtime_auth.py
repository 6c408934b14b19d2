"""Realtime stand-in: channel tokens at join and private-channel authorization (RLS)."""

from __future__ import annotations

import asyncio
import json
import time

import anyio
import jwt
import pytest
from realtime import RealtimeSubscribeStates

from devstack.realtime import RealtimeSettings
from tests.devstack.conftest import HS_SECRET, Keys, RealtimeEnv, new_org, running, sub_topic

pytestmark = pytest.mark.anyio


def unauthorized(sub: str) -> str:
    return f"Unauthorized: You do not have permissions to read from this Channel topic: {sub}"


async def test_private_join_allowed_for_an_org_member(rt: RealtimeEnv, org: str) -> None:
    async with rt.raw() as c:
        _, reply = await c.join(sub_topic(org), {"private": True}, token=rt.mint(org))
    assert reply.payload == {"status": "ok", "response": {"postgres_changes": []}}


async def test_private_join_denied_for_another_org(rt: RealtimeEnv, org: str) -> None:
    sub = sub_topic(org)
    async with rt.raw() as c:
        _, reply = await c.join(sub, {"private": True}, token=rt.mint(new_org()))
    assert reply.payload == {"status": "error", "response": {"reason": unauthorized(sub)}}


async def test_private_join_with_only_the_socket_anon_key_is_denied(
    rt: RealtimeEnv, org: str
) -> None:
    sub = sub_topic(org)
    async with rt.raw() as c:
        _, reply = await c.join(sub, {"private": True})
    assert reply.payload["response"] == {"reason": unauthorized(sub)}


async def test_sb_access_token_falls_back_to_the_socket_token(rt: RealtimeEnv, org: str) -> None:
    async with rt.raw(apikey=rt.mint(org)) as c:
        _, reply = await c.join(sub_topic(org), {"private": True}, token="sb_publishable_x")
    assert reply.payload["status"] == "ok"


async def test_user_token_wins_over_access_token(rt: RealtimeEnv, org: str) -> None:
    payload = {"config": {"private": True}, "user_token": rt.mint(org), "access_token": "junk"}
    async with rt.raw() as c:
        ref = await c.push(f"realtime:{sub_topic(org)}", "phx_join", payload)
        reply = await c.reply_to(ref)
    assert reply.payload["status"] == "ok"


async def test_string_booleans_are_accepted_in_any_case(rt: RealtimeEnv, org: str) -> None:
    sub = sub_topic(org)
    async with rt.raw() as c:
        _, reply = await c.join(sub, {"private": "TRUE"}, token=rt.mint(org))
        channels = rt.realtime.control.stats()["channels"]
    assert reply.payload["status"] == "ok"
    assert channels[sub][0]["private"] is True


async def test_malformed_private_silently_yields_a_public_channel(
    rt: RealtimeEnv, org: str
) -> None:
    sub = sub_topic(org)
    async with rt.raw() as c:  # another org's topic: a private join would be refused
        _, reply = await c.join(sub, {"private": "yes please"}, token=rt.mint(new_org()))
        channels = rt.realtime.control.stats()["channels"]
    assert reply.payload["status"] == "ok"
    assert channels[sub][0]["private"] is False


@pytest.mark.parametrize(
    ("token_kind", "reason"),
    [
        ("garbage", "MalformedJWT: The token provided is not a valid JWT"),
        ("no_role", "InvalidJWTToken: Fields `role` and `exp` are required in JWT"),
        ("bad_kid", 'JwtSignerError: Failed to generate JWT signer for key ID (kid) "other"'),
    ],
)
async def test_bad_channel_tokens_are_refused_with_the_server_reason(
    rt: RealtimeEnv, org: str, token_kind: str, reason: str
) -> None:
    tokens = {
        "garbage": "garbage",
        "no_role": jwt.encode({"exp": int(time.time()) + 60}, HS_SECRET, "HS256"),
        "bad_kid": rt.mint(org, kid="other"),
    }
    async with rt.raw() as c:
        _, reply = await c.join(sub_topic(org), {"private": True}, token=tokens[token_kind])
    assert reply.payload["status"] == "error"
    assert reply.payload["response"]["reason"].startswith(reason)


async def test_expired_channel_token_is_refused_with_seconds(rt: RealtimeEnv, org: str) -> None:
    async with rt.raw() as c:
        _, reply = await c.join(sub_topic(org), {"private": True}, token=rt.mint(org, ttl=-5))
    reason = reply.payload["response"]["reason"]
    assert reason.startswith("InvalidJWTToken: Token has expired ")
    assert reason.endswith(" seconds ago")


async def test_join_error_waits_the_join_error_delay(database_url: str, keys: Keys) -> None:
    settings = RealtimeSettings(join_error_delay_s=0.4, connect_error_delay_s=0)
    async with running(database_url, keys, settings) as env, env.raw() as c:
        started = time.monotonic()
        _, reply = await c.join("org:x:events", {"private": True})
        elapsed = time.monotonic() - started
    assert reply.payload["status"] == "error"
    assert elapsed >= 0.4


async def _subscribe(ch: object) -> asyncio.Queue[tuple[str, str | None]]:
    states: asyncio.Queue[tuple[str, str | None]] = asyncio.Queue()

    def on_state(status: RealtimeSubscribeStates, err: Exception | None) -> None:
        states.put_nowait((status.value, str(err) if err else None))

    await ch.subscribe(on_state)  # type: ignore[attr-defined]
    return states


async def test_official_client_private_join_allowed(rt: RealtimeEnv, org: str) -> None:
    client = await rt.client()
    await client.set_auth(rt.mint(org))
    ch = client.channel(sub_topic(org), {"config": {"private": True}})
    states = await _subscribe(ch)
    with anyio.fail_after(10):
        assert (await states.get())[0] == "SUBSCRIBED"


async def test_official_client_private_join_denied_with_unauthorized(
    rt: RealtimeEnv, org: str
) -> None:
    client = await rt.client()
    await client.set_auth(rt.mint(new_org()))
    ch = client.channel(sub_topic(org), {"config": {"private": True}})
    states = await _subscribe(ch)
    with anyio.fail_after(10):
        status, err = await states.get()
    assert status == "CHANNEL_ERROR"
    assert json.loads(err or "") == {"reason": unauthorized(sub_topic(org))}
    await ch.unsubscribe()
