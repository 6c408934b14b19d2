"""Reading a real worker (``tests.e2e.conftest.run_worker``) as Prometheus does."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import anyio
import httpx

from worker.app import Worker

T = TypeVar("T")


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
