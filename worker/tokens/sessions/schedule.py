"""When to renew a session, and how long to wait after a failed attempt.

``renewal_margin`` and ``renew_at`` are pure functions of numbers (like
``tokens.schedule.refresh_at``): every input that varies (now, the random draw) is a
parameter. ``SessionWait`` is the keeper's retry ``wait`` over ``retry.bounded_delay``.
"""

from __future__ import annotations

from collections.abc import Callable

from tenacity import RetryCallState
from tenacity.wait import wait_base

from worker import retry
from worker.errors import TokenUnavailable
from worker.tokens.sessions.model import SessionInfo

__all__ = ["MAX_RENEWAL_MARGIN_S", "SessionWait", "renew_at", "renewal_margin"]

#: The renewal margin is a fifth of the session's lifetime, but never more than a day.
RENEWAL_LIFETIME_FRACTION = 0.2
MAX_RENEWAL_MARGIN_S = 24 * 3600.0
#: Renewals are pulled earlier by up to this fraction of the margin, so a fleet started
#: together does not renew together.
JITTER_MARGIN_FRACTION = 0.5
#: Never retry sooner than this: Frontend API sign-ins are limited to 5 per 10 s per IP.
MIN_RETRY_S = 1.0


def renewal_margin(lifetime_s: float, margin_s: float | None = None) -> float:
    """``margin_s`` when set, else a fifth of the lifetime, at most 24 h."""
    if margin_s is not None:
        return margin_s
    return min(MAX_RENEWAL_MARGIN_S, RENEWAL_LIFETIME_FRACTION * max(0.0, lifetime_s))


def renew_at(session: SessionInfo, *, now: float, rand: float, margin_s: float | None) -> float:
    """The wall-clock time at which to get the next session: ``ends_at - margin``,
    pulled earlier by up to half the margin times ``rand`` (in ``[0, 1]``), never before
    ``now``."""
    margin = renewal_margin(session.lifetime_s, margin_s)
    jitter = JITTER_MARGIN_FRACTION * margin * min(1.0, max(0.0, rand))
    return max(now, session.ends_at - margin - jitter)


class SessionWait(wait_base):
    """``wait``: ``retry.bounded_delay`` after each failure (at most a third of the time
    the current session has left, ``time_left_s()``), never sooner than ``MIN_RETRY_S``
    nor than the ``Retry-After`` Clerk sent with the failure."""

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
            base_s=MIN_RETRY_S,
            cap_s=self._cap_s,
            time_left_s=self._time_left_s(),
            retry_after_s=exc.retry_after_s if isinstance(exc, TokenUnavailable) else None,
            min_s=MIN_RETRY_S,
        )
