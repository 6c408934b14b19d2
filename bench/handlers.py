"""A no-op handler on every topic, for worker subprocesses (``WORKER_HANDLERS=bench.handlers``)."""

from __future__ import annotations

from worker import Context, Event, on


@on("*", event="*")
async def noop(event: Event, ctx: Context) -> None:
    """Does nothing: the benchmarks measure the worker, not a handler."""
