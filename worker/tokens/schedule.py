"""When to refresh a token: a pure function of numbers (the retry schedule is in ``worker.retry``).

Every input that varies (now, the random draw) is a parameter, so tests check the schedule
with plain numbers and the token manager stays free of arithmetic.
"""

from __future__ import annotations

__all__ = ["MAX_LIFETIME_FRACTION", "refresh_at"]

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
