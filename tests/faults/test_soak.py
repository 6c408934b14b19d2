"""Soak: tokens living 3 s and a steady event stream; memory, asyncio tasks and open file
descriptors stay flat after warm-up, and every event is handled.

The short version (~30 s) runs with the suite; ``make soak`` runs the long one
(``SOAK_MINUTES``, default 10) with ``pytest -m slow -k soak``.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass, field

import anyio
import pytest

from devstack.stack import Stack
from tests.e2e.conftest import Recorder, insert_events, provision, run_worker
from tests.faults.support import metric
from worker.testing import eventually

pytestmark = [pytest.mark.anyio]

SOAK_MINUTES = float(os.environ.get("SOAK_MINUTES", "10") or 10)
EVENTS_PER_SECOND = 10


def rss_bytes() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS in /proc/self/status")


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@dataclass
class Samples:
    rss: list[int] = field(default_factory=list)
    tasks: list[int] = field(default_factory=list)
    fds: list[int] = field(default_factory=list)

    def take(self) -> None:
        self.rss.append(rss_bytes())
        self.tasks.append(len(asyncio.all_tasks()))
        self.fds.append(open_fds())


async def soak(stack: Stack, seconds: float, *, warmup_s: float) -> None:
    """Run one worker for ``seconds`` under a steady stream; assert it stays flat."""
    org = provision(stack, "Acme")
    recorder = Recorder()
    async with run_worker(
        stack,
        org,
        recorder.registry,
        CLERK_TOKEN_EXPIRES_IN_SECONDS="3",
        WORKER_TOKEN_REFRESH_MARGIN_SECONDS="1.5",
        # Each access_token push keeps a client timer alive for the client's timeout (the
        # join timeout) waiting for a reply Realtime never sends: a bounded population of
        # about timeout / refresh interval per channel. 5 s lets it level off in warm-up.
        REALTIME_JOIN_TIMEOUT_SECONDS="5",
    ) as worker:
        refreshes = metric(worker, "token_refresh_total", result="success")
        inserted: list[int] = []
        samples = Samples()
        started = anyio.current_time()
        next_sample = started + warmup_s
        with anyio.fail_after(seconds + 30):
            while anyio.current_time() - started < seconds:
                inserted += await insert_events(stack.database_url, org.org_id, 1)
                if anyio.current_time() >= next_sample:
                    samples.take()
                    next_sample += max(1.0, (seconds - warmup_s) / 20)
                await anyio.sleep(1 / EVENTS_PER_SECOND)  # the stream's pace, not a wait
        await eventually(recorder.handled(inserted), timeout_s=30, message="every event handled")
        samples.take()
        assert refreshes() >= seconds / 3  # tokens really lived ~3 s each
        assert worker.checks.failures() == {}

    half = max(1, len(samples.tasks) // 2)
    # Flat after warm-up: the end is no higher than the first half's peak (plus the few
    # short-lived tasks of a token push or a handler call caught in the act).
    assert samples.tasks[-1] <= max(samples.tasks[:half]) + 5, samples.tasks
    assert samples.fds[-1] <= max(samples.fds[:half]) + 3, samples.fds
    growth_mb = (samples.rss[-1] - samples.rss[0]) / 2**20
    assert growth_mb < 8 + 2 * seconds / 60, (growth_mb, samples.rss)


@pytest.mark.timeout(120)
async def test_soak_short(stack: Stack) -> None:
    await soak(stack, 30, warmup_s=8)


@pytest.mark.slow
@pytest.mark.timeout(int(SOAK_MINUTES * 60) + 300)
async def test_soak_long(stack: Stack) -> None:
    await soak(stack, SOAK_MINUTES * 60, warmup_s=60)
