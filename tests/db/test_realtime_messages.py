"""realtime.messages as the Realtime server leaves it: the table's shape, daily UTC
partitions (yesterday to today + 3, older than 72 hours dropped) and what a missing
partition does (realtime.send warns, the broadcast is lost, the caller's row commits)."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator

import anyio
import asyncpg
import pytest

from devstack import postgres, schema

pytestmark = [pytest.mark.db, pytest.mark.anyio]


def partition(day: dt.date) -> str:
    return f"messages_{day:%Y_%m_%d}"


async def partitions(conn: asyncpg.Connection) -> set[str]:
    rows = await conn.fetch(
        "select c.relname from pg_inherits i join pg_class c on c.oid = i.inhrelid "
        "where i.inhparent = 'realtime.messages'::regclass"
    )
    return {row["relname"] for row in rows}


@pytest.fixture
async def scratch(pg_server: postgres.Server) -> AsyncIterator[asyncpg.Connection]:
    """A project database of its own: these tests drop partitions."""
    async with postgres.scratch_database(pg_server) as url:
        await schema.apply_all(url, seed=False)
        conn = await asyncpg.connect(url)
        try:
            yield conn
        finally:
            await conn.close()


async def test_messages_has_the_servers_columns_check_and_replay_index(database_url: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        binary = await conn.fetchval(
            "select format_type(atttypid, atttypmod) from pg_attribute "
            "where attrelid = 'realtime.messages'::regclass and attname = 'binary_payload'"
        )
        check = await conn.fetchval(
            "select pg_get_constraintdef(oid) from pg_constraint "
            "where conrelid = 'realtime.messages'::regclass "
            "and conname = 'messages_payload_exclusive'"
        )
        index = await conn.fetchval(
            "select indexdef from pg_indexes where schemaname = 'realtime' "
            "and indexname = 'messages_inserted_at_topic_index'"
        )
    finally:
        await conn.close()
    assert binary == "bytea"
    assert check == "CHECK (((payload IS NULL) OR (binary_payload IS NULL))) NOT VALID"
    assert "(inserted_at DESC, topic)" in index
    assert "WHERE ((extension = 'broadcast'::text) AND (private IS TRUE))" in index


async def test_partitions_cover_yesterday_to_today_plus_three_in_utc(database_url: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute("set timezone = 'Pacific/Kiritimati'")  # UTC+14: the date differs
        await conn.execute("select realtime.devstack_maintain_partitions()")
        present = await partitions(conn)
    finally:
        await conn.close()
    today = dt.datetime.now(dt.UTC).date()
    wanted = {partition(today + dt.timedelta(days=k)) for k in range(-1, 4)}
    assert wanted <= present


async def test_partitions_older_than_72_hours_are_dropped(scratch: asyncpg.Connection) -> None:
    later = dt.datetime.now(dt.UTC).replace(tzinfo=None) + dt.timedelta(days=6)

    await scratch.execute("select realtime.devstack_maintain_partitions($1)", later)

    limit = (later - dt.timedelta(hours=72)).date()
    days = {
        dt.datetime.strptime(name, "messages_%Y_%m_%d").date() for name in await partitions(scratch)
    }
    assert min(days) == limit
    assert max(days) == later.date() + dt.timedelta(days=3)


async def test_a_missing_partition_loses_the_broadcast_but_commits_the_outbox_row(
    scratch: asyncpg.Connection,
) -> None:
    warnings: list[str] = []
    warned = anyio.Event()

    def on_notice(_conn: object, message: object) -> None:
        warnings.append(str(message))
        warned.set()

    scratch.add_log_listener(on_notice)
    today = dt.datetime.now(dt.UTC).date()
    await scratch.execute(f"drop table realtime.{partition(today)}")
    await scratch.execute("set timezone = 'UTC'")

    event_id = await scratch.fetchval(
        "insert into public.org_events (org_id, topic, event) "
        "values ('org_lost', 'jobs', 'job.created') returning id"
    )

    assert await scratch.fetchval("select count(*) from public.org_events where id = $1", event_id)
    assert (
        await scratch.fetchval(
            "select count(*) from realtime.messages where topic = 'org:org_lost:jobs'"
        )
        == 0
    )
    with anyio.fail_after(5):
        await warned.wait()
    assert "WarnSendingBroadcastMessage: no partition of relation" in warnings[0]
