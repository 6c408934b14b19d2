"""At-least-once bookkeeping, pure (no I/O, no clock): what was seen, what finished, and
how far the outbox checkpoint may move; and ``Outbox``, the data API seam.

Outbox ids are shared by every org and taken before commit, so gaps are normal and a
lower id can become visible after a higher one. Three marks, all outbox ids:

* ``low_water`` (L, the saved checkpoint): every id <= L visible to this org was handled
  or dead-lettered. A restart reads the outbox from L.
* ``scan_from`` (B >= L): every id <= B is known to this worker (dispatched or finished),
  so a catch-up pass reads after B.
* the settle horizon: ``db_now - settle_s`` of the start of the last *complete* catch-up
  pass. An id allocated before it had committed before that pass began (transactions
  that insert into the outbox commit within ``settle_s``), so the pass has read it.

B moves to the highest known id created before the horizon; L moves to just below the
lowest id still in the dispatcher, but never past B. Times are seconds on the database's
clock (``created_at`` is stamped at id allocation; ``db_now`` comes with the head).
"""

from __future__ import annotations

import datetime as dt
import heapq
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

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

#: The most ids saved above the checkpoint (the database refuses more).
MAX_HANDLED_ABOVE = 10_000


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
class Checkpoint:
    """A consumer's saved progress: L and the ids already handled above it (ascending)."""

    last_event_id: int
    handled_above: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class Position:
    """The newest outbox id visible to the org, and the database's clock when read."""

    head: int
    db_now: float


@dataclass(frozen=True, slots=True)
class ProgressStatistics:
    """A snapshot for ``/status``."""

    anchored: bool
    low_water: int
    scan_from: int
    pending: int
    finished_above: int
    horizon: float | None


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


class Progress:
    """Dispatched and finished outbox ids, and the marks derived from them (module doc).

    Until ``anchor()`` gives it the saved checkpoint, it records ids but moves no mark.
    ``created_at`` None means "not known yet": such an id never moves B.
    """

    def __init__(self, *, settle_s: float) -> None:
        self._settle_s = settle_s
        self._anchored = False
        self._low = 0
        self._covered = 0  # B
        self._horizon: float | None = None
        self._pending: dict[int, float | None] = {}
        self._finished: dict[int, float | None] = {}  # ids above L only
        self._dirty = False

    # -- recording ------------------------------------------------------------------------

    def anchor(self, checkpoint: Checkpoint) -> None:
        """Start from the saved ``checkpoint`` (once; later calls are ignored)."""
        if self._anchored:
            return
        self._anchored = True
        self._low = self._covered = checkpoint.last_event_id
        for event_id in checkpoint.handled_above:
            if event_id > self._low and event_id not in self._pending:
                self._finished.setdefault(event_id, None)
        self._prune()

    def start(self, event_id: int, created_at: float | None) -> None:
        """``event_id`` was handed to the dispatcher."""
        if event_id in self._finished or (self._anchored and event_id <= self._low):
            return
        self._pending[event_id] = created_at

    def finish(self, event_id: int) -> None:
        """``event_id`` was handled or dead-lettered (not cancelled, not abandoned)."""
        if event_id in self._pending:
            self._finished[event_id] = self._pending.pop(event_id)
            self._dirty = True

    def note(self, event_id: int, created_at: float | None) -> None:
        """Fill in ``created_at`` of a known id that lacked it (restored after a restart)."""
        for table in (self._pending, self._finished):
            if table.get(event_id, 0.0) is None:
                table[event_id] = created_at

    def knows(self, event_id: int) -> bool:
        """Whether ``event_id`` is dispatched or finished above L (so not to dispatch again)."""
        return event_id in self._pending or event_id in self._finished

    def covered(self, db_now: float) -> None:
        """A catch-up pass that began at ``db_now`` (database clock) read to the end."""
        if not self._anchored:
            return
        horizon = db_now - self._settle_s
        if self._horizon is None or horizon > self._horizon:
            self._horizon = horizon
        # A generator, not a list: at thousands of events/s the tables hold 100,000s of ids.
        settled = (
            event_id
            for table in (self._pending, self._finished)
            for event_id, created in table.items()
            if created is not None and created <= horizon
        )
        self._covered = max(self._covered, max(settled, default=self._covered))
        self._dirty = True

    # -- reading --------------------------------------------------------------------------

    @property
    def anchored(self) -> bool:
        """Whether the saved checkpoint has been loaded."""
        return self._anchored

    @property
    def low_water(self) -> int:
        """L: every id at or below it was handled or dead-lettered."""
        if self._dirty:
            self._advance()
        return self._low

    @property
    def scan_from(self) -> int:
        """B: a catch-up pass reads ids above it."""
        return self._covered

    def checkpoint(self, limit: int = MAX_HANDLED_ABOVE) -> Checkpoint:
        """What to save: L and up to ``limit`` finished ids above it (the lowest ones)."""
        low = self.low_water
        above = heapq.nsmallest(limit, self._finished)  # no sorted copy of every id
        return Checkpoint(low, tuple(above))

    def statistics(self) -> ProgressStatistics:
        """Counts and marks, cheap enough for every ``/status`` call."""
        return ProgressStatistics(
            anchored=self._anchored,
            low_water=self.low_water,
            scan_from=self._covered,
            pending=len(self._pending),
            finished_above=len(self._finished),
            horizon=self._horizon,
        )

    # -- internals ------------------------------------------------------------------------

    def _advance(self) -> None:
        self._dirty = False
        if not self._anchored:
            return
        ceiling = self._covered
        if self._pending:
            ceiling = min(ceiling, min(self._pending) - 1)
        if ceiling > self._low:
            self._low = ceiling
            self._prune()

    def _prune(self) -> None:
        # Rebuilt, not deleted from: a dict never shrinks on deletion, so at high rates the
        # tables would keep the size of their largest batch for good (docs/performance.md).
        low = self._low
        self._pending = {i: c for i, c in self._pending.items() if i > low}
        self._finished = {i: c for i, c in self._finished.items() if i > low}


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
        """``event_id`` was handed to the dispatcher."""
        self.seen.add(event_id)
        self.progress.start(event_id, created_at)

    def finished(self, event_id: int) -> None:
        """``event_id`` was handled or dead-lettered."""
        self.progress.finish(event_id)

    @property
    def lag(self) -> int:
        """How far the checkpoint trails the newest visible outbox id."""
        return max(0, self.head - self.progress.low_water)
