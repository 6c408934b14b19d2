"""One joined channel: its state, outbound pushes, inbound events and shutdowns.

Mirrors ``supabase/realtime: lib/realtime_web/channels/realtime_channel.ex`` (one
process per joined topic). Joining lives in ``join.py``, token handling in
``tokens.py``, client broadcasts in ``broadcast.py`` and presence in ``presence_handler.py``.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import TYPE_CHECKING, Any

from devstack.realtime import broadcast, presence_handler, tokens
from devstack.realtime.config import JoinConfig
from devstack.realtime.limits import EVENTS_PER_SECOND
from devstack.realtime.presence import Diff
from devstack.realtime.pubsub import Delivery, TopicKey
from devstack.realtime.serializer import Frame

if TYPE_CHECKING:
    from devstack.realtime.socket import Connection

log = logging.getLogger(__name__)


class Channel:
    """A joined ``realtime:<sub>`` topic on one socket."""

    def __init__(
        self,
        conn: Connection,
        *,
        topic: str,
        join_ref: Any,
        config: JoinConfig,
        token: str,
        claims: dict[str, Any],
    ) -> None:
        self.conn = conn
        self.tenant = conn.tenant
        self.topic = topic
        self.sub = topic.removeprefix("realtime:")
        self.join_ref = join_ref
        self.config = config
        self.token = token
        self.claims = claims
        self.key = f"{self.sub}#{uuid.uuid4()}"  # unique key for postgres_changes
        # Read flags: public channels read everything; private ones are set by the checks.
        self.read_broadcast = True
        self.read_presence: bool | None = None if config.private else True
        self.presence_enabled = config.presence_enabled
        self.write_cache: dict[str, bool] = {}  # extension -> allowed (lazy, §8.4)
        self.replayed_ids: set[str] = set()
        self.timer: asyncio.TimerHandle | None = None
        self.closed = False

    @property
    def private(self) -> bool:
        return self.config.private

    @property
    def topic_key(self) -> TopicKey:
        return (self.private, self.sub)

    def __repr__(self) -> str:
        return f"Channel({self.topic!r}, join_ref={self.join_ref!r}, private={self.private})"

    # -- outbound -------------------------------------------------------------------

    def push(self, event: str, payload: Any, *, ref: Any = None) -> None:
        """A channel push (carries the join ref in V2); nothing once closed."""
        if not self.closed:
            self.conn.send_frame(Frame(self.join_ref, ref, self.topic, event, payload))

    def reply(self, ref: Any, status: str, response: Any) -> None:
        self.push("phx_reply", {"status": status, "response": response}, ref=ref)

    def system(self, status: str, message: str, extension: str = "system") -> None:
        payload = {"extension": extension, "status": status, "message": message}
        self.push("system", {**payload, "channel": self.sub})

    # -- lifecycle ------------------------------------------------------------------

    def stop(self) -> None:
        """End the channel without telling the client (cleanup only); idempotent."""
        if self.closed:
            return
        self.closed = True
        if self.timer is not None:
            self.timer.cancel()
        self.tenant.pubsub.unsubscribe(self)
        if self.conn.channels.get(self.topic) is self:
            del self.conn.channels[self.topic]
        diff = self.tenant.presence.untrack(self.topic_key, self.key)
        if diff is not None:
            presence_handler.fan_out(self, diff)
        pg = self.tenant.pg_changes
        if pg is not None:
            self.tenant.spawn(pg.unsubscribe(self.key), name=f"pg-unsubscribe {self.key}")

    def send_close(self) -> None:
        """``phx_close`` with this channel's join ref in ``ref`` (and ``join_ref``)."""
        self.conn.send_frame(Frame(self.join_ref, self.join_ref, self.topic, "phx_close", {}))

    def close(self) -> None:
        """Stop normally: the client gets ``phx_close``."""
        if not self.closed:
            self.stop()
            self.send_close()

    def shutdown(self, message: str) -> None:
        """The server's shutdown pattern: ``system`` error, then ``phx_close``."""
        if not self.closed:
            self.system("error", message)
            self.close()

    def crash(self, payload: dict[str, Any] | None = None) -> None:
        """``phx_error``: the channel crashed; the client rejoins."""
        if not self.closed:
            self.push("phx_error", payload or {}, ref=self.join_ref)
            self.stop()

    # -- inbound --------------------------------------------------------------------

    def count_event(self) -> bool:
        """Count one tenant event; False (and shut down) while events/s is tripped."""
        limits, limit = self.tenant.limits, self.tenant.settings.max_events_per_second
        if limits.events.tripped():
            self.shutdown(EVENTS_PER_SECOND)
            return False
        limits.events.add(limit)
        return True

    async def handle_in(self, frame: Frame) -> None:
        """A client message for this channel (join/leave are the socket's)."""
        if not self.count_event():
            return
        if frame.event == "broadcast":
            await broadcast.handle(self, frame)
        elif frame.event == "presence":
            await presence_handler.handle(self, frame)
        elif frame.event == "access_token":
            await tokens.refresh(self, frame.payload)
        # Any other event is counted and never replied to (§9.1).

    def receive_broadcast(self, delivery: Delivery) -> None:
        """A fan-out delivery: skipped without read, replayed duplicates dropped."""
        if self.closed or not self.read_broadcast:
            return
        message_id = getattr(delivery, "message_id", None)
        if message_id is not None and message_id in self.replayed_ids:
            return
        if not self.count_event():
            return
        data = delivery.encode(self.conn.vsn, self.topic)
        if data is not None:
            self.conn.send_raw(data)

    def receive_presence_diff(self, diff: Diff) -> None:
        if self.closed or not self.presence_enabled or not self.read_presence:
            return
        if self.count_event():
            self.conn.send_frame(Frame(None, None, self.topic, "presence_diff", diff))
