"""Helpers of the fault suite: metrics, probes, and the worker as a subprocess.

An in-process worker is ``tests.e2e.conftest.run_worker`` (``worker.running``).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
from anyio.abc import Process
from prometheus_client import CollectorRegistry

from devstack.stack import Stack
from worker.app import Worker


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float:
    """``realtime_worker_<name>`` with ``labels`` (0 when absent)."""
    return registry.get_sample_value(f"realtime_worker_{name}", labels) or 0.0


def metric(worker: Worker, name: str, **labels: str) -> Callable[[], float]:
    return lambda: sample(worker.metrics_registry, name, **labels)


async def get(worker: Worker, path: str) -> httpx.Response:
    async with httpx.AsyncClient() as http:
        return await http.get(f"http://127.0.0.1:{worker.http_port}{path}")


async def readyz(worker: Worker) -> int:
    return (await get(worker, "/readyz")).status_code


def channel(worker: Worker, topic: str = "events") -> Any:
    """The supervisor's statistics of one topic's channel."""
    assert worker.supervisor is not None
    (found,) = [c for c in worker.supervisor.statistics().channels if c.topic == topic]
    return found


def org_subs(stack: Stack, org_id: str) -> list[str]:
    """The sub-topics joined on the server that name ``org_id``."""
    return [sub for sub in stack.realtime.control.stats()["channels"] if org_id in sub]


REPO = Path(__file__).resolve().parents[2]


class WorkerProcess:
    """``python -m worker run`` as a subprocess; every line it writes is kept."""

    def __init__(self, env: dict[str, str], command: str = "run") -> None:
        self.env = {**os.environ, **env, "PYTHONPATH": str(REPO)}
        self.command = command  # "run", or "broker" for the token broker
        self.stderr: list[str] = []
        self.stdout: list[str] = []
        self.process: Process | None = None
        self.returncode: int | None = None

    @property
    def records(self) -> list[dict[str, Any]]:
        """The JSON log lines so far (other lines are skipped)."""
        out = []
        for line in self.stderr:
            with contextlib.suppress(ValueError):
                record = json.loads(line)
                if isinstance(record, dict):
                    out.append(record)
        return out

    @property
    def http_port(self) -> int | None:
        for record in self.records:
            if record.get("msg") in ("worker started", "broker started"):
                return int(record["http_port"])
        return None

    def text(self) -> str:
        return "\n".join(self.stderr + self.stdout)

    async def get(self, path: str) -> httpx.Response:
        async with httpx.AsyncClient() as http:
            return await http.get(f"http://127.0.0.1:{self.http_port}{path}")

    def terminate(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)

    @asynccontextmanager
    async def run(self) -> AsyncIterator[WorkerProcess]:
        """Start it; on leaving, wait for it to exit (killing it after 60 s)."""
        argv = [sys.executable, "-m", "worker", self.command]
        async with (
            await anyio.open_process(argv, env=self.env, cwd=REPO) as process,
            anyio.create_task_group() as tg,
        ):
            self.process = process
            assert process.stderr is not None
            assert process.stdout is not None
            tg.start_soon(_collect, process.stderr, self.stderr)
            tg.start_soon(_collect, process.stdout, self.stdout)
            try:
                yield self
            finally:
                with anyio.move_on_after(60, shield=True) as scope:
                    self.returncode = await process.wait()
                if scope.cancelled_caught:
                    process.kill()
                    self.returncode = await process.wait()


async def _collect(stream: Any, into: list[str]) -> None:
    buffer = b""
    async for chunk in stream:
        buffer += chunk
        *lines, buffer = buffer.split(b"\n")
        into.extend(line.decode(errors="replace") for line in lines)
    if buffer:
        into.append(buffer.decode(errors="replace"))
