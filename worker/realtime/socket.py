"""The socket half of supervision: keep one Realtime socket connected and alive.

Per tick it repairs what the official client will not: a listen task that died while the
socket is up (rebuild the client), a stalled socket (heartbeats unanswered: rebuild), a
client whose own reconnect loop gave up (reconnect with our capped, jittered backoff). It
counts every loss the client recovered from by itself. What happens to channels is the
supervisor's: it hears of it through the three hooks.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable

from worker.errors import RealtimeError
from worker.realtime.link import RealtimeLink, ReconnectReason, SupervisorTiming, retry_delay

__all__ = ["SocketKeeper"]

_log = logging.getLogger("worker.realtime.supervisor")


class SocketKeeper:
    """Repairs the socket once per ``repair()``; see the module docstring."""

    def __init__(
        self,
        link: RealtimeLink,
        timing: SupervisorTiming,
        *,
        reconnected: Callable[[ReconnectReason], None],
        rebuilt: Callable[[], None],
        went_down: Callable[[], None],
        lost: Callable[[], None],
        rng: random.Random | None = None,
    ) -> None:
        self._link = link
        self._t = timing
        self._reconnected = reconnected
        self._rebuilt = rebuilt  # every channel is gone with the old client
        self._went_down = went_down  # the client is reconnecting: channels errored
        self._lost = lost  # the client recovered a loss by itself: channels rejoined
        self._rng = rng
        self._failures = 0
        self._next_at = 0.0
        self._was_connected = False
        self._losses_seen = 0  # link.socket_losses already counted

    async def repair(self, now: float) -> bool:
        """One pass; True when the socket is up and alive (channels may be repaired)."""
        link = self._link
        if link.is_connected and not link.listener_alive:
            _log.error("the Realtime listener died while connected; rebuilding the client")
            await self._rebuild(ReconnectReason.ERROR)
        self._count_losses()
        if link.is_connected:
            silent_s = await link.check_heartbeat()
            if silent_s is not None:
                # TCP still open, nothing arriving (a network stall): websockets' keepalive
                # would take 40 s to notice. The adapter has cut the socket; start over.
                _log.warning(
                    "nothing received from Realtime for %.1fs (heartbeats unanswered): the "
                    "connection is stalled; reconnecting on a new socket",
                    silent_s,
                )
                await self._rebuild(ReconnectReason.HEARTBEAT_TIMEOUT)
                return False
            self._was_connected = True
            return True
        if self._was_connected:
            self._was_connected = False
            _log.warning("the Realtime socket is down; the client is reconnecting")
            self._went_down()
        if link.is_reconnecting or now < self._next_at:
            return False
        return await self._connect(now)

    async def _rebuild(self, reason: ReconnectReason) -> None:
        self._reconnected(reason)
        await self._link.rebuild(timeout_s=self._t.leave_timeout_s)
        self._was_connected = False
        self._rebuilt()

    async def _connect(self, now: float) -> bool:
        gave_up = self._link.give_up_error()
        if gave_up is not None:
            _log.warning("the Realtime client stopped reconnecting (%s); reconnecting", gave_up)
            self._reconnected(ReconnectReason.ERROR)
        try:
            await self._link.connect(self._t.connect_timeout_s)
        except RealtimeError as exc:
            self._failures += 1
            delay = retry_delay(None, self._failures, self._t, self._rng)
            self._next_at = now + delay
            _log.warning("Realtime connect failed (%s); next attempt in %.1fs", exc, delay)
            return False
        _log.info("connected to Realtime")
        self._failures = 0
        self._was_connected = True
        return True

    def _count_losses(self) -> None:
        # The client reconnects by itself, often within one tick; the link counts each loss.
        losses = self._link.socket_losses
        for _ in range(losses - self._losses_seen):
            self._reconnected(ReconnectReason.CLOSED)
        if losses > self._losses_seen:
            self._lost()
        self._losses_seen = losses
