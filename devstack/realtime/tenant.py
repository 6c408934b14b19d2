"""The one tenant the stand-in serves: its keys, settings, counters, DB pool and tasks.

The real server keeps this per tenant (``supabase/realtime: lib/realtime/tenants/``,
``lib/realtime/tenants/connect.ex``); a stand-in serves a single project, so the Host
label is not consulted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Coroutine, Mapping
from typing import TYPE_CHECKING, Any

import asyncpg

from devstack.jwt import Keyring
from devstack.pool import acquired
from devstack.realtime.authorization import Permissions, check_read, check_write
from devstack.realtime.limits import TenantLimits
from devstack.realtime.ports import PostgresChangesLike
from devstack.realtime.presence import PresenceRegistry
from devstack.realtime.pubsub import PubSub
from devstack.realtime.settings import RealtimeSettings

if TYPE_CHECKING:
    from devstack.realtime.socket import Connection

log = logging.getLogger(__name__)

DB_UNREACHABLE = "Realtime was unable to connect to the project database"


class DatabaseUnavailable(Exception):
    """The tenant database cannot be used (no pool, connection refused, pool timeout)."""


class Tenant:
    """Shared state of every socket: settings are replaced whole, never mutated."""

    def __init__(
        self,
        keyring: Keyring,
        settings: RealtimeSettings,
        postgres_changes: PostgresChangesLike | None,
    ) -> None:
        self.keyring = keyring
        self.settings = settings
        self.pg_changes = postgres_changes
        self.limits = TenantLimits()
        self.pubsub = PubSub()
        self.presence = PresenceRegistry()
        self.pool: asyncpg.Pool | None = None
        self.connections: set[Connection] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._db_reachable = True

    def spawn(self, coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        """Run ``coro`` owned by the tenant: tracked, logged on failure, cancelled on close."""
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._finished)
        return task

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("realtime task %s failed", task.get_name(), exc_info=task.exception())

    async def cancel_tasks(self, timeout_s: float = 5.0) -> None:
        """Cancel every owned task and wait for them, bounded."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=timeout_s)

    @contextlib.asynccontextmanager
    async def db(self) -> AsyncIterator[asyncpg.Connection]:
        """A pooled connection; connection problems become DatabaseUnavailable.

        The pool replaces dead connections on acquire, so after a Postgres restart the
        next use reconnects by itself; the outage and the recovery are logged once each.
        """
        if self.pool is None:
            raise DatabaseUnavailable(DB_UNREACHABLE)
        async with acquired(
            self.pool,
            timeout_s=5.0,
            unreachable=self._unreachable,
            reachable=lambda: self._db_state(reachable=True),
        ) as conn:
            yield conn

    def _unreachable(self, exc: BaseException) -> DatabaseUnavailable:
        self._db_state(reachable=False, exc=exc)
        return DatabaseUnavailable(DB_UNREACHABLE)

    def _db_state(self, *, reachable: bool, exc: BaseException | None = None) -> None:
        if reachable != self._db_reachable:
            self._db_reachable = reachable
            if reachable:
                log.warning("realtime: project database reachable again")
            else:
                log.warning("realtime: project database unreachable (%r)", exc)

    async def check_db(self) -> None:
        """Raise DatabaseUnavailable unless a pooled connection can be had (public joins)."""
        async with self.db():
            pass

    async def read_permissions(
        self, claims: Mapping[str, Any], sub: str, presence: bool, headers: Mapping[str, str]
    ) -> Permissions:
        """The RLS read check (raises PolicyError or DatabaseUnavailable)."""
        extensions = ("broadcast", "presence") if presence else ("broadcast",)
        async with self.db() as conn:
            return await check_read(conn, claims, sub, extensions, headers)

    async def write_permission(
        self, claims: Mapping[str, Any], sub: str, extension: str, headers: Mapping[str, str]
    ) -> bool:
        """The RLS write check (raises PolicyError or DatabaseUnavailable)."""
        async with self.db() as conn:
            return await check_write(conn, claims, sub, extension, headers)
