"""worker.testing: the clock and the waiting helper that every test of the worker uses."""

from __future__ import annotations

import anyio
import pytest

import worker.testing
from worker.testing import FakeClock, eventually

pytestmark = pytest.mark.anyio


def test_the_public_surface_is_pinned() -> None:
    assert sorted(worker.testing.__all__) == [
        "Broadcast",
        "Delivered",
        "FakeClock",
        "HandlerHarness",
        "Recorder",
        "RecordingMetrics",
        "eventually",
        "make_context",
        "make_event",
    ]


def test_wall_and_monotonic_time_start_where_asked_and_move_together() -> None:
    clock = FakeClock(wall=50.0, monotonic=7.0)
    clock.advance(2.5)
    assert (clock.time(), clock.monotonic()) == (52.5, 9.5)
    with pytest.raises(ValueError, match="never goes back"):
        clock.advance(-1)


async def test_a_manual_sleep_ends_only_once_time_is_advanced_past_it() -> None:
    clock, woke = FakeClock(), anyio.Event()

    async def nap() -> None:
        await clock.sleep(5.0)
        woke.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(nap)
        await clock.wait_sleeping(1)
        assert clock.next_wake_in() == 5.0
        clock.advance(4.0)
        await anyio.lowlevel.checkpoint()
        assert not woke.is_set()
        assert clock.next_wake_in() == 1.0
        clock.advance(1.0)
        with anyio.fail_after(1):
            await woke.wait()
    assert clock.sleeps == [5.0]
    assert clock.sleeping == 0


async def test_autojump_sleeps_move_time_at_once_and_are_recorded() -> None:
    clock = FakeClock(autojump=True)
    start = clock.monotonic()
    with anyio.fail_after(1):
        await clock.sleep(30.0)
        await clock.sleep(-1.0)
    assert clock.monotonic() - start == 30.0
    assert clock.sleeps == [30.0, -1.0]


async def test_an_autojump_wakes_the_manual_sleepers_it_passes() -> None:
    clock, woke = FakeClock(), anyio.Event()

    async def nap() -> None:
        await clock.sleep(3.0)
        woke.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(nap)
        await clock.wait_sleeping(1)
        clock.autojump = True
        await clock.sleep(10.0)
        with anyio.fail_after(1):
            await woke.wait()


def test_next_wake_in_without_sleepers_says_so() -> None:
    with pytest.raises(LookupError, match="no task is asleep"):
        FakeClock().next_wake_in()


async def test_eventually_returns_once_the_condition_holds() -> None:
    flag = anyio.Event()

    async def later() -> None:
        await anyio.sleep(0.05)
        flag.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(later)
        await eventually(flag.is_set, timeout_s=5, message="the flag")


async def test_eventually_accepts_an_async_predicate() -> None:
    calls: list[int] = []

    async def third_time() -> bool:
        calls.append(1)
        return len(calls) >= 3

    await eventually(third_time, timeout_s=5)
    assert len(calls) == 3


async def test_eventually_fails_with_an_assertion_naming_the_condition() -> None:
    with pytest.raises(AssertionError, match=r"after 0\.05 s waiting for the moon"):
        await eventually(lambda: False, timeout_s=0.05, message="the moon")


async def test_a_timeout_raised_by_the_predicate_itself_is_not_mistaken_for_the_deadline() -> None:
    def broken() -> bool:
        raise TimeoutError("the server did not answer")

    with pytest.raises(TimeoutError, match="did not answer"):
        await eventually(broken, timeout_s=5)
