"""The session keeper: the service user's Clerk session, got, renewed before Clerk ends
it, and replaced at once when Clerk ends it underneath.

``SessionKeeper.run()`` gets the first session (the given one, a reusable one, or a new
one, checked), reports it through ``task_status.started(session)``, then for ever: sleeps
until the renewal time (re-reading ``expire_at``/``abandon_at`` first, since activity can
move ``abandon_at``), gets the next session, switches to it, revokes the old one. A
``replace(session_id, why)`` (the token endpoint's 404, a token without the org) wakes it
at once. Clerk outages are retried with backoff while the old session still works.

``run()`` only ends by raising: ``SessionUnobtainable`` when no session can be had (a
distinct, loud state: the worker exits 1 with the reason and the fix), or the first
session's error when none came within ``startup_timeout_s``. Nothing here reads
``Settings``: a broker keeping one session per org runs one keeper per org.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
from anyio.abc import TaskStatus
from tenacity import AsyncRetrying, RetryCallState

from worker import retry
from worker.clock import Clock
from worker.errors import SessionEnded, SessionUnobtainable, TokenRejected, is_transient
from worker.tokens.sessions.clerk_api import ClerkSessionApi
from worker.tokens.sessions.model import RenewalResult, SessionInfo, SessionMetrics, SessionState
from worker.tokens.sessions.obtain import Obtainer
from worker.tokens.sessions.schedule import SessionWait, renew_at
from worker.tokens.states import fatal_at_start

__all__ = ["SessionKeeper"]

log = logging.getLogger("worker.tokens.sessions")
RENEWAL = "the session ends soon"


class SessionKeeper:
    """Keeps one usable Clerk session of a service user in one org (see module doc)."""

    def __init__(
        self,
        obtainer: Obtainer,
        api: ClerkSessionApi,
        clock: Clock,
        *,
        given_session_id: str | None = None,
        margin_s: float | None = None,
        check_interval_s: float = 600.0,
        startup_timeout_s: float = 60.0,
        max_backoff_s: float = 30.0,
        metrics: SessionMetrics | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self._obtainer, self._api, self._clock = obtainer, api, clock
        self._given, self._margin_s, self._metrics = given_session_id, margin_s, metrics
        self._check_interval_s = check_interval_s
        self._startup_timeout_s, self._max_backoff_s = startup_timeout_s, max_backoff_s
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography
        self._current: SessionInfo | None = None
        self._usable = False
        self._state = SessionState.STARTING
        self._renew_at = 0.0
        self._rand = 0.0
        self._replace_why: str | None = None
        self._wake: anyio.CancelScope | None = None
        self._switched = anyio.Event()
        self._counts = {"renewals": 0, "replacements": 0, "failures": 0}
        self._last_error: str | None = None
        self._last_renewal_at: float | None = None

    @property
    def current(self) -> SessionInfo | None:
        """The session tokens are minted from (None before the first)."""
        return self._current

    @property
    def state(self) -> SessionState:
        """Where the keeper is."""
        return self._state

    async def usable_session_id(self) -> str:
        """The current session's id; waits while it is being replaced."""
        while not self._usable or self._current is None:
            await self._switched.wait()
        return self._current.id

    async def replace(self, session_id: str, why: str) -> None:
        """Clerk ended ``session_id`` (or it lost the org): get another at once, and
        return once the keeper uses another session. A no-op for an old session."""
        if self._current is None or self._current.id != session_id:
            return
        self._usable = False
        if self._replace_why is None:
            self._replace_why = why
            log.warning("Clerk session unusable; replacing it now", extra={"why": why})
        if self._wake is not None:
            self._wake.cancel()
        while self._current.id == session_id:
            await self._switched.wait()

    def fail(self, exc: SessionUnobtainable) -> SessionUnobtainable:
        """Enter the loud ``unobtainable`` state for ``exc`` (then the caller raises it)."""
        self._state = SessionState.UNOBTAINABLE
        self._last_error = f"{exc.reason}: {exc}"
        self._count(RenewalResult.UNOBTAINABLE)
        log.error(
            "NO CLERK SESSION CAN BE HAD: the worker stops. %s",
            exc,
            extra={"reason": exc.reason},
        )
        return exc

    def statistics(self) -> dict[str, Any]:
        """A cheap snapshot for ``/status``: no token, ticket or client JWT."""
        session, now = self._current, self._clock.time()
        return {
            "state": self._state.value,
            "session_id": session.id if session else None,
            "obtained": session.obtained.value if session else None,
            "instance": self._obtainer.instance,
            "expires_at": session.ends_at if session else None,
            "expires_in_s": round(session.ends_at - now, 3) if session else None,
            "renew_at": self._renew_at if session else None,
            "last_renewal_at": self._last_renewal_at,
            "last_error": self._last_error,
            **self._counts,
        }

    async def run(
        self, *, task_status: TaskStatus[SessionInfo] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Get the first session, report it, then keep one until cancelled (or raise)."""
        first = await self.obtain_first()
        self._switch(first, previous=None)
        task_status.started(first)
        while True:
            why = await self._until_due()
            await self._renew(why)

    async def obtain_first(self) -> SessionInfo:
        """The session ``run()`` starts with (retried until ``startup_timeout_s``), not
        yet in use: what ``realtime-worker check`` shows."""
        return await self._attempts(self._first, first=True)

    async def _first(self) -> SessionInfo:
        if self._given is not None:
            session = await self._obtainer.adopt(self._given)
            if session is not None:
                return session
            log.warning("CLERK_SESSION_ID has ended; getting a new session for the user")
            self._given = None
        return await self._obtainer.obtain()

    async def _until_due(self) -> str:
        """Sleep until the renewal time or a replacement request; say which."""
        while self._replace_why is None:
            wait = self._renew_at - self._clock.time()
            if wait > 0:
                await self._sleep(min(wait, self._check_interval_s))
            if self._replace_why is None:
                await self._reread()
            if self._replace_why is None and self._clock.time() >= self._renew_at:
                return RENEWAL
        return self._replace_why

    async def _sleep(self, seconds: float) -> None:
        with anyio.CancelScope() as self._wake:  # replace() cancels it: wake up at once
            await self._clock.sleep(seconds)
        self._wake = None

    async def _reread(self) -> None:
        """Re-read the session: it may have ended, lost the org, or moved ``abandon_at``."""
        session = self._current
        assert session is not None  # only called after the first session
        try:  # a failure is transient: the renewal itself retries
            seen = SessionInfo.parse(await self._api.get(session.id), session.obtained)
        except SessionEnded:
            self._replace_why = "Clerk no longer knows the session"
            return
        except Exception as exc:
            log.info("re-reading the session failed", extra={"error": str(exc)})
            return
        if seen.status != "active" or seen.org_id != session.org_id:
            self._replace_why = f"the session is {seen.status}, org {seen.org_id}"
            self._usable = False
            return
        self._current = seen
        self._renew_at = renew_at(seen, now=0.0, rand=self._rand, margin_s=self._margin_s)

    async def _renew(self, why: str) -> None:
        old = self._current
        assert old is not None
        replacing = why != RENEWAL
        self._state = SessionState.REPLACING if replacing else SessionState.RENEWING
        log.info("getting a new Clerk session", extra={"session": old.id, "why": why})

        async def obtain() -> SessionInfo:
            return await self._obtainer.obtain(exclude=old.id)

        new = await self._attempts(obtain, first=False)
        self._count(RenewalResult.SUCCESS)
        self._counts["replacements" if replacing else "renewals"] += 1
        self._last_renewal_at = self._clock.time()
        self._switch(new, previous=old)
        await self._revoke(old)

    async def _attempts(
        self, attempt: Callable[[], Awaitable[SessionInfo]], *, first: bool
    ) -> SessionInfo:
        try:
            return await self._loop(first=first)(attempt)
        except SessionUnobtainable as exc:
            raise self.fail(exc) from None

    def _loop(self, *, first: bool) -> AsyncRetrying:
        def transient(exc: BaseException) -> bool:
            return is_transient(exc) and not (first and fatal_at_start(exc))

        return retry.retrying(
            sleep=self._clock.sleep,
            transient=transient,
            wait=SessionWait(
                rand=self._rng.random, cap_s=self._max_backoff_s, time_left_s=self._time_left
            ),
            before_sleep=self._failed,
            stop=retry.Deadline(self._clock, self._startup_timeout_s)
            if first
            else retry.stop_never,
        )

    def _time_left(self) -> float | None:
        session = self._current
        if session is None or not self._usable:
            return None
        return session.ends_at - self._clock.time()

    def _failed(self, state: RetryCallState) -> None:
        """``before_sleep``: count the failed attempt and say what comes next."""
        exc = retry.last_error(state)
        result = RenewalResult.REJECTED if isinstance(exc, TokenRejected) else RenewalResult.ERROR
        self._count(result)
        self._counts["failures"] += 1
        self._last_error = f"{result}: {exc}"
        if self._current is not None:
            self._state = SessionState.FAILING
        delay = state.next_action.sleep if state.next_action else 0.0
        log.warning(
            "getting a Clerk session failed; retrying",
            extra={"result": result.value, "error": str(exc), "retry_in_s": round(delay, 3)},
        )

    def _switch(self, new: SessionInfo, *, previous: SessionInfo | None) -> None:
        now = self._clock.time()
        self._current, self._usable, self._replace_why = new, True, None
        self._rand = self._rng.random()
        self._renew_at = renew_at(new, now=now, rand=self._rand, margin_s=self._margin_s)
        self._state, self._last_error = SessionState.ACTIVE, None
        if self._metrics is not None:
            self._metrics.clerk_session_expiry_timestamp_seconds.set(new.ends_at)
        log.info(
            "Clerk session in use",
            extra={
                "session": new.id,
                "obtained": new.obtained.value,
                "expires_at": new.ends_at,
                "renew_in_s": round(self._renew_at - now, 3),
                "previous": previous.id if previous else None,
            },
        )
        self._switched.set()
        self._switched = anyio.Event()

    async def _revoke(self, old: SessionInfo) -> None:
        """Revoke the old session (its minted tokens stay valid until their ``exp``)."""
        loop = retry.retrying(
            sleep=self._clock.sleep,
            transient=is_transient,
            wait=retry.EqualJitter(base_s=1.0, cap_s=5.0),
            stop=retry.stop_after_attempt(3),
        )
        try:
            await loop(self._api.revoke, old.id)
        except Exception as exc:  # it ends by itself at its lifetime; not worth stopping
            log.warning(
                "revoking the old session failed", extra={"session": old.id, "error": str(exc)}
            )
            return
        log.info(
            "old Clerk session revoked", extra={"session": old.id, "obtained": old.obtained.value}
        )

    def _count(self, result: RenewalResult) -> None:
        if self._metrics is not None:
            self._metrics.clerk_session_renewals_total.labels(result=result).inc()
