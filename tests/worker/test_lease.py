"""Leadership on a fake clock: when a holder leads, renews, stops, saves and releases."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx
import pytest
from anyio.abc import TaskStatus
from prometheus_client import CollectorRegistry

from tests.worker.fakes import FakeClock
from tests.worker.rt_fakes import FakeTokens
from worker.context import make_data_client
from worker.delivery import Checkpoint, OutboxStore
from worker.errors import CheckpointFenced, DataApiError, is_transient
from worker.lease import Leadership, LeaseGrant, LeaseStore, RenewResult
from worker.lease.schedule import hold_until, retry_renew_s, standby_poll_s
from worker.observe import Metrics

pytestmark = pytest.mark.anyio

TTL_S, RENEW_S = 10.0, 2.0


class FakeStore:
    """``LeaseStore``'s surface: answers from ``grants`` (an exception is raised; None hangs)."""

    holder = "me"

    def __init__(self) -> None:
        self.acquire_answers: list[Any] = []
        self.renew_answers: list[Any] = []
        self.calls: list[str] = []
        self.released: list[int] = []
        self.epoch = 0

    async def acquire(self) -> LeaseGrant:
        self.calls.append("acquire")
        return await self._answer(self.acquire_answers, LeaseGrant(False, self.epoch, "other"))

    async def renew(self, epoch: int) -> LeaseGrant:
        self.calls.append("renew")
        return await self._answer(self.renew_answers, LeaseGrant(True, epoch, "me"))

    async def release(self, epoch: int) -> bool:
        self.released.append(epoch)
        return True

    async def _answer(self, answers: list[Any], default: LeaseGrant) -> LeaseGrant:
        answer = answers.pop(0) if answers else default
        if answer is None:
            await anyio.sleep_forever()
        if isinstance(answer, Exception):
            raise answer
        assert isinstance(answer, LeaseGrant)
        return answer


class FakeTerm:
    def __init__(self, epoch: int | None) -> None:
        self.epoch = epoch
        self.frames: list[str] = []
        self.stops: list[float] = []
        self.saves = 0
        self.save_answers: list[bool] = []
        self.refused = False

    def sink(self, channel_topic: str, message: Mapping[str, Any]) -> None:
        self.frames.append(channel_topic)

    def on_joined(self, topic: str) -> None:
        pass

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        await anyio.sleep_forever()

    async def stop(self, grace_s: float) -> None:
        self.stops.append(grace_s)

    async def final_save(self) -> bool:
        self.saves += 1
        ok = self.save_answers.pop(0) if self.save_answers else True
        self.refused = not ok and not self.save_answers
        return ok


class Harness:
    def __init__(self, clock: FakeClock, store: FakeStore | None) -> None:
        self.clock = clock
        self.store = store
        self.terms: list[FakeTerm] = []
        self.metrics = Metrics(CollectorRegistry())
        self.leadership: Leadership[FakeTerm] = Leadership(
            new_term=self._term,
            store=store,  # type: ignore[arg-type]  # the fake has LeaseStore's surface
            clock=clock,
            renew_s=RENEW_S,
            ttl_s=TTL_S,
            metrics=self.metrics,
        )

    def _term(self, epoch: int | None) -> FakeTerm:
        self.terms.append(FakeTerm(epoch))
        return self.terms[-1]

    def renewals(self, result: RenewResult) -> float:
        return self.metrics.lease_renewals_total.labels(result=result)._value.get()

    async def settle(self) -> None:
        """Let every task run until all of them wait on the clock or an event."""
        for _ in range(100):
            await anyio.lowlevel.checkpoint()


@asynccontextmanager
async def running(clock: FakeClock, store: FakeStore | None) -> AsyncIterator[Harness]:
    harness = Harness(clock, store)
    async with anyio.create_task_group() as tg:
        await tg.start(harness.leadership.run)
        await harness.settle()
        yield harness
        tg.cancel_scope.cancel()


async def advance(h: Harness, seconds: float) -> None:
    h.clock.advance(seconds)
    await h.settle()


# -- the schedule (pure) ----------------------------------------------------------------------


def test_a_holder_stops_a_tenth_of_the_lifetime_before_the_lease_can_expire() -> None:
    assert hold_until(100.0, 10.0) == pytest.approx(109.0)


def test_a_standby_asks_at_least_every_second_and_a_failed_renewal_retries_at_half() -> None:
    assert standby_poll_s(5.0) == 1.0
    assert standby_poll_s(0.5) == 0.5
    assert retry_renew_s(2.0, now=100.0, deadline=109.0) == 1.0
    assert retry_renew_s(2.0, now=108.5, deadline=109.0) == 0.5


# -- leading and standing by ------------------------------------------------------------------


async def test_with_the_lease_disabled_one_term_runs_without_an_epoch(clock: FakeClock) -> None:
    async with running(clock, None) as h:
        assert [t.epoch for t in h.terms] == [None]
        h.leadership.sink("org:x:events", {})
        assert h.terms[0].frames == ["org:x:events"]
        await h.leadership.shutdown(5.0)
        assert h.terms[0].stops == [5.0]
        assert h.terms[0].saves == 1


async def test_a_standby_routes_no_frames_and_leads_once_it_takes_the_lease(
    clock: FakeClock,
) -> None:
    store = FakeStore()
    async with running(clock, store) as h:
        assert h.leadership.term is None
        h.leadership.sink("org:x:events", {})  # dropped: nobody leads here
        store.acquire_answers.append(LeaseGrant(True, 4, "me"))
        await advance(h, standby_poll_s(RENEW_S))
        assert h.leadership.term is h.terms[0]
        assert h.terms[0].epoch == 4
        h.leadership.sink("org:x:events", {})
        assert h.terms[0].frames == ["org:x:events"]
        assert h.metrics.leader._value.get() == 1
        assert h.metrics.lease_epoch._value.get() == 4


async def test_a_leader_renews_every_interval_and_keeps_leading(clock: FakeClock) -> None:
    store = FakeStore()
    store.acquire_answers.append(LeaseGrant(True, 1, "me"))
    async with running(clock, store) as h:
        for _ in range(5):
            await advance(h, RENEW_S)
        assert store.calls.count("renew") == 5
        assert h.renewals(RenewResult.RENEWED) == 5
        assert h.leadership.term is not None


async def test_a_leader_that_cannot_renew_stops_its_term_before_the_lease_can_expire(
    clock: FakeClock,
) -> None:
    store = FakeStore()
    store.acquire_answers.append(LeaseGrant(True, 1, "me"))
    async with running(clock, store) as h:
        store.renew_answers.extend([None, DataApiError("down"), None, None, None])
        term = h.terms[0]
        elapsed = 0.0
        while h.leadership.term is not None and elapsed < TTL_S:
            step = clock.next_wake_in()
            await advance(h, step)
            elapsed += step
        assert elapsed == pytest.approx(TTL_S * 0.9)  # the deadline, never later
        assert term.stops == [0.0]  # in-flight work cancelled at once
        assert h.renewals(RenewResult.FAILED) >= 2
        assert h.metrics.leader._value.get() == 0


async def test_a_lost_lease_stops_the_term_at_once_and_the_last_save_is_retried_until_refused(
    clock: FakeClock,
) -> None:
    store = FakeStore()
    store.acquire_answers.append(LeaseGrant(True, 1, "me"))
    async with running(clock, store) as h:
        term = h.terms[0]
        term.save_answers.extend([False, False])  # down, then refused
        store.renew_answers.append(LeaseGrant(False, 2, "other"))
        await advance(h, RENEW_S)
        assert h.leadership.term is None
        assert term.stops == [0.0]
        assert h.renewals(RenewResult.LOST) == 1
        await advance(h, standby_poll_s(RENEW_S))
        assert term.saves == 2
        assert term.refused
        store.acquire_answers.append(LeaseGrant(True, 3, "me"))
        await advance(h, standby_poll_s(RENEW_S))
        assert [t.epoch for t in h.terms] == [1, 3]  # a fresh term for the new epoch


async def test_shutdown_drains_saves_and_releases_while_renewals_go_on(clock: FakeClock) -> None:
    store = FakeStore()
    store.acquire_answers.append(LeaseGrant(True, 6, "me"))
    async with running(clock, store) as h:
        term = h.terms[0]
        await h.leadership.shutdown(20.0)
        await h.settle()
        assert term.stops[0] == 20.0
        assert term.saves == 1
        assert store.released == [6]
        assert h.leadership.term is None
        calls = len(store.calls)
        await advance(h, standby_poll_s(RENEW_S))
        assert len(store.calls) == calls  # a stopping worker does not take the lease again


# -- the data API adapters --------------------------------------------------------------------


def data_client(handler: Any) -> Any:
    return make_data_client(
        "https://x.supabase.co", "anon", FakeTokens(), transport=httpx.MockTransport(handler)
    )


async def test_the_lease_store_sends_consumer_holder_epoch_and_lifetime() -> None:
    calls: list[tuple[str, dict[str, Any]]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append((request.url.path.rsplit("/", 1)[-1], json.loads(request.content)))
        if request.url.path.endswith("release_worker_lease"):
            return httpx.Response(200, json=True)
        row = {"acquired": True, "lease_epoch": 3, "lease_holder": "me", "db_now": "x"}
        return httpx.Response(200, json=[row])

    lease = LeaseStore(data_client(handler), consumer="mailer", holder="me", ttl_s=15.0)
    assert await lease.acquire() == LeaseGrant(True, 3, "me")
    assert await lease.renew(3) == LeaseGrant(True, 3, "me")
    assert await lease.release(3) is True
    assert calls == [
        ("acquire_worker_lease", {"consumer": "mailer", "holder": "me", "ttl_seconds": 15.0}),
        (
            "renew_worker_lease",
            {"consumer": "mailer", "holder": "me", "epoch": 3, "ttl_seconds": 15.0},
        ),
        ("release_worker_lease", {"consumer": "mailer", "holder": "me", "epoch": 3}),
    ]


@pytest.mark.parametrize(
    "answer",
    [
        httpx.Response(403, json={"code": "42501", "message": "only workers"}),
        httpx.ConnectError("refused"),
        httpx.Response(200, json=[]),
        httpx.Response(200, json=[{"acquired": True}]),
    ],
)
async def test_every_lease_store_failure_is_a_data_api_error(answer: Any) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if isinstance(answer, Exception):
            raise answer
        return answer

    lease = LeaseStore(data_client(handler), consumer="c", holder="me", ttl_s=15.0)
    with pytest.raises(DataApiError):
        await lease.acquire()


async def test_a_save_carries_the_epoch_and_a_refusal_is_checkpoint_fenced() -> None:
    sent: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(json.loads(request.content))
        return httpx.Response(409, json={"code": "PT409", "message": "epoch 2 is not 3"})

    outbox = OutboxStore(data_client(handler), consumer="c", topics=["events"], epoch=2)
    with pytest.raises(CheckpointFenced):
        await outbox.save(Checkpoint(5))
    assert sent[0]["epoch"] == 2
    assert not is_transient(CheckpointFenced("refused"))
