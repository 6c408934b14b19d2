"""The heartbeat watchdog: notices a stalled socket (TCP open, nothing arriving).

The client sends Phoenix heartbeats at most every 15 s (``max(hb_interval, 15)``) and
ignores their replies, so a stall is only noticed by websockets' keepalive after 20 s +
20 s. The watchdog sends its own heartbeat every ``interval_s`` and is told of every frame
received; a heartbeat left unanswered while nothing arrived for two intervals means the
socket is dead. Time is the injected clock's monotonic time.
"""

from __future__ import annotations

from contextlib import suppress

import anyio
from realtime import AsyncRealtimeClient
from realtime.message import Message
from websockets.asyncio.client import ClientConnection

from worker.clock import Clock

__all__ = ["Watchdog", "abandon"]

_HEARTBEAT = Message(topic="phoenix", event="heartbeat", payload={}, ref=None).model_dump_json()


class Watchdog:
    """Tracks silence on the current socket; ``probe()`` sends heartbeats and judges."""

    def __init__(self, clock: Clock, interval_s: float) -> None:
        self._clock = clock
        self.interval_s = interval_s
        self.heartbeats_sent = 0
        self._last_frame_at = clock.monotonic()  # or the time the current socket opened
        self._last_probe_at = -interval_s  # the first probe sends a heartbeat at once
        self._pending_since: float | None = None  # oldest heartbeat no frame followed

    def frame_seen(self) -> None:
        """A frame arrived on the current socket (or a new socket opened)."""
        self._last_frame_at = self._clock.monotonic()
        self._pending_since = None

    def no_socket(self) -> None:
        """There is no socket: nothing is pending."""
        self._pending_since = None

    async def probe(self, ws: ClientConnection, *, timeout_s: float = 1.0) -> float | None:
        """The seconds of silence when the socket is stalled, else None (a heartbeat is
        sent on ``ws`` when one is due)."""
        now = self._clock.monotonic()
        silence = now - self._last_frame_at
        pending = self._pending_since
        interval = self.interval_s
        if pending is not None and now - pending >= interval and silence >= 2 * interval:
            return silence
        if now - self._last_probe_at >= interval:
            self._last_probe_at = now
            if self._pending_since is None:
                self._pending_since = now
            await _send_heartbeat(ws, timeout_s)
            self.heartbeats_sent += 1
        return None


async def _send_heartbeat(ws: ClientConnection, timeout_s: float) -> None:
    """One Phoenix heartbeat on ``ws``, bounded; a failure is the listen task's to report."""
    with anyio.move_on_after(timeout_s), suppress(Exception):
        await ws.send(_HEARTBEAT)


def abandon(client: AsyncRealtimeClient) -> None:
    """Cut a stalled client's socket at once, and keep the client from reconnecting.

    A close handshake would wait for a peer that answers nothing, and the socket must not
    come back to life when the network does (its channels would deliver every event twice).
    """
    client.auto_reconnect = False
    ws = client._ws_connection
    if ws is not None:
        ws.transport.abort()
