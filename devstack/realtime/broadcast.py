"""Client broadcasts on a joined channel: size limit, private write check, self, ack.

Mirrors ``supabase/realtime: lib/realtime_web/channels/realtime_channel/broadcast_handler.ex``:
no payload validation; oversize is dropped (ack: ``payload_size_exceeded``); on private
channels the write check runs lazily on the first send and is cached; a denied (or
failed) write is dropped with no reply even with ``ack``; ``ack`` replies after publishing.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

from devstack.realtime.authorization import PolicyError
from devstack.realtime.pubsub import ClientBroadcast, Delivery, UserBroadcast
from devstack.realtime.serializer import Frame
from devstack.realtime.tenant import DatabaseUnavailable

if TYPE_CHECKING:
    from devstack.realtime.channel import Channel

log = logging.getLogger(__name__)


def _delivery(payload: Any) -> tuple[Delivery, int]:
    """The delivery for a pushed payload and its size in bytes."""
    if isinstance(payload, dict) and isinstance(payload.get("bytes"), bytes):
        # A V2 kind-3 push (decoded by the serializer): a user broadcast.
        data: bytes = payload["bytes"]
        user = UserBroadcast(str(payload.get("user_event", "")), data, int(payload["encoding"]))
        return user, len(data)
    return ClientBroadcast(payload), len(json.dumps(payload).encode())


async def may_write(channel: Channel, extension: str) -> bool:
    """The lazy, cached RLS write check; errors deny without caching (§8.3)."""
    if not channel.private:
        return True
    cached = channel.write_cache.get(extension)
    if cached is not None:
        return cached
    try:
        allowed = await channel.tenant.write_permission(
            channel.claims, channel.sub, extension, channel.conn.rls_headers
        )
    except (PolicyError, DatabaseUnavailable) as exc:
        log.warning("write check on %s failed: %s", channel.sub, exc)
        return False
    channel.write_cache[extension] = allowed
    return allowed


async def handle(channel: Channel, frame: Frame) -> None:
    """Publish a client ``broadcast`` to the channel's topic."""
    delivery, size = _delivery(frame.payload)
    ack = channel.config.ack
    if size > channel.tenant.settings.max_payload_bytes:
        if ack:
            channel.reply(frame.ref, "error", "payload_size_exceeded")
        return
    if not await may_write(channel, "broadcast") or channel.closed:
        return  # silent drop, even with ack
    sender = None if channel.config.self_broadcast else channel
    channel.tenant.pubsub.publish(channel.topic_key, delivery, sender)
    if ack:
        channel.reply(frame.ref, "ok", {})
