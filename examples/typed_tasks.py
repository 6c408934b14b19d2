"""A typed handler: announce a created task once it is visible through the data API.

Enable with ``WORKER_HANDLERS=examples.typed_tasks``; ``examples/test_typed_tasks.py``
tests it with ``worker.testing.HandlerHarness`` (no stack needed).
"""

from __future__ import annotations

from pydantic import BaseModel

from worker import Context, Event, Retry, on


class TaskCreated(BaseModel):
    id: int
    title: str


@on("events", event="task.created", payload=TaskCreated, max_attempts=3, timeout_s=5)
async def announce(event: Event, ctx: Context) -> None:
    task: TaskCreated = event.data  # validated; an invalid payload never gets here
    rows = (await ctx.data.table("tasks").select("id").eq("id", task.id).execute()).data
    if not rows:  # the transaction that created it is not visible yet
        raise Retry("task not visible yet", after_s=30)
    await ctx.broadcast("notifications", "task.announced", {"id": task.id})
