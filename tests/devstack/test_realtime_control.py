"""Realtime stand-in: the test control surface (Python methods and HTTP routes)."""

from __future__ import annotations

import aiohttp
import pytest

from tests.devstack.conftest import RealtimeEnv, sub_topic

pytestmark = pytest.mark.anyio


async def test_disconnect_all_says_server_requested_disconnect_then_1012(
    rt: RealtimeEnv,
) -> None:
    async with rt.raw() as c:
        await c.join("room-1")
        await rt.realtime.control.disconnect_all()
        system = await c.expect(lambda m: m.event == "system")
        code = await c.closed()
    assert system.payload == {
        "extension": "system",
        "status": "ok",
        "message": "Server requested disconnect",
    }
    assert code == 1012


async def test_shutdown_topic_sends_system_error_then_close(rt: RealtimeEnv, org: str) -> None:
    sub = sub_topic(org)
    async with rt.raw() as c:
        join_ref, _ = await c.join(sub, {"private": True}, token=rt.mint(org))
        assert rt.realtime.control.shutdown_topic(sub, "Too many messages per second") == 1
        system = await c.expect(lambda m: m.event == "system")
        close = await c.next()
    assert system.payload["message"] == "Too many messages per second"
    assert (close.event, close.ref) == ("phx_close", join_ref)


async def test_error_topic_pushes_phx_error_with_the_join_ref(rt: RealtimeEnv) -> None:
    async with rt.raw() as c:
        join_ref, _ = await c.join("room-1")
        rt.realtime.control.error_topic("room-1")
        msg = await c.expect(lambda m: m.event == "phx_error")
    assert msg.raw == {
        "topic": "realtime:room-1",
        "event": "phx_error",
        "payload": {},
        "ref": join_ref,
    }


async def test_drop_all_cuts_sockets_without_a_close_frame(rt: RealtimeEnv) -> None:
    async with rt.raw() as c:
        await c.join("room-1")
        rt.realtime.control.drop_all()
        code = await c.closed()
    assert code != 1000


async def test_http_stats_and_broadcast(rt: RealtimeEnv, org: str) -> None:
    sub = sub_topic(org)
    async with rt.raw() as c, aiohttp.ClientSession() as http:
        join_ref, _ = await c.join(sub, {"private": True}, token=rt.mint(org, ttl=600))
        async with http.get(f"{rt.base}/__devstack/realtime/stats") as resp:
            stats = await resp.json()
        body = {"topic": sub, "event": "injected", "payload": {"x": 1}}
        async with http.post(f"{rt.base}/__devstack/realtime/broadcast", json=body) as resp:
            injected = await resp.json()
        got = await c.expect(lambda m: m.event == "broadcast")
    assert stats["sockets"] == 1
    (entry,) = stats["channels"][sub]
    assert (entry["join_ref"], entry["private"]) == (join_ref, True)
    assert isinstance(entry["exp"], int)
    assert got.payload["meta"] == {"id": injected["id"]}


async def test_http_settings_replace_the_join_error_delay(rt: RealtimeEnv) -> None:
    async with aiohttp.ClientSession() as http:
        body = {"join_error_delay_s": 1.5}
        async with http.post(f"{rt.base}/__devstack/realtime/settings", json=body) as resp:
            assert resp.status == 200
    assert rt.realtime.settings.join_error_delay_s == 1.5


async def test_http_settings_rejects_unknown_fields(rt: RealtimeEnv) -> None:
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{rt.base}/__devstack/realtime/settings", json={"nope": 1}) as resp,
    ):
        assert resp.status == 400
