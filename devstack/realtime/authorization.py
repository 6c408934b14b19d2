"""Realtime Authorization: the RLS read and write checks, run exactly as the server does.

Mirrors ``supabase/realtime: lib/realtime/tenants/authorization.ex``: in one transaction,
as the connection user, insert probe rows, switch to the token's role with the claims and
``realtime.topic`` set locally, select the probes back (read) or insert under a savepoint
(write, SQLSTATE 42501 = denied), then roll everything back. Nothing persists.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import asyncpg

from devstack.pool import CONNECTION_LOST  # a lost connection is never "Unauthorized"

INSUFFICIENT_PRIVILEGE = "42501"


class PolicyError(Exception):
    """A policy raised, or the role does not exist: the server answers Unauthorized."""


@dataclass(frozen=True)
class Permissions:
    broadcast: bool
    presence: bool

    @property
    def any(self) -> bool:
        return self.broadcast or self.presence


_SETTINGS_SQL = """
select set_config('role', $1, true),
       set_config('realtime.topic', $2, true),
       set_config('request.jwt.claims', $3, true),
       set_config('request.jwt.claim.sub', $4, true),
       set_config('request.jwt.claim.role', $1, true),
       set_config('request.headers', $5, true)
"""


async def _apply_settings(
    conn: asyncpg.Connection,
    claims: Mapping[str, Any],
    sub_topic: str,
    headers: Mapping[str, str] | None,
) -> None:
    await conn.execute(
        _SETTINGS_SQL,
        str(claims.get("role", "")),
        sub_topic,
        json.dumps(dict(claims)),
        str(claims.get("sub", "")),
        json.dumps(dict(headers or {})),
    )


async def check_read(
    conn: asyncpg.Connection,
    claims: Mapping[str, Any],
    sub_topic: str,
    extensions: Iterable[str] = ("broadcast",),
    headers: Mapping[str, str] | None = None,
) -> Permissions:
    """Which extensions the claims may read on ``sub_topic``. Raises PolicyError."""
    probes = {ext: uuid.uuid4() for ext in extensions}
    tx = conn.transaction()
    await tx.start()
    try:
        for ext, probe_id in probes.items():
            await conn.execute(
                "insert into realtime.messages (id, topic, extension) values ($1, $2, $3)",
                probe_id,
                sub_topic,
                ext,
            )
        await _apply_settings(conn, claims, sub_topic, headers)
        rows = await conn.fetch(
            "select id from realtime.messages where id = any($1::uuid[])", list(probes.values())
        )
    except CONNECTION_LOST:
        raise
    except asyncpg.PostgresError as exc:
        raise PolicyError(f"{type(exc).__name__}: {exc}") from exc
    finally:
        await tx.rollback()
    seen = {row["id"] for row in rows}
    return Permissions(
        broadcast=probes.get("broadcast") in seen, presence=probes.get("presence") in seen
    )


async def check_write(
    conn: asyncpg.Connection,
    claims: Mapping[str, Any],
    sub_topic: str,
    extension: str = "broadcast",
    headers: Mapping[str, str] | None = None,
) -> bool:
    """Whether the claims may send ``extension`` messages on ``sub_topic``. Raises PolicyError."""
    tx = conn.transaction()
    await tx.start()
    try:
        await _apply_settings(conn, claims, sub_topic, headers)
        async with conn.transaction():  # a savepoint, as the server uses
            await conn.execute(
                "insert into realtime.messages (topic, extension) values ($1, $2)",
                sub_topic,
                extension,
            )
    except CONNECTION_LOST:
        raise
    except asyncpg.PostgresError as exc:
        if exc.sqlstate == INSUFFICIENT_PRIVILEGE:
            return False
        raise PolicyError(f"{type(exc).__name__}: {exc}") from exc
    finally:
        await tx.rollback()
    return True
