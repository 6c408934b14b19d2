"""Running one event's handlers: attempts, per-call timeouts, and retries in place.

``Attempts.run(event, routes)`` runs every route once; when one fails it retries, in
place, only the routes that have not yet succeeded (``retry.retrying``, entered only after
a first failure, so the hot path has no retry machinery), with capped, jittered backoff or
the wait a handler asked for with ``Retry(after_s=...)``, until ``max_attempts``.
``NonRetryable`` and exhausted retries dead-letter the event. Every handler call and every
wait runs in a cancel scope in ``in_flight``, which ``Dispatcher.drain()`` cancels when
the grace period ends (``Cancelled``).

A route's own ``Policy`` (``on(..., timeout_s=, max_attempts=, payload=)``) is read from
the route per call: one attribute lookup, no per-event work beyond it. A payload that does
not match the route's model fails as ``NonRetryable`` naming the invalid fields (never
their values) before the handler is called.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
from collections.abc import Callable

import anyio
from pydantic import BaseModel, ValidationError
from tenacity import AsyncRetrying, RetryCallState
from tenacity.stop import stop_base

from worker import retry
from worker.clock import Clock
from worker.context import Context
from worker.dispatch.accounting import Accounts
from worker.dispatch.outcomes import HandledResult, Outcome, event_fields
from worker.errors import NonRetryable, Retry
from worker.events import Event
from worker.registry import Route

__all__ = ["Attempts", "Cancelled", "ContextMaker"]

_log = logging.getLogger("worker.dispatch")

ContextMaker = Callable[[Event, int], Context]


class Cancelled(Exception):
    """The event's work was cancelled by ``drain()`` at the end of the grace period."""


class _Failure(Exception):
    """One failed attempt: ``kind`` is the metric label (``error``/``timeout``)."""

    def __init__(self, kind: HandledResult, cause: BaseException, limit: int) -> None:
        self.kind = kind
        self.cause = cause
        self.limit = limit  # the failing route's max_attempts
        super().__init__(f"{kind}: {cause!r}")


class Attempts:
    """One dispatcher's policy for running an event's handlers; see the module docstring."""

    def __init__(
        self,
        *,
        context: ContextMaker,
        clock: Clock,
        books: Accounts,
        timeout_s: float,
        max_attempts: int,
        backoff: tuple[float, float],
        rng: random.Random | None,
    ) -> None:
        self._context = context
        self._clock = clock
        self._books = books
        self._timeout_s = timeout_s
        self._max_attempts = max_attempts
        self._backoff = backoff
        self._rng = rng
        self.in_flight: set[anyio.CancelScope] = set()
        self.abandon = False  # set by drain(): a cancelled call is a shutdown, not a timeout

    async def run(self, event: Event, pending: list[Route]) -> tuple[Outcome, int, str | None]:
        """Run ``pending`` until all succeeded or the event is dead-lettered; the outcome,
        the number of attempts and the dead-letter reason. Raises ``Cancelled``."""
        first = await self._attempt(event, pending, 1)
        if first is None:
            return Outcome.SUCCESS, 1, None  # the hot path: no retry machinery at all
        made, count = [first], 1

        async def again() -> None:
            nonlocal count
            if made:
                raise made.pop()  # the retry loop's attempt 1 is the one just made
            count += 1
            failure = await self._attempt(event, pending, count)
            if failure is not None:
                raise failure

        try:
            await self._retry_loop(event)(again)
        except _Failure as failure:  # non-retryable, or the attempts are used up
            self._books.attempt_failed(event, failure.kind)
            return Outcome.DEAD_LETTER, count, f"{type(failure.cause).__name__}: {failure.cause}"
        return Outcome.SUCCESS, count, None

    def _retry_loop(self, event: Event) -> AsyncRetrying:
        base, cap = self._backoff
        return retry.retrying(
            sleep=self._sleep_cancellable,
            transient=_retryable,
            wait=retry.RequestedOr(
                _requested_delay, retry.EqualJitter(base_s=base, cap_s=cap, rng=self._rng)
            ),
            stop=_StopAtLimit(),
            before_sleep=lambda state: self._will_retry(event, state),
        )

    def _will_retry(self, event: Event, state: RetryCallState) -> None:
        failure = retry.last_error(state)
        if isinstance(failure, _Failure):
            self._books.attempt_failed(event, failure.kind)
        self._books.retries += 1
        delay = state.next_action.sleep if state.next_action else 0.0
        attempt = state.attempt_number
        _log.warning(
            "handler attempt %d failed (%s), retrying in %.2fs",
            attempt,
            failure,
            delay,
            extra=event_fields(event) | {"attempt": attempt},
        )

    async def _sleep_cancellable(self, seconds: float) -> None:
        """The wait between attempts, cut short by ``drain()``'s cancel (``_Cancelled``)."""
        scope = self._cancellable(float("inf"))
        try:
            with scope:
                await self._clock.sleep(seconds)
        finally:
            self.in_flight.discard(scope)
        if scope.cancelled_caught:
            raise Cancelled

    async def _attempt(self, event: Event, pending: list[Route], attempt: int) -> _Failure | None:
        """Run the still-pending routes once; drop each that succeeds from ``pending``."""
        ctx = self._context(event, attempt)
        for route in list(pending):
            policy = route.policy  # attribute reads only: this runs for every call
            timeout_s = policy.timeout_s or self._timeout_s
            given = event if policy.payload is None else _typed(event, policy.payload)
            if isinstance(given, str):  # the payload does not match: never call the handler
                return _Failure(HandledResult.ERROR, NonRetryable(given), 1)
            started = self._clock.monotonic()
            failure: _Failure | None = None
            # The event loop's clock, not self._clock: the deadline is the loop's to keep.
            scope = self._cancellable(asyncio.get_running_loop().time() + timeout_s)
            try:
                with scope:
                    await route.handler(given, ctx)
            except Exception as exc:  # a handler bug must never stop other events
                failure = _Failure(HandledResult.ERROR, exc, self._limit(route))
            finally:
                self.in_flight.discard(scope)
            self._books.observe(self._clock.monotonic() - started)
            if scope.cancelled_caught:
                if self.abandon:
                    raise Cancelled
                timeout = TimeoutError(f"the handler ran longer than {timeout_s:g}s")
                failure = _Failure(HandledResult.TIMEOUT, timeout, self._limit(route))
            if failure is not None:
                return failure
            pending.remove(route)
        return None

    def _limit(self, route: Route) -> int:
        """The route's ``max_attempts``, else the dispatcher's (read only on a failure)."""
        return route.policy.max_attempts or self._max_attempts

    def _cancellable(self, deadline: float) -> anyio.CancelScope:
        """A scope ``drain()`` can cancel, ending at ``deadline`` (loop time); the caller
        enters it and discards it from ``in_flight`` when done (no context manager
        wrapper: this runs for every handler call)."""
        scope = anyio.CancelScope(deadline=deadline)
        self.in_flight.add(scope)
        return scope


class _StopAtLimit(stop_base):
    """``stop`` condition: the failing route's own ``max_attempts`` is used up."""

    def __call__(self, retry_state: RetryCallState) -> bool:
        failure = retry.last_error(retry_state)
        limit = failure.limit if isinstance(failure, _Failure) else 1
        return retry_state.attempt_number >= limit


def _typed(event: Event, model: type[BaseModel]) -> Event | str:
    """``event`` with ``data`` the validated model, or why the payload does not match:
    field paths and messages, never values (payloads may hold personal data)."""
    try:
        return dataclasses.replace(event, data=model.model_validate(event.payload))
    except ValidationError as exc:
        problems = [
            f"{'.'.join(map(str, e['loc'])) or '(payload)'}: {e['msg']} ({e['type']})"
            for e in exc.errors(include_url=False, include_input=False, include_context=False)
        ]
        return f"payload does not match {model.__name__}: {'; '.join(problems)}"


def _retryable(exc: BaseException) -> bool:
    """A failed attempt is retried unless the handler said ``NonRetryable``."""
    return isinstance(exc, _Failure) and not isinstance(exc.cause, NonRetryable)


def _requested_delay(exc: BaseException) -> float | None:
    """The wait a handler asked for with ``Retry(after_s=...)``, if any."""
    cause = exc.cause if isinstance(exc, _Failure) else None
    return cause.after_s if isinstance(cause, Retry) else None
