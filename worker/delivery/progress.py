"""``Progress``: the outbox marks, pure (no I/O, no clock), moved only by outbox ids.

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

Only ids read back from the outbox move a mark. A live frame is not proof: anyone allowed
to broadcast on the org's channel (an org admin) can send an outbox-shaped payload with
any id and any ``created_at``. Ids dispatched live are therefore kept *unconfirmed*: they
hold L while in flight (a crash then re-reads them), but never move B, never count as
settled and are never saved in ``handled_above`` until a catch-up pass reads the same id
from the outbox (``confirm``), with the outbox's own ``created_at``. A live copy whose
fingerprint (topic, event, ``created_at``) differs from the row's was not that row: once
it finished, the row is unknown again and catch-up dispatches it.
"""

from __future__ import annotations

import heapq
from collections.abc import Hashable
from dataclasses import dataclass
from itertools import islice

__all__ = ["MAX_HANDLED_ABOVE", "MAX_UNCONFIRMED", "Checkpoint", "Progress", "ProgressStatistics"]

#: The most ids saved above the checkpoint (the database refuses more).
MAX_HANDLED_ABOVE = 10_000
#: The most finished live ids kept waiting for confirmation; older ones are forgotten,
#: which only costs a duplicate after a restart (forged ids are never confirmed).
MAX_UNCONFIRMED = 10_000


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A consumer's saved progress: L and the ids already handled above it (ascending)."""

    last_event_id: int
    handled_above: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class ProgressStatistics:
    """A snapshot for ``/status``."""

    anchored: bool
    low_water: int
    scan_from: int
    pending: int
    finished_above: int
    horizon: float | None


class Progress:
    """Dispatched and finished outbox ids, and the marks derived from them (module doc).

    Until ``anchor()`` gives it the saved checkpoint, it records ids but moves no mark.
    ``created_at`` None means "not known yet": such an id never moves B.
    """

    def __init__(self, *, settle_s: float, max_unconfirmed: int = MAX_UNCONFIRMED) -> None:
        self._settle_s = settle_s
        self._max_unconfirmed = max_unconfirmed
        self._anchored = False
        self._low = 0
        self._covered = 0  # B
        self._horizon: float | None = None
        self._pending: dict[int, float | None] = {}
        self._finished: dict[int, float | None] = {}  # ids above L only
        # Unconfirmed live ids -> (finished, the frame's fingerprint).
        self._live: dict[int, tuple[bool, Hashable]] = {}
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
                self._live.pop(event_id, None)
                self._finished.setdefault(event_id, None)
        self._prune()

    def start(self, event_id: int, created_at: float | None) -> None:
        """``event_id``, read from the outbox, was handed to the dispatcher."""
        if event_id in self._finished or (self._anchored and event_id <= self._low):
            return
        self._pending[event_id] = created_at

    def start_live(self, event_id: int, fingerprint: Hashable = None) -> None:
        """``event_id`` from a live frame (unconfirmed) was handed to the dispatcher."""
        if self.knows(event_id) or (self._anchored and event_id <= self._low):
            return
        self._live[event_id] = (False, fingerprint)

    def finish(self, event_id: int) -> None:
        """``event_id`` was handled or dead-lettered (not cancelled, not abandoned)."""
        if event_id in self._pending:
            self._finished[event_id] = self._pending.pop(event_id)
            self._dirty = True
        elif event_id in self._live and not self._live[event_id][0]:
            self._live[event_id] = (True, self._live[event_id][1])
            self._dirty = True  # it may have been holding L
            self._forget_unconfirmed()

    def confirm(
        self, event_id: int, created_at: float | None, fingerprint: Hashable = None
    ) -> bool:
        """A catch-up pass read ``event_id`` from the outbox: a live copy of it now counts,
        with the outbox's ``created_at`` (never the frame's). False when the finished live
        copy had another fingerprint: it was not this row, which is now unknown (dispatch
        it). A copy still in flight is judged at a later pass."""
        entry = self._live.get(event_id)
        if entry is None:
            self.note(event_id, created_at)
            return True
        done, seen = entry
        if seen != fingerprint:
            if done:
                del self._live[event_id]
            return not done
        del self._live[event_id]
        (self._finished if done else self._pending)[event_id] = created_at
        self._dirty = True
        return True

    def note(self, event_id: int, created_at: float | None) -> None:
        """Fill in ``created_at`` of a known id that lacked it (restored after a restart)."""
        for table in (self._pending, self._finished):
            if table.get(event_id, 0.0) is None:
                table[event_id] = created_at

    def knows(self, event_id: int) -> bool:
        """Whether ``event_id`` is dispatched or finished above L (so not to dispatch again)."""
        return event_id in self._pending or event_id in self._finished or event_id in self._live

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

    @property
    def unconfirmed(self) -> int:
        """Live ids not (yet) read back from the outbox."""
        return len(self._live)

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
        in_flight = (event_id for event_id, (done, _) in self._live.items() if not done)
        ceiling = min(ceiling, min(in_flight, default=ceiling + 1) - 1)
        if ceiling > self._low:
            self._low = ceiling
            self._prune()

    def _prune(self) -> None:
        # Rebuilt, not deleted from: a dict never shrinks on deletion, so at high rates the
        # tables would keep the size of their largest batch for good (docs/performance.md).
        low = self._low
        self._pending = {i: c for i, c in self._pending.items() if i > low}
        self._finished = {i: c for i, c in self._finished.items() if i > low}
        self._live = {i: d for i, d in self._live.items() if i > low}

    def _forget_unconfirmed(self) -> None:
        """Keep at most ``max_unconfirmed`` live ids: drop the oldest finished ones."""
        excess = len(self._live) - self._max_unconfirmed
        if excess <= 0:
            return
        # Insertion order: the oldest come first, and they are mostly finished.
        oldest = islice((i for i, (done, _) in self._live.items() if done), excess)
        for event_id in list(oldest):
            del self._live[event_id]
