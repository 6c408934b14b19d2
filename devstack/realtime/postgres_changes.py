"""Postgres Changes for the Realtime stand-in: subscribe, capture, filter, RLS, deliver.

Mirrors ``supabase/realtime: lib/extensions/postgres_cdc_rls/`` with one substitution:
the real server polls a wal2json slot, which the embedded PostgreSQL lacks, so committed
changes are captured by an AFTER ROW trigger on every table in ``supabase_realtime``
(``devstack/sql/20_postgres_changes.sql``) and announced with NOTIFY, which arrives after
commit and in commit order. Everything after capture follows the server: per-binding
event/schema/table/filter matching, per-subscriber RLS by primary key at delivery time,
column privileges, DELETEs without RLS carrying only the primary key, and the server's
error texts. Changes committed after ``subscribe`` returns are delivered; as on the real
server, nothing earlier is.

The channel calls ``binding_ids`` for the join reply, then ``subscribe`` (a
``SubscriptionError`` becomes a ``system`` error and the channel stays joined),
``update_claims`` after an ``access_token`` refresh, and ``unsubscribe`` when it ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import asyncpg

from devstack.errors import DevstackError
from devstack.realtime import cdc_catalog, cdc_dispatch, cdc_filters, cdc_params
from devstack.realtime.cdc_params import Params

__all__ = ["PostgresChanges", "SubscriptionError"]

log = logging.getLogger(__name__)

Deliver = Callable[[dict[str, Any]], Awaitable[None]]
NOTIFY_CHANNEL = "devstack_cdc"
PRUNE_EVERY_S = 30.0
KEEP_CAPTURED_S = 60  # a change is dispatched within milliseconds of its NOTIFY
_UNABLE = "Unable to subscribe to changes with given parameters."
CONNECT_TIMEOUT_S = 5.0
RECONNECT_MIN_S = 0.1
RECONNECT_MAX_S = 2.0
_NEWEST_SQL = "select coalesce(max(id), 0) from devstack_cdc.changes"
_MISSED_SQL = "select id from devstack_cdc.changes where id > $1 order by id"


class SubscriptionError(DevstackError):
    """The server refused the bindings; ``text`` is the ``system`` message it pushes."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


@dataclass
class _Subscriber:
    bindings: list[cdc_dispatch.Binding]
    claims: dict[str, Any]
    deliver: Deliver

    @property
    def role(self) -> str:
        return str(self.claims.get("role", ""))


@dataclass
class _Stats:
    captured: int = 0
    delivered: int = 0
    failed_deliveries: int = 0


class PostgresChanges:
    """Postgres Changes for one database. ``start()`` before use, ``close()`` after."""

    def __init__(self, *, database_url: str) -> None:
        self._url = database_url
        self._pool: asyncpg.Pool | None = None
        self._listener: asyncpg.Connection | None = None
        self._queue: asyncio.Queue[int] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._reconnecting: asyncio.Task[None] | None = None
        self._last_change_id = 0  # the newest change heard of (see _reconnect)
        self._heard: set[int] | None = None
        self._subscribers: dict[str, _Subscriber] = {}
        self._stats = _Stats()
        self._pruned_at = 0.0

    def __repr__(self) -> str:
        return f"PostgresChanges(subscribers={len(self._subscribers)})"  # never the URL

    async def start(self) -> None:
        """Connect, capture every published table, and listen. Raises DevstackError."""
        try:
            await self._start()
        except BaseException:
            await self.close()  # the caller registers close() only after start() returned
            raise

    async def _start(self) -> None:
        self._pool = await asyncpg.create_pool(self._url, min_size=1, max_size=4)
        async with self._pool.acquire() as conn:
            if not await cdc_catalog.capture_installed(conn):
                raise DevstackError(
                    "devstack_cdc.capture() is missing from this database: apply "
                    "devstack/sql/20_postgres_changes.sql (devstack.schema.apply_all does)."
                )
            await cdc_catalog.install_triggers(conn, await cdc_catalog.published_tables(conn))
            self._last_change_id = await conn.fetchval(_NEWEST_SQL)
        await self._listen()
        # Owned by this object and cancelled by close(); the Realtime stand-in owns us.
        self._task = asyncio.get_running_loop().create_task(self._run(), name="postgres_changes")
        self._task.add_done_callback(self._on_dispatcher_done)

    async def _listen(self) -> None:
        listener = await asyncpg.connect(self._url, timeout=CONNECT_TIMEOUT_S)
        try:
            listener.add_termination_listener(self._on_listener_lost)
            await listener.add_listener(NOTIFY_CHANNEL, self._on_notify)
        except BaseException:
            listener.terminate()
            raise
        self._listener = listener

    async def close(self) -> None:
        """Stop dispatching and disconnect; idempotent, bounded, runs every step."""
        for task in (self._task, self._reconnecting):
            if task is not None:
                task.cancel()
                # return_exceptions: a crash was already logged; close() must still finish.
                await asyncio.gather(task, return_exceptions=True)
        self._task = self._reconnecting = None
        if self._listener is not None:
            self._listener.remove_termination_listener(self._on_listener_lost)  # expected now
            with contextlib.suppress(OSError, asyncpg.PostgresError, TimeoutError):
                await asyncio.wait_for(self._listener.close(), timeout=5)
            self._listener = None
        if self._pool is not None:
            with contextlib.suppress(OSError, asyncpg.PostgresError, TimeoutError):
                await asyncio.wait_for(self._pool.close(), timeout=5)
            self._pool = None
        self._subscribers.clear()

    def statistics(self) -> dict[str, int]:
        """A cheap snapshot for tests and health output."""
        return {
            "subscribers": len(self._subscribers),
            "captured": self._stats.captured,
            "delivered": self._stats.delivered,
            "failed_deliveries": self._stats.failed_deliveries,
        }

    @staticmethod
    def binding_ids(bindings: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Each binding echoed unchanged plus a stable integer ``id`` (for the join reply)."""
        return [{**b, "id": cdc_params.binding_id(b)} for b in bindings]

    async def subscribe(
        self,
        *,
        key: str,
        bindings: list[dict[str, Any]],
        claims: dict[str, Any],
        deliver: Deliver,
    ) -> None:
        """Start delivering changes to ``deliver``; all bindings or none. Raises SubscriptionError.

        ``deliver`` receives ``{"ids": [...], "data": {...}}`` (treat it as read-only).
        Subscribing an existing key replaces its bindings.
        """
        try:
            parsed = [
                (int(b.get("id", cdc_params.binding_id(b))), cdc_params.parse(b)) for b in bindings
            ]
        except cdc_params.ParamsError as exc:
            raise SubscriptionError(exc.text) from None
        async with self._acquire() as conn:
            resolved = [await self._resolve(conn, bid, p, claims) for bid, p in parsed]
        self._subscribers[key] = _Subscriber(resolved, dict(claims), deliver)

    async def update_claims(self, key: str, claims: dict[str, Any]) -> None:
        """Judge later changes with refreshed claims (an ``access_token`` refresh)."""
        subscriber = self._subscribers.get(key)
        if subscriber is not None:
            subscriber.claims = dict(claims)

    async def unsubscribe(self, key: str) -> None:
        """Stop delivering to ``key`` (unknown keys are ignored)."""
        self._subscribers.pop(key, None)

    def _acquire(self) -> Any:
        if self._pool is None:
            raise DevstackError("PostgresChanges is not started: call start() first")
        return self._pool.acquire()

    async def _resolve(
        self, conn: asyncpg.Connection, binding_id: int, params: Params, claims: dict[str, Any]
    ) -> cdc_dispatch.Binding:
        """Match published tables and validate filters, as the server's subscription insert."""
        shown = cdc_params.params_to_log(params)
        tables = await cdc_catalog.published_tables(conn, params.schema, params.table)
        if not tables:
            raise SubscriptionError(
                f"{_UNABLE} Please check Realtime is enabled for the given connect "
                f"parameters: [{shown}]"
            )
        role = str(claims.get("role", ""))
        try:
            for table in tables:
                await cdc_filters.check_subscription(conn, table.relid, role, params)
        except cdc_filters.CheckError as exc:
            raise SubscriptionError(
                f"{_UNABLE} An exception happened so please check your connect "
                f"parameters: [{shown}]. Exception: {exc.text}"
            ) from exc
        await cdc_catalog.install_triggers(conn, tables)  # tables published after start()
        return cdc_dispatch.Binding(binding_id, params, frozenset(t.relid for t in tables))

    def _on_notify(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        change_id = int(payload)
        self._last_change_id = max(self._last_change_id, change_id)
        if self._heard is not None:
            self._heard.add(change_id)
        self._queue.put_nowait(change_id)

    def _on_listener_lost(self, conn: object) -> None:
        if conn is not self._listener or self._task is None:
            return  # a stale connection, or closing
        self._listener = None
        if self._reconnecting is not None and not self._reconnecting.done():
            return  # the running attempt listens again
        log.warning("postgres_changes: LISTEN connection lost; reconnecting")
        self._reconnecting = asyncio.get_running_loop().create_task(
            self._reconnect(), name="postgres_changes-reconnect"
        )

    async def _reconnect(self) -> None:
        """Listen again (backoff doubling to RECONNECT_MAX_S), then dispatch the changes
        captured meanwhile, which the lost connection was never told about."""
        delay, attempts, since = RECONNECT_MIN_S, 0, self._last_change_id
        heard = self._heard = set()  # heard on the new connection: not to be queued twice
        while True:
            attempts += 1
            try:
                if self._listener is None:
                    await self._listen()
                async with self._acquire() as conn:
                    missed = await conn.fetch(_MISSED_SQL, since)
                break
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.debug("postgres_changes: reconnect attempt %d failed: %r", attempts, exc)
                await asyncio.sleep(delay)  # backoff between attempts
                delay = min(delay * 2, RECONNECT_MAX_S)
        self._heard = None
        log.warning("postgres_changes: LISTEN reconnected after %d attempt(s)", attempts)
        for row in missed:
            if row["id"] not in heard:
                self._on_notify(None, 0, NOTIFY_CHANNEL, str(row["id"]))

    @staticmethod
    def _on_dispatcher_done(task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("postgres_changes: dispatcher crashed", exc_info=task.exception())

    async def _run(self) -> None:
        """Dispatch captured changes one at a time, in commit order."""
        while True:
            change_id = await self._queue.get()
            self._stats.captured += 1
            try:
                async with self._acquire() as conn:
                    await self._dispatch(conn, change_id)
                    await self._maybe_prune(conn)
            except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError) as exc:
                log.warning("postgres_changes: change %s not dispatched: %s", change_id, exc)

    async def _maybe_prune(self, conn: asyncpg.Connection) -> None:
        now = time.monotonic()
        if now - self._pruned_at >= PRUNE_EVERY_S:
            self._pruned_at = now
            await cdc_dispatch.prune(conn, KEEP_CAPTURED_S)

    async def _dispatch(self, conn: asyncpg.Connection, change_id: int) -> None:
        """Offer one change to every subscriber whose bindings want its table and action."""
        change = await cdc_dispatch.load_change(conn, change_id)
        if change is None:
            return
        targets = [
            (s, [b for b in s.bindings if b.wants(change.relid, change.action)])
            for s in list(self._subscribers.values())
        ]
        targets = [(s, matched) for s, matched in targets if matched]
        state = await cdc_catalog.table_state(conn, change.relid) if targets else None
        if state is None or change.action not in state.published_actions:
            return
        contexts: dict[str, cdc_dispatch.Context] = {}
        for subscriber, matched in targets:
            if subscriber.role not in contexts:  # column privileges are per role
                columns = await cdc_catalog.columns_for(conn, change.relid, subscriber.role)
                contexts[subscriber.role] = cdc_dispatch.Context(change, state, columns)
            ctx = contexts[subscriber.role]
            for payload in await cdc_dispatch.payloads(conn, ctx, subscriber.claims, matched):
                await self._send(subscriber, payload)

    async def _send(self, subscriber: _Subscriber, payload: dict[str, Any]) -> None:
        try:
            await subscriber.deliver(payload)
        except Exception:  # one broken subscriber must not stop delivery to the others
            self._stats.failed_deliveries += 1
            log.exception("postgres_changes: delivery failed")
        else:
            self._stats.delivered += 1
