"""Realtime stand-in: per-tenant limits and their texts (§12)."""

from __future__ import annotations

import aiohttp
import pytest

from tests.devstack.conftest import RealtimeEnv, upgrade_headers
from tests.devstack.rawclient import Msg

pytestmark = pytest.mark.anyio


async def test_channels_per_socket(rt: RealtimeEnv) -> None:
    rt.realtime.control.update_settings(max_channels_per_client=2)
    async with rt.raw() as c:
        await c.join("a")
        await c.join("b")
        _, reply = await c.join("c")
    assert reply.payload == {
        "status": "error",
        "response": {"reason": "ChannelRateLimitReached: Too many channels"},
    }


async def test_joins_per_second_refuses_and_disconnects_with_1001(rt: RealtimeEnv) -> None:
    rt.realtime.control.update_settings(max_joins_per_second=2)
    async with rt.raw() as c:
        await c.join("a")
        await c.join("b")
        _, reply = await c.join("c")
        code = await c.closed()
    assert reply.payload["response"] == {
        "reason": "ClientJoinRateLimitReached: Too many joins per second"
    }
    assert code == 1001


async def test_connect_while_joins_are_tripped_is_429(rt: RealtimeEnv) -> None:
    rt.realtime.control.trip("joins", seconds=5)
    async with (
        aiohttp.ClientSession() as session,
        session.get(rt.ws_url(), headers=upgrade_headers()) as resp,
    ):
        status, body = resp.status, await resp.text()
    assert (status, body) == (429, '{"error": "Too many joins per second"}')


def is_system(m: Msg) -> bool:
    return m.event == "system"


async def test_events_per_second_shuts_down_receiving_channels(rt: RealtimeEnv) -> None:
    rt.realtime.control.update_settings(max_events_per_second=3)
    message = {"type": "broadcast", "event": "e", "payload": {}}
    async with rt.raw() as c:
        join_ref, _ = await c.join("room-1", {"broadcast": {"self": True}})
        for _ in range(3):
            await c.push("realtime:room-1", "broadcast", message, join_ref=join_ref)
        system = await c.expect(is_system)
        close = await c.next()
    assert system.payload == {
        "extension": "system",
        "status": "error",
        "message": "Too many messages per second",
        "channel": "room-1",
    }
    assert close.event == "phx_close"


async def test_tripped_events_drop_database_broadcasts(rt: RealtimeEnv) -> None:
    async with rt.raw() as c:
        await c.join("room-1")
        rt.realtime.control.trip("events", seconds=5)
        rt.realtime.control.broadcast("room-1", "dropped", {}, private=False)
        await c.heartbeat()
    assert not any(m.event == "broadcast" for m in c.seen)
