"""Dispatcher: bounded intake, retries, dead letters, timeouts, drain."""

from __future__ import annotations

import logging
import random
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
import pytest

from tests.worker.rt_fakes import MetricsProbe
from worker.context import Context, EventLogger
from worker.dispatch import Dispatcher, Outcome
from worker.errors import NonRetryable, Retry
from worker.events import Event
from worker.registry import HandlerRegistry
from worker.testing import FakeClock, eventually, make_event

pytestmark = pytest.mark.anyio

ORG = "org_2abc"


def numbered(n: int, topic: str = "events", name: str = "thing.done") -> Event:
    return make_event(topic, name, {"n": n}, org_id=ORG, event_id=n)


class Harness:
    def __init__(
        self, registry: HandlerRegistry, clock: FakeClock | None = None, **kw: Any
    ) -> None:
        self.clock = clock or FakeClock(autojump=True)
        self.probe = MetricsProbe()
        self.done: list[tuple[int | None, Outcome]] = []
        self.contexts: list[Context] = []
        self.dispatcher = Dispatcher(
            registry=registry,
            context_factory=self.context,
            clock=self.clock,
            metrics=self.probe.metrics,
            on_done=self.on_done,
            rng=random.Random(1),
            **kw,
        )

    def context(self, event: Event, attempt: int) -> Context:
        log = EventLogger(logging.getLogger("test"), {"org_id": ORG})
        ctx = Context(ORG, event, log, None, None, attempt)  # type: ignore[arg-type]
        self.contexts.append(ctx)
        return ctx

    def on_done(self, event: Event, outcome: Outcome) -> None:
        self.done.append((event.event_id, outcome))

    def handled(self, topic: str, result: str) -> float:
        return self.probe.value("events_handled_total", topic=topic, result=result)


@pytest.fixture
async def running() -> AsyncIterator[Callable[..., Any]]:
    """Start dispatchers in a task group; drain them at the end of the test."""
    started: list[Harness] = []
    async with anyio.create_task_group() as tg:

        async def start(registry: HandlerRegistry, **kw: Any) -> Harness:
            harness = Harness(registry, **kw)
            await tg.start(harness.dispatcher.run)
            started.append(harness)
            return harness

        yield start
        for harness in started:
            await harness.dispatcher.drain(1.0)


async def test_events_are_handled_with_one_canonical_line(
    running: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "worker.dispatch")
    reg = HandlerRegistry()
    seen: list[int] = []

    @reg.on("events")
    async def handler(event: Event, ctx: Context) -> None:
        seen.append(event.payload["n"])

    h = await running(reg, concurrency=2)
    assert all(h.dispatcher.offer(numbered(n)) for n in range(5))
    await eventually(lambda: len(h.done) == 5)
    assert sorted(seen) == list(range(5))
    assert {o for _, o in h.done} == {Outcome.SUCCESS}
    assert h.handled("events", "success") == 5
    lines = [r for r in caplog.records if r.getMessage() == "event handled"]
    assert len(lines) == 5
    fields = vars(lines[0])
    for key in ("org_id", "topic", "event", "event_id", "duration_ms", "outcome"):
        assert key in fields
    assert fields["outcome"] == "success"


async def test_offer_never_blocks_and_counts_a_full_queue() -> None:
    h = Harness(HandlerRegistry(), queue_size=2)
    assert h.dispatcher.offer(numbered(1))
    assert h.dispatcher.offer(numbered(2))
    assert not h.dispatcher.offer(numbered(3))
    stats = h.dispatcher.statistics()
    assert (stats.queued, stats.rejected_full, stats.offered) == (2, 1, 2)
    assert h.probe.value("events_rejected_total", reason="queue_full") == 1
    assert h.probe.value("dispatch_queue_depth") == 2
    await h.dispatcher.drain(0)


async def test_retry_after_is_honoured_and_only_failed_handlers_rerun(
    running: Callable[..., Any],
) -> None:
    reg = HandlerRegistry()
    calls = {"first": 0, "second": 0}

    @reg.on("events")
    async def first(event: Event, ctx: Context) -> None:
        calls["first"] += 1

    @reg.on("events")
    async def second(event: Event, ctx: Context) -> None:
        calls["second"] += 1
        if ctx.attempt == 1:
            raise Retry("later", after_s=7.0)

    h = await running(reg)
    h.dispatcher.offer(numbered(1))
    await eventually(lambda: h.done == [(1, Outcome.SUCCESS)])
    assert calls == {"first": 1, "second": 2}
    assert 7.0 in h.clock.sleeps
    assert h.handled("events", "error") == 1
    assert h.dispatcher.statistics().retries == 1


async def test_non_retryable_dead_letters_at_once(
    running: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    reg = HandlerRegistry()
    calls: list[int] = []

    @reg.on("events", "thing.done")
    async def handler(event: Event, ctx: Context) -> None:
        calls.append(ctx.attempt)
        raise NonRetryable("bad input")

    h = await running(reg)
    h.dispatcher.offer(numbered(9))
    await eventually(lambda: h.done == [(9, Outcome.DEAD_LETTER)])
    assert calls == [1]
    assert h.handled("events", "dead_letter") == 1
    dead = [r for r in caplog.records if "dead-lettered" in r.getMessage()]
    assert len(dead) == 1
    assert "NonRetryable: bad input" in dead[0].getMessage()
    assert dead[0].levelno == logging.ERROR


async def test_exhausted_attempts_back_off_and_dead_letter(running: Callable[..., Any]) -> None:
    reg = HandlerRegistry()

    @reg.on("*")
    async def broken(event: Event, ctx: Context) -> None:
        raise ValueError("bug")

    h = await running(reg, max_attempts=3, backoff_base_s=1.0, backoff_cap_s=30.0)
    h.dispatcher.offer(numbered(1))
    await eventually(lambda: h.done == [(1, Outcome.DEAD_LETTER)])
    assert h.handled("events", "error") == 3
    assert len(h.clock.sleeps) == 2
    assert 0.5 <= h.clock.sleeps[0] <= 1.0
    assert 1.0 <= h.clock.sleeps[1] <= 2.0


async def test_a_hanging_handler_times_out_without_stopping_others(
    running: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    reg = HandlerRegistry()
    never = anyio.Event()

    @reg.on("events", "hang")
    async def hang(event: Event, ctx: Context) -> None:
        await never.wait()

    @reg.on("events", "ok")
    async def ok(event: Event, ctx: Context) -> None:
        pass

    h = await running(reg, concurrency=1, handler_timeout_s=0.05, max_attempts=2)
    h.dispatcher.offer(numbered(1, name="hang"))
    h.dispatcher.offer(numbered(2, name="ok"))
    await eventually(lambda: len(h.done) == 2)
    assert h.done == [(1, Outcome.DEAD_LETTER), (2, Outcome.SUCCESS)]
    assert h.handled("events", "timeout") == 2
    [dead] = [r for r in caplog.records if "dead-lettered" in r.getMessage()]
    assert "the handler ran longer than 0.05s" in dead.getMessage()


async def test_events_without_handlers_are_ignored(running: Callable[..., Any]) -> None:
    h = await running(HandlerRegistry())
    h.dispatcher.offer(numbered(1))
    await eventually(lambda: h.done == [(1, Outcome.IGNORED)])


async def test_a_failing_on_done_hook_is_contained(running: Callable[..., Any]) -> None:
    reg = HandlerRegistry()
    reg.add("*", "*", _noop)
    h = await running(reg)

    async def bad_hook(event: Event, outcome: Outcome) -> None:
        raise RuntimeError("checkpoint store down")

    h.dispatcher._on_done = bad_hook  # the hook is a constructor argument; reuse the harness
    h.dispatcher.offer(numbered(1))
    h.dispatcher.offer(numbered(2))
    await eventually(lambda: h.dispatcher.statistics().succeeded == 2)


async def _noop(event: Event, ctx: Context) -> None:
    pass


async def test_drain_lets_in_flight_finish_within_grace() -> None:
    reg = HandlerRegistry()
    release = anyio.Event()

    @reg.on("*")
    async def slow(event: Event, ctx: Context) -> None:
        await release.wait()

    h = Harness(reg, concurrency=2)
    async with anyio.create_task_group() as tg:
        await tg.start(h.dispatcher.run)
        h.dispatcher.offer(numbered(1))
        h.dispatcher.offer(numbered(2))
        await eventually(lambda: h.dispatcher.statistics().in_flight == 2)
        tg.start_soon(h.dispatcher.drain, 5.0)
        await eventually(lambda: not h.dispatcher.statistics().accepting)
        assert not h.dispatcher.offer(numbered(3))
        release.set()
    assert sorted(h.done) == [(1, Outcome.SUCCESS), (2, Outcome.SUCCESS)]


async def test_drain_cancels_stragglers_and_abandons_the_queue() -> None:
    reg = HandlerRegistry()
    never = anyio.Event()

    @reg.on("*")
    async def stuck(event: Event, ctx: Context) -> None:
        await never.wait()

    h = Harness(reg, concurrency=1, handler_timeout_s=60.0)
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            await tg.start(h.dispatcher.run)
            for n in (1, 2, 3):
                h.dispatcher.offer(numbered(n))
            await eventually(lambda: h.dispatcher.statistics().in_flight == 1)
            await h.dispatcher.drain(0.05)
    assert h.done == [(1, Outcome.CANCELLED), (2, Outcome.ABANDONED), (3, Outcome.ABANDONED)]
    assert h.handled("events", "dead_letter") == 1
    assert h.dispatcher.statistics().in_flight == 0


async def test_drain_before_run_returns_at_once() -> None:
    h = Harness(HandlerRegistry())
    with anyio.fail_after(1):
        await h.dispatcher.drain(10.0)
    assert not h.dispatcher.offer(numbered(1))


async def test_drain_cancels_an_event_waiting_out_its_retry_backoff() -> None:
    reg = HandlerRegistry()

    @reg.on("*")
    async def failing(event: Event, ctx: Context) -> None:
        raise ValueError("try again later")

    h = Harness(reg, FakeClock(), concurrency=1, max_attempts=5)  # manual: backoffs never end
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            await tg.start(h.dispatcher.run)
            h.dispatcher.offer(numbered(1))
            await eventually(lambda: len(h.clock.sleeps) == 1)
            await h.dispatcher.drain(0.05)
    assert h.done == [(1, Outcome.CANCELLED)]
    assert h.handled("events", "error") == 1
    assert h.dispatcher.statistics().in_flight == 0


async def test_a_handler_timeout_is_not_mistaken_for_a_shutdown_cancel(
    running: Callable[..., Any],
) -> None:
    # One cancel scope per call carries both the timeout and drain()'s cancel.
    reg = HandlerRegistry()
    calls: list[int] = []

    @reg.on("*")
    async def slow_then_fast(event: Event, ctx: Context) -> None:
        calls.append(ctx.attempt)
        if ctx.attempt == 1:
            await anyio.sleep_forever()

    h = await running(reg, handler_timeout_s=0.05, max_attempts=2)
    h.dispatcher.offer(numbered(1))
    await eventually(lambda: h.done == [(1, Outcome.SUCCESS)])
    assert calls == [1, 2]
    assert h.handled("events", "timeout") == 1
