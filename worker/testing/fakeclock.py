"""``FakeClock``: a ``Clock`` for tests, in manual or autojump mode."""

from __future__ import annotations

import anyio
import anyio.lowlevel

__all__ = ["FakeClock"]


class FakeClock:
    """A ``worker.clock.Clock`` whose time moves only when the test (or autojump) says so.

    Wall time (``time()``) and ``monotonic()`` start at the given values and always move
    together. Every ``sleep`` request is appended to ``sleeps``, whatever the mode.

    * Manual (the default): time stands still. ``sleep(s)`` suspends until ``advance``
      has moved the clock ``s`` seconds on; ``wait_sleeping(n)`` waits, without time
      passing, until ``n`` tasks are asleep; ``next_wake_in()`` tells when the next wakes.
    * ``autojump=True``: ``sleep(s)`` moves the clock ``s`` seconds on at once (waking
      manual sleepers whose time has come) and yields once, so schedules and backoffs
      run at full speed and a test reads what they asked for from ``sleeps``.

    A sleep of zero or less only yields, and is recorded as asked.
    """

    def __init__(
        self,
        *,
        wall: float = 1_800_000_000.0,
        monotonic: float = 1_000.0,
        autojump: bool = False,
    ) -> None:
        self._wall = wall
        self._monotonic = monotonic
        self.autojump = autojump
        self.sleeps: list[float] = []
        self._sleepers: list[tuple[float, anyio.Event]] = []
        self._new_sleeper = anyio.Event()

    def time(self) -> float:
        """Wall-clock seconds since the epoch."""
        return self._wall

    def monotonic(self) -> float:
        """Monotonic seconds."""
        return self._monotonic

    async def sleep(self, seconds: float) -> None:
        """Record ``seconds``; then wait for ``advance`` (manual) or jump there (autojump)."""
        self.sleeps.append(seconds)
        if seconds <= 0 or self.autojump:
            self.advance(max(0.0, seconds))
            await anyio.lowlevel.checkpoint()
            return
        entry = (self._monotonic + seconds, anyio.Event())
        self._sleepers.append(entry)
        self._new_sleeper.set()
        try:
            await entry[1].wait()
        finally:
            if entry in self._sleepers:
                self._sleepers.remove(entry)

    def advance(self, seconds: float) -> None:
        """Move both clocks ``seconds`` on and wake every sleeper whose time has come."""
        if seconds < 0:
            raise ValueError("time never goes back: advance by zero or more seconds")
        self._wall += seconds
        self._monotonic += seconds
        for entry in [e for e in self._sleepers if e[0] <= self._monotonic]:
            self._sleepers.remove(entry)
            entry[1].set()

    @property
    def sleeping(self) -> int:
        """How many tasks are asleep on this clock (always 0 in autojump mode)."""
        return len(self._sleepers)

    async def wait_sleeping(self, count: int = 1) -> None:
        """Wait, without time passing, until at least ``count`` tasks are asleep."""
        while len(self._sleepers) < count:
            self._new_sleeper = anyio.Event()
            await self._new_sleeper.wait()

    def next_wake_in(self) -> float:
        """Seconds until the earliest sleeper wakes; ``LookupError`` if none sleeps."""
        if not self._sleepers:
            raise LookupError("no task is asleep on this clock")
        return min(deadline for deadline, _ in self._sleepers) - self._monotonic
