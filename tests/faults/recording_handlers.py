"""Handlers for the subprocess delivery tests (``WORKER_HANDLERS=tests.faults.recording_handlers``).

Every event on ``events`` appends ``start <id> <idempotency key>`` to the file named by
``RECORD_FILE``, takes ``RECORD_DELAY_SECONDS`` (default 0) of simulated work, then appends
``done <id> <key>``. Each line is one ``write()`` on an ``O_APPEND`` descriptor, so lines
written before a SIGKILL are in the file (the kernel has them), whole.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import anyio

from worker import Context, Event, on


@on("events", event="*")
async def record(event: Event, ctx: Context) -> None:
    """Record the start, work, record the end."""
    _write("start", event)
    delay = float(os.environ.get("RECORD_DELAY_SECONDS", "0"))
    if delay:
        await anyio.sleep(delay)  # simulated work
    _write("done", event)


def _write(what: str, event: Event) -> None:
    line = f"{what} {event.event_id} {event.idempotency_key}\n".encode()
    fd = os.open(os.environ["RECORD_FILE"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


@dataclass
class Record:
    """What one worker recorded: ids started and done, in order, and their keys."""

    started: list[int] = field(default_factory=list)
    done: list[int] = field(default_factory=list)
    keys: dict[int, str] = field(default_factory=dict)


def read_record(path: Path) -> Record:
    """Parse ``path`` (missing: nothing recorded yet); a torn last line is ignored."""
    record = Record()
    if not path.exists():
        return record
    for line in path.read_text().splitlines():
        parts = line.split(" ")
        if len(parts) != 3 or not parts[1].isdigit():
            continue
        event_id = int(parts[1])
        (record.started if parts[0] == "start" else record.done).append(event_id)
        record.keys.setdefault(event_id, parts[2])
    return record
