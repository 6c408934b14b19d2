"""``examples.typed_tasks`` under ``worker.testing.HandlerHarness``: retried twice, then
announced; an invalid payload dead-lettered at once. Runs with ``make test``."""

from __future__ import annotations

import time

import httpx
import pytest

from worker.testing import HandlerHarness

pytestmark = pytest.mark.anyio


async def test_the_task_is_announced_once_visible() -> None:
    replies = [[], [], [{"id": 7}]]  # the row shows up on the third read

    def respond(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=replies.pop(0))

    started = time.monotonic()
    async with HandlerHarness("examples.typed_tasks", respond=respond) as harness:
        done = await harness.deliver("events", "task.created", {"id": 7, "title": "Ship it"})
    assert time.monotonic() - started < 1.0  # two 30 s waits, skipped
    assert (done.outcome, done.attempts, done.failures) == ("success", 3, ("error", "error"))
    assert [b.payload for b in harness.broadcasts] == [{"id": 7}]
    assert harness.requests[0].url.params["id"] == "eq.7"


async def test_an_invalid_task_is_dead_lettered_without_a_call() -> None:
    async with HandlerHarness("examples.typed_tasks") as harness:
        done = await harness.deliver("events", "task.created", {"id": "seven"})
    assert (done.outcome, done.attempts) == ("dead_letter", 1)
    assert done.reason is not None
    assert "id: Input should be a valid integer" in done.reason
    assert "title: Field required" in done.reason
    assert harness.requests == []
    assert harness.broadcasts == []
