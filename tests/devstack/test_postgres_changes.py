"""Postgres Changes of the Realtime stand-in, driven directly (no websocket).

Each test subscribes with Clerk-like claims, writes rows as the superuser (which bypasses
RLS), and reads what the subscriber was handed. "Not delivered" is shown by ordering:
NOTIFY delivers changes in commit order, so when a later matching change arrives first,
the earlier one was skipped.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio
import asyncpg
import pytest

from devstack.realtime.postgres_changes import PostgresChanges, SubscriptionError
from tests.db.personas import ORG_A, ORG_B, PERSONAS

pytestmark = pytest.mark.anyio

UNABLE = "Unable to subscribe to changes with given parameters."
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


class Inbox:
    """A subscriber's deliveries, read with a deadline."""

    def __init__(self) -> None:
        self._send, self._receive = anyio.create_memory_object_stream[dict[str, Any]](100)

    async def deliver(self, payload: dict[str, Any]) -> None:
        await self._send.send(payload)

    async def next(self, timeout_s: float = 10.0) -> dict[str, Any]:
        with anyio.fail_after(timeout_s):
            return await self._receive.receive()

    def pending(self) -> int:
        """Deliveries received but not read yet."""
        return self._receive.statistics().current_buffer_used

    def close(self) -> None:
        self._send.close()
        self._receive.close()


@pytest.fixture
async def changes(database_url: str) -> AsyncIterator[PostgresChanges]:
    pc = PostgresChanges(database_url=database_url)
    await pc.start()
    try:
        yield pc
    finally:
        await pc.close()


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(database_url)
    try:
        yield conn
    finally:
        await conn.close()


@pytest.fixture
def inbox() -> Iterator[Inbox]:
    box = Inbox()
    yield box
    box.close()


@pytest.fixture
def tag() -> str:
    """A per-test title prefix: the session database is shared."""
    return f"pgc-{secrets.token_hex(4)}"


async def subscribe(
    pc: PostgresChanges, inbox: Inbox, persona: str = "a_member", **binding: Any
) -> int:
    """Subscribe one binding on public.cdc_tasks (overridable) and return its id."""
    [bound] = pc.binding_ids([{"event": "*", "schema": "public", "table": "cdc_tasks", **binding}])
    await pc.subscribe(
        key=secrets.token_hex(4), bindings=[bound], claims=PERSONAS[persona], deliver=inbox.deliver
    )
    return int(bound["id"])


async def add_task(db: asyncpg.Connection, org: str, title: str) -> int:
    return int(
        await db.fetchval(
            "insert into public.cdc_tasks (organization_id, title) values ($1, $2) returning id",
            org,
            title,
        )
    )


async def test_insert_is_delivered_in_the_server_shape(
    changes: PostgresChanges, db: asyncpg.Connection, inbox: Inbox, tag: str
) -> None:
    binding_id = await subscribe(changes, inbox, event="INSERT")
    task_id = await add_task(db, ORG_A, f"{tag}-new")

    got = await inbox.next()

    assert got["ids"] == [binding_id]
    data = got["data"]
    assert set(data) == {
        "schema",
        "table",
        "commit_timestamp",
        "type",
        "columns",
        "record",
        "errors",
    }
    assert (data["schema"], data["table"], data["type"], data["errors"]) == (
        "public",
        "cdc_tasks",
        "INSERT",
        None,
    )
    assert TIMESTAMP.match(data["commit_timestamp"])
    assert {"name": "id", "type": "int8"} in data["columns"]
    assert {"name": "title", "type": "text"} in data["columns"]
    assert data["record"]["id"] == task_id
    assert data["record"]["title"] == f"{tag}-new"
    assert data["record"]["organization_id"] == ORG_A


async def test_update_carries_the_primary_key_as_old_record(
    changes: PostgresChanges, db: asyncpg.Connection, inbox: Inbox, tag: str
) -> None:
    await subscribe(changes, inbox, event="UPDATE")
    task_id = await add_task(db, ORG_A, f"{tag}-before")
    await db.execute(
        "update public.cdc_tasks set title = $1 where id = $2", f"{tag}-after", task_id
    )

    data = (await inbox.next())["data"]

    assert data["type"] == "UPDATE"
    assert data["record"]["title"] == f"{tag}-after"
    assert data["old_record"] == {"id": task_id}


async def test_delete_skips_rls_and_carries_only_the_primary_key(
    changes: PostgresChanges, db: asyncpg.Connection, inbox: Inbox, tag: str
) -> None:
    await subscribe(changes, inbox, persona="b_member", event="DELETE")
    task_id = await add_task(db, ORG_A, f"{tag}-doomed")
    await db.execute("delete from public.cdc_tasks where id = $1", task_id)

    data = (await inbox.next())["data"]

    assert data["type"] == "DELETE"
    assert "record" not in data
    assert data["old_record"] == {"id": task_id}


async def test_rls_hides_another_orgs_rows(
    changes: PostgresChanges, db: asyncpg.Connection, inbox: Inbox, tag: str
) -> None:
    await subscribe(changes, inbox, persona="a_member", event="INSERT")
    await add_task(db, ORG_B, f"{tag}-org-b")
    await add_task(db, ORG_A, f"{tag}-org-a")

    data = (await inbox.next())["data"]

    assert data["record"]["title"] == f"{tag}-org-a"


async def test_event_param_limits_the_actions(
    changes: PostgresChanges, db: asyncpg.Connection, inbox: Inbox, tag: str
) -> None:
    await subscribe(changes, inbox, event="insert")  # any case, as the server takes it
    task_id = await add_task(db, ORG_A, f"{tag}-one")
    await db.execute("update public.cdc_tasks set status = 'done' where id = $1", task_id)
    await add_task(db, ORG_A, f"{tag}-two")

    assert (await inbox.next())["data"]["record"]["title"] == f"{tag}-one"
    assert (await inbox.next())["data"]["record"]["title"] == f"{tag}-two"


FILTER_CASES = [  # (filter, titles inserted in order, the first one delivered)
    ("title=eq.{tag}-b", ["a", "b"], "b"),
    ("title=neq.{tag}-a", ["a", "b"], "b"),
    ("title=gt.{tag}-m", ["a", "z"], "z"),
    ("title=lte.{tag}-b", ["c", "b"], "b"),
    ("title=in.({tag}-b,{tag}-c)", ["a", "c"], "c"),
    ("title=gte.{tag}-b,title=lt.{tag}-c", ["a", "c", "b"], "b"),
    ("title=not.eq.{tag}-a", ["a", "b"], "b"),
]


@pytest.mark.parametrize("case", FILTER_CASES, ids=[c[0] for c in FILTER_CASES])
async def test_filters_select_rows(
    changes: PostgresChanges,
    db: asyncpg.Connection,
    inbox: Inbox,
    tag: str,
    case: tuple[str, list[str], str],
) -> None:
    filter_, titles, first_delivered = case
    await subscribe(changes, inbox, event="INSERT", filter=filter_.format(tag=tag))
    for title in titles:
        await add_task(db, ORG_A, f"{tag}-{title}")

    data = (await inbox.next())["data"]

    assert data["record"]["title"] == f"{tag}-{first_delivered}"


async def test_numeric_filter_compares_numbers(
    changes: PostgresChanges, db: asyncpg.Connection, inbox: Inbox
) -> None:
    # Ids far above the identity sequence: as text '1000…' < '9000…', as bigint it is not.
    salt = secrets.randbelow(10**6)
    low, high = 9 * 10**12 + salt, 10**13 + salt
    await subscribe(changes, inbox, event="INSERT", filter=f"id=gt.{low}")
    for task_id in (low - 1, high):
        await db.execute(
            "insert into public.cdc_tasks (id, organization_id, title)"
            " overriding system value values ($1, $2, 'numeric')",
            task_id,
            ORG_A,
        )

    data = (await inbox.next())["data"]

    assert data["record"]["id"] == high


async def test_unsubscribe_stops_delivery(
    changes: PostgresChanges, db: asyncpg.Connection, tag: str
) -> None:
    gone, staying = Inbox(), Inbox()
    try:
        await changes.subscribe(
            key="gone",
            bindings=changes.binding_ids([{"table": "cdc_tasks"}]),
            claims=PERSONAS["a_member"],
            deliver=gone.deliver,
        )
        await subscribe(changes, staying)
        await changes.unsubscribe("gone")
        await add_task(db, ORG_A, f"{tag}-1")
        await add_task(db, ORG_A, f"{tag}-2")
        await staying.next()
        await staying.next()  # the first change was fully dispatched before this one

        assert gone.pending() == 0
    finally:
        gone.close()
        staying.close()


async def test_update_claims_applies_to_later_changes(
    changes: PostgresChanges, db: asyncpg.Connection, inbox: Inbox, tag: str
) -> None:
    [bound] = changes.binding_ids([{"event": "INSERT", "schema": "public", "table": "cdc_tasks"}])
    await changes.subscribe(
        key="refresh", bindings=[bound], claims=PERSONAS["b_member"], deliver=inbox.deliver
    )
    await changes.update_claims("refresh", PERSONAS["a_member"])
    await add_task(db, ORG_A, f"{tag}-visible-now")

    assert (await inbox.next())["data"]["record"]["title"] == f"{tag}-visible-now"


def test_binding_ids_echo_each_binding_with_a_stable_integer() -> None:
    binding = {"event": "*", "schema": "public", "table": "cdc_tasks", "filter": "id=eq.1"}

    [first] = PostgresChanges.binding_ids([binding])
    [again] = PostgresChanges.binding_ids([dict(reversed(binding.items()))])

    assert {k: v for k, v in first.items() if k != "id"} == binding
    assert isinstance(first["id"], int)
    assert first["id"] == again["id"]


async def test_unpublished_table_is_refused_with_the_server_text(
    changes: PostgresChanges, inbox: Inbox
) -> None:
    with pytest.raises(SubscriptionError) as caught:
        await subscribe(changes, inbox, table="org_billing")

    assert caught.value.text == (
        f"{UNABLE} Please check Realtime is enabled for the given connect parameters: "
        "[event: *, schema: public, table: org_billing, filters: [], select: nil]"
    )


async def test_filter_on_unknown_column_is_refused_with_the_server_text(
    changes: PostgresChanges, inbox: Inbox
) -> None:
    with pytest.raises(SubscriptionError) as caught:
        await subscribe(changes, inbox, filter="nope=eq.1")

    assert caught.value.text == (
        f"{UNABLE} An exception happened so please check your connect parameters: "
        '[event: *, schema: public, table: cdc_tasks, filters: [{"nope", "eq", "1", false}], '
        "select: nil]. Exception: ERROR P0001 (raise_exception) invalid column for filter nope"
    )


async def test_filter_value_of_the_wrong_type_is_refused(
    changes: PostgresChanges, inbox: Inbox
) -> None:
    with pytest.raises(SubscriptionError) as caught:
        await subscribe(changes, inbox, filter="id=eq.abc")

    assert caught.value.text.endswith(
        "Exception: ERROR 22P02 (invalid_text_representation) invalid input syntax for type "
        'bigint: "abc"'
    )


@pytest.mark.parametrize(
    ("filter_", "text"),
    [
        ("title=foo.x", 'Error parsing `filter` params: ["foo", "x"]'),
        ("undefined", 'Error parsing `filter` params: ["undefined"]'),
        (
            "id=in.1,2",
            "Error parsing `filter` params: `in` filter value must be wrapped by parentheses",
        ),
        (
            "id=eq.1,,id=eq.2",
            "Error parsing `filter` params: "
            "filter must not contain empty segments (check for extra commas)",
        ),
    ],
)
async def test_unparsable_filter_is_refused_with_the_server_text(
    changes: PostgresChanges, inbox: Inbox, filter_: str, text: str
) -> None:
    with pytest.raises(SubscriptionError) as caught:
        await subscribe(changes, inbox, filter=filter_)

    assert caught.value.text == text


@pytest.fixture
async def notes(db: asyncpg.Connection) -> AsyncIterator[None]:
    """public.pgc_notes, published, whose ``secret`` column authenticated may not read."""
    await db.execute(
        "create table public.pgc_notes (id bigint primary key, body text, secret text);"
        "revoke all on public.pgc_notes from authenticated;"
        "grant select (id, body) on public.pgc_notes to authenticated;"
        "alter publication supabase_realtime add table public.pgc_notes;"
    )
    try:
        yield
    finally:
        await db.execute("drop table public.pgc_notes")


@pytest.mark.usefixtures("notes")
async def test_columns_the_role_cannot_read_are_left_out(
    changes: PostgresChanges, db: asyncpg.Connection, inbox: Inbox
) -> None:
    await subscribe(changes, inbox, table="pgc_notes")
    await db.execute("insert into public.pgc_notes values (1, 'hi', 'hidden')")

    data = (await inbox.next())["data"]

    assert data["columns"] == [{"name": "id", "type": "int8"}, {"name": "body", "type": "text"}]
    assert data["record"] == {"id": 1, "body": "hi"}


@pytest.mark.usefixtures("notes")
async def test_truncate_is_not_delivered(
    changes: PostgresChanges, db: asyncpg.Connection, inbox: Inbox
) -> None:
    await subscribe(changes, inbox, table="pgc_notes")
    await db.execute("insert into public.pgc_notes values (1, 'first', '')")
    await db.execute("truncate public.pgc_notes")
    await db.execute("insert into public.pgc_notes values (2, 'second', '')")

    first, second = await inbox.next(), await inbox.next()

    assert [first["data"]["type"], second["data"]["type"]] == ["INSERT", "INSERT"]
    assert second["data"]["record"]["body"] == "second"
