"""What handlers receive: ``Event``, and the vocabulary of frames that never become one.

``RejectReason`` (a metric label), ``RejectedEvent``, ``Limits`` on payloads, and
``channel_topic`` (the one place the ``org:<org_id>:<topic>`` form is built).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from worker.errors import WorkerError

__all__ = [
    "REJECT_REASONS",
    "Event",
    "Limits",
    "RejectReason",
    "RejectedEvent",
    "channel_topic",
]


class RejectReason(StrEnum):
    """Why a frame never reached a handler (``events_rejected_total{reason}``); the parser
    raises the first four, the dispatcher counts the last two."""

    MALFORMED = "malformed"  # not an object, a field missing or mistyped, or inconsistent
    WRONG_ORG = "wrong_org"  # the channel topic or the payload names another organization
    UNKNOWN_TOPIC = "unknown_topic"  # not org:<ORG_ID>:<topic> with a subscribed topic
    TOO_LARGE = "too_large"  # the payload exceeds Limits (size, node count or nesting depth)
    QUEUE_FULL = "queue_full"  # the dispatcher's queue had no room (catch-up brings it)
    SHUTTING_DOWN = "shutting_down"  # offered or still queued after intake stopped


#: The reasons ``parse_broadcast`` raises.
REJECT_REASONS = frozenset(
    {
        RejectReason.MALFORMED,
        RejectReason.WRONG_ORG,
        RejectReason.UNKNOWN_TOPIC,
        RejectReason.TOO_LARGE,
    }
)


def channel_topic(org_id: str, topic: str) -> str:
    """The full Realtime topic of an org's short topic: ``org:<org_id>:<topic>``."""
    return f"org:{org_id}:{topic}"


class RejectedEvent(WorkerError):
    """A frame that cannot become an ``Event``; ``reason`` is one of ``REJECT_REASONS``."""

    def __init__(self, reason: RejectReason, detail: str) -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"event rejected ({reason}): {detail}")


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds on a payload, checked before any handler sees it."""

    max_depth: int = 32
    max_nodes: int = 100_000
    # Approximate JSON size (the adapter lets frames up to 4 MiB in; Realtime's own limit is
    # 3000 KB on its largest plans).
    max_bytes: int = 1_048_576
    max_name_len: int = 200


@dataclass(frozen=True, slots=True)
class Event:
    """One broadcast received on ``org:<org_id>:<topic>``, validated."""

    org_id: str
    topic: str
    channel_topic: str
    event: str
    payload: dict[str, Any] = field(hash=False)
    event_id: int | None
    message_id: str | None
    received_at: float
    replayed: bool = False
    created_at: str | None = None
    #: The payload validated into the route's ``payload=`` model (``on``); else None.
    data: Any = field(default=None, hash=False, compare=False, repr=False)

    @property
    def created(self) -> datetime | None:
        """``created_at`` (the outbox's, ISO 8601) as an aware ``datetime``, if present."""
        if self.created_at is None:
            return None
        try:
            return datetime.fromisoformat(self.created_at)
        except ValueError:
            return None

    @property
    def idempotency_key(self) -> str:
        """Stable across live, replayed and retried copies of the same event."""
        if self.event_id is not None:
            return f"{self.org_id}:{self.topic}:{self.event_id}"
        if self.message_id is not None:
            return f"{self.org_id}:{self.topic}:msg:{self.message_id}"
        body = json.dumps(self.payload, sort_keys=True, default=str).encode()
        digest = hashlib.sha256(body).hexdigest()[:32]
        return f"{self.org_id}:{self.topic}:{self.event}:{digest}"
