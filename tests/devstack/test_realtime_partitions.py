"""The Realtime stand-in keeps realtime.messages' daily partitions, as the server does:
at start (when the tenant connects) and periodically."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import AsyncIterator

import anyio
import asyncpg
import pytest

from devstack import postgres, schema
from tests.devstack.conftest import TEST_SETTINGS, Keys, running

pytestmark = pytest.mark.anyio

TODAY = f"messages_{dt.datetime.now(dt.UTC):%Y_%m_%d}"


@pytest.fixture
async def project(pg_server: postgres.Server) -> AsyncIterator[str]:
    """A project database of its own whose partition of today (UTC) is missing."""
    async with postgres.scratch_database(pg_server) as url:
        await schema.apply_all(url, seed=False)
        conn = await asyncpg.connect(url)
        try:
            await conn.execute(f"drop table realtime.{TODAY}")
        finally:
            await conn.close()
        yield url


async def has_today(url: str) -> bool:
    conn = await asyncpg.connect(url)
    try:
        return bool(await conn.fetchval("select to_regclass($1) is not null", f"realtime.{TODAY}"))
    finally:
        await conn.close()


async def test_start_creates_the_days_partitions(project: str, keys: Keys) -> None:
    async with running(project, keys):
        assert await has_today(project)


async def test_partitions_are_kept_while_running(project: str, keys: Keys) -> None:
    settings = dataclasses.replace(TEST_SETTINGS, partition_maintenance_s=0.1)
    async with running(project, keys, settings):
        conn = await asyncpg.connect(project)
        try:
            await conn.execute(f"drop table realtime.{TODAY}")
        finally:
            await conn.close()
        with anyio.fail_after(10):
            while not await has_today(project):  # noqa: ASYNC110 - the database has no event
                await anyio.sleep(0.05)
