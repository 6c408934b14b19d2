"""Catalog reads for Postgres Changes: published tables, columns, capture triggers.

Identifiers and type names that end up in SQL text always come from the catalog already
quoted (``quote_ident``, ``regtype::text``); values always travel as parameters.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

PUBLICATION = "supabase_realtime"
TRIGGER = "devstack_cdc_capture"
INSTALL_LOCK = "devstack_cdc.install"  # serialises trigger installs across stand-ins


@dataclass(frozen=True)
class Table:
    """A published table, with its schema-qualified name quoted for SQL text."""

    relid: int
    schema: str
    name: str
    qualified: str


@dataclass(frozen=True)
class Column:
    """One column as a given role sees it."""

    name: str
    quoted: str
    type: str  # pg_type.typname, as the payload's ``columns`` carry it
    regtype: str  # a castable type name, e.g. ``timestamp with time zone``
    is_pk: bool
    in_identity_index: bool
    selectable: bool


@dataclass(frozen=True)
class TableState:
    """What decides delivery for a change: RLS, replica identity, published actions."""

    table: Table
    rls_enabled: bool
    replident: str  # d(efault, the PK) | f(ull) | i(ndex) | n(othing)
    published_actions: frozenset[str]


_PUBLISHED_SQL = """
select c.oid as relid, p.schemaname, p.tablename,
       quote_ident(p.schemaname) || '.' || quote_ident(p.tablename) as qualified
from pg_publication_tables p
join pg_namespace n on n.nspname = p.schemaname
join pg_class c on c.relnamespace = n.oid and c.relname = p.tablename
where p.pubname = $1
  and p.schemaname like (case $2 when '*' then '%' else $2 end) escape ''
  and p.tablename like (case $3 when '*' then '%' else $3 end) escape ''
order by p.schemaname, p.tablename
"""


async def published_tables(
    conn: asyncpg.Connection, schema: str = "*", table: str = "*"
) -> list[Table]:
    """Published tables matching the binding, matched with LIKE exactly as the server does.

    The server's query uses ``like ... escape ''``, so ``_`` and ``%`` in a binding's
    schema or table act as wildcards there too; kept for fidelity.
    """
    rows = await conn.fetch(_PUBLISHED_SQL, PUBLICATION, schema, table)
    return [Table(r["relid"], r["schemaname"], r["tablename"], r["qualified"]) for r in rows]


async def capture_installed(conn: asyncpg.Connection) -> bool:
    """Whether ``devstack/sql/20_postgres_changes.sql`` has been applied to this database."""
    found = await conn.fetchval("select to_regprocedure('devstack_cdc.capture()') is not null")
    return bool(found)


async def install_triggers(conn: asyncpg.Connection, tables: list[Table]) -> None:
    """Add the capture trigger to each table that lacks it (idempotent, race-free)."""
    async with conn.transaction():
        await conn.execute("select pg_advisory_xact_lock(hashtext($1))", INSTALL_LOCK)
        have = await conn.fetch(
            "select tgrelid from pg_trigger where tgname = $1 and tgrelid = any($2::oid[])",
            TRIGGER,
            [t.relid for t in tables],
        )
        present = {r["tgrelid"] for r in have}
        for table in tables:
            if table.relid not in present:
                await conn.execute(
                    f"create trigger {TRIGGER} after insert or update or delete "
                    f"on {table.qualified} for each row execute function devstack_cdc.capture()"
                )


_COLUMNS_SQL = """
select a.attname, quote_ident(a.attname) as quoted, t.typname, a.atttypid::regtype::text as regtype,
       coalesce(a.attnum = any(pk.conkey), false) as is_pk,
       coalesce(a.attnum = any(ri.indkey::int2[]), false) as in_identity_index,
       has_column_privilege($2::text, a.attrelid, a.attnum, 'SELECT') as selectable
from pg_attribute a
join pg_type t on t.oid = a.atttypid
left join pg_constraint pk on pk.conrelid = a.attrelid and pk.contype = 'p'
left join pg_index ri on ri.indrelid = a.attrelid and ri.indisreplident
where a.attrelid = $1 and a.attnum > 0 and not a.attisdropped
order by a.attnum
"""


async def columns_for(conn: asyncpg.Connection, relid: int, role: str) -> list[Column]:
    """The table's columns as ``role`` sees them. Unknown role: UndefinedObjectError."""
    rows = await conn.fetch(_COLUMNS_SQL, relid, role)
    return [
        Column(
            r["attname"],
            r["quoted"],
            r["typname"],
            r["regtype"],
            r["is_pk"],
            r["in_identity_index"],
            r["selectable"],
        )
        for r in rows
    ]


_STATE_SQL = """
select c.relrowsecurity, c.relreplident::text as replident, n.nspname, c.relname,
       quote_ident(n.nspname) || '.' || quote_ident(c.relname) as qualified,
       (select array_remove(array[
                 case when bool_or(p.pubinsert) then 'INSERT' end,
                 case when bool_or(p.pubupdate) then 'UPDATE' end,
                 case when bool_or(p.pubdelete) then 'DELETE' end], null)
          from pg_publication p where p.pubname = $2) as actions
from pg_class c join pg_namespace n on n.oid = c.relnamespace
where c.oid = $1
"""


async def table_state(conn: asyncpg.Connection, relid: int) -> TableState | None:
    """RLS flag, replica identity and published actions of a table (None if dropped)."""
    row = await conn.fetchrow(_STATE_SQL, relid, PUBLICATION)
    if row is None:
        return None
    table = Table(relid, row["nspname"], row["relname"], row["qualified"])
    return TableState(
        table, row["relrowsecurity"], row["replident"], frozenset(row["actions"] or ())
    )
