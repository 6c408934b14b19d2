"""Handlers for the lease tests (``WORKER_HANDLERS=tests.faults.lease_handlers``).

Every event on ``events`` appends ``start <id> <epoch> <time>`` to ``RECORD_FILE``, takes
``RECORD_DELAY_SECONDS`` (default 0), then appends ``done <id> <epoch> <time>`` (time: the
wall clock, seconds). One ``write()`` per line on an ``O_APPEND`` descriptor, so what was
written before a SIGKILL is in the file, whole.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import anyio

from worker import Context, Event, on


@on("events", event="*")
async def record(event: Event, ctx: Context) -> None:
    """Record the start with the lease epoch, work, record the end."""
    _write("start", event, ctx)
    delay = float(os.environ.get("RECORD_DELAY_SECONDS", "0"))
    if delay:
        await anyio.sleep(delay)  # simulated work
    _write("done", event, ctx)


def _write(what: str, event: Event, ctx: Context) -> None:
    line = f"{what} {event.event_id} {ctx.epoch} {time.time():.6f}\n".encode()
    fd = os.open(os.environ["RECORD_FILE"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


@dataclass
class Lines:
    """What one worker recorded: ids started and done in order, epochs, and line times."""

    started: list[int] = field(default_factory=list)
    done: list[int] = field(default_factory=list)
    epochs: set[int] = field(default_factory=set)
    times: list[float] = field(default_factory=list)

    @property
    def in_flight(self) -> set[int]:
        return set(self.started) - set(self.done)


def read_lines(path: Path) -> Lines:
    """Parse ``path`` (missing: nothing yet); a torn last line is ignored."""
    lines = Lines()
    if not path.exists():
        return lines
    for line in path.read_text().splitlines():
        parts = line.split(" ")
        if len(parts) != 4 or not parts[1].isdigit() or not parts[2].isdigit():
            continue
        (lines.started if parts[0] == "start" else lines.done).append(int(parts[1]))
        lines.epochs.add(int(parts[2]))
        lines.times.append(float(parts[3]))
    return lines
