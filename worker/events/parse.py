"""The validating parser of Realtime broadcast frames.

A broadcast reaches the callback as ``{"event": ..., "payload": {...}, "meta": {"id": ...}}``.
Two payload shapes arrive on the org's channels:

* the ``org_events`` outbox: ``{"id": <bigint>, "org_id", "topic", "event", "payload": {...},
  "created_at"}``; ``Event.payload`` is the inner ``payload`` and ``event_id`` the outbox id;
* anything else (e.g. ``realtime.broadcast_changes`` on ``org:<org>:tasks``): the whole
  broadcast payload becomes ``Event.payload`` and ``event_id`` is None.

``parse_broadcast`` never trusts the frame: it raises only ``RejectedEvent`` whose ``reason``
is one of ``REJECT_REASONS`` (a bounded set, used as a metric label).
"""

from __future__ import annotations

import re
import time
from collections.abc import Collection, Mapping
from typing import Any

from worker.events.model import Event, Limits, RejectedEvent, RejectReason, channel_topic

__all__ = ["parse_broadcast"]

#: Frozen, so one shared default is safe.
DEFAULT_LIMITS = Limits()
#: ``org_events.id`` is a Postgres ``bigint`` from a sequence: 1 .. 2**63 - 1.
_BIGINT_MAX = 2**63 - 1


def parse_broadcast(
    org_id: str,
    full_topic: str,
    message: object,
    *,
    topics: Collection[str] | None = None,
    received_at: float | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> Event:
    """Validate one broadcast callback payload and build an ``Event``.

    ``full_topic`` may carry the client's ``realtime:`` prefix. ``topics`` is the set of
    subscribed short topic names (None accepts any). Raises ``RejectedEvent`` only.
    """
    topic = _topic_of(org_id, full_topic, topics)
    if not isinstance(message, Mapping):
        raise RejectedEvent(RejectReason.MALFORMED, "the broadcast frame is not an object")
    name = _name(message.get("event"), "event", limits)
    payload = message.get("payload")
    if not isinstance(payload, Mapping):
        raise RejectedEvent(RejectReason.MALFORMED, "the broadcast payload is not an object")
    _check_size(payload, limits)
    message_id, replayed = _meta(message.get("meta"))
    common: dict[str, Any] = {
        "org_id": org_id,
        "topic": topic,
        "channel_topic": channel_topic(org_id, topic),
        "event": name,
        "message_id": message_id,
        "received_at": time.time() if received_at is None else received_at,
        "replayed": replayed,
    }
    if _is_outbox(payload):
        return _outbox_event(payload, common, limits)
    _check_other_org(org_id, payload)
    return Event(payload=dict(payload), event_id=None, **common)


def _topic_of(org_id: str, full_topic: str, topics: Collection[str] | None) -> str:
    sub = full_topic.removeprefix("realtime:")
    prefix = channel_topic(org_id, "")
    # Exact prefix comparison: Clerk ids contain '_' and one id can prefix another.
    if not sub.startswith(prefix):
        raise RejectedEvent(
            RejectReason.WRONG_ORG, "the channel topic is not one of this organization's"
        )
    topic = sub[len(prefix) :]
    if not topic or ":" in topic:
        raise RejectedEvent(
            RejectReason.UNKNOWN_TOPIC, "the channel topic has no valid short topic"
        )
    if topics is not None and topic not in topics:
        raise RejectedEvent(RejectReason.UNKNOWN_TOPIC, f"topic {topic!r} is not subscribed")
    return topic


def _name(value: object, what: str, limits: Limits) -> str:
    if not isinstance(value, str) or not value:
        raise RejectedEvent(RejectReason.MALFORMED, f"{what} must be a non-empty string")
    if len(value) > limits.max_name_len:
        raise RejectedEvent(RejectReason.MALFORMED, f"{what} is longer than {limits.max_name_len}")
    _check_text(value)
    return value


def _meta(meta: object) -> tuple[str | None, bool]:
    if meta is None:
        return None, False
    if not isinstance(meta, Mapping):
        raise RejectedEvent(RejectReason.MALFORMED, "meta must be an object")
    message_id = meta.get("id")
    replayed = meta.get("replayed", False)
    if message_id is not None and not isinstance(message_id, str):
        raise RejectedEvent(RejectReason.MALFORMED, "meta.id must be a string")
    if not isinstance(replayed, bool):
        raise RejectedEvent(RejectReason.MALFORMED, "meta.replayed must be a boolean")
    return message_id, replayed


def _is_outbox(payload: Mapping[str, Any]) -> bool:
    # realtime.send adds a uuid string "id" to other payloads; only the outbox sets an int.
    event_id = payload.get("id")
    return isinstance(event_id, int) and not isinstance(event_id, bool)


def _outbox_event(payload: Mapping[str, Any], common: dict[str, Any], limits: Limits) -> Event:
    if payload.get("org_id") != common["org_id"]:
        raise RejectedEvent(
            RejectReason.WRONG_ORG, "the outbox row belongs to another organization"
        )
    if _name(payload.get("topic"), "payload.topic", limits) != common["topic"]:
        raise RejectedEvent(RejectReason.MALFORMED, "payload.topic differs from the channel topic")
    if _name(payload.get("event"), "payload.event", limits) != common["event"]:
        raise RejectedEvent(
            RejectReason.MALFORMED, "payload.event differs from the broadcast event"
        )
    event_id = int(payload["id"])
    if not 1 <= event_id <= _BIGINT_MAX:
        raise RejectedEvent(
            RejectReason.MALFORMED, "payload.id is not an outbox id (a positive bigint)"
        )
    inner = payload.get("payload")
    if not isinstance(inner, Mapping):
        raise RejectedEvent(RejectReason.MALFORMED, "payload.payload must be an object")
    created_at = payload.get("created_at")
    if created_at is not None and not isinstance(created_at, str):
        raise RejectedEvent(RejectReason.MALFORMED, "payload.created_at must be a string")
    return Event(payload=dict(inner), event_id=event_id, created_at=created_at, **common)


def _check_other_org(org_id: str, payload: Mapping[str, Any]) -> None:
    """Reject a non-outbox payload that names another org (top level or changed rows)."""
    candidates: list[object] = [payload.get("org_id")]
    for key in ("record", "old_record"):
        row = payload.get(key)
        if isinstance(row, Mapping):
            candidates.append(row.get("organization_id"))
    for value in candidates:
        if value is not None and value != org_id:
            raise RejectedEvent(RejectReason.WRONG_ORG, "the payload names another organization")


_SCALAR_SIZE = 8
_SCALARS = (int, float, bool, type(None))
_SCALAR_TYPES = frozenset(_SCALARS)
Container = Mapping[str, Any] | list[Any] | tuple[Any, ...]


def _check_size(payload: Mapping[str, Any], limits: Limits) -> None:
    """Walk the payload iteratively (no recursion limit), stopping at the first excess.

    Size is approximate JSON bytes: strings ``len + 2``, other scalars 8, ``len(key) + 4``
    per object key, ``len + 2`` per array. This runs once per event (docs/performance.md):
    leaves are checked in their container's loop, only containers are stacked, and exact
    ``type`` tests come before the slower ``isinstance`` against ABCs.
    """
    stack: list[tuple[Container, int]] = [(payload, 1)]
    nodes = 1
    size = 0
    while stack:
        container, depth = stack.pop()
        children: Collection[Any]
        if type(container) is dict or isinstance(container, Mapping):
            size += _key_size(container)
            children = container.values()
        else:
            size += len(container) + 2
            children = container
        if children and depth >= limits.max_depth:
            raise RejectedEvent(
                RejectReason.TOO_LARGE, f"the payload nests deeper than {limits.max_depth}"
            )
        nodes += len(children)
        for child in children:
            kind = type(child)
            if kind is str:
                if not child.isascii():
                    _check_text(child)
                size += len(child) + 2
            elif kind in _SCALAR_TYPES:
                size += _SCALAR_SIZE
            elif kind is dict or kind is list:
                stack.append((child, depth + 1))
            else:
                size += _other_size(child, depth + 1, stack)
        if nodes > limits.max_nodes or size > limits.max_bytes:
            raise RejectedEvent(RejectReason.TOO_LARGE, "the payload exceeds the size limit")


def _other_size(value: object, depth: int, stack: list[tuple[Container, int]]) -> int:
    """Subclasses of the JSON types (and anything else, rejected)."""
    if isinstance(value, str):
        _check_text(value)
        return len(value) + 2
    if isinstance(value, _SCALARS):
        return _SCALAR_SIZE
    if isinstance(value, Mapping | list | tuple):
        stack.append((value, depth))
        return 0
    raise RejectedEvent(RejectReason.MALFORMED, f"a {type(value).__name__} is not a JSON value")


def _key_size(mapping: Mapping[Any, Any]) -> int:
    size = 0
    for key in mapping:
        if not isinstance(key, str):
            raise RejectedEvent(RejectReason.MALFORMED, "object keys must be strings")
        if not key.isascii():
            _check_text(key)
        size += len(key) + 4
    return size


# UTF-16 surrogates: JSON can carry them escaped ("\ud800"), UTF-8 cannot encode them alone.
_SURROGATE = re.compile("[\ud800-\udfff]")


def _check_text(value: str) -> None:
    if not value.isascii() and _SURROGATE.search(value):
        raise RejectedEvent(
            RejectReason.MALFORMED, "a string is not valid Unicode (a lone surrogate)"
        )
