"""When a lease holder must have stopped, and how often to ask: pure functions of numbers.

The database alone judges expiry: it sets ``expires_at`` to its own clock when it handles
a take or a renewal, plus the lifetime. The holder only knows when it *sent* the request,
by its own monotonic clock, which is no later than when the database handled it. So the
lease cannot expire before ``sent_at + ttl`` as the database counts; a holder whose clock
runs up to ``SAFETY_SHARE`` faster or slower than the database's still sees that moment
no sooner than ``sent_at + ttl * (1 - SAFETY_SHARE)`` by its own clock, and stops there.
The same share leaves time to cancel what is in flight before the database could let a
standby take over.
"""

from __future__ import annotations

__all__ = ["MAX_STANDBY_POLL_S", "SAFETY_SHARE", "hold_until", "retry_renew_s", "standby_poll_s"]

#: The share of the lifetime a holder gives up: clock rates a few percent apart, and the
#: time it takes to cancel in-flight handlers.
SAFETY_SHARE = 0.1

#: A standby asks for the lease at least this often, so a released lease (a rolling
#: update) is taken within about a second whatever the renew interval.
MAX_STANDBY_POLL_S = 1.0


def hold_until(sent_at: float, ttl_s: float) -> float:
    """The holder's monotonic time by which it must have stopped acting, for a take or a
    renewal that succeeded and was sent at ``sent_at``."""
    return sent_at + ttl_s * (1.0 - SAFETY_SHARE)


def standby_poll_s(renew_s: float) -> float:
    """How long a standby waits between two attempts to take the lease."""
    return min(renew_s, MAX_STANDBY_POLL_S)


def retry_renew_s(renew_s: float, now: float, deadline: float) -> float:
    """The wait before the next renewal after a failed one: half the interval, never past
    the deadline."""
    return max(0.0, min(renew_s / 2, deadline - now))
