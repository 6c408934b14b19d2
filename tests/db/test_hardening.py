"""The gaps a security review found by probing the running stack, each closed.

Every test here failed before its migration (supabase/migrations/2026120200*_*.sql).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from tests.db.personas import ORG_A, ORG_B, PERSONAS, v2
from tests.db.sessions import allowed, as_token

pytestmark = [pytest.mark.db, pytest.mark.anyio]

A_EVENTS, B_EVENTS = f"org:{ORG_A}:events", f"org:{ORG_B}:events"


@pytest.fixture
async def conn(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(database_url)
    yield connection
    await connection.close()


async def _as(conn: asyncpg.Connection, claims: dict[str, Any], sql: str, *args: Any) -> Any:
    async with as_token(conn, claims):
        return await conn.fetchval(sql, *args)


# -- realtime.messages: the row's topic is the authorised topic ----------------------


async def test_a_member_who_sets_realtime_topic_still_reads_only_own_topic_rows(
    conn: asyncpg.Connection,
) -> None:
    await conn.execute(
        "insert into realtime.messages (topic, extension, event, payload, private) "
        "values ($1, 'broadcast', 'secret', '{}', true)",
        B_EVENTS,
    )
    async with as_token(conn, PERSONAS["a_member"]):
        await conn.execute("select set_config('realtime.topic', $1, true)", A_EVENTS)
        seen = await conn.fetchval(
            "select count(*) from realtime.messages where topic = $1", B_EVENTS
        )
    assert seen == 0


async def test_an_admin_may_not_insert_on_another_orgs_topic_under_its_own(
    conn: asyncpg.Connection,
) -> None:
    async with as_token(conn, PERSONAS["a_admin"]):
        await conn.execute("select set_config('realtime.topic', $1, true)", A_EVENTS)
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute(
                "insert into realtime.messages (topic, extension, event, payload, private) "
                "values ($1, 'broadcast', 'forged', '{}', true)",
                B_EVENTS,
            )


# -- identity sequences ------------------------------------------------------------------


@pytest.mark.parametrize("persona", ["anon", "a_admin", "a_worker"])
@pytest.mark.parametrize("sequence", ["public.org_events_id_seq", "public.tasks_id_seq"])
async def test_api_roles_may_not_move_the_identity_sequences(
    conn: asyncpg.Connection, persona: str, sequence: str
) -> None:
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await _as(conn, PERSONAS[persona], "select setval($1::regclass, 1)", sequence)


async def test_an_admin_still_appends_to_the_outbox(conn: asyncpg.Connection) -> None:
    insert = "insert into public.org_events (org_id, topic, event) values ($1, 'jobs', 'x')"
    assert await allowed(conn, PERSONAS["a_admin"], insert, ORG_A)


# -- Postgres Changes ------------------------------------------------------------------


async def test_tasks_are_not_published_to_postgres_changes(conn: asyncpg.Connection) -> None:
    published = await conn.fetchval(
        "select count(*) from pg_publication_tables "
        "where pubname = 'supabase_realtime' and schemaname = 'public' and tablename = 'tasks'"
    )
    assert published == 0


# -- claim helpers fail closed ---------------------------------------------------------


@pytest.mark.parametrize("fva", [[3, -1.0], [3, "x"], [3, False], [3, []], [3], "3,3", [3, 2.5]])
async def test_a_malformed_fva_is_not_a_passed_second_factor(
    conn: asyncpg.Connection, fva: Any
) -> None:
    claims = {**PERSONAS["a_member"], "fva": fva}
    verified = await _as(conn, claims, "select private.clerk_second_factor_verified()")
    billing = await _as(
        conn, claims, "select count(*) from public.org_billing where organization_id = $1", ORG_A
    )
    assert (verified, billing) == (False, 0)


@pytest.mark.parametrize("fva", [[3, 0], [3, 3], [0, 12]])
async def test_a_whole_non_negative_fva_is_a_passed_second_factor(
    conn: asyncpg.Connection, fva: list[int]
) -> None:
    claims = {**PERSONAS["a_member"], "fva": fva}
    assert await _as(conn, claims, "select private.clerk_second_factor_verified()") is True


async def test_a_v2_org_with_a_v1_admin_role_is_not_an_admin(conn: asyncpg.Connection) -> None:
    claims = v2("user_mixed", ORG_A, None)
    claims["o"] = {"id": ORG_A}
    claims["org_role"] = "org:admin"
    role = await _as(conn, claims, "select private.clerk_org_role()")
    insert = "insert into public.tasks (organization_id, title) values ($1, 'mixed')"
    assert role is None
    assert not await allowed(conn, claims, insert, ORG_A)


async def test_a_v1_org_id_does_not_count_in_a_v2_token(conn: asyncpg.Connection) -> None:
    claims = {**v2("user_v2_no_org", None, None), "org_id": ORG_A, "org_role": "org:admin"}
    assert await _as(conn, claims, "select private.clerk_org_id()") is None


@pytest.mark.parametrize(
    "claims",
    [
        {"o": {"id": 12345, "rol": "admin"}},
        {"o": {"id": [ORG_A], "rol": "admin"}},
        {"o": {"id": "", "rol": "admin"}},
        {"org_id": 12345, "org_role": "org:admin"},
    ],
)
async def test_a_non_string_org_id_is_not_an_org_id(
    conn: asyncpg.Connection, claims: dict[str, Any]
) -> None:
    token = {"role": "authenticated", "sub": "user_odd", "exp": 4102444800, **claims}
    assert await _as(conn, token, "select private.clerk_org_id()") is None


@pytest.mark.parametrize(
    "topic",
    [
        f"org:{ORG_A}:events::more",  # an empty part
        f"org:{ORG_A}:events ",  # a trailing space
        f"org:{ORG_A}:ev\nents",
        f"org:{ORG_A}:events\n",
        f"org:{ORG_A}:ev%",
        f"org:{ORG_A}%:events",
        f"org: {ORG_A}:events",
    ],
)
async def test_topic_org_id_refuses_malformed_topics(conn: asyncpg.Connection, topic: str) -> None:
    assert await conn.fetchval("select private.topic_org_id($1)", topic) is None


async def test_topic_org_id_reads_a_well_formed_topic(conn: asyncpg.Connection) -> None:
    assert await conn.fetchval("select private.topic_org_id($1)", A_EVENTS) == ORG_A
