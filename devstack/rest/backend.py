"""The database side of a request: the pool, the schema cache and the per-request transaction.

Every request runs in one transaction that first sets, transaction-locally, the role and
the settings PostgREST sets (``role``, ``request.jwt.claims``, ``request.method``,
``request.path``, ``request.headers``), so that grants and RLS decide what it may do. After
the transaction these settings linger on the pooled connection as '' (pitfall 1);
``auth.jwt()`` copes with that.
"""

from __future__ import annotations

import contextlib
import difflib
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

import asyncpg

from devstack.pool import acquired
from devstack.rest import catalog as catalog_mod
from devstack.rest.auth import Identity
from devstack.rest.catalog import Catalog, Table
from devstack.rest.errors import ApiError, from_postgres

T = TypeVar("T")
log = logging.getLogger(__name__)
ACQUIRE_TIMEOUT_S = 5.0

# The impersonated role's statement_timeout applies to its requests ("Impersonated Role
# Settings", PostgREST v11.1+, docs.postgrest.org references/transactions); a role without
# one has the authenticator's (supabase/supabase guides/database/postgres/timeouts.mdx:
# anon 3s, authenticated 8s, service_role "defaults to the authenticator role's 8s").
_ROLE_TIMEOUT = """
(select split_part(c, '=', 2)
   from pg_catalog.pg_db_role_setting s, unnest(s.setconfig) as c
  where s.setrole = (select oid from pg_catalog.pg_roles where rolname = {role})
    and s.setdatabase in (0, (select oid from pg_catalog.pg_database
                              where datname = current_database()))
    and c like 'statement_timeout=%'
  order by s.setdatabase desc limit 1)
"""
_SETTINGS_SQL = f"""
select set_config('role', $1, true),
       set_config('request.jwt.claims', $2, true),
       set_config('request.method', $3, true),
       set_config('request.path', $4, true),
       set_config('request.headers', $5, true),
       set_config('statement_timeout', coalesce(
         {_ROLE_TIMEOUT.format(role="$1")}, {_ROLE_TIMEOUT.format(role="'authenticator'")},
         current_setting('statement_timeout')), true)
"""


@dataclass(frozen=True)
class RequestMeta:
    """What the database may read about the HTTP request."""

    method: str
    path: str
    headers: Mapping[str, str]


class Backend:
    """An asyncpg pool plus a schema cache that reloads when a name is missing."""

    def __init__(self, database_url: str, schema: str) -> None:
        self._url = database_url
        self.schema = schema
        self._pool: asyncpg.Pool | None = None
        self._catalog: Catalog | None = None
        self._reachable = True

    async def start(self) -> None:
        self._pool = await asyncpg.create_pool(self._url, min_size=1, max_size=10)
        await self.reload()

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    def _require_pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise ApiError(503, "PGRST002", "Could not query the database for the schema cache.")
        return self._pool

    @contextlib.asynccontextmanager
    async def _connection(self) -> AsyncIterator[asyncpg.Connection]:
        """A pooled connection, or 503 PGRST001 while the database cannot be reached.

        The pool replaces dead connections on acquire, so after a Postgres restart the
        next request reconnects by itself; the outage and the recovery are logged once.
        """
        async with acquired(
            self._require_pool(),
            timeout_s=ACQUIRE_TIMEOUT_S,
            unreachable=self._unreachable,
            reachable=self._set_reachable,
        ) as conn:
            yield conn

    def _unreachable(self, exc: BaseException) -> ApiError:
        if self._reachable:
            self._reachable = False
            log.warning("data API: database unreachable (%r); answering 503", exc)
        return ApiError(503, "PGRST001", "Database client error. Retrying the connection.")

    def _set_reachable(self) -> None:
        if not self._reachable:
            self._reachable = True
            log.warning("data API: database reachable again")

    async def reload(self) -> Catalog:
        """Re-read the schema cache (PostgREST does on NOTIFY; we do on a miss)."""
        async with self._connection() as conn:
            self._catalog = await catalog_mod.load(conn, self.schema)
        return self._catalog

    async def catalog_with(self, *, table: str = "", routine: str = "") -> Catalog:
        """The cache, reloaded first if it lacks the named table or routine."""
        cat = self._catalog
        missing_table = cat is not None and table and table not in cat.tables
        missing_routine = cat is not None and routine and routine not in cat.routines
        if cat is None or missing_table or missing_routine:
            cat = await self.reload()
        return cat

    async def table(self, name: str) -> Table:
        """The named table or view, or PGRST205."""
        cat = await self.catalog_with(table=name)
        if name in cat.tables:
            return cat.tables[name]
        close = difflib.get_close_matches(name, list(cat.tables), n=1, cutoff=0.75)
        raise ApiError(
            404,
            "PGRST205",
            f"Could not find the table '{self.schema}.{name}' in the schema cache",
            hint=f"Perhaps you meant the table '{self.schema}.{close[0]}'" if close else None,
        )

    async def run(
        self,
        identity: Identity,
        meta: RequestMeta,
        work: Callable[[asyncpg.Connection], Awaitable[T]],
        *,
        readonly: bool,
    ) -> T:
        """``work`` in one transaction as ``identity``; Postgres errors become ApiErrors."""
        try:
            async with self._connection() as conn, conn.transaction(readonly=readonly):
                await conn.execute(
                    _SETTINGS_SQL,
                    identity.role,
                    json.dumps(identity.claims),
                    meta.method,
                    meta.path,
                    json.dumps(dict(meta.headers)),
                )
                return await work(conn)
        except asyncpg.PostgresError as exc:
            raise from_postgres(exc, authed=identity.authed) from exc
