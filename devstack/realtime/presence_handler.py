"""Client presence events: track / untrack, with the private write check.

Mirrors ``supabase/realtime: lib/realtime_web/channels/realtime_channel/presence_handler.ex``.
Replies come first; the diff follows to every subscriber allowed to read presence.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from devstack.realtime.authorization import PolicyError
from devstack.realtime.broadcast import may_write
from devstack.realtime.limits import TRACK_TOO_LARGE
from devstack.realtime.presence import Diff
from devstack.realtime.serializer import Frame
from devstack.realtime.tenant import DatabaseUnavailable

if TYPE_CHECKING:
    from devstack.realtime.channel import Channel

NOT_A_MAP = "Presence track payload must be a map"


def fan_out(channel: Channel, diff: Diff) -> None:
    """A diff to every subscriber of the channel's topic, the tracker included."""
    for other in channel.tenant.pubsub.subscribers(channel.topic_key):
        other.receive_presence_diff(diff)


async def _ensure_presence_read(channel: Channel) -> None:
    """Private channels that joined without presence evaluate presence-read at first track."""
    if channel.read_presence is not None:
        return
    try:
        perms = await channel.tenant.read_permissions(
            channel.claims, channel.sub, True, channel.conn.rls_headers
        )
    except (PolicyError, DatabaseUnavailable):
        channel.read_presence = False
        return
    channel.read_presence = perms.presence


async def _track(channel: Channel, frame: Frame, fields: Any) -> None:
    if not isinstance(fields, dict):
        channel.reply(frame.ref, "error", {"reason": NOT_A_MAP})
        return
    if len(json.dumps(fields).encode()) > channel.tenant.settings.max_payload_bytes:
        channel.shutdown(TRACK_TOO_LARGE)
        return
    if not await may_write(channel, "presence"):
        channel.reply(frame.ref, "error", {})
        return
    await _ensure_presence_read(channel)
    if channel.closed:
        return
    channel.presence_enabled = True  # the first track enables presence
    diff = channel.tenant.presence.track(
        channel.topic_key, channel.config.presence_key, channel.key, fields
    )
    channel.reply(frame.ref, "ok", {})
    if diff is not None:
        fan_out(channel, diff)


async def handle(channel: Channel, frame: Frame) -> None:
    """``{"type":"presence","event":"track"|"untrack","payload":{...}}``."""
    payload = frame.payload if isinstance(frame.payload, dict) else {}
    event = payload.get("event")
    kind = event.lower() if isinstance(event, str) else None
    if kind == "track":
        await _track(channel, frame, payload.get("payload"))
    elif kind == "untrack":
        diff = channel.tenant.presence.untrack(channel.topic_key, channel.key)
        channel.reply(frame.ref, "ok", {})
        if diff is not None:
            fan_out(channel, diff)
    else:
        channel.reply(frame.ref, "error", {})
