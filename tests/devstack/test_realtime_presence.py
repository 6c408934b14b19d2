"""Realtime stand-in: presence track/untrack, state and diffs (§11)."""

from __future__ import annotations

import pytest

from tests.devstack.conftest import RealtimeEnv, sub_topic
from tests.devstack.rawclient import Msg

pytestmark = pytest.mark.anyio

PRESENCE = {"presence": {"enabled": True, "key": "worker-1"}}


def is_diff(m: Msg) -> bool:
    return m.event == "presence_diff"


def track(fields: object) -> dict[str, object]:
    return {"type": "presence", "event": "track", "payload": fields}


async def test_join_with_presence_gets_an_empty_presence_state(rt: RealtimeEnv) -> None:
    async with rt.raw() as c:
        await c.join("room-1", PRESENCE)
        state = await c.expect(lambda m: m.event == "presence_state")
    assert state.payload == {}


async def test_track_replies_ok_and_diffs_reach_everyone(rt: RealtimeEnv, org: str) -> None:
    sub, token = sub_topic(org), rt.mint(org)
    async with rt.raw() as tracker, rt.raw() as other:
        await other.join(sub, {"private": True, **PRESENCE}, token=token)
        join_ref, _ = await tracker.join(sub, {"private": True, **PRESENCE}, token=token)
        ref = await tracker.push(
            f"realtime:{sub}", "presence", track({"status": "up"}), join_ref=join_ref
        )
        reply = await tracker.reply_to(ref)
        mine, theirs = await tracker.expect(is_diff), await other.expect(is_diff)
    assert reply.payload == {"status": "ok", "response": {}}
    assert mine.payload == theirs.payload
    (meta,) = mine.payload["joins"]["worker-1"]["metas"]
    assert meta["status"] == "up"
    assert isinstance(meta["phx_ref"], str)
    assert mine.payload["leaves"] == {}


async def test_track_with_a_non_map_payload_is_an_error(rt: RealtimeEnv) -> None:
    async with rt.raw() as c:
        join_ref, _ = await c.join("room-1", PRESENCE)
        ref = await c.push("realtime:room-1", "presence", track("up"), join_ref=join_ref)
        reply = await c.reply_to(ref)
    assert reply.payload == {
        "status": "error",
        "response": {"reason": "Presence track payload must be a map"},
    }


async def test_unknown_presence_event_is_an_empty_error(rt: RealtimeEnv) -> None:
    async with rt.raw() as c:
        join_ref, _ = await c.join("room-1", PRESENCE)
        payload = {"type": "presence", "event": "wave", "payload": {}}
        ref = await c.push("realtime:room-1", "presence", payload, join_ref=join_ref)
        reply = await c.reply_to(ref)
    assert reply.payload == {"status": "error", "response": {}}


async def test_untrack_sends_a_leaves_diff(rt: RealtimeEnv) -> None:
    async with rt.raw() as c:
        join_ref, _ = await c.join("room-1", PRESENCE)
        await c.push("realtime:room-1", "presence", track({"a": 1}), join_ref=join_ref)
        await c.expect(is_diff)
        untrack = {"type": "presence", "event": "untrack"}
        ref = await c.push("realtime:room-1", "presence", untrack, join_ref=join_ref)
        reply = await c.reply_to(ref)
        diff = await c.expect(is_diff)
    assert reply.payload["status"] == "ok"
    assert diff.payload["joins"] == {}
    assert diff.payload["leaves"]["worker-1"]["metas"][0]["a"] == 1


async def test_later_joiner_sees_tracked_state(rt: RealtimeEnv) -> None:
    async with rt.raw() as tracker, rt.raw() as late:
        join_ref, _ = await tracker.join("room-1", PRESENCE)
        await tracker.push("realtime:room-1", "presence", track({"a": 1}), join_ref=join_ref)
        await tracker.expect(is_diff)
        await late.join("room-1", {"presence": {"enabled": True}})
        state = await late.expect(lambda m: m.event == "presence_state")
    assert state.payload["worker-1"]["metas"][0]["a"] == 1


async def test_identical_retrack_is_a_no_op(rt: RealtimeEnv) -> None:
    async with rt.raw() as c:
        join_ref, _ = await c.join("room-1", PRESENCE)
        for _ in range(2):
            ref = await c.push("realtime:room-1", "presence", track({"a": 1}), join_ref=join_ref)
            await c.reply_to(ref)
        await c.heartbeat()
    assert sum(is_diff(m) for m in c.seen) == 1
