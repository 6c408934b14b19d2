"""The database is a real project's: migrations run as a non-superuser `postgres` that
does not own realtime.*, and the API roles carry the platform's settings."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from devstack import postgres, schema

pytestmark = [pytest.mark.db, pytest.mark.anyio]

MIGRATOR = schema.MIGRATION_ROLE


@pytest.fixture
async def migrator(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A session of the migration role, everything inside one rolled-back transaction."""
    conn = await asyncpg.connect(database_url)
    await schema.become_migration_role(conn)
    tx = conn.transaction()
    await tx.start()
    try:
        yield conn
    finally:
        await tx.rollback()
        await conn.close()


async def test_the_migration_role_has_the_privileges_of_a_projects_postgres(
    migrator: asyncpg.Connection,
) -> None:
    role = await migrator.fetchrow(
        "select rolsuper, rolcreatedb, rolcreaterole, rolreplication, rolbypassrls, rolinherit "
        "from pg_roles where rolname = current_user"
    )
    members = await migrator.fetchval(
        "select array_agg(r order by r) from unnest(array['anon', 'authenticated', "
        "'service_role', 'supabase_realtime_admin']) r where pg_has_role(current_user, r, 'member')"
    )
    assert await migrator.fetchval("select current_user") == MIGRATOR
    assert await migrator.fetchval("select current_setting('is_superuser')") == "off"
    assert dict(role) == {
        "rolsuper": False,
        "rolcreatedb": True,
        "rolcreaterole": True,
        "rolreplication": True,
        "rolbypassrls": True,
        "rolinherit": True,
    }
    assert members == ["anon", "authenticated", "service_role"]


async def test_realtime_objects_belong_to_supabase_realtime_admin(database_url: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        owners = await conn.fetch(
            "select c.relname, pg_get_userbyid(c.relowner) as owner from pg_class c "
            "where c.relnamespace = 'realtime'::regnamespace and c.relkind in ('r', 'p') "
            "and c.relname like 'messages%'"
        )
        send_owner = await conn.fetchval(
            "select pg_get_userbyid(proowner) from pg_proc where oid = "
            "'realtime.send(jsonb, text, text, boolean)'::regprocedure"
        )
    finally:
        await conn.close()
    assert {row["owner"] for row in owners} == {"supabase_realtime_admin"}
    assert send_owner == "supabase_realtime_admin"


async def test_the_migration_role_may_create_policies_on_realtime_messages(
    migrator: asyncpg.Connection,
) -> None:
    await migrator.execute(
        "create policy probe on realtime.messages for select to authenticated using (false)"
    )
    await migrator.execute("alter policy probe on realtime.messages using (true)")
    await migrator.execute("drop policy probe on realtime.messages")

    still_member = await migrator.fetchval(
        "select pg_has_role(current_user, 'supabase_realtime_admin', 'member')"
    )
    assert still_member is False


@pytest.mark.parametrize(
    "statement",
    [
        "alter table realtime.messages add column extra int",
        "alter table realtime.messages disable row level security",
        "drop table realtime.messages",
        "create function realtime.mine() returns int language sql as 'select 1'",
    ],
)
async def test_the_migration_role_may_not_change_realtime_objects(
    migrator: asyncpg.Connection, statement: str
) -> None:
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await migrator.execute(statement)


async def test_the_migration_role_may_use_realtime_messages(
    migrator: asyncpg.Connection,
) -> None:
    await migrator.execute("select realtime.send('{}'::jsonb, 'probe', 'room-1', false)")
    count = await migrator.fetchval(
        "select count(*) from realtime.messages where topic = 'room-1' and event = 'probe'"
    )
    assert count == 1


async def test_the_extensions_schema_exists(database_url: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        usable = await conn.fetchval(
            "select has_schema_privilege('anon', 'extensions', 'usage') "
            "and has_schema_privilege($1, 'extensions', 'usage')",
            MIGRATOR,
        )
    finally:
        await conn.close()
    assert usable is True


async def test_api_roles_have_the_platforms_statement_timeouts(database_url: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            "select r.rolname, s.setconfig from pg_db_role_setting s "
            "join pg_roles r on r.oid = s.setrole "
            "where s.setdatabase = 0 and r.rolname in ('anon', 'authenticated', 'authenticator')"
        )
    finally:
        await conn.close()
    settings = {row["rolname"]: set(row["setconfig"]) for row in rows}
    assert "statement_timeout=3s" in settings["anon"]
    assert "statement_timeout=8s" in settings["authenticated"]
    assert {"statement_timeout=8s", "lock_timeout=8s"} <= settings["authenticator"]


@pytest.mark.parametrize(
    ("statement", "error"),
    [
        # superuser only (or pg_execute_server_program, which postgres does not have)
        ("copy (select 1) to program 'true'", "InsufficientPrivilegeError"),
        ("create table realtime.mine (id int)", "permission denied for schema realtime"),
        ("alter table realtime.messages owner to current_user", "must be owner"),
    ],
)
async def test_a_migration_that_needs_a_superuser_fails_as_on_a_real_project(
    pg_server: postgres.Server, tmp_path: Path, statement: str, error: str
) -> None:
    (tmp_path / "20990101000000_needs_superuser.sql").write_text(f"{statement};\n")
    async with postgres.scratch_database(pg_server) as url:
        with pytest.raises(schema.MigrationError) as caught:
            await schema.apply_all(url, seed=False, migrations_dir=tmp_path)
    assert "20990101000000_needs_superuser.sql" in str(caught.value)
    assert error in str(caught.value)
