"""The batched checkpoint saver.

``Checkpointer`` saves the ledger's checkpoint every ``interval_s`` when it changed (one
data API call per interval, never per event) and once more at shutdown, after the drain.
A failed save is logged and retried at the next interval: it only means more duplicates
after a restart, never a loss. (A periodic loop, not a ``retry.retrying`` one: the next
interval is the retry.)
"""

from __future__ import annotations

import logging
from typing import Protocol

import anyio
from anyio.abc import TaskStatus

from worker.delivery.ledger import Checkpoint, Ledger, Outbox
from worker.delivery.outbox import OutboxOperation
from worker.errors import CheckpointFenced, DataApiError
from worker.ports import Clock, Counter, Gauge

__all__ = ["CheckpointMetrics", "Checkpointer"]

_log = logging.getLogger("worker.delivery")


class CheckpointMetrics(Protocol):
    """The members of ``metrics.Metrics`` the checkpointer updates."""

    @property
    def checkpoint_event_id(self) -> Gauge: ...
    @property
    def outbox_lag_events(self) -> Gauge: ...
    @property
    def outbox_failures_total(self) -> Counter: ...


class Checkpointer:
    """Saves the ledger's checkpoint when it changed, at most once per ``interval_s``."""

    def __init__(
        self,
        *,
        outbox: Outbox,
        ledger: Ledger,
        clock: Clock,
        interval_s: float = 2.0,
        metrics: CheckpointMetrics | None = None,
    ) -> None:
        self._outbox = outbox
        self._ledger = ledger
        self._clock = clock
        self._interval_s = interval_s
        self._metrics = metrics
        self._saved: Checkpoint | None = None
        self.failures = 0
        self.refused = False  # a save was refused for an older lease epoch

    @property
    def saved(self) -> Checkpoint | None:
        """The checkpoint last saved by this worker (None before the first save)."""
        return self._saved

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Save every ``interval_s`` until cancelled."""
        task_status.started()
        while True:
            await self._clock.sleep(self._interval_s)
            await self.save()

    async def save(self) -> bool:
        """Save now if the checkpoint changed; False when the save failed (logged)."""
        progress = self._ledger.progress
        if not progress.anchored:
            return True  # the saved checkpoint is not even loaded: nothing to move
        checkpoint = progress.checkpoint()
        if self._metrics is not None:
            self._metrics.outbox_lag_events.set(self._ledger.lag)
        if checkpoint == self._saved:
            return True
        try:
            await self._outbox.save(checkpoint)
        except DataApiError as exc:
            self.failures += 1
            if self._metrics is not None:
                self._metrics.outbox_failures_total.labels(operation=OutboxOperation.SAVE).inc()
            self.refused = self.refused or isinstance(exc, CheckpointFenced)
            _log.warning("saving the checkpoint failed (%s); retrying later", exc)
            return False
        self._saved = checkpoint
        if self._metrics is not None:
            self._metrics.checkpoint_event_id.set(checkpoint.last_event_id)
        return True
