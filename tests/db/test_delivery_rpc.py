"""The delivery RPCs under RLS: outbox position, checkpoints with handled ids, stamping."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator

import asyncpg
import pytest

from tests.db.personas import ORG_A, ORG_B, PERSONAS
from tests.db.sessions import as_token

pytestmark = [pytest.mark.db, pytest.mark.anyio]


@pytest.fixture
async def conn(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(database_url)
    yield connection
    await connection.close()


async def _insert(conn: asyncpg.Connection, org: str, topic: str = "pos") -> int:
    value: int = await conn.fetchval(
        "insert into org_events (org_id, topic, event) values ($1, $2, 'e') returning id",
        org,
        topic,
    )
    return value


async def test_outbox_position_is_the_callers_org_head_and_the_database_clock(
    conn: asyncpg.Connection,
) -> None:
    async with conn.transaction():
        mine = await _insert(conn, ORG_A, "pos")
        other_topic = await _insert(conn, ORG_A, "pos_other")
        await _insert(conn, ORG_B, "pos")  # higher id, another org
        async with as_token(conn, PERSONAS["a_worker"]):
            row = await conn.fetchrow("select * from outbox_position(array['pos'])")
            everything = await conn.fetchrow("select * from outbox_position()")
            now = await conn.fetchval("select now()")
        await conn.execute("reset role")
    assert row is not None
    assert everything is not None
    assert row["head"] == mine
    assert everything["head"] == other_topic
    assert row["db_now"] == now


async def test_outbox_position_is_zero_for_an_org_without_events(
    conn: asyncpg.Connection,
) -> None:
    async with as_token(conn, PERSONAS["no_org"]):
        row = await conn.fetchrow("select * from outbox_position()")
    assert row is not None
    assert row["head"] == 0


async def test_created_at_is_stamped_by_the_database_at_insert(conn: asyncpg.Connection) -> None:
    forged = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
    async with conn.transaction():
        before = await conn.fetchval("select clock_timestamp()")
        created = await conn.fetchval(
            "insert into org_events (org_id, topic, event, created_at) "
            "values ($1, 'stamp', 'e', $2) returning created_at",
            ORG_A,
            forged,
        )
        start = await conn.fetchval("select now()")
    assert created >= before  # the allocation time, not the forged value
    assert created > start  # and not the transaction start


async def test_checkpoint_state_keeps_handled_ids_above_the_mark_sorted_and_unique(
    conn: asyncpg.Connection,
) -> None:
    async with as_token(conn, PERSONAS["a_worker"]):
        saved = await conn.fetchval(
            "select save_worker_checkpoint('d1', 10, array[15, 9, 12, 15]::bigint[])"
        )
        state = await conn.fetchrow("select * from get_worker_checkpoint_state('d1')")
    assert saved == 10
    assert state is not None
    assert (state["last_event_id"], state["handled_above"]) == (10, [12, 15])


async def test_checkpoint_state_moves_forward_only(conn: asyncpg.Connection) -> None:
    async with as_token(conn, PERSONAS["a_worker"]):
        await conn.fetchval("select save_worker_checkpoint('d2', 10, array[12]::bigint[])")
        stale = await conn.fetchval("select save_worker_checkpoint('d2', 5, array[7]::bigint[])")
        state = await conn.fetchrow("select * from get_worker_checkpoint_state('d2')")
    assert stale == 10
    assert state is not None
    assert (state["last_event_id"], state["handled_above"]) == (10, [12])


async def test_checkpoint_state_is_per_org(conn: asyncpg.Connection) -> None:
    async with as_token(conn, PERSONAS["a_worker"]):
        await conn.fetchval("select save_worker_checkpoint('d3', 10, array[12]::bigint[])")
    async with as_token(conn, PERSONAS["b_admin"]):
        state = await conn.fetchrow("select * from get_worker_checkpoint_state('d3')")
    assert state is not None
    assert (state["last_event_id"], state["handled_above"]) == (0, [])


async def test_checkpoint_refuses_more_than_ten_thousand_handled_ids(
    conn: asyncpg.Connection,
) -> None:
    async with as_token(conn, PERSONAS["a_worker"]):
        with pytest.raises(asyncpg.InvalidParameterValueError):
            await conn.fetchval(
                "select save_worker_checkpoint('d4', 0, array(select generate_series(1, 10001)))"
            )


@pytest.mark.parametrize(
    "sql",
    [
        "select * from outbox_position()",
        "select * from get_worker_checkpoint_state('d5')",
        "select save_worker_checkpoint('d5', 1, '{}')",
    ],
)
async def test_anon_cannot_call_the_delivery_rpcs(conn: asyncpg.Connection, sql: str) -> None:
    async with as_token(conn, PERSONAS["anon"]):
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.fetch(sql)


async def test_a_save_without_handled_ids_at_the_same_mark_keeps_them(
    conn: asyncpg.Connection,
) -> None:
    async with as_token(conn, PERSONAS["a_worker"]):
        await conn.fetchval("select save_worker_checkpoint('d6', 10, array[12, 14]::bigint[])")
        await conn.fetchval("select save_worker_checkpoint('d6', 10)")  # as `check` does
        kept = await conn.fetchrow("select * from get_worker_checkpoint_state('d6')")
        await conn.fetchval("select save_worker_checkpoint('d6', 12, array[14]::bigint[])")
        moved = await conn.fetchrow("select * from get_worker_checkpoint_state('d6')")
    assert kept is not None
    assert moved is not None
    assert (kept["last_event_id"], kept["handled_above"]) == (10, [12, 14])
    assert (moved["last_event_id"], moved["handled_above"]) == (12, [14])
