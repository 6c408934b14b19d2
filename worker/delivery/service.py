"""``Delivery``: catch-up and the checkpointer, built and run side by side for the app."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import anyio
from anyio.abc import TaskStatus
from postgrest import AsyncPostgrestClient

from worker.delivery.catchup import CatchUp, CatchUpMetrics, fingerprint_of
from worker.delivery.checkpointer import Checkpointer, CheckpointMetrics
from worker.delivery.ledger import Ledger, Outbox, parse_db_time
from worker.delivery.outbox import OutboxStore
from worker.errors import DataApiError
from worker.events import Event
from worker.ports import Clock
from worker.settings import Settings

__all__ = ["Delivery", "DeliveryMetrics", "confirm_live"]

_log = logging.getLogger("worker.delivery")

#: How long the shutdown may spend reading back ids handled live (then: duplicates later).
CONFIRM_TIMEOUT_S = 5.0


class DeliveryMetrics(CatchUpMetrics, CheckpointMetrics, Protocol):
    """Everything ``Delivery`` updates."""


class Delivery:
    """Catch-up and the checkpointer, run side by side; the app's one delivery child.

    With ``epoch`` (the lease is on) checkpoint saves carry it and the database refuses
    them once a newer epoch leads. Shutdown, in the app's order: ``stop_catchup()`` before
    the dispatcher drains (no new puts), then ``final_save()`` after it (what finished in
    the drain is saved, including the ids handled live that the outbox confirms).
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
        self._page_size = s.catchup_page_size
        self._outbox = outbox = OutboxStore(data, consumer=s.consumer, topics=s.topics, epoch=epoch)
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
        with anyio.move_on_after(CONFIRM_TIMEOUT_S):
            await confirm_live(self._outbox, self.ledger, self._page_size)
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


async def confirm_live(outbox: Outbox, ledger: Ledger, page_size: int) -> None:
    """Read the outbox above ``scan_from`` only to confirm ids handled live (so the last save
    keeps them in ``handled_above``); dispatches nothing and claims no coverage. A failure
    is logged: it only means those ids are handled again after a restart."""
    progress = ledger.progress
    after = progress.scan_from
    try:
        head = (await outbox.position()).head
        while progress.unconfirmed and after < head:
            rows = await outbox.page(after, page_size)
            for row in rows:
                event_id = row.get("id")
                if not isinstance(event_id, int):
                    return  # not an outbox row: the next worker reads the rest
                if ledger.is_duplicate(event_id):
                    created = row.get("created_at")
                    fingerprint = fingerprint_of(row.get("topic"), row.get("event"), created)
                    ledger.confirmed(event_id, parse_db_time(created), fingerprint)
                after = event_id
            if len(rows) < page_size:
                break
    except DataApiError as exc:
        _log.warning("live ids not confirmed at shutdown (%s): they may run again", exc)
