"""Realtime stand-in: channel token expiry and ``access_token`` refresh (§7)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import anyio
import pytest
from realtime import RealtimeSubscribeStates

from tests.devstack.conftest import RealtimeEnv, new_org, sub_topic
from tests.devstack.rawclient import Msg

pytestmark = pytest.mark.anyio


def system_error(sub: str, message: str) -> dict[str, Any]:
    return {"extension": "system", "status": "error", "message": message, "channel": sub}


def is_system(m: Msg) -> bool:
    return m.event == "system"


async def test_expiry_closes_only_that_channel_with_the_system_text(
    rt: RealtimeEnv, org: str
) -> None:
    short, long = sub_topic(org, "short"), sub_topic(org, "long")
    async with rt.raw() as c:
        short_ref, _ = await c.join(short, {"private": True}, token=rt.mint(org, ttl=2))
        await c.join(long, {"private": True}, token=rt.mint(org))
        system = await c.expect(is_system, within=6)
        close = await c.next()
        still = await c.heartbeat()  # the socket stays open
        channels = rt.realtime.control.stats()["channels"]
    assert system.raw == {
        "topic": f"realtime:{short}",
        "event": "system",
        "payload": system_error(short, "Token has expired 0 seconds ago"),
        "ref": None,
    }
    assert close.raw == {
        "topic": f"realtime:{short}",
        "event": "phx_close",
        "payload": {},
        "ref": short_ref,
    }
    assert still.payload["status"] == "ok"
    assert list(channels) == [long]


async def test_access_token_is_never_replied_to(rt: RealtimeEnv, org: str) -> None:
    sub = sub_topic(org)
    async with rt.raw() as c:
        join_ref, _ = await c.join(sub, {"private": True}, token=rt.mint(org))
        for token in (rt.mint(org, sub="user_2"), None, 42, "sb_secret_x"):
            await c.push(
                f"realtime:{sub}", "access_token", {"access_token": token}, join_ref=join_ref
            )
        await c.heartbeat()
        channels = rt.realtime.control.stats()["channels"]
    assert [m.event for m in c.seen] == ["phx_reply", "phx_reply"]  # join + heartbeat only
    assert list(channels) == [sub]


async def test_refresh_with_another_orgs_token_closes_with_no_longer(
    rt: RealtimeEnv, org: str
) -> None:
    sub = sub_topic(org)
    async with rt.raw() as c:
        join_ref, _ = await c.join(sub, {"private": True}, token=rt.mint(org))
        other = rt.mint(new_org())
        await c.push(f"realtime:{sub}", "access_token", {"access_token": other}, join_ref=join_ref)
        system = await c.expect(is_system)
        close = await c.next()
    assert system.payload == system_error(
        sub, f"You no longer have permission to read from this Channel topic: {sub}"
    )
    assert (close.event, close.ref) == ("phx_close", join_ref)


async def test_refresh_with_garbage_closes_with_not_a_valid_jwt(rt: RealtimeEnv, org: str) -> None:
    sub = sub_topic(org)
    async with rt.raw() as c:
        join_ref, _ = await c.join(sub, {"private": True}, token=rt.mint(org))
        await c.push(f"realtime:{sub}", "access_token", {"access_token": ""}, join_ref=join_ref)
        system = await c.expect(is_system)
        close = await c.next()
    assert system.payload == system_error(sub, "The token provided is not a valid JWT")
    assert close.event == "phx_close"


async def test_refresh_with_an_expired_token_closes_with_seconds(rt: RealtimeEnv, org: str) -> None:
    sub = sub_topic(org)
    async with rt.raw() as c:
        join_ref, _ = await c.join(sub, {"private": True}, token=rt.mint(org))
        expired = rt.mint(org, ttl=-3)
        await c.push(
            f"realtime:{sub}", "access_token", {"access_token": expired}, join_ref=join_ref
        )
        system = await c.expect(is_system)
    assert system.payload["message"].startswith("Token has expired ")
    assert system.payload["message"].endswith(" seconds ago")


async def test_refresh_on_a_public_channel_with_another_org_is_accepted(
    rt: RealtimeEnv, org: str
) -> None:
    async with rt.raw() as c:
        join_ref, _ = await c.join("room-1", {}, token=rt.mint(org))
        other = rt.mint(new_org())
        await c.push("realtime:room-1", "access_token", {"access_token": other}, join_ref=join_ref)
        await c.heartbeat()
        channels = rt.realtime.control.stats()["channels"]
    assert "room-1" in channels


class Watcher:
    """Collects an official channel's states and broadcasts from sync callbacks."""

    def __init__(self) -> None:
        self.states: asyncio.Queue[tuple[str, str | None]] = asyncio.Queue()
        self.broadcasts: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.history: list[str] = []

    def on_state(self, status: RealtimeSubscribeStates, err: Exception | None) -> None:
        self.history.append(status.value)
        self.states.put_nowait((status.value, str(err) if err else None))

    def on_broadcast(self, message: dict[str, Any]) -> None:
        self.broadcasts.put_nowait(message)


async def test_official_client_channel_closes_at_expiry(rt: RealtimeEnv, org: str) -> None:
    client = await rt.client()
    await client.set_auth(rt.mint(org, ttl=TTL_S))
    watch = Watcher()
    ch = client.channel(sub_topic(org), {"config": {"private": True}})
    await ch.subscribe(watch.on_state)
    with anyio.fail_after(10):
        assert (await watch.states.get())[0] == "SUBSCRIBED"
        status, err = await watch.states.get()
        assert (await watch.states.get())[0] == "CLOSED"
    assert status == "CHANNEL_ERROR"
    assert json.loads(err or "")["message"] == "Token has expired 0 seconds ago"


TTL_S = 3


async def test_official_client_set_auth_keeps_the_channel_across_expiries(
    rt: RealtimeEnv, org: str
) -> None:
    client = await rt.client()
    await client.set_auth(rt.mint(org, ttl=TTL_S))
    watch = Watcher()
    ch = client.channel(sub_topic(org), {"config": {"private": True}})
    ch.on_broadcast("*", watch.on_broadcast)
    await ch.subscribe(watch.on_state)
    with anyio.fail_after(10):
        assert (await watch.states.get())[0] == "SUBSCRIBED"
    ids = []
    # Refresh every second with 3 s tokens for over three token lifetimes; each refresh is
    # the behaviour under test, and an event must arrive in every period. (A token lives
    # three refresh periods: a loaded machine may stretch one period, never three.)
    for _ in range(10):
        await client.set_auth(rt.mint(org, ttl=TTL_S))
        ids.append(await rt.insert_event(org, "events", "tick", {}))
        with anyio.fail_after(5):
            got = await watch.broadcasts.get()
        assert got["payload"]["id"] == ids[-1]
        await anyio.sleep(1)  # pacing of the refresh loop, not a wait for a condition
    assert watch.history == ["SUBSCRIBED"]
    assert ch.is_joined
