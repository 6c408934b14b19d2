"""Leadership terms: what only the lease holder runs, built fresh for each epoch.

A term is one ledger, one dispatcher, delivery (catch-up and checkpoints, saves carrying
the epoch) and the intake that feeds them, wired as before HA. Nothing carries over from
one term to the next: a worker that leads again starts from the saved checkpoint, so an
id it dispatched in an earlier term and never finished is read again. Part of the
composition (it knows dispatch, delivery, realtime's intake and the context).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import anyio
from anyio.abc import TaskStatus
from postgrest import AsyncPostgrestClient
from storage3 import AsyncStorageClient

from worker.context import Broadcaster, ContextFactory
from worker.delivery import Delivery, Ledger, finisher
from worker.dispatch import Dispatcher
from worker.lifespan import Resources
from worker.observe import Metrics
from worker.ports import Clock
from worker.realtime import Intake
from worker.registry import HandlerRegistry
from worker.settings import Settings

__all__ = ["OrgTerm", "TermFactory"]


class OrgTerm:
    """One term's dispatcher, delivery and intake; ``lease.Term`` for ``Leadership``."""

    def __init__(
        self, epoch: int | None, dispatcher: Dispatcher, delivery: Delivery, intake: Intake
    ) -> None:
        self._epoch = epoch
        self.dispatcher = dispatcher
        self.delivery = delivery
        self.intake = intake

    @property
    def epoch(self) -> int | None:
        """The lease epoch of this term (None: the lease is disabled)."""
        return self._epoch

    @property
    def refused(self) -> bool:
        """Whether the database refused a checkpoint save (a newer epoch leads)."""
        return self.delivery.checkpointer.refused

    def sink(self, channel_topic: str, message: Mapping[str, Any]) -> None:
        """A live frame, into this term's intake."""
        self.intake(channel_topic, message)

    def on_joined(self, topic: str) -> None:
        """A channel (re)joined: catch up."""
        self.delivery.catchup.on_joined(topic)

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """The dispatcher, then delivery; ready once both are; runs until cancelled."""
        try:
            async with anyio.create_task_group() as tg:
                await tg.start(self.dispatcher.run)
                await tg.start(self.delivery.run)
                task_status.started()
        finally:
            self.dispatcher.close()  # its queue, even if it never ran

    async def stop(self, grace_s: float) -> None:
        """No more puts, then in-flight handlers finish within ``grace_s`` or are cancelled."""
        self.delivery.stop_catchup()
        await self.dispatcher.drain(grace_s)

    async def final_save(self) -> bool:
        """Save the checkpoint once more; False when it failed or was refused."""
        return await self.delivery.final_save()


@dataclass(frozen=True)
class TermFactory:
    """Builds an ``OrgTerm`` for an epoch from the parts every term shares."""

    settings: Settings
    registry: HandlerRegistry
    clock: Clock
    metrics: Metrics
    data: AsyncPostgrestClient
    storage: AsyncStorageClient
    broadcaster: Broadcaster
    resources: Resources  # the handler modules' lifespans (opened by the app)

    def __call__(self, epoch: int | None) -> OrgTerm:
        s = self.settings
        ledger = Ledger(settle_s=s.settle_s)
        contexts = ContextFactory(
            org_id=s.org_id,
            data=self.data,
            broadcaster=self.broadcaster,
            storage=self.storage,
            resources=self.resources,
            epoch=epoch,
        )
        dispatcher = Dispatcher(
            registry=self.registry,
            context_factory=contexts,
            clock=self.clock,
            concurrency=s.concurrency,
            queue_size=s.queue_size,
            handler_timeout_s=s.handler_timeout_s,
            max_attempts=s.handler_max_attempts,
            metrics=self.metrics,
            on_done=finisher(ledger),
        )
        delivery = Delivery(
            s,
            self.data,
            ledger=ledger,
            put=dispatcher.put,
            clock=self.clock,
            metrics=self.metrics,
            epoch=epoch,
        )
        intake = Intake(
            org_id=s.org_id,
            topics=s.topics,
            offer=dispatcher.offer,
            clock=self.clock,
            metrics=self.metrics,
            gate=delivery.catchup,
        )
        return OrgTerm(epoch, dispatcher, delivery, intake)
