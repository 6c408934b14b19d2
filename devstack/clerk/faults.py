"""Failure injection and rate limiting for the BAPI routes.

Injected faults are a FIFO: each token request takes the next one, so a test can
script "two 503s, then a hang, then normal answers". Hangs wait on a release event
as well as their timer, so stopping the server never waits for a sleeping handler.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from aiohttp import web

from devstack.clerk import errors

HangEnd = Literal["answer", "drop"]


@dataclass(frozen=True)
class Fault:
    """One scripted answer: an error ``status`` or, when ``status`` is None, a hang."""

    status: int | None = None
    retry_after_s: int | None = None
    hang_s: float = 0.0
    then: HangEnd = "answer"


class Faults:
    """Scripted faults for token requests, and a per-instance BAPI request budget."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._queue: deque[Fault] = deque()
        self._release = asyncio.Event()
        self._budget: int | None = None
        self._window_s = 10.0
        self._window_start = 0.0
        self._window_count = 0

    def fail_next(self, count: int, status: int, retry_after_s: int | None = None) -> None:
        """Answer the next ``count`` token requests with ``status`` (429: with Retry-After)."""
        if not 400 <= status <= 599:
            raise ValueError(f"status must be an HTTP error status, got {status}")
        self._queue.extend(Fault(status=status, retry_after_s=retry_after_s) for _ in range(count))

    def hang_next(self, count: int, seconds: float, then: HangEnd = "answer") -> None:
        """Hold the next ``count`` token requests for ``seconds``, then answer or drop."""
        self._queue.extend(Fault(hang_s=seconds, then=then) for _ in range(count))

    def clear(self) -> None:
        """Forget scripted faults and end running hangs now."""
        self._queue.clear()
        self._release.set()
        self._release = asyncio.Event()

    async def before_token_request(self, request: web.Request) -> None:
        """Play the next scripted fault, if any: raise, hang, or drop the connection."""
        if not self._queue:
            return
        fault = self._queue.popleft()
        if fault.status is not None:
            raise errors.for_status(fault.status, fault.retry_after_s)
        release = self._release
        with contextlib.suppress(TimeoutError):  # the timer ran out: the usual end
            await asyncio.wait_for(release.wait(), timeout=fault.hang_s)
        if fault.then == "drop" and request.transport is not None:
            # No HTTP answer at all: the client sees the connection close.
            request.transport.close()

    def set_rate_limit(self, requests: int | None, window_s: float = 10.0) -> None:
        """Allow ``requests`` BAPI calls per fixed window (None: unlimited, the default)."""
        self._budget = requests
        self._window_s = window_s
        self._window_start = self._clock()
        self._window_count = 0

    def check_rate(self) -> None:
        """Count one BAPI request; 429 with Retry-After once the window's budget is spent."""
        if self._budget is None:
            return
        now = self._clock()
        if now - self._window_start >= self._window_s:
            self._window_start, self._window_count = now, 0
        self._window_count += 1
        if self._window_count > self._budget:
            wait_s = max(1, math.ceil(self._window_start + self._window_s - now))
            raise errors.for_status(429, wait_s)
