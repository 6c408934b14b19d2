"""``Delivery``: catch-up and the checkpointer, built and run side by side for the app."""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import anyio
from anyio.abc import TaskStatus
from postgrest import AsyncPostgrestClient

from worker.delivery.catchup import CatchUp, CatchUpMetrics
from worker.delivery.checkpointer import Checkpointer, CheckpointMetrics
from worker.delivery.ledger import Ledger
from worker.delivery.outbox import OutboxStore
from worker.events import Event
from worker.ports import Clock
from worker.settings import Settings

__all__ = ["Delivery", "DeliveryMetrics"]


class DeliveryMetrics(CatchUpMetrics, CheckpointMetrics, Protocol):
    """Everything ``Delivery`` updates."""


class Delivery:
    """Catch-up and the checkpointer, run side by side; the app's one delivery child.

    With ``epoch`` (the lease is on) checkpoint saves carry it and the database refuses
    them once a newer epoch leads. Shutdown, in the app's order: ``stop_catchup()`` before
    the dispatcher drains (no new puts), then ``final_save()`` after it (what finished in
    the drain is saved).
    """

    def __init__(
        self,
        settings: Settings,
        data: AsyncPostgrestClient,
        *,
        ledger: Ledger,
        put: Callable[[Event], Awaitable[bool]],
        clock: Clock,
        metrics: DeliveryMetrics | None = None,
        epoch: int | None = None,
    ) -> None:
        s = settings
        self.ledger = ledger
        outbox = OutboxStore(data, consumer=s.consumer, topics=s.topics, epoch=epoch)
        self.catchup = CatchUp(
            outbox=outbox,
            ledger=ledger,
            put=put,
            org_id=s.org_id,
            topics=s.topics,
            clock=clock,
            interval_s=s.catchup_interval_s,
            page_size=s.catchup_page_size,
            metrics=metrics,
        )
        self.checkpointer = Checkpointer(
            outbox=outbox,
            ledger=ledger,
            clock=clock,
            interval_s=s.checkpoint_interval_s,
            metrics=metrics,
        )
        self._catchup_scope = anyio.CancelScope()

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Run both until cancelled; ready at once (the checkpoint loads in the background)."""
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._run_catchup)
            await tg.start(self.checkpointer.run)
            task_status.started()

    async def _run_catchup(self) -> None:
        with self._catchup_scope:
            await self.catchup.run()

    def stop_catchup(self) -> None:
        """No more passes and no more puts (a pass in progress ends uncovered)."""
        self._catchup_scope.cancel()

    async def final_save(self) -> bool:
        """Save the checkpoint once more (after the drain); False when it failed."""
        return await self.checkpointer.save()

    def statistics(self) -> dict[str, Any]:
        """Marks, counts and the last saved checkpoint, for ``/status``."""
        saved = self.checkpointer.saved
        return {
            "progress": dataclasses.asdict(self.ledger.progress.statistics()),
            "catchup": dataclasses.asdict(self.catchup.statistics()),
            "saved_checkpoint": None if saved is None else saved.last_event_id,
            "head": self.ledger.head,
        }
