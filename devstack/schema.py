"""Apply the Supabase platform bootstrap, then the project's migrations and seed.

Order matters and mirrors a real project: first what Supabase already has
(``devstack/sql/*.sql``: roles, ``auth.*``, ``realtime.*``, then the stand-ins' own
hooks), then ``supabase/migrations/*.sql`` in file-name order, then ``supabase/seed.sql``.
Each file runs in its own transaction; a failure names the file, the line and the
statement, and leaves nothing of that file applied.
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
    """Bootstrap the platform and apply migrations (and the seed) to the database at ``url``."""
    files = [*sorted(PLATFORM_SQL_DIR.glob("*.sql")), *migration_files(migrations_dir)]
    if seed and SEED_FILE.exists():
        files.append(SEED_FILE)
    conn = await asyncpg.connect(url)
    try:
        for path in files:
            await apply_file(conn, path)
    finally:
        await conn.close()
    return Applied(tuple(files))
