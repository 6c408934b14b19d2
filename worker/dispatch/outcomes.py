"""The dispatcher's surface: outcomes, the metrics it updates, its statistics, and the
canonical per-event log line."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from worker.events import Event
from worker.ports import Counter, Gauge, Histogram

__all__ = [
    "DispatchMetrics",
    "DispatchStatistics",
    "HandledResult",
    "Outcome",
    "event_fields",
    "log_outcome",
]

_log = logging.getLogger("worker.dispatch")


class Outcome(StrEnum):
    """How an event ended. Metrics map CANCELLED to ``dead_letter``."""

    SUCCESS = "success"
    DEAD_LETTER = "dead_letter"
    CANCELLED = "cancelled"  # in flight when the shutdown grace ran out
    ABANDONED = "abandoned"  # still queued when the shutdown grace ran out
    IGNORED = "ignored"  # no handler matches


class HandledResult(StrEnum):
    """The ``result`` label of ``events_handled_total``: ``error`` and ``timeout`` count
    failed attempts, ``success`` and ``dead_letter`` final outcomes."""

    SUCCESS = "success"
    ERROR = "error"
    TIMEOUT = "timeout"
    DEAD_LETTER = "dead_letter"


class DispatchMetrics(Protocol):
    """The members of ``metrics.Metrics`` the dispatcher updates."""

    @property
    def events_handled_total(self) -> Counter: ...
    @property
    def event_handler_duration_seconds(self) -> Histogram: ...
    @property
    def events_rejected_total(self) -> Counter: ...
    @property
    def dispatch_queue_depth(self) -> Gauge: ...


@dataclass(frozen=True, slots=True)
class DispatchStatistics:
    """A cheap snapshot for ``/status``."""

    accepting: bool
    queued: int
    queue_size: int
    in_flight: int
    concurrency: int
    offered: int
    rejected_full: int
    succeeded: int
    dead_lettered: int
    retries: int
    last_done_monotonic: float | None


def event_fields(event: Event) -> dict[str, object]:
    """The identity fields every dispatch log line carries."""
    return {
        "org_id": event.org_id,
        "topic": event.topic,
        "event": event.event,
        "event_id": event.event_id,
    }


def log_outcome(
    event: Event, outcome: Outcome, attempts: int, elapsed_s: float, error: str | None
) -> None:
    """The one canonical line per event (INFO), or its dead-letter record (ERROR)."""
    fields = event_fields(event) | {
        "duration_ms": round(elapsed_s * 1000, 3),
        "outcome": outcome.value,
        "attempts": attempts,
        "idempotency_key": event.idempotency_key,
    }
    if outcome in (Outcome.SUCCESS, Outcome.IGNORED):
        level = logging.INFO if outcome is Outcome.SUCCESS else logging.DEBUG
        _log.log(level, "event handled", extra=fields)
    else:
        # The dead-letter record: enough to find and replay the event, never the payload.
        _log.error("event dead-lettered: %s", error or outcome.value, extra=fields)
