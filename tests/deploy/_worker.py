"""A real worker on the local stack, for the deploy tests that read what it exports."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TypeVar

import anyio
import httpx

from devstack.stack import Stack
from tests.e2e.conftest import Org, worker_env
from worker.app import Worker
from worker.settings import Settings
from worker.testing import eventually

T = TypeVar("T")


@asynccontextmanager
async def running_worker(stack: Stack, org: Org, **env: str) -> AsyncIterator[Worker]:
    """An in-process ``Worker`` of ``org`` (HTTP on a free loopback port), ready."""
    env = {"WORKER_HANDLERS": "worker.handlers.log", **env}
    settings = Settings.from_env(worker_env(stack, org, **env))
    worker = Worker(settings)
    stop = anyio.Event()
    try:
        async with anyio.create_task_group() as tg:
            await tg.start(worker.run, stop)
            assert worker.http_port, "the worker reported no HTTP port"
            await eventually(
                lambda: worker.checks.failures() == {}, timeout_s=20, message="worker ready"
            )
            try:
                yield worker
            finally:
                stop.set()
    except BaseExceptionGroup as group:
        # A failed assertion in the test body surfaces as itself, not inside a group.
        leaves = _leaves(group)
        if len(leaves) == 1:
            raise leaves[0] from None
        raise


def _leaves(group: BaseExceptionGroup[BaseException]) -> list[BaseException]:
    out: list[BaseException] = []
    for exc in group.exceptions:
        out.extend(_leaves(exc) if isinstance(exc, BaseExceptionGroup) else [exc])
    return out


async def scrape(worker: Worker) -> str:
    """The worker's ``/metrics`` text, as Prometheus would get it."""
    async with httpx.AsyncClient(timeout=5) as http:
        response = await http.get(f"http://127.0.0.1:{worker.http_port}/metrics")
    response.raise_for_status()
    return response.text


async def until(
    probe: Callable[[], Awaitable[T]], timeout_s: float, message: str, poll_s: float = 0.25
) -> T:
    """Await ``probe()`` until it returns something truthy; that value. Fails after the deadline."""
    deadline = time.monotonic() + timeout_s
    last: T | None = None
    while time.monotonic() < deadline:
        last = await probe()
        if last:
            return last
        await anyio.sleep(poll_s)  # polling a server that has no change feed
    raise AssertionError(f"timed out after {timeout_s:g} s waiting for {message} (last: {last!r})")
