"""Broadcast from the database: pick up committed ``realtime.send`` rows; replay on join.

Mirrors ``supabase/realtime: lib/realtime/tenants/replication_connection.ex`` (pickup and
fan-out by ``private``) and ``lib/realtime/messages.ex`` (``replay/5``). The pickup is a
LISTEN on ``realtime_messages`` (see ``devstack/sql/10_realtime_pickup.sql``) instead of
logical replication; subscribers see the same frames. While events/s is tripped, database
broadcasts are dropped, as the server does.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from typing import TYPE_CHECKING, Any

import asyncpg

from devstack.pool import CONNECTION_LOST
from devstack.realtime.pubsub import UserBroadcast
from devstack.realtime.tenant import DatabaseUnavailable
from devstack.realtime.tokens import JoinError

if TYPE_CHECKING:
    from devstack.realtime.config import Replay
    from devstack.realtime.tenant import Tenant

log = logging.getLogger(__name__)

CHANNEL = "realtime_messages"
REPLAY_INVALID = "UnableToReplayMessages: Replay params are not valid"
REPLAY_FAILED = "UnableToReplayMessages: Realtime was unable to replay messages"
CONNECT_TIMEOUT_S = 5.0
RECONNECT_MIN_S = 0.1
RECONNECT_MAX_S = 2.0

_ROW_SQL = "select id, topic, event, payload, private from realtime.messages where id = $1"
_REPLAY_SQL = """
select id, event, payload from (
  select id, event, payload, inserted_at from realtime.messages
  where topic = $1 and private is true and extension = 'broadcast' and payload is not null
    and inserted_at >= (to_timestamp($2::bigint / 1000.0))::timestamp
  order by inserted_at desc limit $3
) newest order by inserted_at asc
"""


def as_delivery(
    message_id: str, event: str | None, payload: Any, *, replayed: bool = False
) -> UserBroadcast:
    """A DB broadcast: a JSON user broadcast with metadata ``{"id"}`` (§10.1)."""
    meta: dict[str, Any] = {"id": message_id}
    if replayed:
        meta["replayed"] = True
    data = json.dumps(payload).encode()
    return UserBroadcast(event or "", data, metadata=meta)


def publish(tenant: Tenant, sub: str, event: str, payload: Any, *, private: bool = True) -> str:
    """Fan out one DB broadcast (also the control surface's injection); returns its id."""
    message_id = str(uuid.uuid4())
    if isinstance(payload, dict) and "id" not in payload:
        payload = {**payload, "id": message_id}
    _fan_out(tenant, message_id, sub=sub, event=event, payload=payload, private=private)
    return message_id


def _fan_out(
    tenant: Tenant, message_id: str, *, sub: str, event: str | None, payload: Any, private: bool
) -> None:
    if tenant.limits.events.tripped():
        log.warning("events/s tripped: database broadcast %s dropped", message_id)
        return
    tenant.pubsub.publish((private, sub), as_delivery(message_id, event, payload))


class Listener:
    """A dedicated LISTEN connection; rows are read back and fanned out in commit order.

    When the connection is lost (a Postgres restart), it is re-established by itself:
    attempts every ``RECONNECT_MIN_S`` doubling up to ``RECONNECT_MAX_S``, each bounded by
    ``CONNECT_TIMEOUT_S``. Rows committed while it was away are not picked up (as a lost
    replication connection on the real server, clients catch up by other means).
    """

    def __init__(self, tenant: Tenant, database_url: str) -> None:
        self._tenant = tenant
        self._url = database_url
        self._conn: asyncpg.Connection | None = None
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self._lost = asyncio.Event()
        self._closing = False

    @property
    def connected(self) -> bool:
        return self._conn is not None and not self._conn.is_closed()

    async def start(self) -> None:
        await self._connect()
        self._tenant.spawn(self._drain(), name="realtime-db-broadcast")
        self._tenant.spawn(self._keep_connected(), name="realtime-db-broadcast-listen")

    async def _connect(self) -> None:
        self._lost.clear()
        conn = await asyncpg.connect(self._url, timeout=CONNECT_TIMEOUT_S)
        try:
            conn.add_termination_listener(self._terminated)
            await conn.add_listener(CHANNEL, self._notified)
        except BaseException:
            conn.terminate()
            raise
        if self._closing:  # close() ran while this attempt was connecting
            conn.terminate()
            return
        self._conn = conn

    def _terminated(self, conn: Any) -> None:
        if conn is self._conn:
            self._lost.set()

    async def _keep_connected(self) -> None:
        while True:
            await self._lost.wait()
            self._conn = None
            log.warning("database broadcasts: LISTEN connection lost; reconnecting")
            delay, attempts = RECONNECT_MIN_S, 0
            while True:
                attempts += 1
                try:
                    await self._connect()
                except (*CONNECTION_LOST, asyncpg.PostgresError, TimeoutError) as exc:
                    log.debug("database broadcasts: reconnect attempt %d failed: %r", attempts, exc)
                    await asyncio.sleep(delay)  # backoff between attempts
                    delay = min(delay * 2, RECONNECT_MAX_S)
                    continue
                log.warning("database broadcasts: LISTEN reconnected after %d attempt(s)", attempts)
                break

    def _notified(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        self._queue.put_nowait(payload)

    async def _drain(self) -> None:
        while True:
            announced = await self._queue.get()
            try:
                await self._deliver(announced)
            except DatabaseUnavailable:
                log.warning("a database broadcast was dropped: database unreachable")
            except Exception:  # this loop must outlive any one message
                log.exception("a database broadcast could not be read")

    async def _deliver(self, announced: str) -> None:
        # The trigger sends the row as JSON when it fits in a NOTIFY, else only its id.
        if announced.startswith("{"):
            row: Any = json.loads(announced)
            payload = row["payload"]
        else:
            async with self._tenant.db() as conn:
                row = await conn.fetchrow(_ROW_SQL, uuid.UUID(announced))
            if row is None:
                return
            payload = json.loads(row["payload"]) if isinstance(row["payload"], str) else None
        if row["topic"] is None:
            return
        _fan_out(
            self._tenant,
            str(row["id"]),
            sub=row["topic"],
            event=row["event"],
            payload=payload,
            private=bool(row["private"]),
        )

    async def close(self) -> None:
        self._closing = True
        if self._conn is not None:
            conn, self._conn = self._conn, None
            conn.remove_termination_listener(self._terminated)  # expected now
            try:
                await asyncio.wait_for(conn.close(), timeout=5.0)
            except (TimeoutError, OSError, asyncpg.InterfaceError):
                conn.terminate()


def _valid_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


async def replay(tenant: Tenant, sub: str, params: Replay) -> list[UserBroadcast]:
    """The newest ``limit`` (1..25) private rows since ``since`` (unix ms), oldest first."""
    if not _valid_int(params.since) or not _valid_int(params.limit):
        raise JoinError(REPLAY_INVALID)
    limit = min(max(int(params.limit), 1), 25)
    try:
        async with tenant.db() as conn:
            rows = await conn.fetch(_REPLAY_SQL, sub, int(params.since), limit)
    except Exception as exc:
        log.warning("replay on %s failed: %r", sub, exc)
        raise JoinError(REPLAY_FAILED) from exc
    return [
        as_delivery(str(r["id"]), r["event"], json.loads(r["payload"]), replayed=True) for r in rows
    ]
