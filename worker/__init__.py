"""realtime-worker: backend work on Supabase Realtime private channels with Clerk tokens.

What handler authors need::

    from worker import Context, Event, on

    @on("events", event="task.created")
    async def notify(event: Event, ctx: Context) -> None:
        ctx.log.info("task created", extra={"task": event.payload})

Name the module in ``WORKER_HANDLERS`` and run ``realtime-worker run``. To embed a worker
(or run one in a test)::

    async with worker.running(Settings.from_env(os.environ)) as w:
        ...  # w.http_port, w.status(); leaving the block shuts it down in stages

The parts, one folder each, are described in docs/architecture.md.
"""

__version__ = "0.1.0"

# __version__ first: the parts imported below read it.
from worker.app import Worker, running
from worker.context import Context
from worker.errors import NonRetryable, Retry, WorkerError
from worker.events import Event
from worker.registry import HandlerRegistry, on
from worker.settings import Settings

__all__ = [
    "Context",
    "Event",
    "HandlerRegistry",
    "NonRetryable",
    "Retry",
    "Settings",
    "Worker",
    "WorkerError",
    "__version__",
    "on",
    "running",
]
