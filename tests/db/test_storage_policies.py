"""RLS on storage.objects for bucket org-files: every persona, both Clerk token formats.

Each persona reads, writes (insert), updates and deletes an object in four places: its own
org's folder, the other org's folder, the bucket root and its own org's billing folder.
Org A's id is a prefix of org B's and both contain '_': a policy that matched names with
LIKE or startswith would fail the cross-org rows.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from tests.db.personas import ORG_A, ORG_B, PERSONAS
from tests.db.sessions import as_token

pytestmark = [pytest.mark.db, pytest.mark.anyio]

BUCKET = "org-files"
PLACES = ("own", "other", "root", "billing")
SEEDED = "seed.txt"


def own_org(persona: str) -> str:
    return ORG_B if persona.startswith("b_") else ORG_A


def path(persona: str, place: str, file: str = SEEDED) -> str:
    org = own_org(persona)
    other = ORG_A if org == ORG_B else ORG_B
    return {
        "own": f"{org}/reports/{file}",
        "other": f"{other}/reports/{file}",
        "root": file,
        "billing": f"{org}/billing/{file}",
    }[place]


@pytest.fixture(scope="module")
async def conn(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(database_url)
    names = [SEEDED] + [
        f"{org}/{folder}/{SEEDED}" for org in (ORG_A, ORG_B) for folder in ("reports", "billing")
    ]
    await connection.executemany(
        "insert into storage.objects (bucket_id, name) values ($1, $2) on conflict do nothing",
        [(BUCKET, name) for name in names],
    )
    yield connection
    await connection.close()


async def touched(conn: asyncpg.Connection, claims: dict[str, Any], sql: str, *args: Any) -> bool:
    """Whether ``sql`` touches a row as ``claims``, in a transaction that is rolled back.

    Deletes are let through the platform's guard as the Storage API does it
    (``storage.allow_delete_query`` in the request's transaction); RLS still decides.
    """
    async with as_token(conn, claims):
        await conn.execute("select set_config('storage.allow_delete_query', 'true', true)")
        try:
            status = await conn.execute(sql, *args)
        except asyncpg.InsufficientPrivilegeError:
            return False
    return not status.endswith(" 0")


OPERATIONS = {
    "read": "select 1 from storage.objects where bucket_id = $1 and name = $2",
    "write": "insert into storage.objects (bucket_id, name, owner_id) values ($1, $2, 'u')",
    "update": "update storage.objects set metadata = '{}' where bucket_id = $1 and name = $2",
    "delete": "delete from storage.objects where bucket_id = $1 and name = $2",
}
ALL = set(PLACES)
NOTHING: dict[str, set[str]] = {op: set() for op in OPERATIONS}
MEMBER = {"read": {"own", "billing"}, "write": set(), "update": set(), "delete": set()}
PUBLISHER = {op: {"own", "billing"} for op in OPERATIONS}
# A passed first factor only: the org's files, but nothing under billing/.
PUBLISHER_NO_2FA = {op: {"own"} for op in OPERATIONS}

# persona -> operation -> places where it succeeds
ALLOWED: dict[str, dict[str, set[str]]] = {
    "a_member": MEMBER,
    "a_admin": PUBLISHER,
    "a_worker": PUBLISHER,
    "b_member": MEMBER,
    "b_admin": PUBLISHER,
    "no_org": NOTHING,
    "a_admin_v1": PUBLISHER,
    "a_member_v1": MEMBER,
    "a_worker_v1": PUBLISHER,
    "a_admin_no_2fa": PUBLISHER_NO_2FA,
    "anon": NOTHING,
}


@pytest.mark.parametrize(
    ("persona", "operation", "place"),
    [(p, op, place) for p in ALLOWED for op in OPERATIONS for place in PLACES],
)
async def test_persona_touches_only_the_files_its_token_allows(
    conn: asyncpg.Connection, persona: str, operation: str, place: str
) -> None:
    file = "new.txt" if operation == "write" else SEEDED
    ok = await touched(
        conn, PERSONAS[persona], OPERATIONS[operation], BUCKET, path(persona, place, file)
    )
    assert ok == (place in ALLOWED[persona][operation])


@pytest.mark.parametrize("persona", ["a_admin", "a_worker", "a_worker_v1"])
async def test_no_persona_moves_a_file_out_of_its_org(
    conn: asyncpg.Connection, persona: str
) -> None:
    claims = PERSONAS[persona]
    move = "update storage.objects set name = $3 where bucket_id = $1 and name = $2"
    source = path(persona, "own")
    assert await touched(conn, claims, move, BUCKET, source, f"{ORG_A}/archive/{SEEDED}")
    assert not await touched(conn, claims, move, BUCKET, source, path(persona, "other", "x"))
    assert not await touched(conn, claims, move, BUCKET, source, "x.txt")


async def test_without_second_factor_a_file_cannot_be_moved_into_billing(
    conn: asyncpg.Connection,
) -> None:
    move = "update storage.objects set name = $3 where bucket_id = $1 and name = $2"
    target = f"{ORG_A}/billing/moved.txt"
    source = path("a_admin", "own")
    assert await touched(conn, PERSONAS["a_admin"], move, BUCKET, source, target)
    assert not await touched(conn, PERSONAS["a_admin_no_2fa"], move, BUCKET, source, target)


@pytest.mark.parametrize(
    "name",
    [
        f"{ORG_A}billing/x.txt",  # no separator: another (nonexistent) org's folder
        f"{ORG_A}/x/billing/y.txt",  # billing deeper down is an ordinary folder
        f"{ORG_A}/billing",  # a file named billing at the org's root
    ],
)
async def test_folder_parts_are_matched_exactly(conn: asyncpg.Connection, name: str) -> None:
    no_2fa = PERSONAS["a_admin_no_2fa"]
    ok = await touched(conn, no_2fa, OPERATIONS["write"], BUCKET, name)
    assert ok == (not name.startswith(f"{ORG_A}billing"))


async def test_the_policies_cover_only_the_org_files_bucket(conn: asyncpg.Connection) -> None:
    await conn.execute(
        "insert into storage.buckets (id, name) values ('elsewhere', 'elsewhere') "
        "on conflict do nothing"
    )
    name = f"{ORG_A}/reports/{SEEDED}"
    for persona in ("a_admin", "a_member"):
        claims = PERSONAS[persona]
        assert not await touched(conn, claims, OPERATIONS["write"], "elsewhere", name)


async def test_rows_are_deleted_only_through_the_storage_api(conn: asyncpg.Connection) -> None:
    async with as_token(conn, PERSONAS["a_admin"]):
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="Use the Storage API"):
            await conn.execute(OPERATIONS["delete"], BUCKET, path("a_admin", "own"))


async def test_org_files_is_a_private_bucket_with_a_size_limit(conn: asyncpg.Connection) -> None:
    row = await conn.fetchrow(
        "select public, file_size_limit from storage.buckets where id = $1", BUCKET
    )
    assert (row["public"], row["file_size_limit"]) == (False, 10 * 1024 * 1024)
