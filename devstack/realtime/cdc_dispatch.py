"""From one captured change to the payloads each subscriber gets.

The per-change half of ``realtime.apply_rls`` plus ``MessageDispatcher``: which bindings
want the change (table, action), which pass their filters, whether RLS lets the
subscriber's role see the row, and the ``{"ids", "data"}`` payloads to push.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

from devstack.realtime import cdc_catalog, cdc_filters, cdc_rls
from devstack.realtime.cdc_params import Params


@dataclass(frozen=True)
class Binding:
    """A subscribed binding: its join-reply id, its params, the tables it matched."""

    id: int
    params: Params
    relids: frozenset[int]

    def wants(self, relid: int, action: str) -> bool:
        return relid in self.relids and self.params.action in ("*", action)


async def load_change(conn: asyncpg.Connection, change_id: int) -> cdc_rls.Change | None:
    """The captured change with this id (None once pruned)."""
    row = await conn.fetchrow(
        "select relid, action, record, old_record, commit_timestamp"
        " from devstack_cdc.changes where id = $1",
        change_id,
    )
    if row is None:
        return None
    return cdc_rls.Change(
        relid=row["relid"],
        action=row["action"],
        record=_json(row["record"]),
        old_record=_json(row["old_record"]),
        commit_timestamp=row["commit_timestamp"],
    )


async def prune(conn: asyncpg.Connection, keep_s: float) -> None:
    """Drop captured changes older than ``keep_s`` (every listener has long seen them)."""
    await conn.execute(
        "delete from devstack_cdc.changes"
        " where captured_at < clock_timestamp() - make_interval(secs => $1)",
        float(keep_s),
    )


@dataclass(frozen=True)
class Context:
    """What every subscriber's decision about one change shares."""

    change: cdc_rls.Change
    state: cdc_catalog.TableState
    columns: list[cdc_catalog.Column]  # as the subscriber's role sees them


async def payloads(
    conn: asyncpg.Connection,
    ctx: Context,
    claims: Mapping[str, Any],
    matched: Sequence[Binding],
) -> list[dict[str, Any]]:
    """The pushes one subscriber gets for the change (none if filters or RLS hide it)."""
    change, state, columns = ctx.change, ctx.state, ctx.columns
    errors = cdc_rls.role_errors(change.action, columns)
    if errors:  # the server sends these to every subscription of the role, unfiltered
        return [_payload(matched, cdc_rls.error_data(change, state, errors))]
    image = cdc_rls.filter_image(change, state, columns)
    types = {c.name: c.regtype for c in columns}
    visible = [
        b for b in matched if await cdc_filters.passes_filters(conn, image, b.params.filters, types)
    ]
    if not visible or not await _rls_allows(conn, ctx, claims):
        return []
    out = []
    for select in dict.fromkeys(b.params.select for b in visible):
        group = [b for b in visible if b.params.select == select]
        out.append(_payload(group, cdc_rls.build_data(change, state, columns, select)))
    return out


async def _rls_allows(conn: asyncpg.Connection, ctx: Context, claims: Mapping[str, Any]) -> bool:
    if not ctx.state.rls_enabled or ctx.change.action == "DELETE":
        return True  # the server cannot vet a deleted row, so DELETEs skip RLS
    return await cdc_rls.rls_allows(conn, ctx.state, ctx.columns, ctx.change.record or {}, claims)


def _payload(bindings: Sequence[Binding], data: dict[str, Any]) -> dict[str, Any]:
    # The server lists matching ids last binding first (it prepends while reducing).
    return {"ids": [b.id for b in reversed(bindings)], "data": data}


def _json(value: str | None) -> dict[str, Any] | None:
    return None if value is None else dict(json.loads(value))
