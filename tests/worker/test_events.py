"""parse_broadcast: the shapes we accept, every reason we reject, and properties."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from worker.events import REJECT_REASONS, Event, Limits, RejectedEvent, parse_broadcast

ORG = "org_2abc"
CHANNEL = f"org:{ORG}:events"
TOPICS = ("events", "tasks")


def outbox(**overrides: Any) -> dict[str, Any]:
    payload = {
        "id": 42,
        "org_id": ORG,
        "topic": "events",
        "event": "invoice.paid",
        "payload": {"amount": 10},
        "created_at": "2026-11-26T10:00:00Z",
    }
    payload.update(overrides)
    return {"event": "invoice.paid", "payload": payload, "meta": {"id": "uuid-1"}}


def parse(message: object, channel: str = CHANNEL, **kw: Any) -> Event:
    return parse_broadcast(ORG, channel, message, topics=TOPICS, received_at=5.0, **kw)


def rejected(message: object, channel: str = CHANNEL, **kw: Any) -> str:
    with pytest.raises(RejectedEvent) as info:
        parse(message, channel, **kw)
    assert info.value.reason in REJECT_REASONS
    return info.value.reason


def test_outbox_broadcast_becomes_an_event() -> None:
    event = parse(outbox())
    assert (event.topic, event.channel_topic, event.event) == ("events", CHANNEL, "invoice.paid")
    assert event.payload == {"amount": 10}
    assert (event.event_id, event.message_id, event.received_at) == (42, "uuid-1", 5.0)
    assert event.created_at == "2026-11-26T10:00:00Z"
    assert event.idempotency_key == f"{ORG}:events:42"
    assert not event.replayed


def test_client_prefix_and_replayed_flag() -> None:
    message = outbox()
    message["meta"] = {"id": "uuid-1", "replayed": True}
    event = parse(message, f"realtime:{CHANNEL}")
    assert event.replayed
    assert event.channel_topic == CHANNEL


def test_task_change_keeps_the_whole_payload_and_keys_by_message_id() -> None:
    change = {
        "operation": "INSERT",
        "table": "tasks",
        "schema": "public",
        "record": {"id": 1, "organization_id": ORG},
        "old_record": None,
        "id": "b1f0-uuid",
    }
    event = parse(
        {"event": "INSERT", "payload": change, "meta": {"id": "b1f0-uuid"}}, f"org:{ORG}:tasks"
    )
    assert event.event_id is None
    assert event.payload == change
    assert event.idempotency_key == f"{ORG}:tasks:msg:b1f0-uuid"


def test_idempotency_key_without_ids_is_stable() -> None:
    message = {"event": "ping", "payload": {"b": 1, "a": 2}}
    assert parse(message).idempotency_key == parse(message).idempotency_key


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        ("not a dict", "malformed"),
        ({"event": "x", "payload": "str"}, "malformed"),
        ({"event": "x", "payload": [1]}, "malformed"),
        ({"payload": {}}, "malformed"),
        ({"event": 3, "payload": {}}, "malformed"),
        ({"event": "x", "payload": {}, "meta": "m"}, "malformed"),
        ({"event": "x", "payload": {}, "meta": {"id": 5}}, "malformed"),
        ({"event": "x", "payload": {}, "meta": {"replayed": "yes"}}, "malformed"),
        (outbox(org_id="org_2other"), "wrong_org"),
        (outbox(org_id=None), "wrong_org"),
        (outbox(topic="tasks"), "malformed"),
        (outbox(event="other"), "malformed"),
        (outbox(payload="x"), "malformed"),
        (outbox(created_at=7), "malformed"),
        ({"event": "x", "payload": {"org_id": "org_2other"}}, "wrong_org"),
        ({"event": "x", "payload": {"record": {"organization_id": "org_x"}}}, "wrong_org"),
        ({"event": "x", "payload": {"old_record": {"organization_id": "o"}}}, "wrong_org"),
        ({"event": "x", "payload": {"k": {1, 2}}}, "malformed"),
        ({"event": "x", "payload": {"k": {1: "non-str key"}}}, "malformed"),
    ],
)
def test_rejections(message: object, reason: str) -> None:
    assert rejected(message) == reason


@pytest.mark.parametrize(
    ("channel", "reason"),
    [
        ("org:org_2other:events", "wrong_org"),
        # One org id can be a prefix of another: the separator must follow exactly.
        (f"org:{ORG}x:events", "wrong_org"),
        (f"org:{ORG}:", "unknown_topic"),
        (f"org:{ORG}:a:b", "unknown_topic"),
        (f"org:{ORG}:billing", "unknown_topic"),
        ("public-room", "wrong_org"),
    ],
)
def test_channel_topic_rejections(channel: str, reason: str) -> None:
    assert rejected({"event": "x", "payload": {}}, channel) == reason


def test_size_and_depth_limits() -> None:
    deep: dict[str, Any] = {}
    node = deep
    for _ in range(40):
        node["d"] = {}
        node = node["d"]
    assert rejected({"event": "x", "payload": deep}) == "too_large"
    big = {"event": "x", "payload": {"s": "y" * 2000}}
    assert rejected(big, limits=Limits(max_bytes=1000)) == "too_large"
    wide = {"event": "x", "payload": {"l": list(range(50))}}
    assert rejected(wide, limits=Limits(max_nodes=20)) == "too_large"
    assert rejected({"event": "e" * 300, "payload": {}}) == "malformed"


def test_event_is_frozen() -> None:
    event = parse(outbox())
    with pytest.raises(AttributeError):
        event.topic = "other"  # type: ignore[misc]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=20,
)
anything = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5) | st.binary(max_size=3),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.text(max_size=3) | st.integers(), inner, max_size=3)
        | st.sets(st.integers(), max_size=2)
    ),
    max_leaves=15,
)
frames = st.fixed_dictionaries(
    {},
    optional={
        "event": st.text(max_size=4) | anything,
        "payload": st.dictionaries(
            st.sampled_from(["id", "org_id", "topic", "event", "payload", "record", "created_at"])
            | st.text(max_size=3),
            anything,
            max_size=6,
        )
        | anything,
        "meta": st.fixed_dictionaries({}, optional={"id": anything, "replayed": anything})
        | anything,
    },
)


@given(
    message=frames | anything,
    channel=st.sampled_from([CHANNEL, f"org:{ORG}:tasks", "x", f"org:{ORG}:nope"]),
)
def test_never_raises_anything_but_rejected_event(message: object, channel: str) -> None:
    event = None
    reason = None
    try:
        event = parse(message, channel)
    except RejectedEvent as exc:
        reason = exc.reason
    if event is None:
        assert reason in REJECT_REASONS
    else:
        assert event.org_id == ORG
        assert isinstance(event.payload, dict)
        assert isinstance(event.idempotency_key, str)


@given(
    other=st.text(min_size=1, max_size=12).filter(lambda o: o != ORG),
    event_id=st.integers(min_value=1),
    inner=st.dictionaries(st.text(max_size=4), json_values, max_size=4),
)
def test_org_mismatch_is_always_rejected(other: str, event_id: int, inner: dict[str, Any]) -> None:
    message = outbox(id=event_id, org_id=other, payload=inner)
    with pytest.raises(RejectedEvent) as info:
        parse(message)
    assert info.value.reason == "wrong_org"
    with pytest.raises(RejectedEvent) as info:
        parse({"event": "x", "payload": {"org_id": other, **inner}})
    assert info.value.reason == "wrong_org"


@given(
    event_id=st.integers(min_value=1, max_value=2**63 - 1),  # a Postgres bigint
    inner=st.dictionaries(st.text(max_size=4), json_values, max_size=4),
)
def test_valid_outbox_always_parses(event_id: int, inner: dict[str, Any]) -> None:
    event = parse(outbox(id=event_id, payload=inner))
    assert event.event_id == event_id
    assert event.payload == inner  # same objects, so even NaN compares equal


@pytest.mark.parametrize("event_id", [0, -1, -(2**63), 2**63, 10**400])
def test_an_outbox_id_outside_the_positive_bigint_range_is_malformed(event_id: int) -> None:
    assert rejected(outbox(id=event_id)) == "malformed"


@given(event_id=st.integers(max_value=0) | st.integers(min_value=2**63))
def test_no_id_a_sequence_cannot_give_ever_parses(event_id: int) -> None:
    assert rejected(outbox(id=event_id)) == "malformed"
