"""The ``log`` handler: one structured INFO line per event, on every topic.

Enable with ``WORKER_HANDLERS=worker.handlers.log``. The payload itself is not logged
(it may hold personal data); its top-level keys are.
"""

from __future__ import annotations

from worker.context import Context
from worker.events import Event
from worker.registry import on

__all__ = ["handle"]


@on("*")
async def handle(event: Event, ctx: Context) -> None:
    """Log the event's identity, timing and payload keys."""
    ctx.log.info(
        "event %s on %s",
        event.event,
        event.topic,
        extra={
            "message_id": event.message_id,
            "replayed": event.replayed,
            "created_at": event.created_at,
            "payload_keys": sorted(event.payload)[:50],
            "idempotency_key": event.idempotency_key,
        },
    )
