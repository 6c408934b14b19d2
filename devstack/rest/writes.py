"""Plans for POST (insert, upsert), PATCH (update) and DELETE on a table.

The body is sent to Postgres as one JSON parameter and unpacked there with
``json_populate_record[set]`` typed by the table's own row type, so values are never
spliced into SQL and keep their JSON types. Like Supabase (which loads ``pg-safeupdate``),
PATCH and DELETE without a filter are refused with 400 / 21000.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from devstack.rest import sql as q
from devstack.rest.catalog import Table
from devstack.rest.errors import ApiError, invalid_body, not_implemented
from devstack.rest.negotiate import Preferences
from devstack.rest.query import Filter, parse_list, parse_read


@dataclass(frozen=True)
class WritePlan:
    sql: str
    values: list[object]


def _column_not_found(table: Table, column: str) -> ApiError:
    return ApiError(
        400,
        "PGRST204",
        f"Could not find the '{column}' column of '{table.name}' in the schema cache",
    )


def _columns_param(text: str) -> list[str]:
    """``columns=`` / ``on_conflict=``: comma-separated names, each optionally quoted."""
    return [c.strip() for c in parse_list(text, f"({text})") if c.strip()]


def _payload_columns(table: Table, rows: list[Any], columns: str | None) -> list[str]:
    if not all(isinstance(row, dict) for row in rows):
        raise invalid_body()
    if columns is not None:
        names = _columns_param(columns)
    else:
        names = list(rows[0]) if rows else []
        if any(set(row) != set(names) for row in rows):
            raise invalid_body("All object keys must match")
    for name in names:
        if name not in table.columns:
            raise _column_not_found(table, name)
    return names


def _returning(mutation: str, rel: q.Relation, query: Mapping[str, str], prefs: Preferences) -> str:
    if not prefs.representation:
        return mutation
    fields = parse_read([("select", query.get("select", "*"))]).fields
    return q.with_returning(mutation, rel, fields)


def _insert(table: Table, query: Mapping[str, str], body: Any, prefs: Preferences) -> WritePlan:
    rows = body if isinstance(body, list) else [body]
    names = _payload_columns(table, rows, query.get("columns"))
    conflict: list[str] | None = None
    if prefs.resolution in ("merge-duplicates", "ignore-duplicates"):
        given = query.get("on_conflict")
        # insert_sql checks these names against the catalog like any other column.
        conflict = _columns_param(given) if given else list(table.primary_key)
    params = q.Params()
    rel = q.table_relation(table)
    mutation = q.insert_sql(
        rel,
        names,
        params.json(json.dumps(rows)),
        conflict=conflict or None,
        merge=prefs.resolution == "merge-duplicates",
    )
    return WritePlan(_returning(mutation, rel, query, prefs), params.values)


def _filtered(method: str, query: Mapping[str, str]) -> tuple[Filter, ...]:
    read = parse_read(query.items())
    if read.limit is not None or read.offset or read.order:
        raise not_implemented(f"limit, offset and order on {method} (PostgREST needs an order)")
    if not read.filters:
        verb = "UPDATE" if method == "PATCH" else "DELETE"
        raise ApiError(400, "21000", f"{verb} requires a WHERE clause")
    return read.filters


def plan_write(
    method: str, table: Table, query: Mapping[str, str], body: Any, prefs: Preferences
) -> WritePlan | None:
    """The statement for a write request; None for a PATCH with an empty object."""
    if method == "POST":
        return _insert(table, query, body, prefs)
    filters = _filtered(method, query)
    params = q.Params()
    rel = q.table_relation(table)
    if method == "DELETE":
        return WritePlan(
            _returning(q.delete_sql(rel, filters, params), rel, query, prefs), params.values
        )
    if not isinstance(body, dict):
        raise invalid_body()
    names = _payload_columns(table, [body], None)
    if not names:
        return None
    body_param = params.json(json.dumps(body))
    mutation = q.update_sql(rel, names, body_param, filters, params)
    return WritePlan(_returning(mutation, rel, query, prefs), params.values)
