"""The outbox through the data API, the batched checkpoint saver, and ``Delivery``.

``OutboxStore`` calls the worker RPCs (``org_events_after``, ``outbox_position``,
``get_worker_checkpoint_state``, ``save_worker_checkpoint``) with the shared PostgREST
client, so every call carries the current token and RLS scopes it to the org. Every
failure surfaces as ``DataApiError``.

``Checkpointer`` saves the ledger's checkpoint every ``interval_s`` when it changed (one
data API call per interval, never per event) and once more at shutdown, after the drain.
A failed save is logged and retried at the next interval: it only means more duplicates
after a restart, never a loss.

``Delivery`` builds and runs catch-up and the checkpointer for the app.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Protocol

import anyio
import httpx
from anyio.abc import TaskStatus
from postgrest import AsyncPostgrestClient
from postgrest.exceptions import APIError

from worker._ports import Clock, Counter, Gauge
from worker.catchup import CatchUp, CatchUpMetrics
from worker.delivery import Checkpoint, Ledger, Outbox, Position, parse_db_time
from worker.errors import DataApiError
from worker.events import Event
from worker.settings import Settings

__all__ = ["CheckpointMetrics", "Checkpointer", "Delivery", "DeliveryMetrics", "OutboxStore"]

_log = logging.getLogger("worker.delivery")


class OutboxStore:
    """``Outbox`` over PostgREST RPCs, for one consumer and the subscribed topics."""

    def __init__(
        self, client: AsyncPostgrestClient, *, consumer: str, topics: Sequence[str]
    ) -> None:
        self._client = client
        self._consumer = consumer
        self._topics = list(topics)

    async def load(self) -> Checkpoint:
        """The saved checkpoint ((0, ()) when there is none yet)."""
        rows = await self._rows("get_worker_checkpoint_state", {"consumer": self._consumer})
        if not rows:
            return Checkpoint(0)
        row = rows[0]
        above = row.get("handled_above") or []
        return Checkpoint(int(row["last_event_id"]), tuple(int(i) for i in above))

    async def save(self, checkpoint: Checkpoint) -> None:
        """Save forward-only (the database keeps the higher mark)."""
        params = {
            "consumer": self._consumer,
            "last_event_id": checkpoint.last_event_id,
            "handled_above": list(checkpoint.handled_above),
        }
        await self._call("save_worker_checkpoint", params)

    async def position(self) -> Position:
        """The head of the org's outbox (subscribed topics) and the database's clock."""
        rows = await self._rows("outbox_position", {"topics": self._topics})
        db_now = parse_db_time(rows[0].get("db_now")) if rows else None
        if db_now is None:
            raise DataApiError("outbox_position returned no database time")
        return Position(int(rows[0].get("head") or 0), db_now)

    async def page(self, after_id: int, limit: int) -> list[Mapping[str, Any]]:
        """Up to ``limit`` outbox rows with ids above ``after_id``, oldest first."""
        params = {"after_id": after_id, "max_rows": limit, "topics": self._topics}
        return await self._rows("org_events_after", params)

    async def _rows(self, function: str, params: Mapping[str, Any]) -> list[Mapping[str, Any]]:
        data = await self._call(function, params)
        if not isinstance(data, list) or not all(isinstance(r, Mapping) for r in data):
            raise DataApiError(f"{function} returned {type(data).__name__}, not rows")
        return data

    async def _call(self, function: str, params: Mapping[str, Any]) -> Any:
        try:
            response = await self._client.rpc(function, dict(params)).execute()
        except DataApiError:
            raise
        except APIError as exc:
            raise DataApiError(f"{function} failed: {exc.code} {exc.message}") from exc
        except (httpx.HTTPError, ValueError) as exc:  # ValueError: a body that is not JSON
            raise DataApiError(f"{function} failed: {type(exc).__name__}: {exc}") from exc
        return response.data


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
                self._metrics.outbox_failures_total.labels(operation="save").inc()
            _log.warning("saving the checkpoint failed (%s); retrying later", exc)
            return False
        self._saved = checkpoint
        if self._metrics is not None:
            self._metrics.checkpoint_event_id.set(checkpoint.last_event_id)
        return True


class DeliveryMetrics(CatchUpMetrics, CheckpointMetrics, Protocol):
    """Everything ``Delivery`` updates."""


class Delivery:
    """Catch-up and the checkpointer, run side by side; the app's one delivery child.

    Shutdown, in the app's order: ``stop_catchup()`` before the dispatcher drains (no new
    puts), then ``final_save()`` after it (what finished in the drain is saved).
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
    ) -> None:
        s = settings
        self.ledger = ledger
        outbox = OutboxStore(data, consumer=s.consumer, topics=s.topics)
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
