"""``phx_join``: the pipeline in the server's order, then the ok reply and its pushes.

Mirrors ``supabase/realtime: lib/realtime_web/channels/realtime_channel.ex`` (``join/3``)
and ``phoenix@v1.8.11: lib/phoenix/socket.ex`` for duplicate joins: the old channel is
killed first and its ``phx_close`` (old join ref) is queued behind the new join's reply.
Every error reply waits ``join_error_delay_s`` (``CHANNEL_ERROR_BACKOFF_MS``).
"""

from __future__ import annotations

import asyncio
import logging
import zlib
from typing import TYPE_CHECKING, Any

from devstack.realtime import config as join_config
from devstack.realtime import db_broadcast, limits, tokens
from devstack.realtime.authorization import PolicyError
from devstack.realtime.channel import Channel
from devstack.realtime.ports import subscription_error_text
from devstack.realtime.pubsub import UserBroadcast
from devstack.realtime.serializer import Frame
from devstack.realtime.tenant import DatabaseUnavailable
from devstack.realtime.tokens import JoinError

if TYPE_CHECKING:
    from devstack.realtime.socket import Connection

log = logging.getLogger(__name__)

TOPIC_REQUIRED = "TopicNameRequired: You must provide a topic name"
DB_UNREACHABLE = "UnableToConnectToProject: Realtime was unable to connect to the project database"


async def handle(conn: Connection, frame: Frame) -> None:
    """Process one join; replies, and for a duplicate queues the old close after it."""
    old = conn.channels.pop(frame.topic, None)
    if old is not None:
        old.stop()
    join_ref = frame.join_ref if frame.join_ref is not None else frame.ref
    try:
        channel, replayed = await _pipeline(conn, frame, join_ref)
    except JoinError as err:
        await asyncio.sleep(conn.tenant.settings.join_error_delay_s)
        conn.reply(frame, "error", {"reason": err.reason})
        if old is not None:
            old.send_close()
        if err.disconnect:
            await conn.close(1001)
        return
    bindings = _bindings(conn, channel.config.postgres_changes)
    conn.reply(frame, "ok", {"postgres_changes": bindings})
    if old is not None:
        old.send_close()
    _after_join(channel, replayed, bindings)


def _check_limits(conn: Connection) -> None:
    tenant = conn.tenant
    if tenant.limits.joins.tripped():
        raise JoinError(limits.JOINS_PER_SECOND, disconnect=True)
    tenant.limits.joins.add(tenant.settings.max_joins_per_second)
    if len(conn.channels) >= tenant.settings.max_channels_per_client:
        raise JoinError(limits.CHANNELS_PER_SOCKET)


async def _pipeline(
    conn: Connection, frame: Frame, join_ref: Any
) -> tuple[Channel, list[UserBroadcast]]:
    """Steps 5-11 of §5.3 (a single tenant: no tenant, suspension or user-cap checks)."""
    if frame.topic == "realtime:":
        raise JoinError(TOPIC_REQUIRED)
    _check_limits(conn)
    cfg = join_config.parse(frame.payload)
    token = tokens.pick(frame.payload, conn.socket_token)
    claims = tokens.verify_for_join(conn.tenant.keyring, token)
    channel = Channel(
        conn, topic=frame.topic, join_ref=join_ref, config=cfg, token=token, claims=claims
    )
    if cfg.private:
        await _authorize(channel)
    else:  # public channels need the tenant DB too
        try:
            await conn.tenant.check_db()
        except DatabaseUnavailable as exc:
            raise JoinError(DB_UNREACHABLE) from exc
    replayed = await _replay(channel)
    return channel, replayed


async def _authorize(channel: Channel) -> None:
    """Private: broadcast-read OR presence-read, else Unauthorized (§8.2)."""
    unauthorized = (
        f"Unauthorized: You do not have permissions to read from this Channel topic: {channel.sub}"
    )
    try:
        perms = await channel.tenant.read_permissions(
            channel.claims, channel.sub, channel.config.presence_enabled, channel.conn.rls_headers
        )
    except PolicyError as exc:
        log.info("RlsPolicyError on %s: %s", channel.sub, exc)
        raise JoinError(unauthorized) from exc
    except DatabaseUnavailable as exc:
        raise JoinError(DB_UNREACHABLE) from exc
    if not perms.any:
        raise JoinError(unauthorized)
    channel.read_broadcast = perms.broadcast
    channel.read_presence = perms.presence if channel.config.presence_enabled else None


async def _replay(channel: Channel) -> list[UserBroadcast]:
    replay = channel.config.replay
    if replay is None:
        return []
    if not channel.private:
        raise JoinError("UnableToReplayMessages: Replay is not allowed for public channels")
    return await db_broadcast.replay(channel.tenant, channel.sub, replay)


def _bindings(conn: Connection, bindings: list[dict[str, Any]]) -> list[dict[str, Any]]:
    pg = conn.tenant.pg_changes
    if pg is not None:
        return pg.binding_ids(bindings)
    # Without the extension: any stable integers will do (§5.3).
    return [{**b, "id": zlib.crc32(repr(sorted(b.items())).encode())} for b in bindings]


def _after_join(
    channel: Channel, replayed: list[UserBroadcast], bindings: list[dict[str, Any]]
) -> None:
    """Register, then replay, presence_state and the postgres_changes subscription."""
    conn, tenant = channel.conn, channel.tenant
    conn.channels[channel.topic] = channel
    tenant.pubsub.subscribe(channel)
    tokens.arm(channel)
    for message in replayed:
        channel.receive_broadcast(message)
        if message.message_id is not None:  # a live duplicate is not delivered again
            channel.replayed_ids.add(message.message_id)
    if channel.presence_enabled and channel.read_presence:
        channel.push("presence_state", tenant.presence.state(channel.topic_key))
    if tenant.pg_changes is not None and bindings:
        tenant.spawn(_subscribe_changes(channel, bindings), name=f"pg-subscribe {channel.key}")


async def _subscribe_changes(channel: Channel, bindings: list[dict[str, Any]]) -> None:
    pg = channel.tenant.pg_changes
    assert pg is not None

    async def deliver(payload: dict[str, Any]) -> None:
        if not channel.closed and channel.count_event():
            channel.conn.send_frame(Frame(None, None, channel.topic, "postgres_changes", payload))

    try:
        await pg.subscribe(
            key=channel.key, bindings=bindings, claims=channel.claims, deliver=deliver
        )
    except Exception as exc:
        text = subscription_error_text(exc)
        if text is None:
            log.exception("postgres_changes subscribe crashed on %s", channel.sub)
            text = f"{{:error, {exc!r}}}"
        channel.system("error", text, extension="postgres_changes")
        return
    if channel.closed:  # ended while subscribing: stop()'s unsubscribe may have run first
        await pg.unsubscribe(channel.key)
        return
    channel.system("ok", "Subscribed to PostgreSQL", extension="postgres_changes")
