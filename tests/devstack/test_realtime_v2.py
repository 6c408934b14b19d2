"""Realtime stand-in: V2 serializer (text arrays, kind-3 pushes, kind-4 broadcasts)."""

from __future__ import annotations

import pytest

from tests.devstack.conftest import RealtimeEnv, is_uuid, sub_topic
from tests.devstack.rawclient import V2, Msg, encode_kind3

pytestmark = pytest.mark.anyio


def is_broadcast(m: Msg) -> bool:
    return m.event == "broadcast"


async def test_v2_join_reply_is_a_text_array(rt: RealtimeEnv) -> None:
    async with rt.raw(V2) as c:
        await c.push("realtime:room-1", "phx_join", {"config": {}}, ref="1", join_ref="1")
        msg = await c.next()
    assert msg.raw == [
        "1",
        "1",
        "realtime:room-1",
        "phx_reply",
        {"status": "ok", "response": {"postgres_changes": []}},
    ]


async def test_v2_database_broadcast_arrives_as_kind_4(rt: RealtimeEnv, org: str) -> None:
    sub = sub_topic(org)
    async with rt.raw(V2) as c:
        await c.join(sub, {"private": True}, token=rt.mint(org))
        outbox_id = await rt.insert_event(org, "events", "job.created", {"job_id": 3})
        msg = await c.expect(is_broadcast)
    assert msg.binary
    assert msg.topic == f"realtime:{sub}"
    assert msg.payload["event"] == "job.created"
    assert msg.payload["encoding"] == 1
    assert msg.payload["payload"]["id"] == outbox_id
    assert list(msg.payload["meta"]) == ["id"]
    assert is_uuid(msg.payload["meta"]["id"])


async def test_v2_text_broadcast_reaches_v2_as_an_array_with_null_refs(rt: RealtimeEnv) -> None:
    message = {"type": "broadcast", "event": "e", "payload": {"n": 1}}
    async with rt.raw(V2) as sender, rt.raw(V2) as receiver:
        await receiver.join("room-1")
        join_ref, _ = await sender.join("room-1")
        await sender.push("realtime:room-1", "broadcast", message, join_ref=join_ref)
        got = await receiver.expect(is_broadcast)
    assert got.raw == [None, None, "realtime:room-1", "broadcast", message]


async def test_kind_3_push_reaches_v2_as_kind_4_and_v1_as_json(rt: RealtimeEnv) -> None:
    async with rt.raw(V2) as sender, rt.raw(V2) as v2, rt.raw() as v1:
        await v2.join("room-1")
        await v1.join("room-1")
        join_ref, _ = await sender.join("room-1", {"broadcast": {"ack": True}})
        frame = encode_kind3(join_ref, "9", "realtime:room-1", "job.done", b'{"job_id":5}')
        await sender.send_raw(frame)
        ack = await sender.reply_to("9")
        binary = await v2.expect(is_broadcast)
        text = await v1.expect(is_broadcast)
    assert ack.raw == [
        join_ref,
        "9",
        "realtime:room-1",
        "phx_reply",
        {"status": "ok", "response": {}},
    ]
    assert binary.binary
    assert binary.payload["payload"] == {"job_id": 5}
    assert "meta" not in binary.payload  # client metadata is discarded
    assert text.raw == {
        "topic": "realtime:room-1",
        "event": "broadcast",
        "payload": {"event": "job.done", "payload": {"job_id": 5}, "type": "broadcast"},
        "ref": None,
    }


async def test_binary_kind_3_payload_is_not_delivered_to_v1(rt: RealtimeEnv) -> None:
    async with rt.raw(V2) as sender, rt.raw() as v1:
        await v1.join("room-1")
        join_ref, _ = await sender.join("room-1")
        frame = encode_kind3(join_ref, "9", "realtime:room-1", "bin", b"\x00\x01", encoding=0)
        await sender.send_raw(frame)
        await sender.heartbeat()
        marker = {"type": "broadcast", "event": "marker", "payload": {}}
        await sender.push("realtime:room-1", "broadcast", marker, join_ref=join_ref)
        got = await v1.expect(is_broadcast)
    assert got.payload == marker


async def test_v2_system_push_carries_the_join_ref(rt: RealtimeEnv, org: str) -> None:
    sub = sub_topic(org)
    async with rt.raw(V2) as c:
        join_ref, _ = await c.join(sub, {"private": True}, token=rt.mint(org))
        rt.realtime.control.shutdown_topic(sub, "Too many messages per second")
        system = await c.expect(lambda m: m.event == "system")
        close = await c.next()
    assert system.raw[:2] == [join_ref, None]
    assert close.raw == [join_ref, join_ref, f"realtime:{sub}", "phx_close", {}]
