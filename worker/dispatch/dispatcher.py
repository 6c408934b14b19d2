"""The dispatcher: a bounded queue between the Realtime callbacks and the handlers.

Callbacks ``offer()`` events without ever blocking; catch-up ``put()``s them, waiting for
room. ``concurrency`` consumers take them in queue order and run every matching handler
under a per-call timeout. A failed attempt is retried with capped, jittered exponential
backoff (``Retry(after_s=...)`` sets the wait) until ``max_attempts``; ``NonRetryable``
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

import asyncio
import logging
import random
from collections.abc import Callable

import anyio
from anyio.abc import TaskStatus

from worker.context import Context
from worker.dispatch.accounting import Accounts, OnDone
from worker.dispatch.outcomes import (
    DispatchMetrics,
    DispatchStatistics,
    HandledResult,
    Outcome,
    event_fields,
)
from worker.errors import NonRetryable, Retry
from worker.events import Event, RejectReason
from worker.ports import Clock
from worker.registry import HandlerRegistry, Route
from worker.retry import backoff_delay

__all__ = ["ContextMaker", "Dispatcher", "OnDone"]

_log = logging.getLogger("worker.dispatch")  # the same logger as log_outcome

ContextMaker = Callable[[Event, int], Context]


class _Cancelled(Exception):
    """The event's work was cancelled by ``drain()`` at the end of the grace period."""


class _Failure(Exception):
    """One failed attempt: ``kind`` is the metric label (``error``/``timeout``)."""

    def __init__(self, kind: HandledResult, cause: BaseException) -> None:
        self.kind = kind
        self.cause = cause
        super().__init__(f"{kind}: {cause!r}")


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
        self._context = context_factory
        self._clock = clock
        self._concurrency = concurrency
        self._queue_size = queue_size
        self._timeout_s = handler_timeout_s
        self._max_attempts = max_attempts
        self._backoff = (backoff_base_s, backoff_cap_s)
        self._books = Accounts(clock, metrics, on_done)
        self._rng = rng
        self._send, self._receive = anyio.create_memory_object_stream[Event](queue_size)
        self._in_flight: set[anyio.CancelScope] = set()
        self._accepting = True
        self._running = False
        self._abandon = False
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
        self._abandon = True
        for scope in list(self._in_flight):
            scope.cancel()
        with anyio.move_on_after(max(1.0, grace_s), shield=True):
            await self._finished.wait()

    def statistics(self) -> DispatchStatistics:
        """A snapshot of queue depth, in-flight work and outcome counters."""
        return DispatchStatistics(
            accepting=self._accepting,
            queued=int(self._queued()),
            queue_size=self._queue_size,
            in_flight=len(self._in_flight),
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
                if self._abandon:
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
            outcome, attempts, error = await self._attempts(event, list(routes))
        except _Cancelled:
            outcome, attempts, error = Outcome.CANCELLED, 0, "cancelled at shutdown"
        elapsed = self._clock.monotonic() - started
        await self._books.finish(event, outcome, attempts, elapsed, error)

    async def _attempts(
        self, event: Event, pending: list[Route]
    ) -> tuple[Outcome, int, str | None]:
        attempt = 0
        while True:
            attempt += 1
            failure = await self._attempt(event, pending, attempt)
            if failure is None:
                return Outcome.SUCCESS, attempt, None
            self._books.attempt_failed(event, failure.kind)
            cause = failure.cause
            if isinstance(cause, NonRetryable) or attempt >= self._max_attempts:
                return Outcome.DEAD_LETTER, attempt, f"{type(cause).__name__}: {cause}"
            delay = self._retry_delay(cause, attempt)
            _log.warning(
                "handler attempt %d failed (%s), retrying in %.2fs",
                attempt,
                failure,
                delay,
                extra=event_fields(event) | {"attempt": attempt},
            )
            self._books.retries += 1
            scope = self._cancellable(float("inf"))
            try:
                with scope:
                    await self._clock.sleep(delay)
            finally:
                self._in_flight.discard(scope)
            if scope.cancelled_caught:
                raise _Cancelled

    async def _attempt(self, event: Event, pending: list[Route], attempt: int) -> _Failure | None:
        """Run the still-pending routes once; drop each that succeeds from ``pending``."""
        ctx = self._context(event, attempt)
        for route in list(pending):
            started = self._clock.monotonic()
            failure: _Failure | None = None
            # The event loop's clock, not self._clock: the deadline is the loop's to keep.
            scope = self._cancellable(asyncio.get_running_loop().time() + self._timeout_s)
            try:
                with scope:
                    await route.handler(event, ctx)
            except Exception as exc:  # a handler bug must never stop other events
                failure = _Failure(HandledResult.ERROR, exc)
            finally:
                self._in_flight.discard(scope)
            self._books.observe(self._clock.monotonic() - started)
            if scope.cancelled_caught:
                if self._abandon:
                    raise _Cancelled
                timeout = TimeoutError(f"the handler ran longer than {self._timeout_s:g}s")
                failure = _Failure(HandledResult.TIMEOUT, timeout)
            if failure is not None:
                return failure
            pending.remove(route)
        return None

    def _cancellable(self, deadline: float) -> anyio.CancelScope:
        """A scope ``drain()`` can cancel, ending at ``deadline`` (loop time); the caller
        enters it and discards it from ``_in_flight`` when done (no context manager
        wrapper: this runs for every handler call)."""
        scope = anyio.CancelScope(deadline=deadline)
        self._in_flight.add(scope)
        return scope

    def _retry_delay(self, cause: BaseException, attempt: int) -> float:
        # A schedule, not a ``retry.retrying`` loop: the dispatcher owns what is logged and
        # counted per attempt, and the wait must stay cancellable by ``drain()``.
        if isinstance(cause, Retry) and cause.after_s is not None:
            return max(0.0, cause.after_s)
        base, cap = self._backoff
        return backoff_delay(attempt, base_s=base, cap_s=cap, rng=self._rng)
