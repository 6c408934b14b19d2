"""A sliding-window request limit per key (the Frontend API's sign-ins per IP).

Clerk documents "5 sign-ins per 10 seconds per IP" (system limits); a refused attempt
answers 429 ``too_many_requests`` with ``Retry-After``: the whole seconds until the
oldest counted attempt leaves the window.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable

from devstack.clerk import errors


class SlidingWindow:
    """At most ``limit`` hits per key within any ``window_s``; None lifts the limit."""

    def __init__(self, clock: Callable[[], float], limit: int | None, window_s: float) -> None:
        self._clock = clock
        self._hits: dict[str, deque[float]] = {}
        self.configure(limit, window_s)

    def configure(self, limit: int | None, window_s: float) -> None:
        """Set a new limit and window, forgetting past hits."""
        if limit is not None and limit < 1:
            raise ValueError(f"limit must be at least 1 or None, got {limit}")
        if not window_s > 0:
            raise ValueError(f"window must be positive, got {window_s}")
        self.limit, self.window_s = limit, window_s
        self._hits.clear()

    def hit(self, key: str) -> None:
        """Count one attempt by ``key``; 429 with Retry-After when the window is full.

        Refused attempts are not counted, so a client that honours Retry-After gets in.
        """
        if self.limit is None:
            return
        now = self._clock()
        hits = self._hits.setdefault(key, deque())
        while hits and hits[0] <= now - self.window_s:
            hits.popleft()
        if len(hits) >= self.limit:
            wait_s = max(1, math.ceil(hits[0] + self.window_s - now))
            raise errors.for_status(429, wait_s)
        hits.append(now)
