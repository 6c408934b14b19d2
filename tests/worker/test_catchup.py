"""Catch-up, the live gate, checkpoints and their triggers, with fakes at the seams."""

from __future__ import annotations

import datetime as dt
import json
import logging
import random
from collections.abc import Mapping
from typing import Any

import anyio
import httpx
import pytest

from tests.worker.rt_fakes import FakeLink, FakeTokens, MetricsProbe
from worker.context import Context, EventLogger, make_data_client
from worker.delivery import Checkpointer, OutboxStore
from worker.delivery.catchup import CatchUp, fingerprint_of, finisher
from worker.delivery.ledger import Checkpoint, Ledger, Position
from worker.delivery.service import confirm_live
from worker.dispatch import Dispatcher, Outcome
from worker.errors import ConfigError, DataApiError
from worker.events import Event, parse_broadcast
from worker.realtime.intake import Intake
from worker.realtime.supervisor import Supervisor
from worker.registry import HandlerRegistry
from worker.settings import Settings
from worker.testing import FakeClock, eventually

pytestmark = pytest.mark.anyio

ORG = "org_2abc"
T0 = 1_800_000_000.0  # the database clock in these tests (seconds)
NO_CHECKPOINT = Checkpoint(0)


def iso(seconds: float) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.UTC).isoformat()


def row(event_id: int, created: float = T0, topic: str = "events") -> dict[str, Any]:
    return {
        "id": event_id,
        "org_id": ORG,
        "topic": topic,
        "event": "thing.done",
        "payload": {"n": event_id},
        "created_at": iso(created),
    }


class FakeOutbox:
    """The data API seam: rows the test makes visible, a clock it sets, faults it injects."""

    def __init__(self, saved: Checkpoint = NO_CHECKPOINT) -> None:
        self.rows: dict[int, dict[str, Any]] = {}
        self.db_now = T0 + 100
        self.saved = saved
        self.saves: list[Checkpoint] = []
        self.pages: list[tuple[int, int]] = []
        self.fail_next = 0

    def commit(self, *rows: dict[str, Any]) -> None:
        for r in rows:
            self.rows[r["id"]] = r

    def _maybe_fail(self) -> None:
        if self.fail_next:
            self.fail_next -= 1
            raise DataApiError("the data API is down")

    async def load(self) -> Checkpoint:
        self._maybe_fail()
        return self.saved

    async def save(self, checkpoint: Checkpoint) -> None:
        self._maybe_fail()
        self.saves.append(checkpoint)

    async def position(self) -> Position:
        self._maybe_fail()
        return Position(max(self.rows, default=0), self.db_now)

    async def page(self, after_id: int, limit: int) -> list[Mapping[str, Any]]:
        self._maybe_fail()
        self.pages.append((after_id, limit))
        return [self.rows[i] for i in sorted(self.rows) if i > after_id][:limit]


class Queue:
    """The dispatcher seam: ``put`` records (or refuses, once stopped)."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.stopped = False

    async def put(self, event: Event) -> bool:
        if self.stopped:
            return False
        self.events.append(event)
        return True

    def ids(self) -> list[int | None]:
        return [e.event_id for e in self.events]


class Rig:
    def __init__(self, saved: Checkpoint = NO_CHECKPOINT, page_size: int = 500) -> None:
        self.outbox = FakeOutbox(saved)
        self.queue = Queue()
        self.ledger = Ledger(settle_s=10.0)
        self.clock = FakeClock()
        self.probe = MetricsProbe()
        self.catchup = CatchUp(
            outbox=self.outbox,
            ledger=self.ledger,
            put=self.queue.put,
            org_id=ORG,
            topics=["events"],
            clock=self.clock,
            interval_s=30.0,
            page_size=page_size,
            metrics=self.probe.metrics,
            rng=random.Random(1),
        )
        self.done = finisher(self.ledger)

    async def anchored_pass(self) -> None:
        self.ledger.progress.anchor(await self.outbox.load())
        await self.catchup.catch_up()

    def handle_all(self) -> None:
        for event in self.queue.events:
            self.done(event, Outcome.SUCCESS)


# -- a pass -------------------------------------------------------------------------------


async def test_a_pass_puts_missed_events_in_outbox_order_and_counts_them() -> None:
    rig = Rig()
    rig.outbox.commit(row(3), row(1), row(2))
    await rig.anchored_pass()
    assert rig.queue.ids() == [1, 2, 3]
    assert rig.probe.value("events_caught_up_total") == 3
    assert all(e.idempotency_key == f"{ORG}:events:{e.event_id}" for e in rig.queue.events)


async def test_a_pass_skips_ids_the_live_path_already_dispatched() -> None:
    rig = Rig()
    rig.outbox.commit(row(1), row(2))
    rig.ledger.dispatched(2, T0)
    await rig.anchored_pass()
    assert rig.queue.ids() == [1]


async def test_a_pass_reads_page_by_page_up_to_the_head() -> None:
    rig = Rig(page_size=2)
    rig.outbox.commit(*(row(i) for i in range(1, 6)))
    await rig.anchored_pass()
    assert rig.outbox.pages == [(0, 2), (2, 2), (4, 2)]
    assert rig.queue.ids() == [1, 2, 3, 4, 5]


async def test_a_pass_reads_from_the_checkpoint_then_only_past_the_covered_mark() -> None:
    rig = Rig(saved=Checkpoint(40))
    rig.outbox.commit(row(41), row(42))  # created 100 s before db_now: settled
    await rig.anchored_pass()
    rig.handle_all()
    rig.outbox.commit(row(43, created=T0 + 99))
    await rig.catchup.catch_up()
    assert [after for after, _ in rig.outbox.pages] == [40, 42]
    assert rig.queue.ids() == [41, 42, 43]
    assert rig.ledger.progress.low_water == 42


async def test_an_id_committed_after_a_higher_one_is_found_by_the_next_pass() -> None:
    rig = Rig(saved=Checkpoint(10))
    rig.outbox.db_now = T0 + 5  # id 12 was allocated 5 s ago: not settled yet
    rig.outbox.commit(row(12, created=T0))
    await rig.anchored_pass()
    rig.handle_all()
    rig.outbox.commit(row(11, created=T0 - 0.1))  # its transaction commits only now
    rig.outbox.db_now = T0 + 20
    await rig.catchup.catch_up()
    assert rig.queue.ids() == [12, 11]
    rig.handle_all()
    assert rig.ledger.progress.low_water == 12


async def test_ids_handled_before_a_restart_are_not_put_again() -> None:
    rig = Rig(saved=Checkpoint(10, (12,)))
    rig.outbox.commit(row(11), row(12), row(13))
    await rig.anchored_pass()
    assert rig.queue.ids() == [11, 13]


async def test_a_pass_interrupted_by_shutdown_claims_no_coverage() -> None:
    rig = Rig()
    rig.outbox.commit(row(1), row(2))
    rig.queue.stopped = True
    await rig.anchored_pass()
    assert rig.ledger.progress.scan_from == 0
    assert rig.ledger.progress.statistics().horizon is None


async def test_a_row_that_cannot_become_an_event_is_dead_lettered_and_passed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    rig = Rig()
    bad = row(1) | {"payload": ["not", "an", "object"]}
    rig.outbox.commit(bad, row(2))
    with caplog.at_level(logging.ERROR, "worker.delivery"):
        await rig.anchored_pass()
    rig.handle_all()
    await rig.catchup.catch_up()
    assert rig.queue.ids() == [2]
    assert rig.ledger.progress.low_water == 2
    assert "event dead-lettered" in caplog.text


@pytest.mark.parametrize(
    ("outcome", "finished"),
    [
        (Outcome.SUCCESS, True),
        (Outcome.DEAD_LETTER, True),
        (Outcome.IGNORED, True),
        (Outcome.CANCELLED, False),
        (Outcome.ABANDONED, False),
    ],
)
async def test_only_handled_dead_lettered_or_ignored_ids_finish(
    outcome: Outcome, finished: bool
) -> None:
    rig = Rig()
    rig.outbox.commit(row(1))
    await rig.anchored_pass()
    rig.done(rig.queue.events[0], outcome)
    await rig.catchup.catch_up()
    assert rig.ledger.progress.low_water == (1 if finished else 0)


# -- the loop -----------------------------------------------------------------------------


async def test_a_failing_data_api_is_retried_with_backoff_and_counted() -> None:
    rig = Rig()
    rig.outbox.commit(row(1))
    rig.outbox.fail_next = 3
    async with anyio.create_task_group() as tg:
        await tg.start(rig.catchup.run)
        while not rig.queue.events:
            await rig.clock.wait_sleeping()
            rig.clock.advance(rig.clock.next_wake_in())
        tg.cancel_scope.cancel()
    assert rig.queue.ids() == [1]
    assert rig.probe.value("outbox_failures_total", operation="load") == 3
    assert rig.catchup.statistics().failures == 3


async def test_a_request_starts_a_pass_before_the_interval() -> None:
    rig = Rig()
    async with anyio.create_task_group() as tg:
        await tg.start(rig.catchup.run)
        await rig.clock.wait_sleeping()  # the first pass is done
        rig.outbox.commit(row(1))
        rig.clock.advance(1.0)  # the minimum gap between passes, far below the interval
        rig.catchup.request()
        await eventually(lambda: rig.queue.ids() == [1], timeout_s=5)
        tg.cancel_scope.cancel()
    assert rig.catchup.statistics().passes == 2


# -- the live path ------------------------------------------------------------------------


def frame(event_id: int) -> dict[str, Any]:
    return {"event": "thing.done", "payload": row(event_id)}


class LiveRig:
    def __init__(self, room: int) -> None:
        self.rig = Rig()
        self.room = room
        self.offered: list[int | None] = []
        self.intake = Intake(
            org_id=ORG,
            topics=["events"],
            offer=self.offer,
            clock=self.rig.clock,
            metrics=self.rig.probe.metrics,
            gate=self.rig.catchup,
        )

    def offer(self, event: Event) -> bool:
        if len(self.offered) >= self.room:
            return False
        self.offered.append(event.event_id)
        return True


async def test_a_live_duplicate_is_counted_and_not_offered() -> None:
    live = LiveRig(room=10)
    live.intake(f"realtime:org:{ORG}:events", frame(1))
    live.intake(f"realtime:org:{ORG}:events", frame(1))
    assert live.offered == [1]
    assert live.rig.probe.value("events_deduplicated_total") == 1


async def test_a_live_event_refused_by_a_full_queue_is_counted_and_caught_up() -> None:
    live = LiveRig(room=0)
    live.intake(f"realtime:org:{ORG}:events", frame(1))
    assert live.rig.probe.value("events_dropped_live_total") == 1
    assert not live.rig.ledger.is_duplicate(1)
    live.rig.outbox.commit(row(1))
    await live.rig.anchored_pass()
    assert live.rig.queue.ids() == [1]


async def test_a_dropped_live_event_requests_a_pass() -> None:
    live = LiveRig(room=0)
    async with anyio.create_task_group() as tg:
        await tg.start(live.rig.catchup.run)
        await live.rig.clock.wait_sleeping()
        live.rig.outbox.commit(row(1))
        live.intake(f"realtime:org:{ORG}:events", frame(1))
        live.rig.clock.advance(1.0)
        await eventually(lambda: live.rig.queue.ids() == [1], timeout_s=5)
        tg.cancel_scope.cancel()


# -- the dispatcher's put -------------------------------------------------------------------


def forged(event_id: int, created: float) -> dict[str, Any]:
    return {"event": "thing.done", "payload": row(event_id, created)}


def live_event(live: LiveRig, message: dict[str, Any]) -> Event:
    return parse_broadcast(ORG, f"org:{ORG}:events", message, topics=["events"])


async def test_a_forged_live_frame_is_handled_but_never_moves_the_checkpoint() -> None:
    # What an org admin can broadcast: an outbox-shaped payload, id 10**12, created long ago.
    live = LiveRig(room=10)
    live.rig.ledger.progress.anchor(NO_CHECKPOINT)
    live.intake(f"realtime:org:{ORG}:events", forged(10**12, T0 - 86_400))
    assert live.offered == [10**12]
    live.rig.done(live_event(live, forged(10**12, T0 - 86_400)), Outcome.SUCCESS)
    live.rig.outbox.commit(row(1), row(2))
    await live.rig.catchup.catch_up()
    assert live.rig.queue.ids() == [1, 2]
    live.rig.handle_all()
    live.rig.outbox.db_now = T0 + 100
    await live.rig.catchup.catch_up()
    assert live.rig.ledger.progress.checkpoint() == Checkpoint(2, ())
    live.intake(f"realtime:org:{ORG}:events", forged(10**12, T0 - 86_400))
    assert live.offered == [10**12]  # a second copy is still deduplicated


async def test_a_live_event_counts_for_the_checkpoint_once_a_pass_reads_it() -> None:
    live = LiveRig(room=10)
    live.rig.ledger.progress.anchor(NO_CHECKPOINT)
    live.intake(f"realtime:org:{ORG}:events", frame(1))
    live.rig.done(live_event(live, frame(1)), Outcome.SUCCESS)
    assert live.rig.ledger.progress.checkpoint() == Checkpoint(0, ())
    live.rig.outbox.commit(row(1))
    await live.rig.catchup.catch_up()
    assert live.rig.queue.ids() == []  # not put again
    assert live.rig.ledger.progress.checkpoint() == Checkpoint(1, ())


async def test_put_waits_for_room_where_offer_refuses() -> None:
    release = anyio.Event()
    registry = HandlerRegistry()

    async def slow(event: Event, ctx: Context) -> None:
        await release.wait()

    registry.add("events", "*", slow)

    def context(event: Event, attempt: int) -> Context:
        log = EventLogger(logging.getLogger("test"), {})
        return Context(ORG, event, log, None, None, attempt)

    dispatcher = Dispatcher(
        registry=registry, context_factory=context, clock=FakeClock(), concurrency=1, queue_size=1
    )
    events = [parse_broadcast(ORG, f"org:{ORG}:events", frame(i)) for i in (1, 2, 3)]
    put_done = anyio.Event()
    async with anyio.create_task_group() as tg:
        await tg.start(dispatcher.run)
        assert dispatcher.offer(events[0])
        await eventually(lambda: dispatcher.statistics().in_flight == 1)
        assert dispatcher.offer(events[1])
        assert not dispatcher.offer(events[2])

        async def put_third() -> None:
            assert await dispatcher.put(events[2])
            put_done.set()

        tg.start_soon(put_third)
        await anyio.wait_all_tasks_blocked()
        assert not put_done.is_set()
        release.set()
        await eventually(put_done.is_set)
        await dispatcher.drain(5)
    assert not await dispatcher.put(events[0])


# -- checkpoints ----------------------------------------------------------------------------


async def test_the_checkpoint_is_saved_only_when_it_moved() -> None:
    rig = Rig()
    saver = Checkpointer(
        outbox=rig.outbox, ledger=rig.ledger, clock=rig.clock, metrics=rig.probe.metrics
    )
    rig.outbox.commit(row(1), row(2))
    await rig.anchored_pass()
    rig.handle_all()
    await rig.catchup.catch_up()
    assert await saver.save()
    assert await saver.save()
    assert rig.outbox.saves == [Checkpoint(2)]
    assert rig.probe.value("checkpoint_event_id") == 2
    assert rig.probe.value("outbox_lag_events") == 0


async def test_a_failed_checkpoint_save_is_counted_and_retried() -> None:
    rig = Rig()
    saver = Checkpointer(
        outbox=rig.outbox, ledger=rig.ledger, clock=rig.clock, metrics=rig.probe.metrics
    )
    rig.outbox.commit(row(1))
    await rig.anchored_pass()
    rig.handle_all()
    rig.outbox.fail_next = 1
    assert not await saver.save()
    assert await saver.save()
    assert rig.outbox.saves == [Checkpoint(1)]
    assert saver.failures == 1
    assert rig.probe.value("outbox_failures_total", operation="save") == 1


async def test_nothing_is_saved_before_the_checkpoint_was_loaded() -> None:
    rig = Rig()
    saver = Checkpointer(outbox=rig.outbox, ledger=rig.ledger, clock=rig.clock)
    rig.ledger.dispatched(5, T0)
    rig.ledger.finished(5)
    assert await saver.save()
    assert rig.outbox.saves == []


# -- the supervisor's on_joined trigger -----------------------------------------------------


async def test_the_supervisor_announces_first_joins_and_rejoins_not_every_tick() -> None:
    link, joined = FakeLink(), []
    supervisor = Supervisor(
        link=link,
        org_id=ORG,
        topics=["events"],
        tokens=FakeTokens(),
        sink=lambda topic, message: None,
        clock=FakeClock(),
        on_joined=joined.append,
    )
    await supervisor.tick()
    await supervisor.tick()
    assert joined == ["events"]
    link.channels[-1].state = "errored"
    await supervisor.tick()
    link.channels[-1].state = "joined"  # the client's own rejoin
    await supervisor.tick()
    assert joined == ["events", "events"]
    link.socket_losses += 1  # lost and rejoined between two ticks
    await supervisor.tick()
    assert joined == ["events", "events", "events"]


# -- settings -------------------------------------------------------------------------------

BASE_ENV = {
    "SUPABASE_URL": "https://x.supabase.co",
    "SUPABASE_ANON_KEY": "anon",
    "ORG_ID": ORG,
    "WORKER_TOKEN_FILE": "/run/secrets/token",
    "CLERK_ISSUER": "https://clerk.example.test",
}


def test_delivery_settings_have_defaults_and_read_their_variables() -> None:
    assert Settings.from_env(BASE_ENV).settle_s == 10.0
    s = Settings.from_env(
        BASE_ENV
        | {
            "WORKER_SETTLE_SECONDS": "1",
            "WORKER_CATCHUP_INTERVAL_SECONDS": "2",
            "WORKER_CATCHUP_PAGE_SIZE": "50",
            "WORKER_CHECKPOINT_INTERVAL_SECONDS": "0.5",
        }
    )
    assert (s.settle_s, s.catchup_interval_s, s.catchup_page_size) == (1.0, 2.0, 50)
    assert s.checkpoint_interval_s == 0.5


def test_a_catchup_page_above_the_rpc_limit_is_refused() -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env(BASE_ENV | {"WORKER_CATCHUP_PAGE_SIZE": "5000"})
    assert any("WORKER_CATCHUP_PAGE_SIZE" in p for p in caught.value.problems)


# -- the data API adapter -------------------------------------------------------------------


def store(handler: Any) -> OutboxStore:
    client = make_data_client(
        "https://x.supabase.co", "anon", FakeTokens(), transport=httpx.MockTransport(handler)
    )
    return OutboxStore(client, consumer="mailer", topics=["events"])


async def test_the_store_calls_the_rpcs_with_the_consumer_and_topics() -> None:
    calls: list[tuple[str, dict[str, Any]]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append((request.url.path.rsplit("/", 1)[-1], json.loads(request.content)))
        if request.url.path.endswith("get_worker_checkpoint_state"):
            return httpx.Response(200, json=[{"last_event_id": 7, "handled_above": [9]}])
        return httpx.Response(200, json=[{"head": 12, "db_now": iso(T0)}])

    outbox = store(handler)
    assert await outbox.load() == Checkpoint(7, (9,))
    assert await outbox.position() == Position(12, T0)
    assert calls == [
        ("get_worker_checkpoint_state", {"consumer": "mailer"}),
        ("outbox_position", {"topics": ["events"]}),
    ]


@pytest.mark.parametrize(
    "answer",
    [
        httpx.Response(401, json={"code": "PGRST303", "message": "JWT expired"}),
        httpx.ConnectError("refused"),
        httpx.Response(200, json={"not": "rows"}),
    ],
)
async def test_every_store_failure_is_a_data_api_error(answer: Any) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if isinstance(answer, Exception):
            raise answer
        return answer

    with pytest.raises(DataApiError):
        await store(handler).page(0, 10)


async def test_ids_handled_live_are_confirmed_from_the_outbox_before_the_last_save() -> None:
    rig = Rig()
    rig.ledger.progress.anchor(NO_CHECKPOINT)
    for event_id in (1, 2, 10**12):  # 10**12 is not in the outbox: never confirmed
        r = row(event_id)
        rig.ledger.dispatched_live(event_id, fingerprint_of("events", r["event"], r["created_at"]))
        rig.ledger.finished(event_id)
    rig.outbox.commit(row(1), row(2), row(3))
    await confirm_live(rig.outbox, rig.ledger, page_size=2)
    assert rig.queue.ids() == []  # confirms only: 3 is read again by the next worker
    assert rig.ledger.progress.checkpoint() == Checkpoint(0, (1, 2))
    rig.outbox.fail_next = 1
    await confirm_live(rig.outbox, rig.ledger, page_size=2)  # logged, not raised


async def test_a_forged_copy_of_a_future_id_does_not_stand_in_for_the_real_row() -> None:
    # An org admin guessed the next outbox id and broadcast it first, with other content.
    live = LiveRig(room=10)
    live.rig.ledger.progress.anchor(NO_CHECKPOINT)
    fake = forged(1, T0 - 86_400)
    live.intake(f"realtime:org:{ORG}:events", fake)
    live.rig.done(live_event(live, fake), Outcome.SUCCESS)
    live.rig.outbox.commit(row(1))  # the real row: another created_at
    await live.rig.catchup.catch_up()
    assert live.rig.queue.ids() == [1]  # the real row is handled too
    live.rig.handle_all()
    await live.rig.catchup.catch_up()
    assert live.rig.ledger.progress.checkpoint() == Checkpoint(1, ())
