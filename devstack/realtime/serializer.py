"""Phoenix V1 JSON and Realtime V2 (text arrays + binary user broadcasts) framing.

Mirrors ``phoenix@v1.8.11: lib/phoenix/socket/serializers/v1_json_serializer.ex`` and
``supabase/realtime: lib/realtime_web/socket/v2_serializer.ex``. Decoders never raise:
anything malformed is ``None`` and the socket drops it (``MalformedWebSocketMessage``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

V1 = "1.0.0"
V2 = "2.0.0"
KIND_USER_BROADCAST_PUSH = 3  # client -> server
KIND_USER_BROADCAST = 4  # server -> client
ENCODING_BINARY = 0
ENCODING_JSON = 1


@dataclass(frozen=True)
class Frame:
    """One Phoenix message; ``payload`` is any JSON value (channels validate it)."""

    join_ref: Any  # echoed as sent: Phoenix does not type refs
    ref: Any
    topic: str
    event: str
    payload: Any


def decode_text(vsn: str, text: str) -> Frame | None:
    """A client text frame, or None when malformed (missing key, wrong shape, bad JSON)."""
    try:
        data = json.loads(text)
    except ValueError:
        return None
    if vsn == V2:
        if not isinstance(data, list) or len(data) != 5:
            return None
        join_ref, ref, topic, event, payload = data
    else:
        if not isinstance(data, dict) or not {"topic", "event", "payload", "ref"} <= data.keys():
            return None
        join_ref, ref = data.get("join_ref"), data["ref"]
        topic, event, payload = data["topic"], data["event"], data["payload"]
    if not isinstance(topic, str) or not isinstance(event, str):
        return None
    return Frame(join_ref, ref, topic, event, payload)


def decode_binary(data: bytes) -> Frame | None:
    """A V2 kind-3 user-broadcast push, decoded as a ``broadcast`` frame; else None.

    Payload: ``{"user_event", "encoding", "bytes"}``; the client metadata is discarded
    as the server does.
    """
    if len(data) < 7 or data[0] != KIND_USER_BROADCAST_PUSH:
        return None
    lengths, encoding = data[1:6], data[6]
    offset, parts = 7, []
    for size in lengths:
        parts.append(data[offset : offset + size])
        offset += size
    if offset > len(data) or encoding not in (ENCODING_BINARY, ENCODING_JSON):
        return None
    try:
        join_ref, ref, topic, user_event, _metadata = (p.decode() for p in parts)
    except UnicodeDecodeError:
        return None
    payload = {"user_event": user_event, "encoding": encoding, "bytes": data[offset:]}
    return Frame(join_ref or None, ref or None, topic, "broadcast", payload)


def encode(vsn: str, frame: Frame) -> str:
    """A server frame as text: a V1 object (no ``join_ref``) or a V2 array."""
    if vsn == V2:
        return json.dumps([frame.join_ref, frame.ref, frame.topic, frame.event, frame.payload])
    return json.dumps(
        {"topic": frame.topic, "event": frame.event, "payload": frame.payload, "ref": frame.ref}
    )


def encode_user_broadcast(
    topic: str, user_event: str, metadata: dict[str, Any] | None, payload: bytes, encoding: int
) -> bytes | None:
    """A kind-4 frame; None when a string is over the one-byte length limit (255)."""
    meta = json.dumps(metadata).encode() if metadata else b""
    fields = (topic.encode(), user_event.encode(), meta)
    if any(len(f) > 255 for f in fields):
        return None
    header = bytes([KIND_USER_BROADCAST, *(len(f) for f in fields), encoding])
    return header + b"".join(fields) + payload
