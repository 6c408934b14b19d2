"""The dispatcher: a bounded queue between the Realtime callbacks and the handlers.

Callbacks ``offer()`` events without ever blocking; catch-up ``put()``s them, waiting for
room. ``concurrency`` consumers take them in queue order and run every matching handler
under a per-call timeout. A failed attempt is retried in place (``retry.retrying``, entered
only after a first failure) with capped, jittered exponential backoff
(``Retry(after_s=...)`` sets the wait) until ``max_attempts``; ``NonRetryable``
and exhausted retries dead-letter the event: one ERROR line and a metric, never an
exception that could stop other events. On retry only the handlers that have not yet
succeeded run again.

Each event ends in one canonical log line (``org_id``, ``topic``, ``event``, ``event_id``,
``duration_ms``, ``outcome``) and one ``on_done(event, outcome)`` call (for checkpoints).
Metric ``events_handled_total``: ``error``/``timeout`` count failed attempts,
``success``/``dead_letter`` final outcomes.

This is the worker's hot path, measured per event against the bare client
(docs/performance.md): one cancel scope per handler call carries both the timeout and
the shutdown cancel, metric children are looked up once per label set, and the queue
depth gauge is read at scrape time.
"""

from __future__ import annotations

import logging
import random

import anyio
from anyio.abc import TaskStatus

from worker.dispatch.accounting import Accounts, OnDone
from worker.dispatch.attempts import Attempts, Cancelled, ContextMaker
from worker.dispatch.outcomes import (
    DispatchMetrics,
    DispatchStatistics,
    Outcome,
)
from worker.events import Event, RejectReason
from worker.ports import Clock
from worker.registry import HandlerRegistry

__all__ = ["ContextMaker", "Dispatcher", "OnDone"]

_log = logging.getLogger("worker.dispatch")  # the same logger as log_outcome


class Dispatcher:
    """Bounded queue + N consumers + retries; see the module docstring."""

    def __init__(
        self,
        *,
        registry: HandlerRegistry,
        context_factory: ContextMaker,
        clock: Clock,
        concurrency: int = 4,
        queue_size: int = 1000,
        handler_timeout_s: float = 30.0,
        max_attempts: int = 5,
        backoff_base_s: float = 0.5,
        backoff_cap_s: float = 30.0,
        metrics: DispatchMetrics | None = None,
        on_done: OnDone | None = None,
        rng: random.Random | None = None,
    ) -> None:
        if concurrency < 1 or queue_size < 1 or max_attempts < 1:
            raise ValueError("concurrency, queue_size and max_attempts must be >= 1")
        self._registry = registry
        self._clock = clock
        self._concurrency = concurrency
        self._queue_size = queue_size
        self._books = Accounts(clock, metrics, on_done)
        self._attempts = Attempts(
            context=context_factory,
            clock=clock,
            books=self._books,
            timeout_s=handler_timeout_s,
            max_attempts=max_attempts,
            backoff=(backoff_base_s, backoff_cap_s),
            rng=rng,
        )
        self._send, self._receive = anyio.create_memory_object_stream[Event](queue_size)
        self._accepting = True
        self._running = False
        self._finished = anyio.Event()
        if metrics is not None:
            metrics.dispatch_queue_depth.set_function(self._queued)

    # -- intake ---------------------------------------------------------------------------

    def offer(self, event: Event) -> bool:
        """Queue ``event`` without blocking; False (and counted) when full or stopped."""
        try:
            if self._accepting:
                self._send.send_nowait(event)
                self._books.offered += 1
                return True
        except anyio.WouldBlock:
            self._books.rejected(RejectReason.QUEUE_FULL)
            return False
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            pass  # run() has ended
        self._books.rejected(RejectReason.SHUTTING_DOWN)
        return False

    async def put(self, event: Event) -> bool:
        """Queue ``event``, waiting for room (catch-up's path; the live path uses ``offer``).

        False once the dispatcher stops accepting (shutdown): the event was not queued.
        """
        if not self._accepting:
            return False
        try:
            await self._send.send(event)
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            return False
        self._books.offered += 1
        return True

    def _queued(self) -> float:
        return self._receive.statistics().current_buffer_used

    # -- lifecycle ------------------------------------------------------------------------

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Run the consumers until ``drain()`` completes; ready as soon as they are started."""
        self._running = True
        try:
            async with anyio.create_task_group() as tg:
                for _ in range(self._concurrency):
                    tg.start_soon(self._consume)
                task_status.started()
        finally:
            self._receive.close()
            self._finished.set()

    def close(self) -> None:
        """Close the queue without draining (a dispatcher that never ran); idempotent."""
        self._accepting = False
        self._send.close()
        self._receive.close()

    async def drain(self, grace_s: float) -> None:
        """Stop intake; let queued and in-flight events finish within ``grace_s``.

        Then cancel what is still running (outcome CANCELLED, dead-lettered) and drop what
        is still queued (ABANDONED). Returns when every consumer has stopped; safe to call
        more than once.
        """
        self._accepting = False
        self._send.close()
        if not self._running:
            self._receive.close()  # never run: nothing will consume what is queued
            return
        with anyio.move_on_after(grace_s):
            await self._finished.wait()
        if self._finished.is_set():
            return
        self._attempts.abandon = True
        for scope in list(self._attempts.in_flight):
            scope.cancel()
        with anyio.move_on_after(max(1.0, grace_s), shield=True):
            await self._finished.wait()

    def statistics(self) -> DispatchStatistics:
        """A snapshot of queue depth, in-flight work and outcome counters."""
        return DispatchStatistics(
            accepting=self._accepting,
            queued=int(self._queued()),
            queue_size=self._queue_size,
            in_flight=len(self._attempts.in_flight),
            concurrency=self._concurrency,
            offered=self._books.offered,
            rejected_full=self._books.full,
            succeeded=self._books.succeeded,
            dead_lettered=self._books.dead,
            retries=self._books.retries,
            last_done_monotonic=self._books.last_done,
        )

    # -- consumers ------------------------------------------------------------------------

    async def _consume(self) -> None:
        # Once awake, a consumer also takes what is already queued without a checkpoint per
        # event: the client's listen task parses a whole socket read in one go, so one event
        # per consumer per loop turn would overflow the queue in any burst (docs/performance.md).
        async for first in self._receive:
            event = first
            while True:
                if self._attempts.abandon:
                    await self._books.finish(event, Outcome.ABANDONED, 0, 0.0, None)
                else:
                    await self._handle(event)
                try:
                    event = self._receive.receive_nowait()
                except (anyio.WouldBlock, anyio.EndOfStream):
                    break

    async def _handle(self, event: Event) -> None:
        routes = self._registry.handlers_for(event.topic, event.event)
        if not routes:
            await self._books.finish(event, Outcome.IGNORED, 0, 0.0, None)
            return
        started = self._clock.monotonic()
        try:
            outcome, attempts, error = await self._attempts.run(event, list(routes))
        except Cancelled:
            outcome, attempts, error = Outcome.CANCELLED, 0, "cancelled at shutdown"
        elapsed = self._clock.monotonic() - started
        await self._books.finish(event, outcome, attempts, elapsed, error)
