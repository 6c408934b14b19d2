"""Where the live path, catch-up and the dispatcher meet, pure (no I/O, no clock): what was
seen (``SeenIds``), the marks (``Progress``, in ``worker.delivery.progress``, whose
docstring explains L, B and the settle horizon), and ``Outbox``, the data API seam.

A live frame's id dedupes (``Ledger.dispatched_live``) but moves no mark until catch-up
reads the same id from the outbox (``Ledger.confirmed``).
"""

from __future__ import annotations

import datetime as dt
from collections import OrderedDict
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from worker.delivery.progress import MAX_HANDLED_ABOVE, Checkpoint, Progress, ProgressStatistics

__all__ = [
    "MAX_HANDLED_ABOVE",
    "Checkpoint",
    "Ledger",
    "Outbox",
    "Position",
    "Progress",
    "ProgressStatistics",
    "SeenIds",
    "parse_db_time",
]


def parse_db_time(value: object) -> float | None:
    """Seconds since the epoch from a Postgres/PostgREST timestamptz string (None if not)."""
    if not isinstance(value, str):
        return None
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.timestamp()


@dataclass(frozen=True, slots=True)
class Position:
    """The newest outbox id visible to the org, and the database's clock when read."""

    head: int
    db_now: float


class Outbox(Protocol):
    """The data API surface catch-up and checkpoints use (``OutboxStore``; fakes in tests)."""

    async def load(self) -> Checkpoint: ...
    async def save(self, checkpoint: Checkpoint) -> None: ...
    async def position(self) -> Position: ...
    async def page(self, after_id: int, limit: int) -> list[Mapping[str, Any]]: ...


class SeenIds:
    """The ids seen in this worker's lifetime, the newest ``capacity`` of them (LRU)."""

    def __init__(self, capacity: int = 100_000) -> None:
        if capacity < 1:
            raise ValueError("capacity must be >= 1")
        self._capacity = capacity
        self._ids: OrderedDict[int, None] = OrderedDict()

    def add(self, event_id: int) -> bool:
        """Remember ``event_id``; True when it was not remembered already."""
        if event_id in self._ids:
            self._ids.move_to_end(event_id)
            return False
        self._ids[event_id] = None
        if len(self._ids) > self._capacity:
            self._ids.popitem(last=False)
        return True

    def __contains__(self, event_id: object) -> bool:
        return event_id in self._ids

    def __len__(self) -> int:
        return len(self._ids)


class Ledger:
    """Where the live path, catch-up and the dispatcher's completions meet, by outbox id.

    ``seen`` dedupes for the worker's lifetime (bounded); ``progress`` knows exactly what
    is in flight or finished above L, including ids restored from the checkpoint.
    """

    def __init__(self, *, settle_s: float, seen_capacity: int = 100_000) -> None:
        self.seen = SeenIds(seen_capacity)
        self.progress = Progress(settle_s=settle_s)
        self.head = 0  # the newest outbox id visible to the org, as last read

    def is_duplicate(self, event_id: int) -> bool:
        """Already dispatched in this lifetime, or handled before a restart."""
        return event_id in self.seen or self.progress.knows(event_id)

    def dispatched(self, event_id: int, created_at: float | None) -> None:
        """``event_id``, read from the outbox, was handed to the dispatcher."""
        self.seen.add(event_id)
        self.progress.start(event_id, created_at)

    def dispatched_live(self, event_id: int, fingerprint: Hashable = None) -> None:
        """``event_id`` from a live frame was handed to the dispatcher: it dedupes, but
        counts for the checkpoint only once ``confirmed`` with the same fingerprint."""
        self.seen.add(event_id)
        self.progress.start_live(event_id, fingerprint)

    def confirmed(
        self, event_id: int, created_at: float | None, fingerprint: Hashable = None
    ) -> bool:
        """A catch-up pass read ``event_id`` (already known) from the outbox; False when
        its finished live copy was another event (``Progress.confirm``)."""
        return self.progress.confirm(event_id, created_at, fingerprint)

    def finished(self, event_id: int) -> None:
        """``event_id`` was handled or dead-lettered."""
        self.progress.finish(event_id)

    @property
    def lag(self) -> int:
        """How far the checkpoint trails the newest visible outbox id."""
        return max(0, self.head - self.progress.low_water)
