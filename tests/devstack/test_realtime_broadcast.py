"""Realtime stand-in: database broadcasts and client broadcasts (§9, §10.1)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import anyio
import pytest

from tests.devstack.conftest import RealtimeEnv, is_uuid, new_org, sub_topic
from tests.devstack.rawclient import Msg

pytestmark = pytest.mark.anyio


def is_broadcast(m: Msg) -> bool:
    return m.event == "broadcast"


async def test_official_client_receives_a_database_broadcast(rt: RealtimeEnv, org: str) -> None:
    client = await rt.client()
    await client.set_auth(rt.mint(org))
    got: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    ch = client.channel(sub_topic(org), {"config": {"private": True}})
    ch.on_broadcast("job.created", got.put_nowait)
    await ch.subscribe()
    outbox_id = await rt.insert_event(org, "events", "job.created", {"job_id": 42})
    with anyio.fail_after(10):
        message = await got.get()
    assert message["event"] == "job.created"
    assert message["payload"]["id"] == outbox_id
    assert message["payload"]["payload"] == {"job_id": 42}
    assert is_uuid(message["meta"]["id"])


async def test_database_broadcast_v1_frame_shape(rt: RealtimeEnv, org: str) -> None:
    sub = sub_topic(org)
    async with rt.raw() as c:
        await c.join(sub, {"private": True}, token=rt.mint(org))
        outbox_id = await rt.insert_event(org, "events", "job.created", {"job_id": 1})
        msg = await c.expect(is_broadcast)
    assert set(msg.raw) == {"topic", "event", "payload", "ref"}
    assert (msg.topic, msg.ref) == (f"realtime:{sub}", None)
    payload = msg.payload
    assert list(payload) == ["event", "payload", "type", "meta"]
    assert (payload["event"], payload["type"]) == ("job.created", "broadcast")
    assert payload["payload"]["id"] == outbox_id
    assert payload["payload"]["org_id"] == org
    assert list(payload["meta"]) == ["id"]
    assert is_uuid(payload["meta"]["id"])


async def test_realtime_send_adds_the_message_id_to_the_payload(rt: RealtimeEnv, org: str) -> None:
    sub = sub_topic(org)
    async with rt.raw() as c:
        await c.join(sub, {"private": True}, token=rt.mint(org))
        await rt.send(sub, "ping", {"a": 1}, private=True)
        msg = await c.expect(is_broadcast)
    assert msg.payload["payload"] == {"a": 1, "id": msg.payload["meta"]["id"]}


async def test_public_channel_does_not_see_private_broadcasts(rt: RealtimeEnv, org: str) -> None:
    sub = sub_topic(org)
    async with rt.raw() as c:
        await c.join(sub, {}, token=rt.mint(org))  # public, same sub-topic
        await rt.insert_event(org, "events", "private.one", {})  # realtime.send private
        await rt.send(sub, "public.marker", {}, private=False)  # committed after it
        marker = await c.expect(is_broadcast)
    assert marker.payload["event"] == "public.marker"
    assert [m.event for m in c.seen].count("broadcast") == 1


async def test_other_orgs_broadcasts_never_reach_the_channel(rt: RealtimeEnv, org: str) -> None:
    org_b = new_org()
    async with rt.raw() as c:
        await c.join(sub_topic(org), {"private": True}, token=rt.mint(org))
        await rt.insert_event(org_b, "events", "b.event", {})
        await rt.insert_event(org, "events", "a.marker", {})
        marker = await c.expect(is_broadcast)
    assert marker.payload["event"] == "a.marker"
    assert [m.event for m in c.seen].count("broadcast") == 1


async def test_broadcast_ack_and_delivery_to_others_not_self(rt: RealtimeEnv, org: str) -> None:
    sub, token = sub_topic(org), rt.mint(org, "admin")
    message = {"type": "broadcast", "event": "job.done", "payload": {"job_id": 42}}
    async with rt.raw() as sender, rt.raw() as receiver:
        await receiver.join(sub, {"private": True}, token=token)
        join_ref, _ = await sender.join(sub, {"private": True, "broadcast": {"ack": True}}, token)
        ref = await sender.push(f"realtime:{sub}", "broadcast", message, join_ref=join_ref)
        ack = await sender.reply_to(ref)
        got = await receiver.expect(is_broadcast)
        await sender.heartbeat()
    assert ack.payload == {"status": "ok", "response": {}}
    assert got.raw == {
        "topic": f"realtime:{sub}",
        "event": "broadcast",
        "payload": message,
        "ref": None,
    }
    assert not any(is_broadcast(m) for m in sender.seen)


async def test_broadcast_with_self_reaches_the_sender(rt: RealtimeEnv) -> None:
    message = {"type": "broadcast", "event": "e", "payload": {"n": 1}}
    async with rt.raw() as c:
        join_ref, _ = await c.join("room-1", {"broadcast": {"self": "true"}})
        await c.push("realtime:room-1", "broadcast", message, join_ref=join_ref)
        got = await c.expect(is_broadcast)
    assert got.payload == message


async def test_private_write_denied_is_dropped_silently_even_with_ack(
    rt: RealtimeEnv, org: str
) -> None:
    sub = sub_topic(org)
    message = {"type": "broadcast", "event": "e", "payload": {}}
    config = {"private": True, "broadcast": {"ack": True, "self": True}}
    async with rt.raw() as member, rt.raw() as admin:
        await admin.join(sub, {"private": True}, token=rt.mint(org, "admin"))
        join_ref, _ = await member.join(sub, config, token=rt.mint(org, "member"))
        ref = await member.push(f"realtime:{sub}", "broadcast", message, join_ref=join_ref)
        await member.heartbeat()
        await admin.heartbeat()
    assert not any(m.ref == ref for m in member.seen)
    assert not any(is_broadcast(m) for m in member.seen + admin.seen)


async def test_oversize_broadcast_gets_payload_size_exceeded(rt: RealtimeEnv) -> None:
    rt.realtime.control.update_settings(max_payload_size_in_kb=1)
    message = {"type": "broadcast", "event": "big", "payload": {"blob": "x" * 2000}}
    async with rt.raw() as c:
        join_ref, _ = await c.join("room-1", {"broadcast": {"ack": True, "self": True}})
        ref = await c.push("realtime:room-1", "broadcast", message, join_ref=join_ref)
        reply = await c.reply_to(ref)
        await c.heartbeat()
    assert reply.payload == {"status": "error", "response": "payload_size_exceeded"}
    assert not any(is_broadcast(m) for m in c.seen)


async def test_official_client_send_broadcast_with_ack(rt: RealtimeEnv, org: str) -> None:
    client = await rt.client()
    await client.set_auth(rt.mint(org, "worker"))
    got: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    config = {"private": True, "broadcast": {"ack": True, "self": True}}
    ch = client.channel(sub_topic(org), {"config": config})
    ch.on_broadcast("job.done", got.put_nowait)
    await ch.subscribe()
    await ch.send_broadcast("job.done", {"job_id": 7})
    with anyio.fail_after(10):
        message = await got.get()
    assert message == {"event": "job.done", "payload": {"job_id": 7}}


async def test_replay_delivers_stored_private_messages_marked_replayed(
    rt: RealtimeEnv, org: str
) -> None:
    since = int(time.time() * 1000) - 60_000
    first = await rt.insert_event(org, "events", "old.1", {})
    second = await rt.insert_event(org, "events", "old.2", {})
    config = {"private": True, "broadcast": {"replay": {"since": since, "limit": 30}}}
    async with rt.raw() as c:
        _, reply = await c.join(sub_topic(org), config, token=rt.mint(org))
        replayed = [await c.expect(is_broadcast), await c.expect(is_broadcast)]
    assert reply.payload["status"] == "ok"
    assert [m.payload["payload"]["id"] for m in replayed] == [first, second]
    assert all(m.payload["meta"]["replayed"] is True for m in replayed)


async def test_replay_on_a_public_channel_is_refused(rt: RealtimeEnv) -> None:
    config = {"broadcast": {"replay": {"since": 0, "limit": 5}}}
    async with rt.raw() as c:
        _, reply = await c.join("room-1", config)
    assert reply.payload["response"] == {
        "reason": "UnableToReplayMessages: Replay is not allowed for public channels"
    }


async def test_replay_with_invalid_params_is_refused(rt: RealtimeEnv, org: str) -> None:
    config = {"private": True, "broadcast": {"replay": {"since": "yesterday"}}}
    async with rt.raw() as c:
        _, reply = await c.join(sub_topic(org), config, token=rt.mint(org))
    assert reply.payload["response"] == {
        "reason": "UnableToReplayMessages: Replay params are not valid"
    }


async def test_a_database_broadcast_too_large_for_a_notify_is_read_back_and_delivered(
    rt: RealtimeEnv, org: str
) -> None:
    big = {"blob": "x" * 20_000}  # over NOTIFY's 8000-byte payload: announced by id only
    sub = sub_topic(org)
    async with rt.raw() as c:
        await c.join(sub, {"private": True}, token=rt.mint(org))
        outbox_id = await rt.insert_event(org, "events", "big.one", big)
        msg = await c.expect(is_broadcast)
    assert msg.payload["payload"]["id"] == outbox_id
    assert msg.payload["payload"]["payload"] == big
    assert is_uuid(msg.payload["meta"]["id"])
