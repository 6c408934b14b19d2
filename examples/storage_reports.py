"""A handler that keeps one JSON report per event in the org's own Storage folder.

Enable with ``WORKER_HANDLERS=examples.storage_reports``. Each event becomes the object
``org-files/<org_id>/reports/<event_id>.json`` of the private ``org-files`` bucket, written
with the worker's own Clerk token under the RLS policies of ``storage.objects`` (no service
role key). Delivery is at least once: the object is named after the event and written with
``upsert``, so a retried or replayed copy overwrites the same file instead of adding one.
"""

from __future__ import annotations

import hashlib
import json

from worker import Context, Event, on

#: The folder, inside the org's folder, that holds the reports.
REPORTS_FOLDER = "reports"


def report_path(event: Event) -> str:
    """``reports/<event_id>.json``; a broadcast without an outbox id is named after a digest
    of its idempotency key (stable across copies of the same event)."""
    if event.event_id is not None:
        name = str(event.event_id)
    else:
        name = hashlib.sha256(event.idempotency_key.encode()).hexdigest()[:32]
    return f"{REPORTS_FOLDER}/{name}.json"


def render(event: Event) -> bytes:
    """The report: what the event was and when it arrived."""
    report = {
        "org_id": event.org_id,
        "topic": event.topic,
        "event": event.event,
        "event_id": event.event_id,
        "created_at": event.created_at,
        "payload": event.payload,
    }
    return json.dumps(report, sort_keys=True).encode()


@on("*")  # every event of every topic in WORKER_TOPICS
async def write_report(event: Event, ctx: Context) -> None:
    """Write the event's report under ``<org_id>/reports/``."""
    key = await ctx.files.upload(
        report_path(event), render(event), content_type="application/json", upsert=True
    )
    ctx.log.info("report written", extra={"key": key, "bucket": ctx.files.bucket})
