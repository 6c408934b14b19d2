"""RLS on every org-scoped table, for every persona and both Clerk token formats."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest

from tests.db.personas import ORG_A, ORG_B, PERSONAS
from tests.db.sessions import allowed, as_token

pytestmark = [pytest.mark.db, pytest.mark.anyio]

TABLES = {  # table -> org column
    "org_events": "org_id",
    "tasks": "organization_id",
    "org_billing": "organization_id",
    "worker_checkpoints": "org_id",
}


@pytest.fixture(scope="module")
async def conn(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(database_url)
    await connection.execute(
        """
        insert into org_events (org_id, topic, event, payload) values
          ($1, 'events', 'seeded', '{}'), ($2, 'events', 'seeded', '{}');
        insert into tasks (organization_id, title) values ($1, 'a task'), ($2, 'b task');
        insert into org_billing (organization_id) values ($1), ($2) on conflict do nothing;
        insert into worker_checkpoints (org_id, consumer, last_event_id)
          values ($1, 'seeded', 1), ($2, 'seeded', 1) on conflict do nothing;
        """.replace("$1", f"'{ORG_A}'").replace("$2", f"'{ORG_B}'")
    )
    yield connection
    await connection.close()


async def visible_orgs(conn: asyncpg.Connection, persona: str, table: str) -> set[str]:
    column = TABLES[table]
    async with as_token(conn, PERSONAS[persona]):
        try:
            rows = await conn.fetch(f"select distinct {column} as org from public.{table}")  # noqa: S608
        except asyncpg.InsufficientPrivilegeError:
            return set()
    return {row["org"] for row in rows} & {ORG_A, ORG_B}


READ = {
    # persona: orgs visible in (org_events, tasks, org_billing, worker_checkpoints)
    "a_member": ({ORG_A}, {ORG_A}, {ORG_A}, set()),
    "a_admin": ({ORG_A}, {ORG_A}, {ORG_A}, {ORG_A}),
    "a_worker": ({ORG_A}, {ORG_A}, {ORG_A}, {ORG_A}),
    "b_member": ({ORG_B}, {ORG_B}, {ORG_B}, set()),
    "b_admin": ({ORG_B}, {ORG_B}, {ORG_B}, {ORG_B}),
    "no_org": (set(), set(), set(), set()),
    "a_admin_v1": ({ORG_A}, {ORG_A}, {ORG_A}, {ORG_A}),
    "a_member_v1": ({ORG_A}, {ORG_A}, {ORG_A}, set()),
    "a_worker_v1": ({ORG_A}, {ORG_A}, {ORG_A}, {ORG_A}),
    "a_admin_no_2fa": ({ORG_A}, {ORG_A}, set(), {ORG_A}),
    "anon": (set(), set(), set(), set()),
}


@pytest.mark.parametrize(("persona", "table"), [(p, t) for p in READ for t in TABLES])
async def test_persona_reads_only_the_rows_its_token_allows(
    conn: asyncpg.Connection, persona: str, table: str
) -> None:
    expected = READ[persona][list(TABLES).index(table)]
    assert await visible_orgs(conn, persona, table) == expected


INSERTS = {
    "org_events": "insert into org_events (org_id, topic, event) values ($1, 'events', 'x')",
    "tasks": "insert into tasks (organization_id, title) values ($1, 'new')",
    "org_billing": "insert into org_billing (organization_id) values ($1) "
    "on conflict (organization_id) do update set plan = 'pro'",
    "worker_checkpoints": "insert into worker_checkpoints (org_id, consumer) values ($1, 'c-new')",
}

# persona -> tables it may insert into for ITS OWN org (never for another org)
INSERT_OWN = {
    "a_member": set(),
    "a_admin": {"org_events", "tasks", "org_billing", "worker_checkpoints"},
    "a_worker": {"org_events", "worker_checkpoints"},
    "b_member": set(),
    "b_admin": {"org_events", "tasks", "org_billing", "worker_checkpoints"},
    "no_org": set(),
    "a_admin_v1": {"org_events", "tasks", "org_billing", "worker_checkpoints"},
    "a_member_v1": set(),
    "a_worker_v1": {"org_events", "worker_checkpoints"},
    "a_admin_no_2fa": {"org_events", "tasks", "worker_checkpoints"},
    "anon": set(),
}


def own_org(persona: str) -> str:
    return ORG_B if persona.startswith("b_") else ORG_A


@pytest.mark.parametrize(("persona", "table"), [(p, t) for p in INSERT_OWN for t in TABLES])
async def test_persona_inserts_only_where_its_org_role_allows(
    conn: asyncpg.Connection, persona: str, table: str
) -> None:
    ok = await allowed(conn, PERSONAS[persona], INSERTS[table], own_org(persona))
    assert ok == (table in INSERT_OWN[persona])


@pytest.mark.parametrize(("persona", "table"), [(p, t) for p in INSERT_OWN for t in TABLES])
async def test_no_persona_inserts_rows_for_another_org(
    conn: asyncpg.Connection, persona: str, table: str
) -> None:
    other = ORG_A if own_org(persona) == ORG_B else ORG_B
    assert not await allowed(conn, PERSONAS[persona], INSERTS[table], other)


UPDATES = {
    "org_events": "update org_events set event = 'changed' where org_id = $1",
    "tasks": "update tasks set status = 'done' where organization_id = $1",
    "org_billing": "update org_billing set plan = 'team' where organization_id = $1",
    "worker_checkpoints": "update worker_checkpoints set last_event_id = 2 where org_id = $1",
}
UPDATE_OWN = {
    "a_member": set(),
    "a_admin": {"tasks", "org_billing", "worker_checkpoints"},
    "a_worker": {"tasks", "worker_checkpoints"},
    "a_admin_v1": {"tasks", "org_billing", "worker_checkpoints"},
    "a_worker_v1": {"tasks", "worker_checkpoints"},
    # UPDATE ... WHERE only finds rows the reader may SELECT: without a second factor the
    # restrictive billing policy hides the row, so even an admin updates nothing.
    "a_admin_no_2fa": {"tasks", "worker_checkpoints"},
    "b_admin": {"tasks", "org_billing", "worker_checkpoints"},
    "no_org": set(),
    "anon": set(),
}


@pytest.mark.parametrize(("persona", "table"), [(p, t) for p in UPDATE_OWN for t in TABLES])
async def test_persona_updates_only_where_its_org_role_allows(
    conn: asyncpg.Connection, persona: str, table: str
) -> None:
    ok = await allowed(conn, PERSONAS[persona], UPDATES[table], own_org(persona))
    assert ok == (table in UPDATE_OWN[persona])


@pytest.mark.parametrize(("persona", "table"), [(p, t) for p in UPDATE_OWN for t in TABLES])
async def test_no_persona_updates_another_orgs_rows(
    conn: asyncpg.Connection, persona: str, table: str
) -> None:
    other = ORG_A if own_org(persona) == ORG_B else ORG_B
    assert not await allowed(conn, PERSONAS[persona], UPDATES[table], other)


@pytest.mark.parametrize("persona", ["a_admin", "a_admin_v1", "a_worker", "a_member"])
async def test_only_admins_delete_tasks_and_nobody_deletes_the_outbox(
    conn: asyncpg.Connection, persona: str
) -> None:
    claims = PERSONAS[persona]
    may_delete_tasks = persona.startswith("a_admin")
    assert (
        await allowed(conn, claims, "delete from tasks where organization_id = $1", ORG_A)
        == may_delete_tasks
    )
    assert not await allowed(conn, claims, "delete from org_events where org_id = $1", ORG_A)
