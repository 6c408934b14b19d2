"""``Leadership``: hold the org's lease, run a term while holding it, stand by otherwise.

A *term* is what only the holder may run (the dispatcher, catch-up, checkpoint saves),
built fresh for each epoch by the composition. Live frames reach the term through
``sink`` while it leads and are dropped otherwise: a standby keeps its channels joined
(warm) but handles nothing; the next leader catches up from the saved checkpoint.

With a lease store: one attempt to take the lease before reporting ready, then a loop. A
leader renews every ``renew_s``; when a renewal says the lease is lost, or none succeeded
by the ``schedule.hold_until`` deadline, it stops the term at once (in-flight handlers
cancelled), then saves its checkpoint until the database takes or refuses it (a newer
epoch), and stands by. A standby asks again every ``schedule.standby_poll_s``.
``shutdown`` drains the term within the grace period while renewals go on, saves, and
releases the lease, so a standby takes it at its next attempt.

Without a store (the lease disabled) one term runs from start to shutdown, as before HA.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Generic, Protocol, TypeVar, cast

import anyio
from anyio.abc import TaskStatus

from worker.errors import DataApiError
from worker.lease import schedule
from worker.lease.store import LeaseGrant, LeaseStore, RenewResult
from worker.ports import Clock, Counter, CounterChild, Gauge

__all__ = ["Leadership", "LeadershipStatistics", "LeaseMetrics", "Term"]

_log = logging.getLogger("worker.lease")
RELEASE_TIMEOUT_S = 5.0


class Term(Protocol):
    """What only the lease holder runs, for one epoch (None: the lease is disabled)."""

    @property
    def epoch(self) -> int | None: ...
    def sink(self, channel_topic: str, message: Mapping[str, Any]) -> None: ...
    def on_joined(self, topic: str) -> None: ...
    async def run(self, *, task_status: TaskStatus[None] = ...) -> None: ...
    async def stop(self, grace_s: float) -> None: ...
    async def final_save(self) -> bool: ...
    @property
    def refused(self) -> bool: ...


class LeaseMetrics(Protocol):
    """The members of ``metrics.Metrics`` leadership updates."""

    @property
    def leader(self) -> Gauge: ...
    @property
    def lease_epoch(self) -> Gauge: ...
    @property
    def lease_renewals_total(self) -> Counter: ...
    @property
    def leader_changes_total(self) -> CounterChild: ...  # unlabelled


@dataclasses.dataclass(frozen=True, slots=True)
class LeadershipStatistics:
    """A snapshot for ``/status``."""

    enabled: bool
    leader: bool
    epoch: int | None
    holder: str | None
    terms: int


T = TypeVar("T", bound=Term)


class Leadership(Generic[T]):
    """The lease loop and the current term; see the module docstring."""

    def __init__(
        self,
        *,
        new_term: Callable[[int | None], T],
        store: LeaseStore | None,
        clock: Clock,
        renew_s: float = 5.0,
        ttl_s: float = 15.0,
        metrics: LeaseMetrics | None = None,
    ) -> None:
        self._new_term = new_term
        self._store = store
        self._clock = clock
        self._renew_s = renew_s
        self._ttl_s = ttl_s
        self._metrics = metrics
        self._term: T | None = None  # leading (or draining at shutdown)
        self._live: T | None = None  # receives live frames
        self._stopping = False
        self._released = anyio.Event()
        self._deadline = 0.0
        self._terms = 0

    # -- routing (sync, cheap, from the Realtime callback) --------------------------------

    def sink(self, channel_topic: str, message: Mapping[str, Any]) -> None:
        """The supervisor's sink: frames go to the leading term, or nowhere."""
        live = self._live
        if live is not None:
            live.sink(channel_topic, message)

    def on_joined(self, topic: str) -> None:
        """Supervisor hook: a leading term catches up after every (re)join."""
        live = self._live
        if live is not None:
            live.on_joined(topic)

    @property
    def term(self) -> T | None:
        """The term this worker leads, None on a standby."""
        return self._term

    def statistics(self) -> LeadershipStatistics:
        """Whether this worker leads, at which epoch."""
        term = self._term
        holder = self._store.holder if self._store is not None else None
        epoch = term.epoch if term is not None else None
        enabled = self._store is not None
        return LeadershipStatistics(enabled, term is not None, epoch, holder, self._terms)

    # -- the loop -------------------------------------------------------------------------

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Lead or stand by until cancelled; ready after the first attempt to lead."""
        if self._store is None:
            await self._lead(None, task_status)
            return
        started = False
        while True:
            sent = self._clock.monotonic()
            grant = None if self._stopping else await self._try(self._store.acquire)
            if grant is not None and grant.acquired:
                await self._lead(grant, None if started else task_status, sent)
            elif not started:
                task_status.started()
            started = True
            await self._clock.sleep(schedule.standby_poll_s(self._renew_s))

    async def _lead(
        self, grant: LeaseGrant | None, status: TaskStatus[None] | None, sent: float = 0.0
    ) -> None:
        term = self._new_term(grant.epoch if grant is not None else None)
        self._deadline = schedule.hold_until(sent, self._ttl_s)
        async with anyio.create_task_group() as tg:
            await tg.start(term.run)
            self._begin(term)
            if status is not None:
                status.started()
            try:
                if grant is None or self._store is None:
                    await anyio.sleep_forever()
                else:
                    await self._keep(self._store, grant.epoch)
            finally:
                self._live = None  # from now on the term handles nothing new
                with anyio.CancelScope(shield=True):
                    await term.stop(0.0)  # cancels what is in flight; a no-op after a drain
                tg.cancel_scope.cancel()
        self._end()
        if not self._released.is_set():
            await self._settle(term)

    def _begin(self, term: T) -> None:
        self._term = self._live = term
        self._terms += 1
        _log.info("leading", extra={"epoch": term.epoch})
        if self._metrics is not None:
            self._metrics.leader.set(1)
            self._metrics.lease_epoch.set(term.epoch or 0)
            self._metrics.leader_changes_total.inc()

    def _end(self) -> None:
        self._term = None
        if self._metrics is not None:
            self._metrics.leader.set(0)
            self._metrics.leader_changes_total.inc()

    async def _keep(self, store: LeaseStore, epoch: int) -> None:
        """Renew until the lease is lost, the deadline passes, or it was released."""
        wait = self._renew_s
        while True:
            await self._within(min(wait, self._left()), self._released.wait)
            if self._released.is_set():
                return
            if self._left() <= 0:
                _log.warning("no renewal succeeded in time: stepping down", extra={"epoch": epoch})
                return
            sent = self._clock.monotonic()
            grant = await self._try(
                lambda: store.renew(epoch), bound=min(self._renew_s, self._left())
            )
            result = self._renewed(grant, sent)
            if result is RenewResult.LOST:
                _log.warning("the lease was lost: stepping down", extra={"epoch": epoch})
                return
            now = self._clock.monotonic()
            failed = result is RenewResult.FAILED
            wait = (
                schedule.retry_renew_s(self._renew_s, now, self._deadline)
                if failed
                else (self._renew_s)
            )

    def _renewed(self, grant: LeaseGrant | None, sent: float) -> RenewResult:
        if grant is None:
            result = RenewResult.FAILED
        elif grant.acquired:
            result = RenewResult.RENEWED
            self._deadline = schedule.hold_until(sent, self._ttl_s)
        else:
            result = RenewResult.LOST
        if self._metrics is not None:
            self._metrics.lease_renewals_total.labels(result=result).inc()
        return result

    def _left(self) -> float:
        return self._deadline - self._clock.monotonic()

    async def _try(self, call: Callable[[], Any], bound: float | None = None) -> LeaseGrant | None:
        """One lease call, bounded by the clock; None when it failed or took too long."""
        limit = self._renew_s if bound is None else max(0.0, bound)

        async def attempt() -> LeaseGrant | None:
            try:
                grant: LeaseGrant = await call()
            except DataApiError as exc:
                _log.warning("a lease call failed (%s)", exc)
                return None
            return grant

        finished, grant = await self._within(limit, attempt)
        if not finished:
            _log.warning("a lease call took longer than %.1fs", limit)
        return cast("LeaseGrant | None", grant)

    async def _within(self, seconds: float, step: Callable[[], Awaitable[Any]]) -> tuple[bool, Any]:
        """Run ``step`` for at most ``seconds`` on the injected clock: (finished, value)."""
        out: list[Any] = []
        async with anyio.create_task_group() as tg:

            async def timer() -> None:
                await self._clock.sleep(max(0.0, seconds))
                tg.cancel_scope.cancel()

            tg.start_soon(timer)
            out.append(await step())
            tg.cancel_scope.cancel()
        return bool(out), out[0] if out else None

    async def _settle(self, term: T) -> None:
        """After losing the lease: save what the term finished until saved or refused."""
        while not await term.final_save():
            if term.refused:
                _log.warning("the last checkpoint save was refused: a newer epoch leads")
                return
            await self._clock.sleep(schedule.standby_poll_s(self._renew_s))

    # -- shutdown ---------------------------------------------------------------------------

    async def shutdown(self, grace_s: float) -> None:
        """Drain the term within ``grace_s``, save, release the lease; stop standing by."""
        self._stopping = True
        term, self._live = self._term, None
        if term is None:
            return
        await term.stop(grace_s)
        await term.final_save()
        if self._store is not None and term.epoch is not None and self._term is term:
            await self._release(self._store, term.epoch)

    async def _release(self, store: LeaseStore, epoch: int) -> None:
        with anyio.move_on_after(RELEASE_TIMEOUT_S):
            try:
                released = await store.release(epoch)
            except DataApiError as exc:
                _log.warning("releasing the lease failed (%s); it expires by itself", exc)
                released = False
            _log.info("lease released" if released else "lease not held at release")
        self._released.set()
