"""When to refresh a token and how long to back off: pure functions of numbers.

Every input that varies (now, the random draw) is a parameter, so tests check the schedule
with plain numbers and the token manager stays free of arithmetic.
"""

from __future__ import annotations

from worker._backoff import equal_jitter

__all__ = ["MAX_LIFETIME_FRACTION", "backoff_delay", "refresh_at"]

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


def backoff_delay(
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
    delay = equal_jitter(attempt, base_s=base_s, cap_s=cap_s, unit=_unit(rand))
    if time_left_s is not None and time_left_s > 0:
        delay = min(delay, max(min_s, time_left_s / 3))
    if retry_after_s is not None:
        delay = max(delay, retry_after_s)
    return max(min_s, delay)


def _unit(rand: float) -> float:
    """Clamp a random draw into ``[0, 1]`` so a bad caller cannot produce odd schedules."""
    return min(1.0, max(0.0, rand))
