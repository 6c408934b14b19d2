"""Delivery under faults: the data API down or hanging during catch-up and checkpointing,
the checkpoint saved at SIGTERM, a SIGKILL mid-burst, and duplicate ids on the live path.

Every test counts events by outbox id: what was inserted around the fault, what the
handlers saw, and what the saved checkpoint (``worker_checkpoints``, read as superuser)
covers.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import asyncpg
import pytest

from devstack.realtime.control import Control
from devstack.rest import DataApi
from devstack.stack import Stack
from tests.e2e.conftest import (
    Org,
    Recorder,
    insert_burst,
    insert_events,
    provision,
    run_worker,
    worker_env,
)
from tests.faults.recording_handlers import read_record
from tests.faults.support import WorkerProcess, metric, org_subs, readyz
from worker import Context, Event
from worker.app import Worker
from worker.testing import eventually

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(90)]

FAST = {
    "WORKER_TOPICS": "events",
    "WORKER_SETTLE_SECONDS": "1",
    "WORKER_CATCHUP_INTERVAL_SECONDS": "1",
    "WORKER_CHECKPOINT_INTERVAL_SECONDS": "1",
}
FOREVER = 1_000_000  # requests: the data API stays down until clear_faults()

Checkpoint = tuple[int, tuple[int, ...]]


# -- helpers ------------------------------------------------------------------------------


def data_api(stack: Stack) -> DataApi:
    assert stack.data_api is not None
    return stack.data_api


def realtime(stack: Stack) -> Control:
    assert stack.realtime is not None
    return stack.realtime.control


async def saved_checkpoint(stack: Stack, org: Org) -> Checkpoint | None:
    """The org's ``default`` consumer row, read as superuser (None: never saved)."""
    conn = await asyncpg.connect(stack.database_url)
    try:
        row = await conn.fetchrow(
            "select last_event_id, handled_above from worker_checkpoints "
            "where org_id = $1 and consumer = 'default'",
            org.org_id,
        )
    finally:
        await conn.close()
    return None if row is None else (row["last_event_id"], tuple(row["handled_above"]))


def covers(checkpoint: Checkpoint | None, event_id: int) -> bool:
    """Whether a restart from ``checkpoint`` would skip ``event_id``."""
    if checkpoint is None:
        return False
    low, above = checkpoint
    return event_id <= low or event_id in above


def anchored(worker: Worker) -> bool:
    """The worker's catch-up has loaded the saved checkpoint."""
    assert worker.delivery is not None
    return worker.delivery.ledger.progress.anchored


def passes(worker: Worker) -> int:
    assert worker.delivery is not None
    return worker.delivery.catchup.statistics().passes


@asynccontextmanager
async def checkpoint_history(stack: Stack, org: Org) -> AsyncIterator[list[Checkpoint | None]]:
    """Samples of the saved checkpoint every 0.1 s while the block runs."""
    samples: list[Checkpoint | None] = []

    async def sample() -> None:
        while True:
            samples.append(await saved_checkpoint(stack, org))
            await anyio.sleep(0.1)  # the sampling interval, not a wait for a result

    async with anyio.create_task_group() as tg:
        tg.start_soon(sample)
        yield samples
        tg.cancel_scope.cancel()


def assert_never_lost_nor_moved_back(samples: list[Checkpoint | None]) -> None:
    first_saved = next(i for i, s in enumerate(samples) if s is not None)
    later = samples[first_saved:]
    assert None not in later, "the saved checkpoint disappeared"
    lows = [s[0] for s in later if s is not None]
    assert lows == sorted(lows), f"the checkpoint moved backwards: {lows}"


# -- the data API down or hanging -----------------------------------------------------------


async def test_live_events_are_handled_while_the_data_api_is_down_and_failures_are_counted(
    stack: Stack,
) -> None:
    org = provision(stack, "Acme")
    recorder = Recorder()
    async with run_worker(stack, org, recorder.registry, **FAST) as worker:
        await eventually(lambda: anchored(worker), timeout_s=10, message="checkpoint loaded")
        catchup_failures = metric(worker, "outbox_failures_total", operation="catchup")
        data_api(stack).fail_next(FOREVER, 503)
        inserted = await insert_events(stack.database_url, org.org_id, 5)
        await eventually(
            recorder.handled(inserted), timeout_s=10, message="handled live without the data API"
        )
        await eventually(
            lambda: catchup_failures() >= 2, timeout_s=15, message="catch-up failures counted"
        )
        assert await readyz(worker) == 200  # the live path works: readiness stays true
        assert metric(worker, "events_caught_up_total")() == 0  # all came live
        data_api(stack).clear_faults()
    assert sorted(recorder.ids()) == sorted(inserted)


async def test_failing_checkpoint_saves_are_counted_keep_the_old_checkpoint_and_catch_up_after(
    stack: Stack,
) -> None:
    org = provision(stack, "Acme")
    recorder = Recorder()
    async with run_worker(stack, org, recorder.registry, **FAST) as worker:
        before = await insert_events(stack.database_url, org.org_id, 2)

        async def saved_low_reaches(event_id: int) -> bool:
            checkpoint = await saved_checkpoint(stack, org)
            return checkpoint is not None and checkpoint[0] >= event_id

        await eventually(
            lambda: saved_low_reaches(max(before)),
            timeout_s=15,
            message="the first events checkpointed",
            poll_s=0.1,
        )
        save_failures = metric(worker, "outbox_failures_total", operation="save")
        async with checkpoint_history(stack, org) as samples:
            data_api(stack).fail_next(FOREVER, 503, target="rpc/save_worker_checkpoint")
            during = await insert_events(stack.database_url, org.org_id, 3)
            await eventually(recorder.handled(during), timeout_s=10, message="handled live")
            await eventually(
                lambda: save_failures() >= 2, timeout_s=15, message="failed saves counted"
            )
            held = await saved_checkpoint(stack, org)
            assert held is not None
            assert held[0] >= max(before)  # the saved checkpoint is still there
            assert not any(covers(held, i) for i in during)  # no save got through
            assert metric(worker, "outbox_failures_total", operation="catchup")() == 0
            data_api(stack).clear_faults()
            await eventually(
                lambda: saved_low_reaches(max(during)),
                timeout_s=15,
                message="the checkpoint caught up",
                poll_s=0.1,
            )
        assert_never_lost_nor_moved_back(samples)
    assert sorted(recorder.ids()) == sorted(before + during)


async def test_after_a_data_api_outage_with_realtime_also_down_missed_events_are_handled_once(
    stack: Stack,
) -> None:
    org = provision(stack, "Acme")
    recorder = Recorder()
    async with run_worker(stack, org, recorder.registry, **FAST) as worker:
        before = await insert_events(stack.database_url, org.org_id, 3)
        await eventually(recorder.handled(before), timeout_s=10, message="handled live")

        async def saved_low_reaches(event_id: int) -> bool:
            checkpoint = await saved_checkpoint(stack, org)
            return checkpoint is not None and checkpoint[0] >= event_id

        await eventually(
            lambda: saved_low_reaches(max(before)),
            timeout_s=15,
            message="checkpoint saved",
            poll_s=0.1,
        )
        catchup_failures = metric(worker, "outbox_failures_total", operation="catchup")
        async with checkpoint_history(stack, org) as samples:
            data_api(stack).fail_next(FOREVER, 503)
            realtime(stack).freeze_all(True)  # broadcasts dropped: neither path delivers
            during = await insert_events(stack.database_url, org.org_id, 4)
            await eventually(
                lambda: catchup_failures() >= 2, timeout_s=15, message="catch-up failing"
            )
            assert not set(during) & set(recorder.ids())  # the outage was real
            data_api(stack).clear_faults()
            realtime(stack).freeze_all(False)
            await eventually(
                recorder.handled(during), timeout_s=30, message="caught up after recovery"
            )
            await eventually(
                lambda: saved_low_reaches(max(during)),
                timeout_s=15,
                message="checkpoint caught up",
                poll_s=0.1,
            )
        assert_never_lost_nor_moved_back(samples)
        assert metric(worker, "events_caught_up_total")() >= len(during)
    assert sorted(recorder.ids()) == sorted(before + during)  # each exactly once


async def test_a_data_api_call_hanging_past_the_client_timeout_is_counted_then_caught_up(
    stack: Stack,
) -> None:
    org = provision(stack, "Acme")
    recorder = Recorder()
    api = data_api(stack)
    # Heartbeats slower than the test: the frozen socket is not rebuilt meanwhile.
    async with run_worker(
        stack, org, recorder.registry, REALTIME_HEARTBEAT_SECONDS="60", **FAST
    ) as worker:
        await eventually(lambda: anchored(worker), timeout_s=10, message="checkpoint loaded")
        catchup_failures = metric(worker, "outbox_failures_total", operation="catchup")
        realtime(stack).freeze_all(True)  # only catch-up can deliver
        api.hang_next(1, 60, target="rpc/outbox_position")
        inserted = await insert_events(stack.database_url, org.org_id, 3)
        await eventually(
            lambda: api.faults.played == 1, timeout_s=5, message="a catch-up pass is held"
        )
        # The data client gives up after 10 s; the pass is retried with backoff.
        await eventually(
            lambda: catchup_failures() >= 1, timeout_s=20, message="the timeout is counted"
        )
        await eventually(
            recorder.handled(inserted), timeout_s=10, message="caught up after the hang"
        )
        realtime(stack).freeze_all(False)
    assert sorted(recorder.ids()) == sorted(inserted)


# -- shutdown and kill (``python -m worker run``) -------------------------------------------


def recording_env(stack: Stack, org: Org, record: Path, **overrides: str) -> dict[str, str]:
    return worker_env(
        stack,
        org,
        WORKER_HANDLERS="tests.faults.recording_handlers",
        RECORD_FILE=str(record),
        **(FAST | overrides),
    )


@asynccontextmanager
async def worker_process(
    stack: Stack, org: Org, env: dict[str, str]
) -> AsyncIterator[WorkerProcess]:
    """``python -m worker run``, started and joined; SIGTERMed at once if the block fails
    (otherwise leaving waits for the process to exit by itself)."""
    worker = WorkerProcess(env)
    async with worker.run():
        try:
            await eventually(
                lambda: worker.http_port is not None, timeout_s=30, message="the worker started"
            )
            await eventually(
                lambda: org_subs(stack, org.org_id) != [], timeout_s=20, message="joined"
            )
            yield worker
        except BaseException:
            with contextlib.suppress(ProcessLookupError):
                worker.terminate()
            raise


async def test_sigterm_saves_a_checkpoint_covering_handled_events_and_a_new_worker_skips_them(
    stack: Stack, tmp_path: Path
) -> None:
    org = provision(stack, "Acme")
    record = tmp_path / "first.log"
    # No periodic save and a long settle window: only the save at shutdown can write the
    # checkpoint, and the handled ids are above its low-water mark (in handled_above).
    env = recording_env(
        stack,
        org,
        record,
        WORKER_CHECKPOINT_INTERVAL_SECONDS="3600",
        WORKER_SETTLE_SECONDS="30",
    )
    async with worker_process(stack, org, env) as first:
        inserted = await insert_events(stack.database_url, org.org_id, 10)
        await eventually(
            lambda: set(read_record(record).done) >= set(inserted), timeout_s=20, message="handled"
        )
        assert await saved_checkpoint(stack, org) is None  # nothing saved before the signal
        first.terminate()
    assert first.returncode == 0, first.text()[-3000:]
    saved = await saved_checkpoint(stack, org)
    assert saved is not None, "no checkpoint saved at shutdown"
    assert all(covers(saved, i) for i in inserted), (saved, inserted)

    recorder = Recorder()
    async with run_worker(stack, org, recorder.registry, **FAST) as second:
        await eventually(lambda: passes(second) >= 1, timeout_s=15, message="a full catch-up pass")
        marker = await insert_events(stack.database_url, org.org_id, 1)
        await eventually(recorder.handled(marker), timeout_s=10, message="a new event handled")
    assert recorder.ids() == marker  # none of the first worker's events again


async def test_sigkill_mid_burst_loses_nothing_and_repeats_keep_their_idempotency_key(
    stack: Stack, tmp_path: Path
) -> None:
    org = provision(stack, "Acme")
    first_log, second_log = tmp_path / "first.log", tmp_path / "second.log"
    slow = {"RECORD_DELAY_SECONDS": "0.2", "WORKER_CONCURRENCY": "2"}  # 50 events: ~5 s

    async def checkpoint_saved_mid_burst() -> bool:
        saved = await saved_checkpoint(stack, org)
        return saved is not None and any(covers(saved, i) for i in inserted)

    async with worker_process(stack, org, recording_env(stack, org, first_log, **slow)) as first:
        inserted = await insert_burst(stack.database_url, org.org_id, 50)
        await eventually(
            lambda: len(read_record(first_log).done) >= 10, timeout_s=20, message="mid-burst"
        )
        await eventually(
            checkpoint_saved_mid_burst,
            timeout_s=10,
            message="a checkpoint saved during the burst",
            poll_s=0.1,
        )
        assert first.process is not None
        first.process.kill()
    at_kill = read_record(first_log)
    saved_at_kill = await saved_checkpoint(stack, org)
    assert len(set(at_kill.done)) < len(inserted), "the kill came after the burst"

    env = recording_env(stack, org, second_log, **slow)
    async with worker_process(stack, org, env) as second:
        await eventually(
            lambda: set(inserted) <= set(at_kill.done) | set(read_record(second_log).done),
            timeout_s=30,
            message="every event handled by one worker or the other",
        )
        second.terminate()
    assert second.returncode == 0, second.text()[-3000:]
    after = read_record(second_log)
    assert len(after.done) == len(set(after.done))  # once per worker lifetime
    assert not [i for i in after.done if covers(saved_at_kill, i)]  # the checkpoint held
    repeated = set(at_kill.done) & set(after.done)
    assert all(after.keys[i] == at_kill.keys[i] for i in repeated)
    in_flight = set(at_kill.started) - set(at_kill.done)
    assert in_flight <= set(after.done)  # cut-off handlers ran again


# -- duplicates on the live path ------------------------------------------------------------


class HeldRecorder(Recorder):
    """Records each event when its handler starts, then holds it until ``release``."""

    def __init__(self) -> None:
        super().__init__()
        self.release = anyio.Event()
        self.released: list[int] = []

    async def handle(self, event: Event, ctx: Context) -> None:
        await super().handle(event, ctx)
        await self.release.wait()
        if event.event_id is not None:
            self.released.append(event.event_id)


async def outbox_broadcast_payload(stack: Stack, event_id: int) -> dict[str, object]:
    """The payload the outbox trigger broadcast for ``event_id`` (as in the migration)."""
    conn = await asyncpg.connect(stack.database_url)
    try:
        text = await conn.fetchval(
            "select jsonb_build_object('id', id, 'org_id', org_id, 'topic', topic, "
            "'event', event, 'payload', payload, 'created_at', created_at)::text "
            "from org_events where id = $1",
            event_id,
        )
    finally:
        await conn.close()
    payload: dict[str, object] = json.loads(text)
    return payload


async def test_an_outbox_event_broadcast_again_live_is_handled_once_and_counted(
    stack: Stack,
) -> None:
    org = provision(stack, "Acme")
    recorder = HeldRecorder()
    async with run_worker(stack, org, recorder.registry, **FAST) as worker:
        await eventually(lambda: anchored(worker), timeout_s=10, message="checkpoint loaded")
        # Catch-up cannot deliver anything: every copy below comes on the live path.
        data_api(stack).fail_next(FOREVER, 503, target="rpc/org_events_after")
        deduplicated = metric(worker, "events_deduplicated_total")
        received = metric(worker, "events_received_total", topic="events")
        (event_id,) = await insert_events(stack.database_url, org.org_id, 1)
        await eventually(
            lambda: recorder.ids() == [event_id], timeout_s=10, message="the original in flight"
        )
        copy = await outbox_broadcast_payload(stack, event_id)
        sub = f"org:{org.org_id}:events"

        realtime(stack).broadcast(sub, "task.created", copy)  # while the original runs
        await eventually(
            lambda: deduplicated() == 1, timeout_s=10, message="the in-flight copy deduplicated"
        )
        recorder.release.set()
        await eventually(
            lambda: recorder.released == [event_id], timeout_s=10, message="the original done"
        )
        realtime(stack).broadcast(sub, "task.created", copy)  # after it finished
        await eventually(
            lambda: deduplicated() == 2, timeout_s=10, message="the late copy deduplicated"
        )

        marker = await insert_events(stack.database_url, org.org_id, 1)  # after the copies
        await eventually(recorder.handled(marker), timeout_s=10, message="the next event handled")
        assert received() == 4
        data_api(stack).clear_faults()
    assert recorder.ids() == [event_id, *marker]
