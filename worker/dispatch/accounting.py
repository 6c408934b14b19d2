"""The dispatcher's books: outcome counters, metric children, the canonical log line and
the ``on_done`` hook, kept apart from the queue and the retry logic."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from worker.clock import Clock
from worker.dispatch.outcomes import (
    DispatchMetrics,
    HandledResult,
    Outcome,
    event_fields,
    log_outcome,
)
from worker.events import Event, RejectReason
from worker.ports import CounterChild

__all__ = ["Accounts", "OnDone"]

_log = logging.getLogger("worker.dispatch")

OnDone = Callable[[Event, Outcome], Awaitable[None] | None]


class Accounts:
    """Counts, metrics and the per-event log line of one dispatcher."""

    def __init__(
        self, clock: Clock, metrics: DispatchMetrics | None, on_done: OnDone | None
    ) -> None:
        self._clock = clock
        self._metrics = metrics
        self._on_done = on_done
        # Metric children looked up once per label set: this runs for every event.
        self._handled: dict[tuple[str, HandledResult], CounterChild] = {}
        self.offered = self.full = self.succeeded = self.dead = self.retries = 0
        self.last_done: float | None = None

    def rejected(self, reason: RejectReason) -> None:
        """An event the dispatcher refused or dropped (queue full, shutting down)."""
        if reason is RejectReason.QUEUE_FULL:
            self.full += 1
        if self._metrics is not None:
            self._metrics.events_rejected_total.labels(reason=reason).inc()

    def attempt_failed(self, event: Event, result: HandledResult) -> None:
        """One failed attempt (``error`` or ``timeout``)."""
        self._count_handled(event, result)

    def observe(self, seconds: float) -> None:
        """The duration of one handler call."""
        if self._metrics is not None:
            self._metrics.event_handler_duration_seconds.observe(seconds)

    async def finish(
        self, event: Event, outcome: Outcome, attempts: int, elapsed: float, error: str | None
    ) -> None:
        """Book the event's final outcome: counters, the log line, then ``on_done``."""
        self.last_done = self._clock.monotonic()
        if outcome is Outcome.SUCCESS:
            self.succeeded += 1
            self._count_handled(event, HandledResult.SUCCESS)
        elif outcome in (Outcome.DEAD_LETTER, Outcome.CANCELLED):
            self.dead += 1
            self._count_handled(event, HandledResult.DEAD_LETTER)
        if outcome is Outcome.ABANDONED:
            self.rejected(RejectReason.SHUTTING_DOWN)
        log_outcome(event, outcome, attempts, elapsed, error)
        await self._notify(event, outcome)

    async def _notify(self, event: Event, outcome: Outcome) -> None:
        if self._on_done is None:
            return
        try:
            result = self._on_done(event, outcome)
            if result is not None:
                await result
        except Exception:
            _log.exception("on_done hook failed", extra=event_fields(event))

    def _count_handled(self, event: Event, result: HandledResult) -> None:
        if self._metrics is None:
            return
        key = (event.topic, result)
        child = self._handled.get(key)
        if child is None:
            child = self._metrics.events_handled_total.labels(topic=event.topic, result=result)
            self._handled[key] = child
        child.inc()
