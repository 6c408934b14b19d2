"""realtime-worker: backend work on Supabase Realtime private channels with Clerk tokens.

What handler authors need::

    from worker import Context, Event, on

    @on("events", event="task.created")
    async def notify(event: Event, ctx: Context) -> None:
        ctx.log.info("task created", extra={"task": event.payload})

Name the module in ``WORKER_HANDLERS`` and run ``realtime-worker run``.
"""

from worker.context import Context
from worker.errors import NonRetryable, Retry, WorkerError
from worker.events import Event
from worker.registry import HandlerRegistry, on

__version__ = "0.1.0"

__all__ = [
    "Context",
    "Event",
    "HandlerRegistry",
    "NonRetryable",
    "Retry",
    "WorkerError",
    "__version__",
    "on",
]
