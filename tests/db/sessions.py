"""Run SQL as a token would through the data API: role + request.jwt.claims, then roll back."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import asyncpg


@contextlib.asynccontextmanager
async def as_token(conn: asyncpg.Connection, claims: dict[str, Any]) -> AsyncIterator[None]:
    """Everything inside runs as ``claims`` in one transaction that is always rolled back."""
    tx = conn.transaction()
    await tx.start()
    try:
        await conn.execute(
            "select set_config('role', $1, true), set_config('request.jwt.claims', $2, true)",
            claims["role"],
            json.dumps(claims),
        )
        yield
    finally:
        await tx.rollback()


async def allowed(conn: asyncpg.Connection, claims: dict[str, Any], sql: str, *args: Any) -> bool:
    """Whether ``sql`` succeeds and touches a row as ``claims`` (RLS denial -> False)."""
    async with as_token(conn, claims):
        try:
            status = await conn.execute(sql, *args)
        except asyncpg.InsufficientPrivilegeError:
            return False
    return not status.endswith(" 0")
