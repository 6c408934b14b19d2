"""Hand the newest value to async listeners without ever blocking the publisher.

Each listener has its own delivery slot: at most one call in flight, bounded by a timeout;
values published meanwhile collapse into one call with the newest value. So a listener
stuck on a dying socket (``set_auth``, pitfalls.md #13) delays neither the publisher nor
the other listeners.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

import anyio
from anyio.abc import TaskGroup

__all__ = ["Fanout"]

log = logging.getLogger("worker.tokens")

T = TypeVar("T")


@dataclass
class _Slot(Generic[T]):
    listener: Callable[[T], Awaitable[None]]
    busy: bool = False
    pending: bool = False


class Fanout(Generic[T]):
    """Delivers each published value to every listener; calls run in ``attach``'s group."""

    def __init__(self, timeout_s: float) -> None:
        self._timeout_s = timeout_s
        self._slots: list[_Slot[T]] = []
        self._tg: TaskGroup | None = None
        self._latest: T | None = None
        self.timeouts = 0
        self.errors = 0

    def __len__(self) -> int:
        return len(self._slots)

    def add(self, listener: Callable[[T], Awaitable[None]]) -> None:
        """Register ``listener`` for values published from now on."""
        self._slots.append(_Slot(listener))

    def attach(self, tg: TaskGroup) -> None:
        """Run deliveries in ``tg`` from now on (values published before stay queued)."""
        self._tg = tg

    def publish(self, value: T) -> None:
        """Deliver ``value`` to every listener; never waits."""
        self._latest = value
        if self._tg is None:
            return
        for slot in self._slots:
            if slot.busy:
                slot.pending = True
            else:
                slot.busy = True
                self._tg.start_soon(self._deliver, slot)

    async def _deliver(self, slot: _Slot[T]) -> None:
        try:
            while True:
                slot.pending = False
                if self._latest is not None:
                    await self._call(slot.listener, self._latest)
                if not slot.pending:
                    return
        finally:
            slot.busy = False

    async def _call(self, listener: Callable[[T], Awaitable[None]], value: T) -> None:
        name = getattr(listener, "__qualname__", type(listener).__name__)
        with anyio.move_on_after(self._timeout_s) as scope:
            try:
                await listener(value)
            except Exception:  # a listener's bug must not end token refreshing
                self.errors += 1
                log.exception("token listener failed", extra={"listener": name})
        if scope.cancelled_caught:
            self.timeouts += 1
            log.warning(
                "token listener timed out", extra={"listener": name, "timeout_s": self._timeout_s}
            )
