"""Postgres Changes binding parameters: parsing, error texts, and the join-reply ids.

Mirrors ``supabase/realtime: lib/extensions/postgres_cdc_rls/subscriptions.ex``
(``parse_subscription_params``, ``params_to_log``) and ``realtime_channel.ex``
(``add_id_to_postgres_changes``). Every text a client can see is the server's own,
including Elixir's ``inspect`` rendering of the offending values.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# Since 2026-06 the server also takes like/ilike/match/imatch/is/isdistinct.
FILTER_OPS = (
    *("eq", "neq", "lt", "lte", "gt", "gte", "in"),
    *("like", "ilike", "match", "imatch", "is", "isdistinct"),
)
ACTIONS = ("INSERT", "UPDATE", "DELETE")
PHASH2_RANGE = 1 << 27  # :erlang.phash2/1's default range


class ParamsError(Exception):
    """A binding the server refuses before touching the database; ``text`` is its words."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


@dataclass(frozen=True)
class Filter:
    """One ``column=[not.]op.value`` condition; ``in`` values are already ``{a,b}``."""

    column: str
    op: str
    value: str
    negate: bool


@dataclass(frozen=True)
class Params:
    """A parsed binding: what ``realtime.subscription`` would store for it."""

    action: str  # "*" or one of ACTIONS
    schema: str  # may be "*"
    table: str  # may be "*"
    filters: tuple[Filter, ...]
    select: tuple[str, ...] | None


def inspect(value: Any) -> str:
    """Elixir's ``inspect/1`` for the JSON-like values that appear in error texts."""
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list | tuple):
        inner = ", ".join(inspect(v) for v in value)
        return f"{{{inner}}}" if isinstance(value, tuple) else f"[{inner}]"
    if isinstance(value, Mapping):
        items = ", ".join(f"{inspect(k)} => {inspect(v)}" for k, v in sorted(value.items()))
        return f"%{{{items}}}"
    return json.dumps(value)


def params_to_log(params: Params) -> str:
    """The ``[...]`` part of the subscription error texts (``Realtime.Logs.to_log``)."""
    filters = [(f.column, f.op, f.value, f.negate) for f in params.filters]
    select = list(params.select) if params.select is not None else None
    return (
        f"event: {params.action}, schema: {params.schema}, table: {params.table}, "
        f"filters: {inspect(filters)}, select: {inspect(select)}"
    )


def binding_id(binding: Mapping[str, Any]) -> int:
    """A stable integer for a binding map (the server uses ``:erlang.phash2(params)``)."""
    canonical = json.dumps(
        {k: v for k, v in binding.items() if k != "id"}, sort_keys=True, separators=(",", ":")
    )
    digest = hashlib.sha256(canonical.encode()).digest()
    return int.from_bytes(digest[:8], "big") % PHASH2_RANGE


def _action(params: Mapping[str, Any]) -> str:
    event = params.get("event")
    if isinstance(event, str) and event.upper() in ACTIONS:
        return event.upper()
    return "*"  # anything else, including a missing event, means every action


def _select(params: Mapping[str, Any]) -> tuple[str, ...] | None:
    cols = params.get("select")
    if isinstance(cols, str):
        raise ParamsError(
            "Error parsing `select` params: expected a list of column name strings, "
            'e.g. select: ["col1", "col2"]'
        )
    if isinstance(cols, list):
        valid = tuple(c for c in cols if isinstance(c, str))
        return valid or None
    return None


def parse(binding: Mapping[str, Any]) -> Params:
    """Parse one binding as the server does; raises ParamsError with its text."""
    params = {k: v for k, v in binding.items() if k != "id"}
    action, select = _action(params), _select(params)
    schema, table = params.get("schema"), params.get("table")
    has_filter, has_schema, has_table = "filter" in params, "schema" in params, "table" in params
    if isinstance(schema, str) and isinstance(table, str) and isinstance(params.get("filter"), str):
        return _ok(action, schema, table, _filters(str(params["filter"])), select)
    if isinstance(schema, str) and isinstance(table, str) and not has_filter:
        return _ok(action, schema, table, (), select)
    if isinstance(schema, str) and not has_table and not has_filter:
        return _ok(action, schema, "*", (), select)
    if isinstance(table, str) and not has_schema and not has_filter:
        return _ok(action, "public", table, (), select)
    shown = "<redacted>" if {"user_token", "auth_token"} & params.keys() else inspect(params)
    raise ParamsError(
        "No subscription params provided. Please provide at least a `schema` or `table` "
        f"to subscribe to: {shown}"
    )


def _ok(action: str, schema: str, table: str, filters: tuple[Filter, ...], select: Any) -> Params:
    if select is not None and "*" in (schema, table):
        raise ParamsError(
            "Column selection is not supported for wildcard subscriptions. "
            "Provide an explicit schema and table name."
        )
    return Params(action, schema, table, filters, select)


def _filters(text: str) -> tuple[Filter, ...]:
    trimmed = text.strip()
    if not trimmed:
        return ()
    try:
        return tuple(_segment(s) for s in split_top_level(trimmed))
    except ParamsError as exc:
        raise ParamsError(f"Error parsing `filter` params: {exc.text}") from None


def split_top_level(text: str) -> list[str]:
    """Split on commas outside parentheses and double quotes (``split_top_level/6``)."""
    parts: list[str] = []
    current, depth, quoted, prev, i = "", 0, False, "", 0
    while i < len(text):
        char = text[i]
        if quoted and char == "\\" and i + 1 < len(text):
            current, prev, i = current + text[i : i + 2], text[i + 1], i + 2
            continue
        if quoted:
            quoted = char != '"'
        elif char == '"' and prev in (".", "(", ","):
            quoted = True
        elif char in "()":
            depth = depth + 1 if char == "(" else max(0, depth - 1)
        elif char == "," and depth == 0:
            parts.append(current)
            current, prev, i = "", "", i + 1
            continue
        current, prev, i = current + char, char, i + 1
    parts.append(current)
    return parts


def _segment(segment: str) -> Filter:
    trimmed = segment.strip()
    if not trimmed:
        raise ParamsError("filter must not contain empty segments (check for extra commas)")
    col_rest = trimmed.split("=", 1)
    if len(col_rest) != 2:
        raise ParamsError(inspect(col_rest))
    column, rest = col_rest
    negate = rest.startswith("not.")
    op_value = rest.removeprefix("not.").split(".", 1)
    if len(op_value) != 2:
        raise ParamsError(inspect(op_value))
    op, value = op_value
    if op not in FILTER_OPS:
        raise ParamsError(inspect([op, value]))
    return Filter(column, op, _format_value(op, value), negate)


def _format_value(op: str, value: str) -> str:
    if op == "in":
        if len(value) >= 2 and value[0] == "(" and value[-1] == ")":
            return "{" + value[1:-1] + "}"
        raise ParamsError("`in` filter value must be wrapped by parentheses")
    return _unquote(value)


def _unquote(value: str) -> str:
    """``"a \\"b\\""`` -> ``a "b"``; anything not wholly quoted is kept as it is."""
    if not value.startswith('"'):
        return value
    out, i = "", 1
    while i < len(value):
        char = value[i]
        if char == "\\" and i + 1 < len(value):
            out, i = out + value[i + 1], i + 2
        elif char == '"':
            return out if i == len(value) - 1 else value
        else:
            out, i = out + char, i + 1
    return value
