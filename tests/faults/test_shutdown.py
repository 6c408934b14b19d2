"""Graceful shutdown of ``python -m worker run``: SIGTERM during a burst of slow handlers."""

from __future__ import annotations

import time

import pytest

from devstack.stack import Stack
from tests.e2e.conftest import insert_events, provision, worker_env
from tests.faults.support import WorkerProcess, org_subs
from worker.testing import eventually

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(120)]

GRACE_S = 2.0
K8S_GRACE_S = 45.0  # deploy/base: terminationGracePeriodSeconds


async def test_sigterm_during_a_burst_drains_or_dead_letters_in_flight_work_and_exits_0(
    stack: Stack,
) -> None:
    org = provision(stack, "Acme")
    env = worker_env(
        stack,
        org,
        WORKER_HANDLERS="tests.faults.slow_handlers",
        WORKER_CONCURRENCY="4",
        WORKER_SHUTDOWN_GRACE_SECONDS=str(GRACE_S),
    )
    worker = WorkerProcess(env)
    async with worker.run():
        await eventually(
            lambda: worker.http_port is not None, timeout_s=30, message="the worker started"
        )
        await eventually(lambda: org_subs(stack, org.org_id) != [], timeout_s=20, message="joined")
        inserted = await insert_events(stack.database_url, org.org_id, 40)  # ~5 s of work

        def started() -> int:
            return len([r for r in worker.records if r.get("msg") == "event handled"])

        await eventually(lambda: started() >= 4, timeout_s=20, message="the burst is being handled")
        worker.terminate()
        signalled = time.monotonic()
    elapsed = time.monotonic() - signalled
    assert worker.returncode == 0, worker.text()[-3000:]
    # Drain within the grace, then leave channels and close: far inside Kubernetes' grace.
    assert elapsed < GRACE_S + 8, elapsed
    assert elapsed < K8S_GRACE_S
    assert org_subs(stack, org.org_id) == []  # channels were left
    outcomes: dict[int, str] = {}
    for record in worker.records:
        if record.get("event_id") in inserted and "outcome" in record:
            assert record["event_id"] not in outcomes, "one final line per event"
            outcomes[record["event_id"]] = record["outcome"]
    assert set(outcomes.values()) <= {"success", "cancelled", "abandoned"}
    assert "success" in outcomes.values()
    assert "abandoned" in outcomes.values()  # the burst outlasted the grace: the rest is left
    # Every event the worker received ends in exactly one outcome line; none is silently lost
    # (what was never received is the delivery layer's to catch up after a restart).
    stopped = [r for r in worker.records if r.get("msg") == "worker stopped"]
    assert len(stopped) == 1
    assert stopped[0]["handled"] == list(outcomes.values()).count("success")
    assert "Traceback" not in worker.text()
