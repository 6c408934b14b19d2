"""Time as a dependency: wall-clock seconds, a monotonic clock and sleeping.

Components take a ``Clock`` instead of calling ``time`` or ``anyio.sleep`` directly, so
tests can drive refresh and backoff schedules with a fake clock, without waiting.
"""

from __future__ import annotations

import time
from typing import Protocol

import anyio

__all__ = ["Clock", "SystemClock"]


class Clock(Protocol):
    """The time source every schedule in the worker reads."""

    def time(self) -> float:
        """Wall-clock seconds since the epoch (compared with JWT ``exp``/``iat``)."""
        ...

    def monotonic(self) -> float:
        """Seconds from an arbitrary origin that never jumps (for durations)."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Suspend for ``seconds`` (returns at once for zero or less); cancellable."""
        ...


class SystemClock:
    """The real clock: ``time.time``, ``time.monotonic`` and ``anyio.sleep``."""

    def time(self) -> float:
        """Wall-clock seconds since the epoch."""
        return time.time()

    def monotonic(self) -> float:
        """Monotonic seconds."""
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        """Sleep for ``seconds`` (at least one scheduling checkpoint)."""
        await anyio.sleep(max(0.0, seconds))
