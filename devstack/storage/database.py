"""The database side of Storage: storage.buckets and storage.objects, as the caller or as the
server itself.

A request's queries run in one transaction that first sets what the Storage server sets
(``src/internal/database/postgres/scope.ts``): ``role``, ``request.jwt.claims`` (and the
older ``request.jwt.claim.*``), ``request.method``/``path``/``headers``,
``storage.operation``, and ``storage.allow_delete_query`` (which lets the API past the
platform's guard against direct deletes). RLS decides every row. Lookups the server does as
its own superuser (the bucket, a signed URL's object) run without a role.
"""

from __future__ import annotations

import contextlib
import json
import logging
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

import asyncpg

from devstack.pool import acquired
from devstack.rest.auth import Identity
from devstack.storage import errors as err

log = logging.getLogger(__name__)
ACQUIRE_TIMEOUT_S = 5.0
OBJECT_COLUMNS = (
    "name, id, bucket_id, owner, owner_id, version, created_at, updated_at, "
    "last_accessed_at, metadata, user_metadata"
)

_SCOPE_SQL = """
select set_config('role', $1, true),
       set_config('request.jwt.claim.role', $1, true),
       set_config('request.jwt.claims', $2, true),
       set_config('request.jwt.claim.sub', $3, true),
       set_config('request.headers', $4, true),
       set_config('request.method', $5, true),
       set_config('request.path', $6, true),
       set_config('storage.operation', $7, true),
       set_config('storage.allow_delete_query', 'true', true)
"""


@dataclass(frozen=True)
class Caller:
    """Who asks and what the database may read about the request."""

    identity: Identity
    method: str
    path: str
    headers: Mapping[str, str]
    operation: str

    @property
    def owner(self) -> str | None:
        sub = self.identity.claims.get("sub")
        return sub if isinstance(sub, str) else None


@dataclass(frozen=True)
class Bucket:
    id: str
    public: bool
    file_size_limit: int | None
    allowed_mime_types: tuple[str, ...] | None


class Database:
    """An asyncpg pool and the queries of the object routes."""

    def __init__(self, database_url: str) -> None:
        self._url = database_url
        self._pool: asyncpg.Pool | None = None

    async def start(self) -> None:
        self._pool = await asyncpg.create_pool(self._url, min_size=1, max_size=10)

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    @contextlib.asynccontextmanager
    async def _connection(self) -> AsyncIterator[asyncpg.Connection]:
        if self._pool is None:
            raise err.StorageError(500, "DatabaseError", "database error, code: not started")
        async with acquired(
            self._pool, timeout_s=ACQUIRE_TIMEOUT_S, unreachable=_unreachable, reachable=_noop
        ) as conn:
            yield conn

    @contextlib.asynccontextmanager
    async def as_caller(self, caller: Caller) -> AsyncIterator[asyncpg.Connection]:
        """A transaction run as the caller; Postgres errors become Storage's."""
        claims = caller.identity.claims
        try:
            async with self._connection() as conn, conn.transaction():
                await conn.execute(
                    _SCOPE_SQL,
                    caller.identity.role,
                    json.dumps(claims),
                    caller.owner or "",
                    json.dumps(dict(caller.headers)),
                    caller.method,
                    caller.path,
                    caller.operation,
                )
                yield conn
        except asyncpg.PostgresError as exc:
            raise err.from_postgres(exc) from exc

    @contextlib.asynccontextmanager
    async def as_server(self) -> AsyncIterator[asyncpg.Connection]:
        """The server's own connection (no role, no RLS), for its superuser lookups."""
        try:
            async with self._connection() as conn, conn.transaction():
                yield conn
        except asyncpg.PostgresError as exc:
            raise err.from_postgres(exc) from exc

    async def bucket(self, bucket_id: str) -> Bucket:
        """The bucket, looked up as the server; NoSuchBucket when it does not exist."""
        async with self.as_server() as conn:
            row = await conn.fetchrow(
                "select id, public, file_size_limit, allowed_mime_types from storage.buckets "
                "where id = $1",
                bucket_id,
            )
        if row is None:
            raise err.no_such_bucket()
        mime_types = row["allowed_mime_types"]
        return Bucket(
            row["id"],
            bool(row["public"]),
            row["file_size_limit"],
            None if mime_types is None else tuple(mime_types),
        )

    async def server_find(self, bucket_id: str, name: str) -> asyncpg.Record:
        async with self.as_server() as conn:
            return await find(conn, bucket_id, name)


async def find(conn: asyncpg.Connection, bucket_id: str, name: str) -> asyncpg.Record:
    """The object as ``conn`` may see it; NoSuchKey when missing or hidden by RLS."""
    row = await conn.fetchrow(
        f"select {OBJECT_COLUMNS} from storage.objects where bucket_id = $1 and name = $2",
        bucket_id,
        name,
    )
    if row is None:
        raise err.no_such_key()
    return row


async def visible_names(conn: asyncpg.Connection, bucket_id: str, names: list[str]) -> set[str]:
    rows = await conn.fetch(
        "select name from storage.objects where bucket_id = $1 and name = any($2::text[])",
        bucket_id,
        names,
    )
    return {row["name"] for row in rows}


async def write(
    conn: asyncpg.Connection,
    caller: Caller,
    bucket_id: str,
    name: str,
    *,
    metadata: dict[str, Any],
    user_metadata: dict[str, Any] | None,
    upsert: bool,
) -> asyncpg.Record:
    """Insert the object's row (or, with ``upsert``, replace it): ``(id, version)``.

    ``owner`` is set only when the token's ``sub`` is a uuid; ``owner_id`` always, as the
    server does (``src/storage/database/pg.ts``)."""
    conflict = (
        "on conflict (bucket_id, name) do update set version = excluded.version, "
        "owner = excluded.owner, owner_id = excluded.owner_id, metadata = excluded.metadata, "
        "user_metadata = excluded.user_metadata, last_accessed_at = now()"
        if upsert
        else ""
    )
    sql = (
        "insert into storage.objects "
        "(bucket_id, name, owner, owner_id, metadata, user_metadata, version) "
        f"values ($1, $2, $3, $4, $5::jsonb, $6::jsonb, $7) {conflict} returning id, version"
    )
    owner = caller.owner
    user_json = None if user_metadata is None else json.dumps(user_metadata)
    args = (bucket_id, name, _uuid_or_none(owner), owner, json.dumps(metadata), user_json)
    try:
        return await conn.fetchrow(sql, *args, str(uuid.uuid4()))
    except asyncpg.UniqueViolationError as exc:
        raise err.key_already_exists() from exc


async def delete(
    conn: asyncpg.Connection, bucket_id: str, names: list[str]
) -> list[asyncpg.Record]:
    """Delete the named objects RLS lets the caller delete; the deleted rows."""
    return list(
        await conn.fetch(
            f"delete from storage.objects where bucket_id = $1 and name = any($2::text[]) "
            f"returning {OBJECT_COLUMNS}",
            bucket_id,
            names,
        )
    )


async def move(
    conn: asyncpg.Connection,
    caller: Caller,
    source: tuple[str, str],
    target: tuple[str, str],
) -> asyncpg.Record:
    """Rename ``(bucket, name)`` to another; NoSuchKey when the caller cannot see the source."""
    await find(conn, *source)
    row = await conn.fetchrow(
        "update storage.objects set bucket_id = $3, name = $4, owner = $5, owner_id = $6 "
        "where bucket_id = $1 and name = $2 returning id, name",
        *source,
        *target,
        _uuid_or_none(caller.owner),
        caller.owner,
    )
    if row is None:
        raise err.no_such_key()
    return row


async def search(
    conn: asyncpg.Connection, bucket_id: str, prefix: str, options: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """``storage.search`` as the caller (``searchObjects`` in ``src/storage/database/pg.ts``)."""
    search_text = str(options.get("search") or "")
    raw_sort = options.get("sortBy")
    sort: Mapping[str, Any] = raw_sort if isinstance(raw_sort, Mapping) else {}
    rows = await conn.fetch(
        "select * from storage.search($1, $2, $3, $4, $5, $6, $7, $8)",
        prefix,
        bucket_id,
        _whole(options, "limit", 100),
        len((prefix + search_text).split("/")),
        _whole(options, "offset", 0),
        search_text,
        str(sort.get("column") or "name"),
        str(sort.get("order") or "asc"),
    )
    return [as_json(row) for row in rows]


def _whole(options: Mapping[str, Any], key: str, default: int) -> int:
    value = options.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise err.invalid_request(f"body/{key} must be integer")
    return value


def as_json(row: asyncpg.Record) -> dict[str, Any]:
    """A row as a dict with its jsonb columns decoded (asyncpg hands them over as text)."""
    out = dict(row)
    for key in ("metadata", "user_metadata"):
        if isinstance(out.get(key), str):
            out[key] = json.loads(out[key])
    return out


def _uuid_or_none(value: str | None) -> str | None:
    try:
        return str(uuid.UUID(value)) if value else None
    except ValueError:
        return None


def _unreachable(exc: BaseException) -> Exception:
    log.warning("storage: database unreachable (%r)", exc)
    return err.StorageError(500, "DatabaseError", "database error, code: connection")


def _noop() -> None:
    return None
