"""The platform's storage schema (devstack/sql/05_storage.sql) as a Supabase project has it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest

pytestmark = [pytest.mark.db, pytest.mark.anyio]


@pytest.fixture
async def conn(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(database_url)
    yield connection
    await connection.close()


async def columns(conn: asyncpg.Connection, table: str) -> list[str]:
    rows = await conn.fetch(
        "select column_name from information_schema.columns "
        "where table_schema = 'storage' and table_name = $1 order by ordinal_position",
        table,
    )
    return [row["column_name"] for row in rows]


async def test_objects_and_buckets_have_the_platforms_columns(conn: asyncpg.Connection) -> None:
    assert await columns(conn, "objects") == [
        "id", "bucket_id", "name", "owner", "created_at", "updated_at", "last_accessed_at",
        "metadata", "path_tokens", "version", "owner_id", "user_metadata", "archived_at",
        "is_delete_marker", "is_versioned",
    ]  # fmt: skip
    assert await columns(conn, "buckets") == [
        "id", "name", "owner", "created_at", "updated_at", "public", "avif_autodetection",
        "file_size_limit", "allowed_mime_types", "owner_id", "type", "versioning_status",
    ]  # fmt: skip


async def test_storage_belongs_to_its_admin_with_rls_on(conn: asyncpg.Connection) -> None:
    rows = await conn.fetch(
        "select c.relname, pg_get_userbyid(c.relowner) as owner, c.relrowsecurity as rls "
        "from pg_class c where c.relnamespace = 'storage'::regnamespace and c.relkind = 'r' "
        "order by 1"
    )
    assert [(r["relname"], r["owner"], r["rls"]) for r in rows] == [
        ("buckets", "supabase_storage_admin", True),
        ("objects", "supabase_storage_admin", True),
    ]


@pytest.mark.parametrize("role", ["anon", "authenticated", "service_role"])
async def test_api_roles_get_every_privilege_and_rls_decides(
    conn: asyncpg.Connection, role: str
) -> None:
    for privilege in ("select", "insert", "update", "delete"):
        assert await conn.fetchval(
            "select has_table_privilege($1, 'storage.objects', $2)", role, privilege
        )


async def test_postgres_may_grant_on_objects_for_its_migrations(conn: asyncpg.Connection) -> None:
    assert await conn.fetchval(
        "select has_table_privilege('postgres', 'storage.objects', 'select with grant option')"
    )


@pytest.mark.parametrize(
    ("name", "folders", "file", "extension"),
    [
        ("org_1/reports/2026/r.pdf", ["org_1", "reports", "2026"], "r.pdf", "pdf"),
        ("r.tar.gz", [], "r.tar.gz", "gz"),
        ("org_1/billing", ["org_1"], "billing", "billing"),
    ],
)
async def test_path_helpers_split_names_on_slashes(
    conn: asyncpg.Connection, name: str, folders: list[str], file: str, extension: str
) -> None:
    row = await conn.fetchrow(
        "select storage.foldername($1) as f, storage.filename($1) as n, storage.extension($1) as e",
        name,
    )
    assert (row["f"], row["n"], row["e"]) == (folders, file, extension)


async def test_search_lists_one_level_below_the_prefix(conn: asyncpg.Connection) -> None:
    await conn.execute(
        "insert into storage.buckets (id, name) values ('search-test', 'search-test') "
        "on conflict do nothing;"
        "insert into storage.objects (bucket_id, name) values "
        "('search-test', 'org_a/x.txt'), ('search-test', 'org_a/deep/y.txt'),"
        "('search-test', 'org_ab/z.txt'), ('search-test', 'orgXa/w.txt') on conflict do nothing"
    )
    rows = await conn.fetch("select name, id from storage.search('org_a/', 'search-test')")
    assert [(r["name"], r["id"] is None) for r in rows] == [("deep", True), ("x.txt", False)]
