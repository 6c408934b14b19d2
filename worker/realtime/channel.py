"""One joined channel of the official client, as the adapter hands it to the supervisor.

``ChannelHandle`` is one generation of one channel: the client's channel object and what
the server said about it. ``install_stale_close_guard`` drops close/error frames from an
older join of the same topic (the client routes frames by topic only). Private API of the
client used here (pinned, see ``adapter.py``): ``channel._handle_message`` and
``channel.join_push.ref``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from contextlib import suppress
from typing import Any

import anyio
from realtime import AsyncRealtimeChannel, AsyncRealtimeClient, RealtimeSubscribeStates
from realtime.message import ChannelCloseMessage, ChannelErrorMessage, ServerMessage
from realtime.types import RealtimeChannelOptions

__all__ = [
    "ChannelHandle",
    "MessageSink",
    "channel_options",
    "close_client",
    "install_stale_close_guard",
]

_log = logging.getLogger("worker.realtime")

MessageSink = Callable[[str, Mapping[str, Any]], None]


class ChannelHandle:
    """One generation of one channel: its client object and what the server said."""

    def __init__(self, topic: str, channel: AsyncRealtimeChannel, sink: MessageSink) -> None:
        self.topic = topic
        self.channel = channel
        self.status: str | None = None
        self.last_error: str | None = None
        self.left_by_us = False
        self.stale_dropped = 0
        self._sink = sink

    @property
    def state(self) -> str:
        """The client's channel state: closed, joining, joined, errored or leaving."""
        return str(self.channel.state.value)

    def on_status(self, status: RealtimeSubscribeStates, error: Exception | None) -> None:
        """Subscribe callback: record the status and the server's reason; never raises."""
        try:
            self.status = str(status.value)
            if error is not None:
                self.last_error = _reason_text(error)
        except Exception:
            _log.exception("channel status callback failed")

    async def leave(self, *, timeout_s: float) -> None:
        """Leave the channel (``phx_leave``), bounded; the reply is not awaited."""
        self.left_by_us = True
        if self.channel.is_leaving or self.channel.is_closed:
            return
        with anyio.move_on_after(timeout_s), suppress(Exception):
            await self.channel.unsubscribe()

    def on_broadcast(self, message: Mapping[str, Any]) -> None:
        """Broadcast callback: hand the frame to the intake; never raises."""
        try:
            self._sink(self.channel.topic, message)
        except Exception:
            _log.exception("broadcast sink failed")


def _reason_text(error: Exception) -> str:
    """The server's reason/message out of the client's ``Exception(json.dumps(payload))``."""
    text = str(error) or type(error).__name__
    with suppress(ValueError):
        payload = json.loads(text)
        if isinstance(payload, dict):
            return str(payload.get("reason") or payload.get("message") or text)
    return text


def install_stale_close_guard(handle: ChannelHandle) -> None:
    """Drop close/error frames from an older join of the same topic (client routes by topic).

    Private API (realtime==2.34.1): ``_handle_message`` is what the client's listen task
    calls for every frame of this topic; ``join_push.ref`` is the current join's ref.
    """
    channel = handle.channel
    original = channel._handle_message

    def guarded(message: ServerMessage) -> None:
        if isinstance(message, ChannelCloseMessage | ChannelErrorMessage):
            current = channel.join_push.ref
            if message.ref is not None and message.ref != current:
                handle.stale_dropped += 1
                _log.info(
                    "ignored a stale %s for %s (ref %s, current join ref %s)",
                    message.event,
                    channel.topic,
                    message.ref,
                    current,
                )
                return
        try:
            original(message)
        except Exception:
            # The client would let this end its listen task and stop all delivery.
            _log.exception("the realtime client failed on a frame for %s", channel.topic)

    channel._handle_message = guarded  # type: ignore[method-assign]


def channel_options() -> RealtimeChannelOptions:
    # self=False: our own broadcasts must not come back to us as events.
    return {
        "config": {
            "broadcast": {"ack": False, "self": False},
            "presence": {"key": "", "enabled": False},
            "private": True,
        }
    }


async def close_client(client: AsyncRealtimeClient, timeout_s: float) -> None:
    """Leave every channel, then close the socket, each step bounded and shielded."""
    with anyio.move_on_after(timeout_s, shield=True):
        for channel in list(client.channels.values()):
            with suppress(Exception):
                await channel.unsubscribe()
    with anyio.move_on_after(timeout_s, shield=True), suppress(Exception):
        await client.close()
