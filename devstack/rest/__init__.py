"""A stand-in for the Supabase data API (PostgREST behind the gateway) on a real Postgres.

Protocol-faithful where the worker and the official clients look: ``apikey`` + Bearer
authentication, PostgREST's query grammar (select, filters, order, limit/offset), ``Prefer``
(return, count, resolution), singular objects, ``/rpc`` with named arguments, and
PostgREST's error bodies and statuses. Every request runs as the token's role with its
claims, so the project's grants and RLS policies decide, exactly as on Supabase.

Outages for tests: ``fail_next``/``hang_next``/``clear_faults`` (and the same under
``/__devstack/rest/faults``, see ``devstack.rest.faults``).

Not implemented (400 PGRST127): resource embedding, ``or``/``and`` filters, casts and JSON
paths in ``select``, limit/order on PATCH/DELETE, CSV, ``Prefer: missing=default``.
"""

from __future__ import annotations

from aiohttp import web

from devstack.jwt import Keyring
from devstack.rest.backend import Backend
from devstack.rest.faults import DataApiFaults, HangEnd
from devstack.rest.handlers import Routes

__all__ = ["DataApi"]


class DataApi:
    """The data API under ``/rest/v1/`` of an aiohttp application.

    Call :meth:`add_routes` before the app starts, :meth:`start` before serving (opens
    the pool and reads the schema cache) and :meth:`close` on shutdown (idempotent).
    """

    def __init__(
        self, *, database_url: str, keyring: Keyring, schema: str = "public", max_rows: int = 1000
    ) -> None:
        self._backend = Backend(database_url, schema)
        self.faults = DataApiFaults()
        self._routes = Routes(self._backend, keyring, max_rows, self.faults)

    def add_routes(self, app: web.Application) -> None:
        """Register every route under ``/rest/v1/`` and the fault controls under
        ``/__devstack/rest/`` (no middleware: the app is shared)."""
        self._routes.add_to(app)
        self.faults.add_routes(app)

    def fail_next(self, count: int, status: int = 503, *, target: str | None = None) -> None:
        """Answer the next ``count`` requests (to ``target``, e.g. ``rpc/org_events_after``,
        when given) with ``status``: 503 as PostgREST without its database, else the gateway."""
        self.faults.fail_next(count, status, target=target)

    def hang_next(
        self, count: int, seconds: float, *, then: HangEnd = "answer", target: str | None = None
    ) -> None:
        """Hold the next ``count`` requests (to ``target``) for ``seconds``, then answer or
        drop the connection."""
        self.faults.hang_next(count, seconds, then=then, target=target)

    def clear_faults(self) -> None:
        """Forget scripted faults and release running hangs."""
        self.faults.clear()

    async def start(self) -> None:
        """Open the asyncpg pool and load the schema cache."""
        await self._backend.start()

    async def close(self) -> None:
        """Release hangs and close the pool; safe to call twice or before :meth:`start`."""
        self.faults.clear()
        await self._backend.close()

    def __repr__(self) -> str:
        return f"DataApi(schema={self._backend.schema!r})"
