"""Fan-out of broadcasts to the channels joined on a sub-topic, per privacy class.

Mirrors ``supabase/realtime: lib/realtime_web/channels/realtime_channel/message_dispatcher.ex``
and the tenant topics of ``lib/realtime/tenants.ex``: public and private channels with the
same sub-topic are different PubSub keys (``<tenant>:<sub>`` vs ``<tenant>-private:<sub>``),
so nothing crosses between them. Each subscriber gets the message with the topic rewritten
to its own joined topic and ``ref`` null; the encoding follows its socket's ``vsn``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from devstack.realtime import serializer
from devstack.realtime.serializer import ENCODING_JSON, Frame

if TYPE_CHECKING:
    from devstack.realtime.channel import Channel

TopicKey = tuple[bool, str]  # (private, sub-topic)


@dataclass(frozen=True)
class ClientBroadcast:
    """A JSON ``broadcast`` pushed as a text frame: delivered unchanged to everyone."""

    payload: Any

    def encode(self, vsn: str, topic: str) -> str | bytes | None:
        return serializer.encode(vsn, Frame(None, None, topic, "broadcast", self.payload))


@dataclass(frozen=True)
class UserBroadcast:
    """A user broadcast (V2 kind 3 from clients, or from the database, §3/§10.1).

    V2 subscribers get kind 4; V1 subscribers get an ordinary JSON broadcast, or nothing
    when the payload is binary.
    """

    event: str
    data: bytes
    encoding: int = ENCODING_JSON
    metadata: dict[str, Any] | None = None

    @property
    def message_id(self) -> str | None:
        value = (self.metadata or {}).get("id")
        return value if isinstance(value, str) else None

    def encode(self, vsn: str, topic: str) -> str | bytes | None:
        if vsn == serializer.V2:
            return serializer.encode_user_broadcast(
                topic, self.event, self.metadata, self.data, self.encoding
            )
        if self.encoding != ENCODING_JSON:
            return None  # V1 carries no binary
        try:
            inner = json.loads(self.data)
        except ValueError:
            return None
        payload: dict[str, Any] = {"event": self.event, "payload": inner, "type": "broadcast"}
        if self.metadata:
            payload["meta"] = self.metadata
        return serializer.encode(vsn, Frame(None, None, topic, "broadcast", payload))


Delivery = ClientBroadcast | UserBroadcast


class PubSub:
    """Channels by (private, sub-topic)."""

    def __init__(self) -> None:
        self._subs: dict[TopicKey, set[Channel]] = {}

    def subscribe(self, channel: Channel) -> None:
        self._subs.setdefault(channel.topic_key, set()).add(channel)

    def unsubscribe(self, channel: Channel) -> None:
        subs = self._subs.get(channel.topic_key)
        if subs is not None:
            subs.discard(channel)
            if not subs:
                del self._subs[channel.topic_key]

    def subscribers(self, key: TopicKey) -> list[Channel]:
        """A snapshot: delivering may shut channels down and change the set."""
        return list(self._subs.get(key, ()))

    def all_channels(self) -> Iterable[Channel]:
        for subs in list(self._subs.values()):
            yield from list(subs)

    def publish(self, key: TopicKey, delivery: Delivery, sender: Channel | None = None) -> int:
        """Deliver to every subscriber but ``sender``; returns how many were offered it."""
        count = 0
        for channel in self.subscribers(key):
            if channel is not sender:
                channel.receive_broadcast(delivery)
                count += 1
        return count
