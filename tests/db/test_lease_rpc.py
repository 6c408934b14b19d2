"""The worker lease under RLS: who may take, renew, release and read it; epochs; fencing."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import asyncpg
import pytest

from tests.db.personas import ORG_A, ORG_B, PERSONAS
from tests.db.sessions import as_token

pytestmark = [pytest.mark.db, pytest.mark.anyio]

ACQUIRE = "select * from acquire_worker_lease($1, $2, $3)"
RENEW = "select * from renew_worker_lease($1, $2, $3, $4)"
RELEASE = "select release_worker_lease($1, $2, $3)"


@pytest.fixture
async def conn(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(database_url)
    yield connection
    await connection.close()


@contextlib.asynccontextmanager
async def rolled_back(conn: asyncpg.Connection) -> AsyncIterator[None]:
    """Seeds and everything else inside are rolled back at the end."""
    tx = conn.transaction()
    await tx.start()
    try:
        yield
    finally:
        await tx.rollback()


async def _seed_lease(conn: asyncpg.Connection, org: str, consumer: str, epoch: int = 7) -> None:
    await conn.execute(
        "insert into worker_leases (org_id, consumer, holder, epoch, expires_at) "
        "values ($1, $2, 'seeded', $3, clock_timestamp() + interval '1 hour')",
        org,
        consumer,
        epoch,
    )


# -- who may hold it: the policy matrix -------------------------------------------------

MAY_HOLD = {
    "a_worker": True,
    "a_admin": True,
    "a_worker_v1": True,
    "a_admin_v1": True,
    "b_admin": True,
    "a_member": False,
    "a_member_v1": False,
    "b_member": False,
    "no_org": False,
    "anon": False,
}


@pytest.mark.parametrize(("persona", "may"), sorted(MAY_HOLD.items()))
async def test_only_an_orgs_workers_and_admins_may_acquire_its_lease(
    conn: asyncpg.Connection, persona: str, *, may: bool
) -> None:
    async with as_token(conn, PERSONAS[persona]):
        if may:
            row = await conn.fetchrow(ACQUIRE, "m1", "h1", 10.0)
            assert row is not None
            assert row["acquired"]
            assert row["lease_epoch"] >= 1
        else:
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.fetchrow(ACQUIRE, "m1", "h1", 10.0)


@pytest.mark.parametrize(("persona", "may"), sorted(MAY_HOLD.items()))
async def test_renew_and_release_follow_the_same_matrix(
    conn: asyncpg.Connection, persona: str, *, may: bool
) -> None:
    for sql, args in ((RENEW, ("m2", "h", 1, 5.0)), (RELEASE, ("m2", "h", 1))):
        async with as_token(conn, PERSONAS[persona]):
            if may:
                await conn.fetchrow(sql, *args)
            else:
                with pytest.raises(asyncpg.InsufficientPrivilegeError):
                    await conn.fetchrow(sql, *args)


READS = {  # persona -> the orgs whose leases it sees
    "a_worker": {ORG_A},
    "a_admin": {ORG_A},
    "a_worker_v1": {ORG_A},
    "b_admin": {ORG_B},
    "a_member": set(),
    "b_member": set(),
    "no_org": set(),
    "anon": set(),
}


@pytest.mark.parametrize(("persona", "orgs"), sorted(READS.items(), key=lambda kv: kv[0]))
async def test_a_lease_is_readable_only_by_its_own_orgs_workers_and_admins(
    conn: asyncpg.Connection, persona: str, orgs: set[str]
) -> None:
    async with rolled_back(conn):
        await _seed_lease(conn, ORG_A, "read")
        await _seed_lease(conn, ORG_B, "read")
        async with as_token(conn, PERSONAS[persona]):
            try:
                rows = await conn.fetch("select org_id from worker_leases where consumer = 'read'")
            except asyncpg.InsufficientPrivilegeError:
                rows = []
    assert {r["org_id"] for r in rows} == orgs


@pytest.mark.parametrize("persona", ["a_worker", "a_admin", "a_member", "anon"])
async def test_no_api_role_may_write_the_lease_table_directly(
    conn: asyncpg.Connection, persona: str
) -> None:
    async with as_token(conn, PERSONAS[persona]):
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute(
                "insert into worker_leases (org_id, consumer, holder, epoch, expires_at) "
                "values ($1, 'w', 'h', 1, now())",
                ORG_A,
            )
    async with as_token(conn, PERSONAS[persona]):
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("update worker_leases set epoch = 1")


# -- another org -------------------------------------------------------------------------


async def test_another_orgs_worker_can_neither_take_nor_renew_nor_release_the_lease(
    conn: asyncpg.Connection,
) -> None:
    async with rolled_back(conn):
        await _seed_lease(conn, ORG_A, "x", epoch=7)
        async with as_token(conn, PERSONAS["b_admin"]):
            taken = await conn.fetchrow(ACQUIRE, "x", "seeded", 10.0)
            renewed = await conn.fetchrow(RENEW, "x", "seeded", 7, 10.0)
            released = await conn.fetchval(RELEASE, "x", "seeded", 7)
        await conn.execute("reset role")
        a_lease = await conn.fetchrow(
            "select * from worker_leases where org_id = $1 and consumer = 'x'", ORG_A
        )
    assert taken is not None
    assert (taken["acquired"], taken["lease_epoch"]) == (True, 1)  # B's own new lease
    assert renewed is not None
    assert (renewed["acquired"], renewed["lease_epoch"]) == (False, 1)
    assert released is False
    assert a_lease is not None
    assert (a_lease["holder"], a_lease["epoch"]) == ("seeded", 7)  # untouched


# -- epochs --------------------------------------------------------------------------------


async def test_each_take_raises_the_epoch_and_a_held_lease_is_not_taken(
    conn: asyncpg.Connection,
) -> None:
    async with as_token(conn, PERSONAS["a_worker"]):
        first = await conn.fetchrow(ACQUIRE, "e", "one", 30.0)
        refused = await conn.fetchrow(ACQUIRE, "e", "two", 30.0)
        renewed = await conn.fetchrow(RENEW, "e", "one", 1, 30.0)
        released = await conn.fetchval(RELEASE, "e", "one", 1)
        second = await conn.fetchrow(ACQUIRE, "e", "two", 30.0)
        stale = await conn.fetchrow(RENEW, "e", "one", 1, 30.0)
    assert first is not None
    assert (first["acquired"], first["lease_epoch"], first["lease_holder"]) == (True, 1, "one")
    assert refused is not None
    assert (refused["acquired"], refused["lease_epoch"], refused["lease_holder"]) == (
        False,
        1,
        "one",
    )
    assert renewed is not None
    assert renewed["acquired"]
    assert renewed["lease_expires_at"] >= first["lease_expires_at"]
    assert released is True
    assert second is not None
    assert (second["acquired"], second["lease_epoch"], second["lease_holder"]) == (True, 2, "two")
    assert stale is not None
    assert (stale["acquired"], stale["lease_epoch"]) == (False, 2)


async def test_an_expired_lease_is_taken_with_the_next_epoch_and_cannot_be_renewed(
    conn: asyncpg.Connection,
) -> None:
    async with rolled_back(conn):
        await conn.execute(
            "insert into worker_leases (org_id, consumer, holder, epoch, expires_at) "
            "values ($1, 'gone', 'old', 4, clock_timestamp() - interval '1 second')",
            ORG_A,
        )
        async with as_token(conn, PERSONAS["a_worker"]):
            late = await conn.fetchrow(RENEW, "gone", "old", 4, 10.0)
            taken = await conn.fetchrow(ACQUIRE, "gone", "new", 10.0)
    assert late is not None
    assert late["acquired"] is False
    assert taken is not None
    assert (taken["acquired"], taken["lease_epoch"], taken["lease_holder"]) == (True, 5, "new")


@pytest.mark.parametrize(("holder", "ttl"), [("", 10.0), ("h", 0.0), ("h", -1.0), ("h", 4000.0)])
async def test_a_lease_needs_a_holder_and_a_lifetime_within_bounds(
    conn: asyncpg.Connection, holder: str, ttl: float
) -> None:
    async with as_token(conn, PERSONAS["a_worker"]):
        with pytest.raises(asyncpg.InvalidParameterValueError):
            await conn.fetchrow(ACQUIRE, "b", holder, ttl)


# -- fencing -------------------------------------------------------------------------------


async def test_a_save_from_an_older_epoch_is_refused_and_moves_nothing(
    conn: asyncpg.Connection,
) -> None:
    async with as_token(conn, PERSONAS["a_worker"]):
        await conn.fetchrow(ACQUIRE, "f", "one", 30.0)
        assert await conn.fetchval("select save_worker_checkpoint('f', 10, '{}', 1)") == 10
        await conn.fetchval(RELEASE, "f", "one", 1)
        await conn.fetchrow(ACQUIRE, "f", "two", 30.0)
        for stale in (1, 3):  # older, and one the lease never had
            with pytest.raises(asyncpg.PostgresError) as refused:
                async with conn.transaction():  # a savepoint: the refusal aborts only it
                    await conn.fetchval("select save_worker_checkpoint('f', 20, '{}', $1)", stale)
            assert refused.value.sqlstate == "PT409"
        state = await conn.fetchrow("select * from get_worker_checkpoint_state('f')")
        assert await conn.fetchval("select save_worker_checkpoint('f', 30, '{}', 2)") == 30
    assert state is not None
    assert state["last_event_id"] == 10


async def test_a_save_with_an_epoch_needs_a_lease_and_one_without_is_unfenced(
    conn: asyncpg.Connection,
) -> None:
    async with as_token(conn, PERSONAS["a_worker"]):
        with pytest.raises(asyncpg.PostgresError) as refused:
            async with conn.transaction():
                await conn.fetchval("select save_worker_checkpoint('nolease', 5, '{}', 1)")
        assert await conn.fetchval("select save_worker_checkpoint('nolease', 5)") == 5
    assert refused.value.sqlstate == "PT409"


async def test_another_orgs_lease_does_not_fence_or_unfence_a_save(
    conn: asyncpg.Connection,
) -> None:
    async with as_token(conn, PERSONAS["b_admin"]):
        await conn.fetchrow(ACQUIRE, "g", "b", 30.0)  # org B's lease, epoch 1
        with pytest.raises(asyncpg.PostgresError) as refused:
            await conn.fetchval("select save_worker_checkpoint('g', 5, '{}', 2)")
    assert refused.value.sqlstate == "PT409"
