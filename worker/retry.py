"""Retrying: the backoff schedules (pure functions of numbers) and the one retry loop.

Schedules say *how long* to wait; they take every varying input (the attempt number, the
random draw, the time left) as a parameter, so tests check them with plain numbers:

* ``equal_jitter``: the capped exponential step, half fixed and half random;
* ``backoff_delay``: that step with a floor, for the state machines that schedule their own
  next attempt (the supervisor's per-channel repairs, the dispatcher's re-queue);
* ``bounded_delay``: the token's schedule, at most a third of the time the current token
  has left, and never earlier than a server's ``Retry-After``.

``retrying(...)`` is the loop every component that retries *in place* uses: a
``tenacity.AsyncRetrying`` whose ``sleep`` is the injected clock's (or an interruptible
wait), whose ``wait`` is one of the strategies below over these schedules, whose ``retry``
predicate comes from ``worker.errors.is_transient`` (what is transient is decided once,
next to the errors), and whose ``before_sleep`` hook logs and counts. It re-raises the last
error when it stops, never a ``tenacity.RetryError``.

To add a policy: a ``wait`` strategy here (a small class over a schedule function) and a
``stop`` condition when the loop must give up; the component passes its own hooks.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    stop_never,
)
from tenacity.stop import stop_base
from tenacity.wait import wait_base

from worker.clock import Clock

__all__ = [
    "Deadline",
    "EqualJitter",
    "RequestedOr",
    "backoff_delay",
    "bounded_delay",
    "equal_jitter",
    "last_error",
    "retrying",
    "stop_after_attempt",
    "stop_never",
]


def equal_jitter(attempt: int, *, base_s: float, cap_s: float, unit: float) -> float:
    """The capped exponential step for ``attempt``, half fixed and half scaled by ``unit``
    (in [0, 1]). The exponent is clamped so that huge attempt counts cannot overflow."""
    step = min(cap_s, base_s * 2.0 ** max(0, min(attempt - 1, 32)))
    return step / 2 + min(max(unit, 0.0), 1.0) * step / 2


def backoff_delay(
    attempt: int,
    *,
    base_s: float,
    cap_s: float,
    floor_s: float = 0.0,
    rng: random.Random | None = None,
) -> float:
    """Seconds to wait before retry number ``attempt`` (1-based).

    The exponential step ``base_s * 2**(attempt-1)`` is capped at ``cap_s`` and then
    jittered down to between half and all of itself ("equal jitter"), so a fleet of workers
    that failed together does not retry together, while the wait never collapses to zero.
    ``floor_s`` is a hard minimum applied after jitter (servers that rate-limit say how
    long they want us to stay away).
    """
    return max(
        floor_s, equal_jitter(attempt, base_s=base_s, cap_s=cap_s, unit=(rng or _RNG).random())
    )


def bounded_delay(
    attempt: int,
    *,
    rand: float,
    base_s: float = 0.5,
    cap_s: float = 30.0,
    time_left_s: float | None = None,
    retry_after_s: float | None = None,
    min_s: float = 0.1,
) -> float:
    """Seconds to wait before retry number ``attempt`` (1 for the first retry).

    Exponential (``base_s * 2**(attempt-1)``, capped at ``cap_s``) with "equal jitter" (half
    fixed, half ``rand``-scaled). While the current token is still valid (``time_left_s >
    0``) the delay is at most a third of the time left, so several retries fit before it
    expires. A server's ``retry_after_s`` is always honoured, even past that bound: retrying
    a rate limit early only extends it.
    """
    delay = equal_jitter(attempt, base_s=base_s, cap_s=cap_s, unit=min(1.0, max(0.0, rand)))
    if time_left_s is not None and time_left_s > 0:
        delay = min(delay, max(min_s, time_left_s / 3))
    if retry_after_s is not None:
        delay = max(delay, retry_after_s)
    return max(min_s, delay)


# Jitter needs no cryptographic quality; one shared generator avoids reseeding per call.
_RNG = random.Random()  # noqa: S311


def last_error(state: RetryCallState) -> BaseException | None:
    """The exception of the attempt that just failed (None after a success)."""
    outcome = state.outcome
    return None if outcome is None else outcome.exception()


class EqualJitter(wait_base):
    """``wait`` strategy: ``backoff_delay`` of the number of failures so far."""

    def __init__(self, *, base_s: float, cap_s: float, rng: random.Random | None = None) -> None:
        self.base_s, self.cap_s, self.rng = base_s, cap_s, rng

    def __call__(self, retry_state: RetryCallState) -> float:
        return backoff_delay(
            retry_state.attempt_number, base_s=self.base_s, cap_s=self.cap_s, rng=self.rng
        )


class RequestedOr(wait_base):
    """``wait`` strategy: the delay the failure itself asks for (``requested(exc)``, e.g. a
    handler's ``Retry(after_s=...)``), else ``fallback``'s."""

    def __init__(
        self, requested: Callable[[BaseException], float | None], fallback: wait_base
    ) -> None:
        self._requested, self._fallback = requested, fallback

    def __call__(self, retry_state: RetryCallState) -> float:
        exc = last_error(retry_state)
        delay = None if exc is None else self._requested(exc)
        return self._fallback(retry_state) if delay is None else max(0.0, delay)


class Deadline(stop_base):
    """``stop`` condition: give up once ``limit_s`` have passed on ``clock`` since creation
    (tenacity's own ``stop_after_delay`` reads the real monotonic clock)."""

    def __init__(self, clock: Clock, limit_s: float) -> None:
        self._clock = clock
        self._until = clock.monotonic() + limit_s

    def __call__(self, retry_state: RetryCallState) -> bool:
        return self._clock.monotonic() >= self._until


def retrying(
    *,
    sleep: Callable[[float], Awaitable[None]],
    transient: Callable[[BaseException], bool],
    wait: wait_base,
    before_sleep: Callable[[RetryCallState], None] | None = None,
    before: Callable[[RetryCallState], None] | None = None,
    stop: stop_base = stop_never,
) -> AsyncRetrying:
    """The retry loop: ``await retrying(...)(step)`` runs ``step()`` until it returns.

    An error for which ``transient`` is false, or any error once ``stop`` says so, is raised
    as itself. ``before`` runs before every attempt; ``before_sleep`` after a failure that
    will be retried, with ``state.next_action.sleep`` the wait about to start.
    """
    return AsyncRetrying(
        sleep=sleep,
        stop=stop,
        wait=wait,
        retry=retry_if_exception(transient),
        before=before or _nothing,
        before_sleep=before_sleep,
        reraise=True,
    )


def _nothing(_state: RetryCallState) -> None:
    return None
