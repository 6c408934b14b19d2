"""Catch-up: read what Realtime did not deliver from the outbox, into the same dispatch path.

``CatchUp.run()`` loads the saved checkpoint, then runs passes: at start, when asked
(``request()``: after every (re)join, after the live path dropped an event) and every
``interval_s``. A pass reads the outbox position (head and the database's clock), then
``org_events_after(scan_from, page, topics)`` page by page up to that head, and ``put``s
every id the ledger does not know into the dispatcher, waiting for room (the live path
never waits; catch-up may). Only a pass that read to the end counts as coverage for the
settle rule (``ledger``). A failing data API is retried in place (``retry.retrying``, its
wait cut short by a request) with capped, jittered backoff and counted; it never ends the
worker.

It is also the live path's gate (``is_duplicate``/``dispatched``/``dropped``, called by
``Intake``); ids dispatched live move no mark until a pass reads them from the outbox.
``finisher(ledger)`` is the dispatcher's ``on_done``: handled, dead-lettered and ignored
ids are finished; cancelled and abandoned ones (shutdown) are not, so the next
worker reads them again.

Order: a pass puts a topic's events in outbox id order into one FIFO queue, and consumers
take them in queue order, so handlers *start* in id order; with ``WORKER_CONCURRENCY`` > 1
they may finish out of order, and a live event can start before an older caught-up one.
"""

from __future__ import annotations

import dataclasses
import logging
import random
from collections.abc import Awaitable, Callable, Collection, Hashable, Mapping
from typing import Any, Protocol

import anyio
from anyio.abc import TaskStatus
from tenacity import RetryCallState

from worker import retry
from worker.delivery.ledger import Ledger, Outbox, parse_db_time
from worker.delivery.outbox import OutboxOperation
from worker.dispatch.outcomes import Outcome
from worker.errors import DataApiError, is_transient
from worker.events import Event, RejectedEvent, channel_topic, parse_broadcast
from worker.ports import Clock, Counter, CounterChild, Histogram

__all__ = [
    "CatchUp",
    "CatchUpMetrics",
    "CatchUpStatistics",
    "finisher",
]

_log = logging.getLogger("worker.delivery")

#: Outcomes after which an id counts as finished for the checkpoint.
FINISHED = frozenset({Outcome.SUCCESS, Outcome.DEAD_LETTER, Outcome.IGNORED})


def fingerprint_of(topic: object, event: object, created_at: object) -> Hashable:
    """What a live copy must share with its outbox row to count as that row."""
    return (topic, event, parse_db_time(created_at))


def finisher(ledger: Ledger) -> Callable[[Event, Outcome], None]:
    """The dispatcher's ``on_done``: mark finished outbox ids in ``ledger``."""

    def on_done(event: Event, outcome: Outcome) -> None:
        if event.event_id is not None and outcome in FINISHED:
            ledger.finished(event.event_id)

    return on_done


class CatchUpMetrics(Protocol):
    """The members of ``metrics.Metrics`` catch-up updates."""

    @property
    def events_caught_up_total(self) -> CounterChild: ...  # unlabelled
    @property
    def catchup_duration_seconds(self) -> Histogram: ...
    @property
    def outbox_failures_total(self) -> Counter: ...


@dataclasses.dataclass(frozen=True, slots=True)
class CatchUpStatistics:
    """A snapshot for ``/status``."""

    passes: int
    caught_up: int
    failures: int
    last_error: str | None


class _Stopped(Exception):
    """The dispatcher stopped accepting events: the pass ends without coverage."""


class CatchUp:
    """Outbox catch-up, the live gate and ``on_done``; see the module docstring."""

    def __init__(
        self,
        *,
        outbox: Outbox,
        ledger: Ledger,
        put: Callable[[Event], Awaitable[bool]],
        org_id: str,
        topics: Collection[str],
        clock: Clock,
        interval_s: float = 30.0,
        page_size: int = 500,
        min_gap_s: float = 1.0,
        retry_base_s: float = 1.0,
        retry_cap_s: float = 30.0,
        metrics: CatchUpMetrics | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self._outbox = outbox
        self.ledger = ledger
        self._put = put
        self._org_id = org_id
        self._topics = frozenset(topics)
        self._clock = clock
        self._interval_s = interval_s
        self._page_size = page_size
        self._min_gap_s = min(min_gap_s, interval_s)
        self._retry = (retry_base_s, retry_cap_s)
        self._metrics = metrics
        self._rng = rng
        self._wake = anyio.Event()
        self._passes = self._caught = self._failures = 0
        self._last_error: str | None = None

    # -- the live path and the dispatcher (sync, cheap, never raise) --------------------

    def is_duplicate(self, event: Event) -> bool:
        """Whether this outbox event was already dispatched (or handled before a restart)."""
        return event.event_id is not None and self.ledger.is_duplicate(event.event_id)

    def dispatched(self, event: Event) -> None:
        """The live path handed ``event`` to the dispatcher. Its id and ``created_at`` came
        from a frame anyone allowed to broadcast on the channel could forge: it dedupes,
        but moves no mark until a pass reads the same id from the outbox."""
        if event.event_id is not None:
            fingerprint = fingerprint_of(event.topic, event.event, event.created_at)
            self.ledger.dispatched_live(event.event_id, fingerprint)

    def dropped(self, event: Event) -> None:
        """The live path could not queue ``event``: a pass will bring it back."""
        self.request()

    def request(self) -> None:
        """Ask for a pass soon (at most one per ``min_gap_s``); safe from any callback."""
        self._wake.set()

    def on_joined(self, topic: str) -> None:
        """Supervisor hook: a channel (re)joined, so what was broadcast meanwhile is lost."""
        self.request()

    def statistics(self) -> CatchUpStatistics:
        """Counts of passes, events caught up and failures."""
        return CatchUpStatistics(self._passes, self._caught, self._failures, self._last_error)

    # -- the loop -------------------------------------------------------------------------

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Ready at once (the live path works without the data API); runs until cancelled."""
        task_status.started()
        await self._retrying(OutboxOperation.LOAD, self._load)
        while True:
            await self._retrying(OutboxOperation.CATCHUP, self.catch_up)
            await self._wait(self._interval_s)

    async def _load(self) -> None:
        checkpoint = await self._outbox.load()
        self.ledger.progress.anchor(checkpoint)
        _log.info(
            "outbox checkpoint loaded",
            extra={
                "last_event_id": checkpoint.last_event_id,
                "handled_above": len(checkpoint.handled_above),
            },
        )

    async def catch_up(self) -> None:
        """One pass from ``scan_from`` to the head; raises ``DataApiError``."""
        started = self._clock.monotonic()
        position = await self._outbox.position()
        self.ledger.head = max(self.ledger.head, position.head)
        after = self.ledger.progress.scan_from
        try:
            while after < position.head:
                rows = await self._outbox.page(after, self._page_size)
                for row in rows:
                    after = await self._deliver(row)
                if len(rows) < self._page_size:
                    break
        except _Stopped:
            return
        self.ledger.progress.covered(position.db_now)
        self._passes += 1
        if self._metrics is not None:
            self._metrics.catchup_duration_seconds.observe(self._clock.monotonic() - started)

    async def _deliver(self, row: Mapping[str, Any]) -> int:
        event_id = row.get("id")
        if not isinstance(event_id, int) or isinstance(event_id, bool):
            raise DataApiError("org_events_after returned a row without an integer id")
        created = parse_db_time(row.get("created_at"))
        fingerprint = fingerprint_of(row.get("topic"), row.get("event"), row.get("created_at"))
        if self.ledger.is_duplicate(event_id):
            if self.ledger.confirmed(event_id, created, fingerprint):  # a live copy counts
                return event_id
            _log.warning(
                "outbox id %s came live with other content (forged?): handled now", event_id
            )
        self.ledger.dispatched(event_id, created)  # before put: it may finish before we resume
        event = self._event(row)
        if event is None:
            self.ledger.finished(event_id)  # dead-lettered: can never be handled
        elif await self._put(event):
            self._caught += 1
            if self._metrics is not None:
                self._metrics.events_caught_up_total.inc()
        else:
            raise _Stopped
        return event_id

    def _event(self, row: Mapping[str, Any]) -> Event | None:
        frame = {"event": row.get("event"), "payload": dict(row)}
        try:
            return parse_broadcast(
                self._org_id,
                channel_topic(self._org_id, str(row.get("topic"))),
                frame,
                topics=self._topics,
                received_at=self._clock.time(),
            )
        except RejectedEvent as exc:
            _log.error(
                "event dead-lettered: the outbox row cannot be handled (%s)",
                exc.detail,
                extra={"org_id": self._org_id, "event_id": row.get("id"), "reason": exc.reason},
            )
            return None

    # -- waiting and retrying -------------------------------------------------------------

    async def _retrying(
        self, operation: OutboxOperation, step: Callable[[], Awaitable[None]]
    ) -> None:
        """Run ``step`` until it succeeds; a request cuts a wait between attempts short."""

        def rearm(_state: RetryCallState) -> None:
            self._wake = anyio.Event()  # requests from now on ask for one more attempt

        def failed(state: RetryCallState) -> None:
            exc = retry.last_error(state)
            delay = state.next_action.sleep if state.next_action else 0.0
            self._count_failure(operation, exc)
            _log.warning("outbox %s failed (%s); retrying in %.1fs", operation, exc, delay)

        base, cap = self._retry
        loop = retry.retrying(
            sleep=self._wait,
            transient=lambda exc: isinstance(exc, DataApiError) and is_transient(exc),
            wait=retry.EqualJitter(base_s=base, cap_s=cap, rng=self._rng),
            before=rearm,
            before_sleep=failed,
        )
        await loop(step)

    def _count_failure(self, operation: OutboxOperation, exc: BaseException | None) -> None:
        self._failures += 1
        self._last_error = str(exc)
        if self._metrics is not None:
            self._metrics.outbox_failures_total.labels(operation=operation).inc()

    async def _wait(self, seconds: float) -> None:
        """Sleep ``seconds``, or less when a pass is requested, but never under min_gap_s."""
        gap = min(self._min_gap_s, seconds)
        await self._clock.sleep(gap)
        if self._wake.is_set() or seconds <= gap:
            return
        async with anyio.create_task_group() as tg:

            async def sleep_then_stop() -> None:
                await self._clock.sleep(seconds - gap)
                tg.cancel_scope.cancel()

            tg.start_soon(sleep_then_stop)
            await self._wake.wait()
            tg.cancel_scope.cancel()
