"""The handlers `make demo` runs: one log line per event, carrying the event itself.

Enable with ``WORKER_HANDLERS=examples.demo_handlers`` (run from the repository root, or
put the repository on ``PYTHONPATH``). The demo's live view reads these lines from the
worker's stderr to show the latest payload of each topic and to prove that every event
handled belongs to the worker's own organization.

A real handler would do its work here; logging whole payloads is fine for a demo only
(payloads may hold personal data: ``worker.handlers.log`` logs their keys, not values).
"""

from __future__ import annotations

from worker import Context, Event, on

#: The log message the demo looks for; the event travels in the ``demo`` field.
HANDLED_MESSAGE = "demo handled"


@on("*")  # every event of every topic in WORKER_TOPICS
async def record(event: Event, ctx: Context) -> None:
    """Log the event's identity and payload as one structured line."""
    ctx.log.info(
        HANDLED_MESSAGE,
        extra={
            "demo": {
                "org_id": event.org_id,
                "topic": event.topic,
                "event": event.event,
                "event_id": event.event_id,
                "replayed": event.replayed,
                "payload": event.payload,
            }
        },
    )
