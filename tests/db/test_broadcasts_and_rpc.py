"""Database broadcasts from the outbox and tasks, and the worker's RPCs under RLS."""

from __future__ import annotations

import json
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


async def test_outbox_insert_broadcasts_privately_on_the_org_topic_with_the_outbox_id(
    conn: asyncpg.Connection,
) -> None:
    async with conn.transaction():
        event_id = await conn.fetchval(
            "insert into org_events (org_id, topic, event, payload) "
            "values ($1, 'jobs', 'job.created', '{\"n\": 1}') returning id",
            ORG_A,
        )
        row = await conn.fetchrow(
            "select * from realtime.messages where topic = $1 order by inserted_at desc limit 1",
            f"org:{ORG_A}:jobs",
        )
    assert row is not None
    assert row["private"] is True
    assert row["extension"] == "broadcast"
    assert row["event"] == "job.created"
    payload = json.loads(row["payload"])
    assert payload["id"] == event_id
    assert payload["topic"] == "jobs"
    assert payload["org_id"] == ORG_A
    assert payload["payload"] == {"n": 1}


async def test_outbox_insert_by_a_worker_token_still_broadcasts(conn: asyncpg.Connection) -> None:
    async with as_token(conn, PERSONAS["a_worker"]):
        await conn.execute(
            "insert into org_events (org_id, topic, event) values ($1, 'w', 'from.worker')", ORG_A
        )
        await conn.execute("reset role")
        count = await conn.fetchval(
            "select count(*) from realtime.messages where topic = $1", f"org:{ORG_A}:w"
        )
    assert count == 1


async def test_task_changes_are_broadcast_with_broadcast_changes_shape(
    conn: asyncpg.Connection,
) -> None:
    async with conn.transaction():
        task_id = await conn.fetchval(
            "insert into tasks (organization_id, title) values ($1, 't') returning id", ORG_B
        )
        await conn.execute("update tasks set status = 'done' where id = $1", task_id)
        rows = await conn.fetch(
            "select event, payload, private from realtime.messages where topic = $1 "
            "and (payload->'record'->>'id')::bigint = $2 order by inserted_at",
            f"org:{ORG_B}:tasks",
            task_id,
        )
    assert [r["event"] for r in rows] == ["INSERT", "UPDATE"]
    update = json.loads(rows[1]["payload"])
    assert update["operation"] == "UPDATE"
    assert update["table"] == "tasks"
    assert update["schema"] == "public"
    assert update["record"]["status"] == "done"
    assert update["old_record"]["status"] == "open"
    assert all(r["private"] for r in rows)


async def test_org_events_after_pages_through_only_the_callers_org(
    conn: asyncpg.Connection,
) -> None:
    async with conn.transaction():
        ids = [
            await conn.fetchval(
                "insert into org_events (org_id, topic, event) "
                "values ($1, 'page', 'e') returning id",
                org,
            )
            for org in (ORG_A, ORG_B, ORG_A, ORG_A)
        ]
        async with as_token(conn, PERSONAS["a_worker"]):
            page1 = await conn.fetch(
                "select id, org_id from org_events_after($1, 2, array['page'])", ids[0] - 1
            )
            page2 = await conn.fetch(
                "select id from org_events_after($1, 2, array['page'])", page1[-1]["id"]
            )
        await conn.execute("reset role")
    assert [r["id"] for r in page1] == [ids[0], ids[2]]
    assert {r["org_id"] for r in page1} == {ORG_A}
    assert [r["id"] for r in page2] == [ids[3]]


async def test_checkpoint_moves_forward_only_and_per_org(conn: asyncpg.Connection) -> None:
    async with as_token(conn, PERSONAS["a_worker"]):
        assert await conn.fetchval("select save_worker_checkpoint('c1', 10)") == 10
        assert await conn.fetchval("select save_worker_checkpoint('c1', 5)") == 10
        assert await conn.fetchval("select get_worker_checkpoint('c1')") == 10
    async with as_token(conn, PERSONAS["b_admin"]):
        assert await conn.fetchval("select get_worker_checkpoint('c1')") == 0


@pytest.mark.parametrize("persona", ["no_org", "a_member"])
async def test_checkpoint_save_is_refused_without_a_publishing_org_role(
    conn: asyncpg.Connection, persona: str
) -> None:
    async with as_token(conn, PERSONAS[persona]):
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.fetchval("select save_worker_checkpoint('c2', 1)")


async def test_anon_cannot_call_the_worker_rpcs(conn: asyncpg.Connection) -> None:
    async with as_token(conn, PERSONAS["anon"]):
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.fetch("select * from org_events_after(0)")
