"""When to refresh a token, and how long to wait after a failed refresh.

``refresh_at`` is a pure function of numbers: every input that varies (now, the random
draw) is a parameter, so tests check the schedule with plain numbers and the token
manager stays free of arithmetic. ``TokenWait`` is the retry loop's ``wait`` strategy over
``retry.bounded_delay``.
"""

from __future__ import annotations

from collections.abc import Callable

from tenacity import RetryCallState
from tenacity.wait import wait_base

from worker import retry
from worker.errors import TokenUnavailable

__all__ = ["MAX_LIFETIME_FRACTION", "TokenWait", "refresh_at"]

#: Never wait past this fraction of a token's lifetime: a short token with a large margin
#: still gets refreshed with room for a few retries before it expires.
MAX_LIFETIME_FRACTION = 0.8
#: Jitter spreads refreshes of many workers; it is at most this fraction of the lifetime.
JITTER_LIFETIME_FRACTION = 0.1


def refresh_at(
    *,
    issued_at: float,
    expires_at: float,
    now: float,
    margin_s: float,
    rand: float,
    max_jitter_s: float = 5.0,
) -> float:
    """The wall-clock time at which to mint the next token.

    ``expires_at - margin_s``, but no later than ``MAX_LIFETIME_FRACTION`` of the lifetime,
    pulled earlier by up to ``min(max_jitter_s, 10% of the lifetime) * rand`` (``rand`` in
    ``[0, 1)``), and never before ``now``.
    """
    lifetime = max(0.0, expires_at - issued_at)
    target = min(expires_at - margin_s, issued_at + MAX_LIFETIME_FRACTION * lifetime)
    jitter = min(max_jitter_s, JITTER_LIFETIME_FRACTION * lifetime) * _unit(rand)
    return max(now, target - jitter)


def _unit(rand: float) -> float:
    """Clamp a random draw into ``[0, 1]`` so a bad caller cannot produce odd schedules."""
    return min(1.0, max(0.0, rand))


class TokenWait(wait_base):
    """``wait``: ``retry.bounded_delay`` after each failure, at most a third of the time the
    current token has left (``time_left_s()``, None without a token), and never earlier
    than the ``Retry-After`` Clerk sent with the failure."""

    def __init__(
        self,
        *,
        rand: Callable[[], float],
        cap_s: float,
        time_left_s: Callable[[], float | None],
    ) -> None:
        self._rand, self._cap_s, self._time_left_s = rand, cap_s, time_left_s

    def __call__(self, retry_state: RetryCallState) -> float:
        exc = retry.last_error(retry_state)
        return retry.bounded_delay(
            retry_state.attempt_number,
            rand=self._rand(),
            cap_s=self._cap_s,
            time_left_s=self._time_left_s(),
            retry_after_s=exc.retry_after_s if isinstance(exc, TokenUnavailable) else None,
        )
