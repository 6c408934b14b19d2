"""Daily ``realtime.messages`` partitions, kept as the server keeps them.

Mirrors ``supabase/realtime: lib/realtime/tenants.ex`` (``create_messages_partitions/1``:
UTC days from yesterday to today + 3, when the tenant's database connects) and
``lib/realtime/messages.ex`` (``delete_old_messages/1``: partitions of days before the UTC
date 72 hours ago are dropped, by the Janitor). Both live in one SQL function of the
platform bootstrap, ``realtime.devstack_maintain_partitions()``
(``devstack/sql/01_realtime.sql``); this module runs it at start and then every
``partition_maintenance_s``, so a stack left running for days keeps receiving broadcasts.
"""

from __future__ import annotations

import asyncio
import logging

import asyncpg

log = logging.getLogger(__name__)

MAINTAIN_SQL = "select realtime.devstack_maintain_partitions()"


async def maintain(pool: asyncpg.Pool) -> None:
    """Create the partitions due by now (UTC) and drop the expired ones."""
    async with pool.acquire() as conn:
        await conn.execute(MAINTAIN_SQL)


async def keep(pool: asyncpg.Pool, every_s: float) -> None:
    """Run :func:`maintain` every ``every_s``; a failure is logged and retried next time."""
    while True:
        await asyncio.sleep(every_s)
        try:
            await maintain(pool)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.warning("realtime: partition maintenance failed (retried later): %r", exc)
