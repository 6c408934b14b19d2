"""At-least-once delivery end to end: outages, restarts, out-of-order commits, floods."""

from __future__ import annotations

import json

import anyio
import asyncpg
import pytest
from prometheus_client import CollectorRegistry

from devstack.stack import Stack
from tests.e2e.conftest import Org, Recorder, insert_burst, insert_events, provision, run_worker
from worker.app import Worker
from worker.testing import eventually

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(120)]

TOPICS = ("events", "jobs")
FAST = {
    "WORKER_TOPICS": ",".join(TOPICS),
    "WORKER_SETTLE_SECONDS": "1",
    "WORKER_CATCHUP_INTERVAL_SECONDS": "1",
    "WORKER_CHECKPOINT_INTERVAL_SECONDS": "1",
}


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return registry.get_sample_value(f"realtime_worker_{name}", labels) or 0.0


def passes(worker: Worker) -> int:
    assert worker.delivery is not None
    return worker.delivery.catchup.statistics().passes


async def insert_across_topics(stack: Stack, org: Org, rounds: int) -> list[int]:
    ids: list[int] = []
    for _ in range(rounds):
        for topic in TOPICS:
            ids += await insert_events(stack.database_url, org.org_id, 1, topic=topic)
    return ids


async def test_events_missed_while_realtime_is_down_are_handled_once_in_outbox_order(
    stack: Stack,
) -> None:
    org = provision(stack, "Acme")
    recorder = Recorder(TOPICS)
    control = stack.realtime.control
    async with run_worker(stack, org, recorder.registry, **FAST) as worker:
        control.freeze_all(True)  # frames are dropped, pings unanswered
        during = await insert_across_topics(stack, org, 6)
        await eventually(
            lambda: set(recorder.ids()) >= set(during), timeout_s=30, message="caught up"
        )
        control.freeze_all(False)
        after = await insert_across_topics(stack, org, 2)  # live again (and caught up too)
        await eventually(
            lambda: set(recorder.ids()) >= set(after), timeout_s=30, message="handled after"
        )
        assert sample(worker.metrics_registry, "events_caught_up_total") >= len(during)
    assert sorted(recorder.ids()) == sorted(during + after)  # each exactly once
    for topic in TOPICS:
        assert recorder.ids(topic) == sorted(recorder.ids(topic))  # started in outbox order


async def test_a_restart_mid_stream_loses_nothing_and_repeats_only_what_was_in_flight(
    stack: Stack,
) -> None:
    org = provision(stack, "Acme")
    first, second = Recorder(TOPICS, delay_s=0.05), Recorder(TOPICS, delay_s=0.05)
    inserted: list[int] = []
    done_inserting = anyio.Event()

    async def produce() -> None:
        for _ in range(60):
            inserted.extend(await insert_events(stack.database_url, org.org_id, 1))
            await anyio.sleep(0.05)  # pacing the producer, not waiting for a result
        done_inserting.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(produce)
        # A zero grace cancels what is in flight at the stop, like a kill mid-handler.
        async with run_worker(
            stack, org, first.registry, **(FAST | {"WORKER_SHUTDOWN_GRACE_SECONDS": "0"})
        ):
            await eventually(
                lambda: len(first.finished) >= 10, timeout_s=30, message="first worker busy"
            )
        async with run_worker(stack, org, second.registry, **FAST) as worker:
            await done_inserting.wait()
            await eventually(
                lambda: set(inserted) <= first.finished_ids() | second.finished_ids(),
                timeout_s=30,
                message="every event handled by one worker or the other",
            )
            assert worker.delivery is not None
    in_flight = {e.event_id for e in first.events} - first.finished_ids()
    repeated = set(first.ids()) & set(second.ids())
    assert repeated <= in_flight
    assert len(second.ids()) == len(set(second.ids()))
    keys = {e.event_id: e.idempotency_key for e in first.events}
    again = [e for e in second.events if e.event_id in repeated]
    assert all(keys[e.event_id] == e.idempotency_key for e in again)


async def test_an_id_committed_after_a_higher_one_is_not_skipped(stack: Stack) -> None:
    org = provision(stack, "Acme")
    recorder = Recorder(TOPICS)
    # Realtime frozen: only catch-up can deliver. A settle window longer than the gap
    # between A's id allocation and its commit, as in production.
    async with run_worker(
        stack, org, recorder.registry, **(FAST | {"WORKER_SETTLE_SECONDS": "6"})
    ) as worker:
        stack.realtime.control.freeze_all(True)
        conn_a = await asyncpg.connect(stack.database_url)
        conn_b = await asyncpg.connect(stack.database_url)
        try:
            tx_a, tx_b = conn_a.transaction(), conn_b.transaction()
            await tx_a.start()
            await tx_b.start()
            id_a = await _insert(conn_a, org.org_id)
            id_b = await _insert(conn_b, org.org_id)
            await tx_b.commit()
            await eventually(
                lambda: id_b in recorder.ids(), timeout_s=15, message="the higher id handled"
            )
            after_b = passes(worker)
            await eventually(
                lambda: passes(worker) >= after_b + 1, timeout_s=15, message="one more pass"
            )
            await tx_a.commit()
        finally:
            await conn_a.close()
            await conn_b.close()
        assert id_a < id_b
        await eventually(
            lambda: id_a in recorder.ids(), timeout_s=15, message="the lower id handled"
        )
        stack.realtime.control.freeze_all(False)
    assert sorted(recorder.ids()) == [id_a, id_b]


async def _insert(conn: asyncpg.Connection, org_id: str) -> int:
    value: int = await conn.fetchval(
        "insert into org_events (org_id, topic, event, payload) "
        "values ($1, 'events', 'task.created', $2) returning id",
        org_id,
        json.dumps({"writer": True}),
    )
    return value


async def test_a_flood_beyond_the_queue_is_dropped_live_then_caught_up_in_bounded_memory(
    stack: Stack,
) -> None:
    org = provision(stack, "Acme")
    recorder = Recorder(TOPICS, delay_s=0.01)
    env = {"WORKER_QUEUE_SIZE": "5", "WORKER_CONCURRENCY": "1"}
    async with run_worker(stack, org, recorder.registry, **(FAST | env)) as worker:
        registry = worker.metrics_registry
        assert worker.dispatcher is not None
        dispatcher = worker.dispatcher
        depths: list[int] = []

        async def watch_depth() -> None:
            while True:
                depths.append(dispatcher.statistics().queued)
                await anyio.sleep(0.01)  # sampling interval

        async with anyio.create_task_group() as tg:
            tg.start_soon(watch_depth)
            inserted = await insert_burst(stack.database_url, org.org_id, 300)
            await eventually(
                lambda: sample(registry, "events_received_total", topic="events") >= 300,
                timeout_s=10,
                message="the listener took every live frame",
            )
            handled_then = len(recorder.ids())
            await eventually(
                lambda: set(recorder.ids()) >= set(inserted), timeout_s=60, message="all handled"
            )
            tg.cancel_scope.cancel()
        assert sample(registry, "events_dropped_live_total") > 0
        assert sample(registry, "events_caught_up_total") > 0
        assert sample(registry, "realtime_reconnects_total", reason="closed") == 0
    # A listener that waited for room could be at most queue + in-flight frames ahead of the
    # handlers; it ran further ahead, so it never waited for them.
    assert 300 - handled_then > 5 + 1
    assert max(depths) <= 5
    assert sorted(recorder.ids()) == sorted(inserted)


@pytest.mark.timeout(180)
async def test_events_missed_during_a_clerk_outage_past_token_expiry_are_handled(
    stack: Stack,
) -> None:
    org = provision(stack, "Acme")
    recorder = Recorder(TOPICS)
    async with run_worker(stack, org, recorder.registry, **FAST) as worker:
        assert worker.tokens is not None
        assert worker.supervisor is not None
        tokens, supervisor = worker.tokens, worker.supervisor
        registry = worker.metrics_registry
        stack.clerk.fail_next_tokens(10_000, 503)
        await eventually(
            lambda: tokens.state == "expired", timeout_s=15, message="the token expired"
        )
        await eventually(
            lambda: all(c.state != "joined" for c in supervisor.statistics().channels),
            timeout_s=15,
            message="the server closed the channels",
        )
        early = await insert_across_topics(stack, org, 2)  # no live path any more
        # The data API allows 30 s of clock skew past exp; then catch-up is refused too.
        await eventually(
            lambda: sample(registry, "outbox_failures_total", operation="catchup") >= 1,
            timeout_s=60,
            message="catch-up refused on the expired token",
        )
        late = await insert_across_topics(stack, org, 2)  # neither path works now
        stack.clerk.clear_faults()
        inserted = early + late
        await eventually(
            lambda: set(recorder.ids()) >= set(inserted), timeout_s=60, message="all handled"
        )
        assert sample(registry, "events_caught_up_total") >= len(inserted)
    assert sorted(recorder.ids()) == sorted(inserted)
