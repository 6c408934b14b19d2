"""Realtime Authorization on realtime.messages, checked the way the Realtime server does.

The checks come from devstack.realtime.authorization, which follows the server's
procedure (probe insert, role + claims + realtime.topic set locally, select back or
insert under a savepoint, roll back).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest

from devstack.realtime.authorization import PolicyError, check_read, check_write
from tests.db.personas import ORG_A, ORG_B, PERSONAS

pytestmark = [pytest.mark.db, pytest.mark.anyio]

A_EVENTS, A_TASKS, B_EVENTS = f"org:{ORG_A}:events", f"org:{ORG_A}:tasks", f"org:{ORG_B}:events"
MALFORMED = [
    f"org:{ORG_A}",  # no topic name
    f"org:{ORG_A}:",  # empty topic name
    f"org:{ORG_A}:events:extra",  # extra part
    f"org:{ORG_A}_:events",  # LIKE-style near miss
    f"org:{ORG_A[:-1]}%:events",  # LIKE wildcard
    f"org:{ORG_A.replace('_', 'x')}:events",
    "room-1",
    "",
]


@pytest.fixture
async def conn(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(database_url)
    yield connection
    await connection.close()


A_READERS = [
    "a_member",
    "a_admin",
    "a_worker",
    "a_admin_v1",
    "a_member_v1",
    "a_worker_v1",
    "a_admin_no_2fa",
]
A_PUBLISHERS = ["a_admin", "a_worker", "a_admin_v1", "a_worker_v1", "a_admin_no_2fa"]


@pytest.mark.parametrize("persona", list(PERSONAS))
@pytest.mark.parametrize("topic", [A_EVENTS, A_TASKS])
async def test_only_org_a_members_may_receive_org_a_topics(
    conn: asyncpg.Connection, persona: str, topic: str
) -> None:
    perms = await check_read(conn, PERSONAS[persona], topic, ("broadcast", "presence"))
    expected = persona in A_READERS
    assert (perms.broadcast, perms.presence) == (expected, expected)


@pytest.mark.parametrize("persona", list(PERSONAS))
async def test_org_b_topics_are_readable_only_by_org_b(
    conn: asyncpg.Connection, persona: str
) -> None:
    perms = await check_read(conn, PERSONAS[persona], B_EVENTS)
    assert perms.broadcast == persona.startswith("b_")


@pytest.mark.parametrize("persona", list(PERSONAS))
async def test_only_admins_and_workers_may_broadcast_on_their_org_topics(
    conn: asyncpg.Connection, persona: str
) -> None:
    assert await check_write(conn, PERSONAS[persona], A_EVENTS, "broadcast") == (
        persona in A_PUBLISHERS
    )


@pytest.mark.parametrize("persona", list(PERSONAS))
async def test_org_members_may_track_presence_on_their_org_topics(
    conn: asyncpg.Connection, persona: str
) -> None:
    assert await check_write(conn, PERSONAS[persona], A_EVENTS, "presence") == (
        persona in A_READERS
    )


@pytest.mark.parametrize("persona", ["b_admin", "b_member", "no_org", "anon"])
async def test_nobody_outside_org_a_may_send_on_org_a_topics(
    conn: asyncpg.Connection, persona: str
) -> None:
    for extension in ("broadcast", "presence"):
        assert not await check_write(conn, PERSONAS[persona], A_EVENTS, extension)


@pytest.mark.parametrize("topic", MALFORMED)
async def test_malformed_or_lookalike_topics_are_refused_even_to_admins(
    conn: asyncpg.Connection, topic: str
) -> None:
    claims = PERSONAS["a_admin"]
    assert not (await check_read(conn, claims, topic, ("broadcast", "presence"))).any
    assert not await check_write(conn, claims, topic, "broadcast")


async def test_an_unknown_role_is_a_policy_error_not_a_grant(conn: asyncpg.Connection) -> None:
    claims = {**PERSONAS["a_admin"], "role": "no_such_role"}
    with pytest.raises(PolicyError):
        await check_read(conn, claims, A_EVENTS)


async def test_checks_leave_no_rows_behind(conn: asyncpg.Connection) -> None:
    before = await conn.fetchval("select count(*) from realtime.messages")
    await check_read(conn, PERSONAS["a_admin"], A_EVENTS, ("broadcast", "presence"))
    await check_write(conn, PERSONAS["a_admin"], A_EVENTS)
    assert await conn.fetchval("select count(*) from realtime.messages") == before


async def test_checks_survive_a_pooled_connection_after_a_rolled_back_claim(
    conn: asyncpg.Connection,
) -> None:
    # request.jwt.claims lingers as '' on the session after the first rollback (pitfall 1).
    for _ in range(3):
        assert (await check_read(conn, PERSONAS["a_member"], A_EVENTS)).broadcast
    assert await conn.fetchval("select auth.jwt()") is None
