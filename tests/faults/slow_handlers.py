"""Handlers for the subprocess fault tests (``WORKER_HANDLERS=tests.faults.slow_handlers``):
every event on ``events`` takes half a second."""

from __future__ import annotations

import anyio

from worker import Context, Event, on

HANDLER_SECONDS = 0.5


@on("events", event="*")
async def slow(event: Event, ctx: Context) -> None:
    """Simulated work."""
    await anyio.sleep(HANDLER_SECONDS)
