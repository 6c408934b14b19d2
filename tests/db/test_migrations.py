"""Migrations apply on a fresh database and fail loudly and atomically."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import pytest

from devstack import postgres, schema
from devstack.errors import DevstackError

pytestmark = [pytest.mark.db, pytest.mark.anyio]


async def test_all_migrations_apply_twice_on_fresh_databases(pg_server: postgres.Server) -> None:
    # Roles are cluster-wide: a second project database on the same server must still apply.
    for _ in range(2):
        async with postgres.scratch_database(pg_server) as url:
            applied = await schema.apply_all(url)
            assert [p.name for p in applied.files if p.parent == schema.MIGRATIONS_DIR] == [
                p.name for p in schema.migration_files()
            ]


async def test_every_public_table_has_row_level_security(database_url: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            "select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace "
            "where n.nspname = 'public' and c.relkind in ('r', 'p') and not c.relrowsecurity"
        )
    finally:
        await conn.close()
    assert [r["relname"] for r in rows] == []


async def test_a_failing_migration_names_file_line_and_statement_and_applies_nothing(
    pg_server: postgres.Server, tmp_path: Path
) -> None:
    bad = tmp_path / "20990101000000_broken.sql"
    bad.write_text("create table ok_table (id int);\n\ncreate tabel broken (id int);\n")
    async with postgres.scratch_database(pg_server) as url:
        with pytest.raises(schema.MigrationError) as caught:
            await schema.apply_all(url, seed=False, migrations_dir=tmp_path)
        conn = await asyncpg.connect(url)
        try:
            leftover = await conn.fetchval("select to_regclass('public.ok_table')")
        finally:
            await conn.close()
    message = str(caught.value)
    assert "20990101000000_broken.sql" in message
    assert "line 3" in message
    assert "create tabel broken" in message
    assert leftover is None


async def test_an_unreachable_database_url_names_the_host_and_the_fix() -> None:
    with pytest.raises(DevstackError) as caught:
        await postgres.check_reachable("postgresql://postgres@127.0.0.1:1/nowhere", timeout_s=2)
    assert "127.0.0.1:1" in str(caught.value)
    assert "DATABASE_URL" in str(caught.value)
