"""worker.testing.HandlerHarness: the real dispatcher, time skipped, everything recorded."""

from __future__ import annotations

import time

import anyio
import httpx
import pytest
from pydantic import BaseModel

from worker import Context, Event, HandlerRegistry, NonRetryable, Retry
from worker.dispatch import HandledResult
from worker.testing import Broadcast, HandlerHarness, Recorder, make_context, make_event

pytestmark = pytest.mark.anyio


class TaskCreated(BaseModel):
    id: int
    title: str


def registry() -> HandlerRegistry:
    reg = HandlerRegistry()
    calls: list[int] = []

    @reg.on("events", "task.created", payload=TaskCreated, max_attempts=3)
    async def created(event: Event, ctx: Context) -> None:
        task: TaskCreated = event.data
        calls.append(task.id)
        if len(calls) < 3:
            raise Retry("not yet", after_s=30)
        await ctx.broadcast("notifications", "task.seen", {"id": task.id})

    @reg.on("events", "task.hang", timeout_s=0.05, max_attempts=2)
    async def hang(event: Event, ctx: Context) -> None:
        await anyio.sleep_forever()

    @reg.on("events", "task.bad")
    async def bad(event: Event, ctx: Context) -> None:
        raise NonRetryable("cannot ever work")

    @reg.on("events", "task.read")
    async def read(event: Event, ctx: Context) -> None:
        rows = (await ctx.data.table("tasks").select("*").execute()).data
        ctx.log.info("read %d rows", len(rows))

    return reg


async def test_retry_twice_then_succeed_takes_no_wall_time() -> None:
    started = time.monotonic()
    async with HandlerHarness(registry()) as harness:
        done = await harness.deliver("events", "task.created", {"id": 7, "title": "x"})
    assert time.monotonic() - started < 1.0
    assert (done.outcome, done.attempts, done.reason) == ("success", 3, None)
    assert done.failures == (HandledResult.ERROR, HandledResult.ERROR)
    assert harness.broadcasts == [Broadcast("notifications", "task.seen", {"id": 7})]
    assert harness.clock.sleeps == [30, 30]  # the waits the handler asked for


async def test_a_hanging_handler_times_out_with_its_own_timeout() -> None:
    async with HandlerHarness(registry(), timeout_s=3600) as harness:
        done = await harness.deliver("events", "task.hang")
    assert done.outcome == "dead_letter"
    assert done.failures == (HandledResult.TIMEOUT, HandledResult.TIMEOUT)
    assert done.attempts == 2
    assert done.reason == "TimeoutError: the handler ran longer than 0.05s"


async def test_non_retryable_dead_letters_at_once_and_unmatched_is_ignored() -> None:
    async with HandlerHarness(registry()) as harness:
        bad = await harness.deliver("events", "task.bad")
        ignored = await harness.deliver("events", "nobody.listens")
    assert (bad.outcome, bad.attempts) == ("dead_letter", 1)
    assert bad.reason == "NonRetryable: cannot ever work"
    assert (ignored.outcome, ignored.attempts) == ("ignored", 0)


async def test_an_invalid_payload_is_dead_lettered_without_its_values() -> None:
    async with HandlerHarness(registry()) as harness:
        done = await harness.deliver("events", "task.created", {"id": "x", "title": "s3cr3t"})
    assert (done.outcome, done.attempts, done.failures) == ("dead_letter", 1, ("error",))
    assert done.reason is not None
    assert "payload does not match TaskCreated: id:" in done.reason
    assert "s3cr3t" not in done.reason
    assert not harness.broadcasts
    dead = [r for r in harness.logs if r.getMessage().startswith("event dead-lettered")]
    assert dead
    assert all("s3cr3t" not in r.getMessage() for r in harness.logs)


async def test_data_api_calls_are_answered_in_memory_and_logs_recorded() -> None:
    def respond(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=[{"id": 1}, {"id": 2}])

    async with HandlerHarness(registry(), respond=respond) as harness:
        done = await harness.deliver("events", "task.read")
    assert done.outcome == "success"
    [request] = harness.requests
    assert request.url.path == "/rest/v1/tasks"
    assert request.headers["Authorization"] == "Bearer test-session-token"
    assert "read 2 rows" in [r.getMessage() for r in harness.logs]
    handled = [r for r in harness.logs if r.getMessage() == "event handled"]
    assert handled[0].idempotency_key == done.event.idempotency_key  # type: ignore[attr-defined]


async def test_handlers_by_module_path_and_an_invalid_policy_fails_at_start() -> None:
    async with HandlerHarness("worker.handlers.log") as harness:
        assert (await harness.deliver("events", "x", {"a": 1})).outcome == "success"
    reg = HandlerRegistry()

    @reg.on("events", timeout_s=0, max_attempts=0)
    async def handler(event: Event, ctx: Context) -> None:
        del event, ctx

    with pytest.raises(Exception, match="timeout_s=0 must be") as caught:
        HandlerHarness(reg)
    assert "max_attempts=0 must be an integer >= 1" in str(caught.value)


async def test_typed_payloads_give_created_at_as_a_datetime() -> None:
    seen: list[object] = []
    reg = HandlerRegistry()

    @reg.on("events", "task.created", payload=TaskCreated)
    async def created(event: Event, ctx: Context) -> None:
        seen.append(event.created)

    async with HandlerHarness(reg) as harness:
        await harness.deliver(
            "events", "task.created", {"id": 1, "title": "t"}, created_at="2027-01-15T08:00:00Z"
        )
    [when] = seen
    assert when is not None
    assert when.isoformat() == "2027-01-15T08:00:00+00:00"  # type: ignore[attr-defined]


async def test_make_context_records_one_direct_call() -> None:
    recorder = Recorder(respond=lambda request: httpx.Response(200, json=[{"id": 1}]))
    event = make_event("events", "task.read", {"id": 1})
    ctx = make_context(event, recorder=recorder, attempt=2)
    await registry().handlers_for("events", "task.read")[0].handler(event, ctx)
    await ctx.broadcast("notifications", "done", {"ok": True})
    await ctx.data.aclose()
    assert ctx.attempt == 2
    assert [r.url.path for r in recorder.requests] == ["/rest/v1/tasks"]
    assert [r.getMessage() for r in recorder.logs] == ["read 1 rows"]
    assert recorder.logs[0].event_id == 1  # type: ignore[attr-defined]
    assert recorder.broadcasts == [Broadcast("notifications", "done", {"ok": True})]
