"""Lenient parsing of the ``phx_join`` payload (§5.2).

Mirrors ``supabase/realtime: lib/realtime_web/channels/realtime_channel.ex`` and its
Ecto-cast join params: unknown keys are ignored; a value that does not cast is logged
(``InvalidJoinPayload``) and defaulted, so a malformed ``private`` silently yields a
public channel. Booleans are JSON booleans or "true"/"false" in any case.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Replay:
    """``config.broadcast.replay`` as sent; validated by the replay step."""

    since: Any
    limit: Any


@dataclass(frozen=True)
class JoinConfig:
    private: bool = False
    self_broadcast: bool = False
    ack: bool = False
    presence_enabled: bool = False
    presence_key: str = ""
    replay: Replay | None = None
    postgres_changes: list[dict[str, Any]] = field(default_factory=list)


def as_bool(value: Any) -> bool:
    """JSON true/false or "true"/"false" (any case); anything else is false."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    if value is not None:
        log.info("InvalidJoinPayload: %r is not a boolean, defaulting to false", value)
    return False


def _section(config: dict[str, Any], name: str) -> dict[str, Any]:
    value = config.get(name)
    return value if isinstance(value, dict) else {}


def _replay(broadcast: dict[str, Any]) -> Replay | None:
    replay = broadcast.get("replay")
    if replay is None:
        return None
    if not isinstance(replay, dict):
        return Replay(since=replay, limit=None)  # invalid: the replay step says so
    return Replay(since=replay.get("since"), limit=replay.get("limit", 25))


def _presence_key(presence: dict[str, Any]) -> str:
    key = presence.get("key")
    # An empty or missing key gets a UUIDv1, as the server generates.
    return key if isinstance(key, str) and key else str(uuid.uuid1())


def parse(payload: Any) -> JoinConfig:
    """The join config; never raises."""
    raw = payload.get("config") if isinstance(payload, dict) else None
    config = raw if isinstance(raw, dict) else {}
    broadcast, presence = _section(config, "broadcast"), _section(config, "presence")
    bindings = config.get("postgres_changes")
    return JoinConfig(
        private=as_bool(config.get("private")),
        self_broadcast=as_bool(broadcast.get("self")),
        ack=as_bool(broadcast.get("ack")),
        presence_enabled=as_bool(presence.get("enabled")),
        presence_key=_presence_key(presence),
        replay=_replay(broadcast),
        postgres_changes=[b for b in bindings if isinstance(b, dict)]
        if isinstance(bindings, list)
        else [],
    )
