"""Per-tenant rate counters and the texts the server uses when they trip.

The real server (``supabase/realtime: lib/realtime/rate_counter.ex``,
``lib/realtime/tenants.ex``) ticks every 5 s over 12 buckets and trips on the average,
so enforcement lags by up to 5 s. Here each counter is a fixed one-second window: it
trips as soon as the count in the current window reaches the limit and stays tripped for
the rest of that window and the next one. That is quicker to trip than the real server
(tests need no 60 s warm-up) and documented as such; the texts are the server's.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

CHANNELS_PER_SOCKET = "ChannelRateLimitReached: Too many channels"
JOINS_PER_SECOND = "ClientJoinRateLimitReached: Too many joins per second"
JOINS_PER_SECOND_CONNECT = "Too many joins per second"
EVENTS_PER_SECOND = "Too many messages per second"
TRACK_TOO_LARGE = "Track message size exceeded"


class WindowCounter:
    """Counts events in one-second windows; ``tripped`` once a window reaches ``limit``."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._window = -1
        self._count = 0
        self._tripped_until = -1

    def _roll(self) -> int:
        window = math.floor(self._clock())
        if window != self._window:
            self._window, self._count = window, 0
        return window

    def add(self, limit: int, n: int = 1) -> bool:
        """Count ``n`` events; True if the counter is (now) tripped."""
        window = self._roll()
        self._count += n
        if self._count >= limit:
            self._tripped_until = window + 1
        return self.tripped()

    def tripped(self) -> bool:
        """Whether the limit was reached in this window or the previous one."""
        return self._roll() <= self._tripped_until

    def trip(self, seconds: float = 1.0) -> None:
        """Force the tripped state (control surface)."""
        self._tripped_until = self._roll() + max(1, math.ceil(seconds))

    def reset(self) -> None:
        self._count, self._tripped_until = 0, -1


class TenantLimits:
    """The tenant's counters: joins/s and events/s (client sends and every delivery)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.joins = WindowCounter(clock)
        self.events = WindowCounter(clock)
