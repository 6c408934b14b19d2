"""Per-change, per-role output and the per-subscriber RLS check.

Mirrors ``realtime.apply_rls``: columns and values a role may not SELECT are left out,
a table without a primary key or with an unreadable one yields an error payload, RLS is
judged by primary key at delivery time (not from the captured image), and DELETEs skip
RLS but then carry only the primary key in ``old_record``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

from devstack.realtime.cdc_catalog import Column, TableState

log = logging.getLogger(__name__)

NO_PRIMARY_KEY = "Error 400: Bad Request, no primary key"
UNAUTHORIZED = "Error 401: Unauthorized"


@dataclass(frozen=True)
class Change:
    """One captured row change."""

    relid: int
    action: str  # INSERT | UPDATE | DELETE
    record: dict[str, Any] | None
    old_record: dict[str, Any] | None
    commit_timestamp: str


def role_errors(action: str, columns: Sequence[Column]) -> list[str]:
    """The 400/401 errors a role gets instead of data (never for DELETE)."""
    if action == "DELETE":
        return []
    pks = [c for c in columns if c.is_pk]
    if not pks:
        return [NO_PRIMARY_KEY]
    if not all(c.selectable for c in pks):
        return [UNAUTHORIZED]
    return []


def identity(state: TableState, columns: Sequence[Column]) -> list[Column]:
    """The columns a WAL reader gets for the old row (the replica identity)."""
    if state.replident == "f":
        return list(columns)
    if state.replident == "i":
        return [c for c in columns if c.in_identity_index]
    if state.replident == "d":
        return [c for c in columns if c.is_pk]
    return []


def filter_image(change: Change, state: TableState, columns: Sequence[Column]) -> dict[str, Any]:
    """What filters are tested against: the new row, or a DELETE's identity columns."""
    if change.action != "DELETE":
        return dict(change.record or {})
    old = change.old_record or {}
    return {c.name: old[c.name] for c in identity(state, columns) if c.name in old}


def _pick(values: Mapping[str, Any], columns: Sequence[Column]) -> dict[str, Any] | None:
    picked = {c.name: values[c.name] for c in columns if c.name in values}
    return picked or None  # jsonb_object_agg over no rows is NULL


def build_data(
    change: Change,
    state: TableState,
    columns: Sequence[Column],
    select: Sequence[str] | None,
) -> dict[str, Any]:
    """The ``data`` of a ``postgres_changes`` push for one role (and one ``select``)."""
    shown = [c for c in columns if c.selectable and (select is None or c.name in select or c.is_pk)]
    data: dict[str, Any] = {
        "schema": state.table.schema,
        "table": state.table.name,
        "commit_timestamp": change.commit_timestamp,
        "type": change.action,
        "columns": [{"name": c.name, "type": c.type} for c in shown],
    }
    if change.action in ("INSERT", "UPDATE"):
        data["record"] = _pick(change.record or {}, shown) or {}
    if change.action in ("UPDATE", "DELETE"):
        old_columns = [c for c in identity(state, columns) if c in shown]
        if change.action == "DELETE" and state.rls_enabled:
            old_columns = [c for c in old_columns if c.is_pk]  # RLS cannot vet a deleted row
        data["old_record"] = _pick(change.old_record or {}, old_columns)
    data["errors"] = None
    return data


def error_data(change: Change, state: TableState, errors: list[str]) -> dict[str, Any]:
    """The payload a role gets when it may not see the change at all (400/401).

    The server sends only schema, table and type here; empty columns and records are
    added so that clients which always map ``record`` (realtime-js does) do not crash.
    """
    data: dict[str, Any] = {
        "schema": state.table.schema,
        "table": state.table.name,
        "commit_timestamp": change.commit_timestamp,
        "type": change.action,
        "columns": [],
    }
    if change.action in ("INSERT", "UPDATE"):
        data["record"] = {}
    if change.action in ("UPDATE", "DELETE"):
        data["old_record"] = {}
    data["errors"] = errors
    return data


_SETTINGS_SQL = "select set_config('role', $1, true), set_config('request.jwt.claims', $2, true)"


async def rls_allows(
    conn: asyncpg.Connection,
    state: TableState,
    columns: Sequence[Column],
    record: Mapping[str, Any],
    claims: Mapping[str, Any],
) -> bool:
    """Whether the claims' role sees the row now: ``exists(select 1 ... where pk = v)``."""
    pks = [c for c in columns if c.is_pk]
    where = " and ".join(
        f"{c.quoted} = (($1::jsonb ->> ${i}::text)::{c.regtype})" for i, c in enumerate(pks, 2)
    )
    sql = f"select exists(select 1 from {state.table.qualified} where {where})"
    try:
        async with conn.transaction():
            await conn.execute(_SETTINGS_SQL, str(claims.get("role", "")), json.dumps(claims))
            found = await conn.fetchval(sql, json.dumps(dict(record)), *(c.name for c in pks))
    except asyncpg.PostgresError as exc:
        # The server's whole poll fails here; one subscriber's bad role or failing policy
        # must not stop delivery to the others, so the stand-in counts it as not visible.
        log.warning("postgres_changes RLS check failed for %s: %s", state.table.qualified, exc)
        return False
    return bool(found)
