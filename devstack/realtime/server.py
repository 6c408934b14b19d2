"""The Realtime stand-in as one object: routes, start (pool + LISTEN) and close.

Protocol-faithful to ``supabase/realtime`` v2.129.8 for everything a client touches; see
``/work/shared/reference/realtime-server.md``. Module split mirrors the server:
``socket``/``handshake`` (user_socket.ex), ``channel``/``join``/``tokens``/``broadcast``/
``presence_handler`` (realtime_channel/), ``authorization`` (tenants/authorization.ex),
``limits``/``tenant`` (rate counters, tenants), ``db_broadcast`` (replication pickup).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import asyncpg
from aiohttp import web

from devstack.jwt import Keyring
from devstack.realtime import partitions
from devstack.realtime.control import Control
from devstack.realtime.db_broadcast import Listener
from devstack.realtime.ports import PostgresChangesLike
from devstack.realtime.settings import RealtimeSettings
from devstack.realtime.socket import websocket_handler
from devstack.realtime.tenant import Tenant

log = logging.getLogger(__name__)

CLOSE_TIMEOUT_S = 5.0


class Realtime:
    """Serve ``/realtime/v1/websocket`` (and ``/socket/websocket``) for one project."""

    def __init__(
        self,
        *,
        database_url: str,
        keyring: Keyring,
        settings: RealtimeSettings = RealtimeSettings(),  # noqa: B008 - frozen, shared safely
        postgres_changes: PostgresChangesLike | None = None,
    ) -> None:
        self._database_url = database_url
        self._tenant = Tenant(keyring, settings, postgres_changes)
        self._listener = Listener(self._tenant, database_url)
        self.control = Control(self._tenant)

    @property
    def settings(self) -> RealtimeSettings:
        """Current settings; assign a new RealtimeSettings to replace them."""
        return self._tenant.settings

    @settings.setter
    def settings(self, value: RealtimeSettings) -> None:
        self._tenant.settings = value

    @property
    def db_listening(self) -> bool:
        """Whether the LISTEN connection for database broadcasts is up (it reconnects)."""
        return self._listener.connected

    def add_routes(self, app: web.Application) -> None:
        """Websocket paths, ``api/ping`` and the control routes."""

        async def ws(request: web.Request) -> web.StreamResponse:
            return await websocket_handler(self._tenant, request)

        async def ping(_request: web.Request) -> web.Response:
            return web.json_response({"message": "Success"})

        for path in ("/realtime/v1/websocket", "/socket/websocket"):
            app.router.add_get(path, ws)
        for path in ("/realtime/v1/api/ping", "/api/ping"):
            app.router.add_get(path, ping)
        self.control.add_routes(app)

    async def start(self) -> None:
        """Open the authorization pool, create the day's message partitions (as the server
        does when a tenant connects, then periodically) and LISTEN for DB broadcasts."""
        pool = await asyncpg.create_pool(self._database_url, min_size=1, max_size=8)
        self._tenant.pool = pool
        await partitions.maintain(pool)
        every_s = self._tenant.settings.partition_maintenance_s
        self._tenant.spawn(partitions.keep(pool, every_s), name="realtime-partitions")
        await self._listener.start()

    async def close(self) -> None:
        """Close every websocket with 1001, then stop listeners and the pool (bounded)."""
        conns = list(self._tenant.connections)
        for conn in conns:
            await conn.close(1001)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(CLOSE_TIMEOUT_S):
                for conn in conns:
                    await conn.finished.wait()
        for conn in list(self._tenant.connections):
            conn.abort()  # a client that never answered the close frame
        await self._listener.close()
        await self._tenant.cancel_tasks()
        pool, self._tenant.pool = self._tenant.pool, None
        if pool is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(pool.close(), timeout=CLOSE_TIMEOUT_S)
