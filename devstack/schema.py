"""Apply the Supabase platform bootstrap, then the project's migrations and seed.

Order matters and mirrors a real project: first what Supabase already has
(``devstack/sql/*.sql``, as the server's superuser: roles, ``auth.*``, ``realtime.*``, the
supautils stand-in, then the stand-ins' own hooks), then ``supabase/migrations/*.sql`` in
file-name order, then ``supabase/seed.sql``. Migrations and seed run as
:data:`MIGRATION_ROLE`, which has the privileges of a real project's ``postgres`` (not a
superuser; it does not own ``realtime.*``), so a migration that needs more fails here as
it would on the platform. Each file runs in its own transaction; a failure names the
file, the line and the statement, and leaves nothing of that file applied.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import asyncpg

from devstack.errors import DevstackError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
PLATFORM_SQL_DIR = Path(__file__).resolve().parent / "sql"
MIGRATIONS_DIR = PROJECT_ROOT / "supabase" / "migrations"
SEED_FILE = PROJECT_ROOT / "supabase" / "seed.sql"
# The role that stands for a real project's `postgres` (devstack/sql/00_cluster_roles.sql).
MIGRATION_ROLE = "project_postgres"
# A real project's `postgres` has this search_path (a role setting, which SET SESSION
# AUTHORIZATION does not apply by itself).
MIGRATION_SEARCH_PATH = '"$user", public, extensions'


class MigrationError(DevstackError):
    """A SQL file failed to apply."""


@dataclass(frozen=True)
class Applied:
    files: tuple[Path, ...]


def _statement_at(sql: str, position: int) -> tuple[int, str]:
    """The 1-based line and the text of the statement around a 1-based character offset."""
    index = max(position - 1, 0)
    line = sql.count("\n", 0, index) + 1
    start = sql.rfind(";", 0, index) + 1
    end = sql.find(";", index)
    statement = sql[start : end + 1 if end >= 0 else len(sql)].strip()
    return line, " ".join(statement.split())[:300]


async def apply_file(conn: asyncpg.Connection, path: Path) -> None:
    """Run one SQL file in a transaction; raise MigrationError naming file and statement."""
    sql = path.read_text(encoding="utf-8")  # noqa: ASYNC240 - small local file, read once at start
    try:
        async with conn.transaction():
            await conn.execute(sql)
    except asyncpg.PostgresError as exc:
        where = ""
        position = getattr(exc, "position", None)
        if position:
            line, statement = _statement_at(sql, int(position))
            where = f" at line {line}, in statement: {statement}"
        raise MigrationError(
            f"{_display(path)} failed{where}\n  {type(exc).__name__}: {exc}"
            f"{_hint(exc)}\nNothing of this file was applied; fix it and run again."
        ) from exc


def _hint(exc: asyncpg.PostgresError) -> str:
    detail = getattr(exc, "detail", None)
    hint = getattr(exc, "hint", None)
    extra = "".join(
        f"\n  {label}: {text}" for label, text in (("detail", detail), ("hint", hint)) if text
    )
    return extra


def _display(path: Path) -> str:
    try:
        return str(path.relative_to(PROJECT_ROOT))
    except ValueError:
        return str(path)


def migration_files(directory: Path = MIGRATIONS_DIR) -> list[Path]:
    return sorted(directory.glob("*.sql"))


async def apply_all(
    url: str, *, seed: bool = True, migrations_dir: Path = MIGRATIONS_DIR
) -> Applied:
    """Bootstrap the platform (as the superuser of ``url``), then apply the migrations
    and the seed as :data:`MIGRATION_ROLE` to the database at ``url``."""
    platform = sorted(PLATFORM_SQL_DIR.glob("*.sql"))
    project = migration_files(migrations_dir)
    if seed and SEED_FILE.exists():
        project.append(SEED_FILE)
    conn = await asyncpg.connect(url)
    try:
        for path in platform:
            await apply_file(conn, path)
        await become_migration_role(conn)
        for path in project:
            await apply_file(conn, path)
    finally:
        await conn.close()
    return Applied((*platform, *project))


async def become_migration_role(conn: asyncpg.Connection) -> None:
    """Make a superuser session behave as a project's ``postgres`` from now on (as if it
    had logged in as :data:`MIGRATION_ROLE`; the stand-in needs no password for it)."""
    await conn.execute(f"set session authorization {MIGRATION_ROLE}")
    await conn.execute("select set_config('search_path', $1, false)", MIGRATION_SEARCH_PATH)
