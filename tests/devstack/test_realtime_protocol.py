"""Realtime stand-in: Phoenix V1 framing, heartbeat, routing, join/leave, hygiene."""

from __future__ import annotations

import json

import aiohttp
import anyio
import pytest

from devstack.realtime import RealtimeSettings
from tests.devstack.conftest import TEST_SETTINGS, Keys, RealtimeEnv, running

pytestmark = pytest.mark.anyio


async def test_heartbeat_gets_an_ok_reply_on_phoenix(rt: RealtimeEnv) -> None:
    async with rt.raw() as c:
        await c.push("phoenix", "heartbeat", {}, ref="hb-1")
        msg = await c.next()
    assert msg.raw == {
        "topic": "phoenix",
        "event": "phx_reply",
        "payload": {"status": "ok", "response": {}},
        "ref": "hb-1",
    }


async def test_message_on_an_unjoined_topic_gets_unmatched_topic(rt: RealtimeEnv) -> None:
    async with rt.raw() as c:
        ref = await c.push("realtime:room-1", "broadcast", {"event": "x", "payload": {}})
        msg = await c.reply_to(ref)
    assert msg.payload == {"status": "error", "response": {"reason": "unmatched topic"}}


async def test_join_outside_realtime_prefix_gets_unmatched_topic(rt: RealtimeEnv) -> None:
    async with rt.raw() as c:
        ref = await c.push("room-1", "phx_join", {"config": {}})
        msg = await c.reply_to(ref)
    assert msg.payload == {"status": "error", "response": {"reason": "unmatched topic"}}


async def test_malformed_frames_are_dropped_and_the_socket_stays_open(rt: RealtimeEnv) -> None:
    async with rt.raw() as c:
        for junk in ("not json", "[1,2,3]", '{"topic":"phoenix","event":"heartbeat"}', "42"):
            await c.send_raw(junk)
        await c.send_raw(b"\x03\x00binary on v1")
        reply = await c.heartbeat()
    assert reply.payload["status"] == "ok"
    assert [m.event for m in c.seen] == ["phx_reply"]  # nothing answered the junk


async def test_public_join_ok_reply_has_empty_postgres_changes(rt: RealtimeEnv) -> None:
    async with rt.raw() as c:
        await c.push("realtime:room-1", "phx_join", {"config": {}}, ref="1", join_ref="1")
        msg = await c.next()
    assert msg.raw == {
        "topic": "realtime:room-1",
        "event": "phx_reply",
        "payload": {"status": "ok", "response": {"postgres_changes": []}},
        "ref": "1",
    }


async def test_empty_sub_topic_is_refused(rt: RealtimeEnv) -> None:
    async with rt.raw() as c:
        ref = await c.push("realtime:", "phx_join", {"config": {}})
        msg = await c.reply_to(ref)
    assert msg.payload == {
        "status": "error",
        "response": {"reason": "TopicNameRequired: You must provide a topic name"},
    }


async def test_leave_replies_ok_then_phx_close_with_the_join_ref(rt: RealtimeEnv) -> None:
    async with rt.raw() as c:
        join_ref, _ = await c.join("room-1")
        leave_ref = await c.push("realtime:room-1", "phx_leave", {}, join_ref=join_ref)
        reply = await c.reply_to(leave_ref)
        close = await c.next()
    assert reply.payload == {"status": "ok", "response": {}}
    assert close.raw == {
        "topic": "realtime:room-1",
        "event": "phx_close",
        "payload": {},
        "ref": "1",
    }


async def test_leave_on_an_unjoined_topic_replies_ok(rt: RealtimeEnv) -> None:
    async with rt.raw() as c:
        ref = await c.push("realtime:nowhere", "phx_leave", {})
        reply = await c.reply_to(ref)
        await c.heartbeat()
    assert reply.payload == {"status": "ok", "response": {}}
    assert [m.event for m in c.seen] == ["phx_reply", "phx_reply"]  # no phx_close


async def test_leave_with_a_stale_join_ref_is_ignored(rt: RealtimeEnv) -> None:
    async with rt.raw() as c:
        await c.join("room-1")
        await c.push("realtime:room-1", "phx_leave", {}, ref="stale-leave", join_ref="999")
        await c.heartbeat()
        channels = rt.realtime.control.stats()["channels"]
    assert not any(m.ref == "stale-leave" for m in c.seen)
    assert "room-1" in channels


async def test_duplicate_join_closes_the_old_channel_after_the_new_ok(rt: RealtimeEnv) -> None:
    async with rt.raw() as c:
        old_ref, _ = await c.join("room-1")
        new_ref, reply = await c.join("room-1")
        close = await c.expect(lambda m: m.event == "phx_close")
        channels = rt.realtime.control.stats()["channels"]
    events = [(m.event, m.ref) for m in c.seen]
    assert reply.payload["status"] == "ok"
    assert events.index(("phx_reply", new_ref)) < events.index(("phx_close", old_ref))
    assert close.ref == old_ref != new_ref
    assert [ch["join_ref"] for ch in channels["room-1"]] == [new_ref]


async def test_messages_with_a_stale_join_ref_are_still_handled(rt: RealtimeEnv) -> None:
    async with rt.raw() as c:
        await c.join("room-1", {"broadcast": {"ack": True}})
        payload = {"type": "broadcast", "event": "e", "payload": {}}
        ref = await c.push("realtime:room-1", "broadcast", payload, join_ref="stale")
        reply = await c.reply_to(ref)
    assert reply.payload == {"status": "ok", "response": {}}


async def test_ping_endpoint(rt: RealtimeEnv) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{rt.base}/realtime/v1/api/ping") as resp,
    ):
        assert resp.status == 200
        assert await resp.json() == {"message": "Success"}


async def test_socket_path_without_the_gateway_prefix_works(rt: RealtimeEnv) -> None:
    url = f"{rt.base}/socket/websocket?apikey={rt.anon_key}&vsn=1.0.0"
    async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
        await ws.send_str(
            json.dumps({"topic": "phoenix", "event": "heartbeat", "payload": {}, "ref": "1"})
        )
        with anyio.fail_after(5):
            msg = await ws.receive_json()
    assert msg["payload"]["status"] == "ok"


async def test_idle_socket_is_closed(database_url: str, keys: Keys) -> None:
    settings = RealtimeSettings(join_error_delay_s=0, connect_error_delay_s=0, idle_timeout_s=0.5)
    async with running(database_url, keys, settings) as env, env.raw() as c:
        await c.heartbeat()
        code = await c.closed(within=5)
    assert code == 1000


async def test_frame_over_the_size_limit_closes_the_socket(database_url: str, keys: Keys) -> None:
    settings = RealtimeSettings(join_error_delay_s=0, connect_error_delay_s=0, max_frame_bytes=1000)
    async with running(database_url, keys, settings) as env, env.raw() as c:
        await c.send_raw(
            json.dumps({"topic": "x", "event": "y", "payload": "a" * 2000, "ref": "1"})
        )
        code = await c.closed(within=5)
    assert code == 1009


async def test_close_shuts_every_socket_with_1001(database_url: str, keys: Keys) -> None:
    async with running(database_url, keys, TEST_SETTINGS) as env, env.raw() as c:
        await c.join("room-1")
        async with anyio.create_task_group() as tg:
            tg.start_soon(env.realtime.close)
            code = await c.closed(within=10)
    assert code == 1001
