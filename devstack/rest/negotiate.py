"""Request preferences and response shapes: ``Prefer``, ``Accept``, profiles, ranges.

``fetch_rows`` runs inside the request's transaction so that a singular-object request
that does not match exactly one row (406 PGRST116) rolls its mutation back, as PostgREST's
does.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import asyncpg
from aiohttp import web

from devstack.rest.errors import ApiError

OBJECT = "application/vnd.pgrst.object+json"
ARRAY_TYPES = frozenset(
    {"", "*/*", "application/*", "application/json", "application/vnd.pgrst.array+json"}
)


@dataclass(frozen=True)
class Preferences:
    """The ``Prefer`` header, as far as this stand-in honours it."""

    representation: bool = False
    count: bool = False
    resolution: str | None = None  # "merge-duplicates" | "ignore-duplicates"


def preferences(all_values: list[str]) -> Preferences:
    """Parse every ``Prefer`` header (comma-separated ``key=value`` items)."""
    items: dict[str, str] = {}
    for value in all_values:
        for part in value.split(","):
            key, _, setting = part.strip().partition("=")
            items[key.lower()] = setting.strip()
    return Preferences(
        representation=items.get("return") == "representation",
        # planned and estimated are exact here: the tables are small.
        count=items.get("count") in ("exact", "planned", "estimated"),
        resolution=items.get("resolution"),
    )


def wants_object(accept: str | None) -> bool:
    """True for ``vnd.pgrst.object+json``; False for JSON arrays; 406 PGRST107 otherwise."""
    types = [part.split(";")[0].strip().lower() for part in (accept or "").split(",")]
    if OBJECT in types:
        return True
    if any(t in ARRAY_TYPES for t in types):
        return False
    raise ApiError(406, "PGRST107", f"None of these media types are available: {', '.join(types)}")


def check_profile(headers: Mapping[str, str], header: str, schema: str) -> None:
    """406 PGRST106 when ``Accept-Profile``/``Content-Profile`` names another schema."""
    wanted = headers.get(header)
    if wanted is not None and wanted != schema:
        raise ApiError(
            406,
            "PGRST106",
            f"Invalid schema: {wanted}",
            hint=f"Only the following schemas are exposed: {schema}",
        )


@dataclass(frozen=True)
class Rows:
    """A result: JSON array text, row count, first row's JSON, exact total if counted."""

    body: str | None
    n: int
    first: str | None = None
    total: int | None = None


def singular_error(n: int) -> ApiError:
    return ApiError(
        406,
        "PGRST116",
        "Cannot coerce the result to a single JSON object",
        details=f"The result contains {n} rows",
    )


async def fetch_rows(
    conn: asyncpg.Connection, sql: str, values: list[object], *, single: bool
) -> Rows:
    """Run a JSON-wrapped statement; enforce ``single`` before the transaction ends."""
    row = await conn.fetchrow(sql, *values)
    assert row is not None  # an aggregate always returns one row
    rows = Rows(row["body"], int(row["n"]), row["first"], row["total"])
    if single and rows.n != 1:
        raise singular_error(rows.n)
    return rows


async def execute_count(
    conn: asyncpg.Connection, sql: str, values: list[object], *, single: bool
) -> Rows:
    """Run a mutation without RETURNING (``return=minimal``): only its row count."""
    status = await conn.execute(sql, *values)
    n = int(status.rsplit(" ", 1)[-1])
    if single and n != 1:
        raise singular_error(n)
    return Rows(None, n, None, n)


def content_range(offset: int, n: int, total: int | None) -> str:
    """``0-24/*``, ``0-24/100``, ``*/0``: PostgREST's Content-Range."""
    size = "*" if total is None else str(total)
    return f"{offset}-{offset + n - 1}/{size}" if n else f"*/{size}"


def rows_response(
    rows: Rows, *, status: int, single: bool, offset: int = 0, counted: bool = False
) -> web.Response:
    """The response for a result; no body for ``return=minimal``."""
    total = rows.total if counted else None
    headers = {"Content-Range": content_range(offset, rows.n, total)}
    if status == 200 and total is not None and rows.n < total:
        status = 206  # a partial page of a counted result
    if rows.body is None:
        return web.Response(status=status, headers=headers)
    return web.Response(
        status=status,
        text=rows.first if single else rows.body,
        content_type=OBJECT if single else "application/json",
        charset="utf-8",
        headers=headers,
    )


def json_response(text: str, *, status: int = 200) -> web.Response:
    return web.Response(status=status, text=text, content_type="application/json", charset="utf-8")
