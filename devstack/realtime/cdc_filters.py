"""Filters: validated at subscribe time, evaluated per change.

Mirrors ``realtime.subscription_check_filters`` (the trigger that refuses a subscription
row) and ``realtime.is_visible_through_filters`` / ``realtime.check_equality_op`` (the
per-change test). Both compare typed values in SQL, the column's type read from the
catalog, so ``id=gt.9`` compares numbers and a timestamp filter compares instants.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

import asyncpg

from devstack.realtime.cdc_catalog import Column, columns_for
from devstack.realtime.cdc_params import Filter, Params

_SYMBOLS = {"eq": "=", "neq": "!=", "lt": "<", "lte": "<=", "gt": ">", "gte": ">="}
_SYMBOLS |= {"like": "LIKE", "ilike": "ILIKE", "match": "~", "imatch": "~*"}
IS_KEYWORDS = {"null": "NULL", "true": "TRUE", "false": "FALSE", "unknown": "UNKNOWN"}


class CheckError(Exception):
    """A subscription the database refuses; ``text`` reads like ``Exception.message/1``."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


def _raised(message: str) -> CheckError:
    """What a PL/pgSQL ``raise exception`` in the server's trigger shows as."""
    return CheckError(f"ERROR P0001 (raise_exception) {message}")


def postgres_error_text(exc: asyncpg.PostgresError) -> str:
    """``ERROR 22P02 (invalid_text_representation) ...``, as Postgrex renders errors."""
    name = re.sub(r"(?<!^)(?=[A-Z])", "_", type(exc).__name__.removesuffix("Error")).lower()
    return f"{exc.severity or 'ERROR'} {exc.sqlstate} ({name}) {exc.args[0] if exc.args else exc}"


async def check_subscription(
    conn: asyncpg.Connection, relid: int, role: str, params: Params
) -> None:
    """Refuse what the server's subscription insert would refuse (raises CheckError).

    That is an unknown role (``claims_role`` is cast to ``regrole``), and filters or
    selected columns the role cannot read or whose values do not cast.
    """
    try:
        columns = await columns_for(conn, relid, role)
    except asyncpg.PostgresError as exc:
        raise CheckError(postgres_error_text(exc)) from exc
    await _check_binding(conn, columns, params)


async def _check_binding(
    conn: asyncpg.Connection, columns: Sequence[Column], params: Params
) -> None:
    readable = {c.name: c for c in columns if c.selectable}
    for f in params.filters:
        column = readable.get(f.column)
        if column is None:
            raise _raised(f"invalid column for filter {f.column}")
        try:
            await _check_value(conn, f, column.regtype)
        except asyncpg.PostgresError as exc:
            raise CheckError(postgres_error_text(exc)) from exc
    for name in params.select or ():
        if name not in readable:
            raise _raised(f"invalid column for select {name}")


async def _check_value(conn: asyncpg.Connection, f: Filter, regtype: str) -> None:
    if f.op == "in":
        count = await conn.fetchval(
            f"select coalesce(jsonb_array_length(to_jsonb($1::text::{regtype}[])), 0)", f.value
        )
        if count > 100:
            raise _raised("too many values for `in` filter. Maximum 100")
    elif f.op == "is":
        if f.value not in IS_KEYWORDS:
            raise _raised("invalid value for is filter: must be null, true, false, or unknown")
        if f.value != "null" and regtype != "boolean":
            raise _raised(f"is {f.value} filter requires a boolean column, got {regtype}")
    elif f.op in ("like", "ilike", "match", "imatch"):
        await _check_pattern_op(conn, f, regtype)
    elif f.op != "isdistinct":
        await conn.fetchval(f"select to_jsonb($1::text::{regtype})", f.value)


async def _check_pattern_op(conn: asyncpg.Connection, f: Filter, regtype: str) -> None:
    operator = {"like": "~~", "ilike": "~~", "match": "~", "imatch": "~*"}[f.op]
    found = await conn.fetchval(
        "select exists(select 1 from pg_catalog.pg_operator"
        " where oprname = $1 and oprleft = $2::regtype)",
        operator,
        regtype,
    )
    if not found:
        raise _raised(f"operator {f.op} requires a text-compatible column type, got {regtype}")
    if f.op in ("match", "imatch"):
        try:
            await conn.fetchval("select '' ~ $1", f.value)
        except asyncpg.PostgresError as exc:
            raise _raised(f"invalid regular expression for {f.op} filter: {exc}") from exc


def _condition(f: Filter, regtype: str, column_arg: int, value_arg: int) -> str:
    """One filter as SQL over ``$1`` (the row image as jsonb); values stay parameters."""
    lhs = f"(($1::jsonb ->> ${column_arg}::text)::{regtype})"
    rhs = f"(${value_arg}::text::{regtype})"
    if f.op == "isdistinct":
        return f"{lhs} IS {'NOT ' if f.negate else ''}DISTINCT FROM {rhs}"
    if f.op == "is":
        return f"{lhs} IS {'NOT ' if f.negate else ''}{IS_KEYWORDS[f.value]}"
    if f.op == "in":
        test = f"{lhs} = any(${value_arg}::text::{regtype}[])"
    else:
        test = f"{lhs} {_SYMBOLS[f.op]} {rhs}"
    return f"not ({test})" if f.negate else f"({test})"


async def passes_filters(
    conn: asyncpg.Connection,
    image: Mapping[str, Any],
    filters: Sequence[Filter],
    types: Mapping[str, str],
) -> bool:
    """Whether every filter holds on the row image (a NULL result counts as false).

    A filter on a column the image lacks fails, as on the server: a DELETE's image holds
    only the replica identity (the primary key, unless REPLICA IDENTITY FULL).
    """
    if not filters:
        return True
    if any(f.column not in image or f.column not in types for f in filters):
        return False
    args: list[Any] = [json.dumps(dict(image))]
    conditions = []
    for f in filters:
        args += [f.column, f.value]
        conditions.append(_condition(f, types[f.column], len(args) - 1, len(args)))
    sql = f"select coalesce({' and '.join(conditions)}, false)"
    return bool(await conn.fetchval(sql, *args))
