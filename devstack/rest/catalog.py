"""The schema cache: tables, columns and functions of the exposed schema, from the catalog.

Every identifier the data API writes into SQL is a key of this cache (names as Postgres
stores them) and every type name is ``format_type()`` output, so user input never becomes
SQL text. Like PostgREST's cache it lists objects whatever the caller's privileges;
privileges and RLS are checked by Postgres when the statement runs as the caller's role.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import asyncpg

_TABLES_SQL = """
select c.relname as name,
       coalesce(json_object_agg(a.attname, format_type(a.atttypid, a.atttypmod)
                order by a.attnum) filter (where a.attnum is not null), '{}')::text as columns,
       coalesce((select json_agg(k.attname order by k.attnum)
                   from pg_index i join pg_attribute k
                     on k.attrelid = i.indrelid and k.attnum = any (i.indkey)
                  where i.indrelid = c.oid and i.indisprimary), '[]')::text as pkey
  from pg_class c
  join pg_namespace n on n.oid = c.relnamespace
  left join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
 where n.nspname = $1 and c.relkind in ('r', 'v', 'm', 'f', 'p')
 group by c.oid, c.relname
"""

_FUNCTIONS_SQL = """
select p.proname as name, p.proretset as returns_set, p.pronargdefaults as defaults,
       p.prorettype = 'void'::regtype as returns_void,
       (select c.relname from pg_type t join pg_class c on c.oid = t.typrelid
         where t.oid = p.prorettype and c.relnamespace = p.pronamespace) as returns_table,
       coalesce((select json_agg(json_build_object(
                   'name', coalesce(p.proargnames[i], ''),
                   'type', format_type(coalesce(p.proallargtypes[i], p.proargtypes[i - 1]), null),
                   'mode', coalesce(p.proargmodes[i]::text, 'i')) order by i)
                 from generate_series(1, coalesce(array_length(p.proallargtypes, 1), p.pronargs)) i
                ), '[]')::text as args
  from pg_proc p join pg_namespace n on n.oid = p.pronamespace
 where n.nspname = $1 and p.prokind = 'f'
"""


@dataclass(frozen=True)
class Table:
    """A table or view: column name -> type name, and its primary key."""

    schema: str
    name: str
    columns: dict[str, str]
    primary_key: tuple[str, ...]


@dataclass(frozen=True)
class Param:
    name: str
    type: str
    has_default: bool


@dataclass(frozen=True)
class Routine:
    """A function callable through ``/rpc``."""

    schema: str
    name: str
    params: tuple[Param, ...]
    returns_set: bool
    returns_void: bool
    returns_table: str | None  # a composite result typed by a table of the schema
    out_columns: dict[str, str]  # RETURNS TABLE (...) columns

    def accepts(self, keys: set[str]) -> bool:
        """Whether named arguments ``keys`` fit: all known, every required one given."""
        names = {p.name for p in self.params}
        required = {p.name for p in self.params if not p.has_default}
        return keys <= names and required <= keys


def _routine(schema: str, row: asyncpg.Record) -> Routine:
    args = json.loads(row["args"])
    inputs = [a for a in args if a["mode"] in ("i", "b", "v")]
    first_default = len(inputs) - int(row["defaults"])
    params = tuple(Param(a["name"], a["type"], i >= first_default) for i, a in enumerate(inputs))
    outs = {a["name"]: a["type"] for a in args if a["mode"] in ("o", "b", "t")}
    return Routine(
        schema=schema,
        name=row["name"],
        params=params,
        returns_set=row["returns_set"],
        returns_void=row["returns_void"],
        returns_table=row["returns_table"],
        out_columns=outs,
    )


@dataclass(frozen=True)
class Catalog:
    """A snapshot of one schema; reload with :func:`load` when something is missing."""

    schema: str
    tables: dict[str, Table]
    routines: dict[str, tuple[Routine, ...]]


async def load(conn: asyncpg.Connection, schema: str) -> Catalog:
    """Read tables and functions of ``schema`` from the system catalogs."""
    tables = {
        row["name"]: Table(
            schema, row["name"], json.loads(row["columns"]), tuple(json.loads(row["pkey"]))
        )
        for row in await conn.fetch(_TABLES_SQL, schema)
    }
    routines: dict[str, list[Routine]] = {}
    for row in await conn.fetch(_FUNCTIONS_SQL, schema):
        routines.setdefault(row["name"], []).append(_routine(schema, row))
    return Catalog(schema, tables, {k: tuple(v) for k, v in routines.items()})
