"""A live frame forged by an org admin: an outbox-shaped payload with an id no outbox row
has (10**12) and an old ``created_at``, broadcast with ``realtime.send`` on the org's own
topic through the RLS policies (admins may broadcast there). The worker handles it, as any
broadcast an admin may send, but its id never moves the checkpoint: only ids read back
from the outbox do. Before the fix it became the saved checkpoint, and a restarted worker
skipped every real event below 10**12."""

from __future__ import annotations

import json
from typing import Any

import asyncpg
import pytest

from devstack.stack import Stack
from tests.db.personas import v2
from tests.e2e.conftest import Recorder, insert_events, provision, run_worker
from tests.faults.test_delivery_faults import FAST, anchored, saved_checkpoint
from worker.testing import eventually

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(120)]

FORGED_ID = 10**12


async def admin_broadcast(stack: Stack, org_id: str, payload: dict[str, Any]) -> None:
    """``realtime.send`` as an admin of ``org_id`` would call it (role + claims, committed)."""
    claims = v2("user_forger", org_id, "admin")
    conn = await asyncpg.connect(stack.database_url)
    try:
        async with conn.transaction():
            await conn.execute(
                "select set_config('role', 'authenticated', true), "
                "set_config('request.jwt.claims', $1, true)",
                json.dumps(claims),
            )
            await conn.execute(
                "select realtime.send($1::jsonb, $2, $3, true)",
                json.dumps(payload),
                payload["event"],
                f"org:{org_id}:events",
            )
    finally:
        await conn.close()


def forged_row(org_id: str) -> dict[str, Any]:
    return {
        "id": FORGED_ID,
        "org_id": org_id,
        "topic": "events",
        "event": "task.created",
        "payload": {"forged": True},
        "created_at": "2020-01-01T00:00:00+00:00",
    }


async def test_a_forged_outbox_frame_never_becomes_the_checkpoint_nor_skips_real_events(
    stack: Stack,
) -> None:
    org = provision(stack, "Acme")
    recorder = Recorder()
    async with run_worker(stack, org, recorder.registry, **FAST) as worker:
        await eventually(lambda: anchored(worker), timeout_s=10, message="checkpoint loaded")
        await admin_broadcast(stack, org.org_id, forged_row(org.org_id))
        await eventually(
            recorder.handled([FORGED_ID]), timeout_s=15, message="the forged frame is handled"
        )
        before = await insert_events(stack.database_url, org.org_id, 3)
        await eventually(recorder.handled(before), timeout_s=15, message="real events handled")

        async def saved_low_reaches(event_id: int) -> bool:
            checkpoint = await saved_checkpoint(stack, org)
            return checkpoint is not None and checkpoint[0] >= event_id

        await eventually(
            lambda: saved_low_reaches(max(before)),
            timeout_s=15,
            message="the real events checkpointed",
        )
        saved = await saved_checkpoint(stack, org)
        assert saved is not None
        assert saved[0] < FORGED_ID
        assert FORGED_ID not in saved[1]
        assert worker.delivery is not None
        assert worker.delivery.ledger.progress.scan_from < FORGED_ID
    missed = await insert_events(stack.database_url, org.org_id, 3)  # while no worker runs
    again = Recorder()
    async with run_worker(stack, org, again.registry, **FAST):
        await eventually(
            again.handled(missed), timeout_s=15, message="events missed while down caught up"
        )
        await admin_broadcast(stack, org.org_id, forged_row(org.org_id))
        later = await insert_events(stack.database_url, org.org_id, 1)
        await eventually(again.handled(later), timeout_s=15, message="the next live event")
    assert set(again.ids()) >= set(missed)
    assert not set(again.ids()) & set(before)  # handled before the restart: not repeated
