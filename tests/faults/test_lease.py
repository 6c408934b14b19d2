"""High availability: two workers of one org, one lease, one leader at a time.

Each test runs ``python -m worker run`` twice with the lease on and a short lifetime, inserts
events continuously, hurts the leader (SIGKILL, a cut from the data API, SIGTERM) and
counts by outbox id what each worker's handlers did (``tests.faults.lease_handlers``)
against what the saved checkpoint covers.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import asyncpg
import pytest

from devstack.stack import Stack
from tests.e2e.conftest import Org, provision, worker_env
from tests.faults.lease_handlers import Lines, read_lines
from tests.faults.proxy import TcpProxy
from tests.faults.support import WorkerProcess
from tests.faults.test_delivery_faults import covers, saved_checkpoint
from worker.testing import eventually

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(120)]

TTL_S = 2.0
RENEW_S = 0.5
LEASE = {
    "WORKER_LEASE_ENABLED": "true",
    "WORKER_LEASE_TTL_SECONDS": str(TTL_S),
    "WORKER_LEASE_RENEW_SECONDS": str(RENEW_S),
    "WORKER_TOPICS": "events",
    "WORKER_SETTLE_SECONDS": "1",
    "WORKER_CATCHUP_INTERVAL_SECONDS": "1",
    "WORKER_CHECKPOINT_INTERVAL_SECONDS": "0.5",
    "WORKER_SHUTDOWN_GRACE_SECONDS": "3",
    "WORKER_HANDLERS": "tests.faults.lease_handlers",
}


# -- helpers ------------------------------------------------------------------------------


def lease_env(stack: Stack, org: Org, record: Path, **overrides: str) -> dict[str, str]:
    return worker_env(stack, org, RECORD_FILE=str(record), **(LEASE | overrides))


async def lease_status(worker: WorkerProcess) -> dict[str, Any]:
    """The worker's ``/status`` lease section ({} while it has no HTTP port yet)."""
    if worker.http_port is None:
        return {}
    with contextlib.suppress(OSError):
        response = await worker.get("/status")
        lease: dict[str, Any] = response.json().get("lease") or {}
        return lease
    return {}


async def leads(worker: WorkerProcess) -> bool:
    return bool((await lease_status(worker)).get("leader"))


async def until(predicate: Callable[[], Awaitable[bool]], timeout_s: float, message: str) -> None:
    """Wait until an async predicate holds once, under a deadline (``message`` on timeout).
    Not re-checked: readiness may flap while a socket recovers, and once is what is meant."""
    try:
        with anyio.fail_after(timeout_s):
            while not await predicate():  # noqa: ASYNC110 - polling another process's state
                await anyio.sleep(0.05)
    except TimeoutError:
        pytest.fail(f"timed out after {timeout_s}s waiting until {message}")


class Inserts(list[int]):
    """The ids inserted so far; ``stop()`` ends the inserting before the block does."""

    def __init__(self) -> None:
        super().__init__()
        self.scope = anyio.CancelScope()

    def stop(self) -> None:
        self.scope.cancel()


@asynccontextmanager
async def inserting(stack: Stack, org: Org, every_s: float = 0.05) -> AsyncIterator[Inserts]:
    """Insert one event every ``every_s`` while the block runs; yields the ids so far."""
    ids = Inserts()
    conn = await asyncpg.connect(stack.database_url)

    async def insert() -> None:
        with ids.scope:
            while True:
                ids.append(
                    await conn.fetchval(
                        "insert into org_events (org_id, topic, event) "
                        "values ($1, 'events', 'task.created') returning id",
                        org.org_id,
                    )
                )
                await anyio.sleep(every_s)  # the insert rate, not a wait for a result

    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(insert)
            yield ids
            ids.stop()
    finally:
        await conn.close()


@asynccontextmanager
async def started(worker: WorkerProcess) -> AsyncIterator[WorkerProcess]:
    """Run ``worker`` until the block ends; SIGTERM it at once if the block fails."""
    async with worker.run():
        try:
            await eventually(
                lambda: worker.http_port is not None, timeout_s=30, message="the worker started"
            )
            yield worker
        except BaseException:
            with contextlib.suppress(ProcessLookupError):
                worker.terminate()
            raise


def handled_once_overall(inserted: list[int], *records: Lines) -> None:
    """Every inserted id handled, and by exactly one call overall."""
    done = [i for r in records for i in r.done]
    assert set(inserted) <= set(done), sorted(set(inserted) - set(done))
    twice = sorted({i for i in done if done.count(i) > 1})
    assert twice == [], twice


def logged(worker: WorkerProcess, message: str) -> bool:
    return any(r.get("msg") == message for r in worker.records)


@asynccontextmanager
async def leader_and_standby(
    a_env: dict[str, str], b_env: dict[str, str]
) -> AsyncIterator[tuple[WorkerProcess, WorkerProcess]]:
    """Two workers of one org: ``a`` started first and leading, ``b`` a warm standby."""
    async with started(WorkerProcess(a_env)) as a:
        await until(lambda: leads(a), 15, "the first worker leads")
        async with started(WorkerProcess(b_env)) as b:
            await until(lambda: ready(b), 20, "the standby is warm: token, socket, channels")
            assert not await leads(b)
            yield a, b


async def ready(worker: WorkerProcess) -> bool:
    with contextlib.suppress(OSError):
        return (await worker.get("/readyz")).status_code == 200
    return False


# -- the tests ------------------------------------------------------------------------------


async def test_two_workers_of_one_org_handle_each_event_once_and_only_the_leader(
    stack: Stack, tmp_path: Path
) -> None:
    org = provision(stack, "Acme")
    a_log, b_log = tmp_path / "a.log", tmp_path / "b.log"
    envs = lease_env(stack, org, a_log), lease_env(stack, org, b_log)
    async with leader_and_standby(*envs) as (a, b):
        async with inserting(stack, org) as ids:
            await eventually(lambda: len(ids) >= 60, timeout_s=20, message="inserted for a while")
        inserted = list(ids)
        await eventually(
            lambda: set(inserted) <= set(read_lines(a_log).done), timeout_s=20, message="handled"
        )
        assert await leads(a)
        assert not await leads(b)
        b.terminate()
        a.terminate()
    handled_once_overall(inserted, read_lines(a_log), read_lines(b_log))
    assert read_lines(b_log).started == []  # the standby handled nothing


async def test_the_leader_sigkilled_the_standby_takes_over_within_the_lifetime(
    stack: Stack, tmp_path: Path
) -> None:
    org = provision(stack, "Acme")
    a_log, b_log = tmp_path / "a.log", tmp_path / "b.log"
    slow = {"RECORD_DELAY_SECONDS": "0.05"}
    envs = lease_env(stack, org, a_log, **slow), lease_env(stack, org, b_log, **slow)
    async with leader_and_standby(*envs) as (a, b):
        async with inserting(stack, org) as ids:
            await eventually(
                lambda: len(read_lines(a_log).done) >= 20, timeout_s=20, message="the leader works"
            )
            saved_at_kill = await saved_checkpoint(stack, org)
            assert a.process is not None
            a.process.kill()
            killed = time.monotonic()
            await until(lambda: leads(b), TTL_S + 5, "the standby leads")
            took_over = time.monotonic() - killed
            await eventually(
                lambda: len(read_lines(b_log).done) >= 10,
                timeout_s=20,
                message="the new leader works",
            )
        inserted = list(ids)
        at_kill = read_lines(a_log)
        await eventually(
            lambda: set(inserted) <= set(at_kill.done) | set(read_lines(b_log).done),
            timeout_s=20,
            message="every event handled by one worker or the other",
        )
        b.terminate()
    after = read_lines(b_log)
    assert took_over <= TTL_S + 3, took_over
    assert len(after.done) == len(set(after.done))
    # Duplicates only for what the killed leader had in flight (not yet checkpointed).
    repeated = set(at_kill.done) & set(after.done)
    assert not [i for i in repeated if covers(saved_at_kill, i)]
    assert at_kill.in_flight <= set(after.done)
    assert min(after.epochs) > max(at_kill.epochs)


async def test_a_leader_cut_off_stops_before_its_lease_expires_and_its_late_save_is_refused(
    stack: Stack, proxy: TcpProxy, tmp_path: Path
) -> None:
    org = provision(stack, "Acme")
    a_log, b_log = tmp_path / "a.log", tmp_path / "b.log"
    slow = {"RECORD_DELAY_SECONDS": "0.2", "WORKER_CONCURRENCY": "1"}
    # The cut-off leader saves only when it steps down: its one save comes after the cut.
    a_env = lease_env(
        stack,
        org,
        a_log,
        SUPABASE_URL=proxy.url,
        WORKER_CHECKPOINT_INTERVAL_SECONDS="3600",
        **slow,
    )
    async with leader_and_standby(a_env, lease_env(stack, org, b_log, **slow)) as (a, b):
        async with inserting(stack, org, every_s=0.1) as ids:
            await eventually(
                lambda: len(read_lines(a_log).done) >= 5, timeout_s=20, message="the leader works"
            )
            proxy.freeze()
            cut_at = time.time()
            await until(lambda: leads(b), TTL_S + 5, "the standby leads")
            await eventually(
                lambda: len(read_lines(b_log).done) >= 5,
                timeout_s=20,
                message="the new leader works",
            )
            a_during_cut = read_lines(a_log)
            proxy.thaw()
            await eventually(
                lambda: logged(a, "the last checkpoint save was refused: a newer epoch leads"),
                timeout_s=20,
                message="the old leader's save refused",
            )
            await until(lambda: ready(a), 20, "the old leader is a warm standby again")
            assert not await leads(a)
        inserted = list(ids)
        await eventually(
            lambda: set(inserted) <= set(read_lines(a_log).done) | set(read_lines(b_log).done),
            timeout_s=30,
            message="nothing lost",
        )
        assert await leads(b)
        b.terminate()
        a.terminate()
    first_b = min(read_lines(b_log).times)
    # The old leader acted (started or finished a handler) only before its lease could
    # expire (<= its last renewal before the cut + the lifetime), so never beside the new one.
    assert max(a_during_cut.times) < cut_at + TTL_S
    assert max(a_during_cut.times) < first_b
    assert read_lines(a_log).times == a_during_cut.times  # and nothing after the cut ended


async def test_sigterm_to_the_leader_hands_over_at_once_with_no_duplicates(
    stack: Stack, tmp_path: Path
) -> None:
    org = provision(stack, "Acme")
    a_log, b_log = tmp_path / "a.log", tmp_path / "b.log"
    envs = lease_env(stack, org, a_log), lease_env(stack, org, b_log)
    async with leader_and_standby(*envs) as (a, b):
        async with inserting(stack, org) as ids:
            await eventually(
                lambda: len(read_lines(a_log).done) >= 20, timeout_s=20, message="the leader works"
            )
            a.terminate()
            await eventually(
                lambda: logged(a, "lease released"), timeout_s=20, message="drained and released"
            )
            released = time.monotonic()
            await until(lambda: leads(b), 10, "the standby leads")
            handover = time.monotonic() - released
            await eventually(
                lambda: len(read_lines(b_log).done) >= 10,
                timeout_s=20,
                message="the new leader works",
            )
        inserted = list(ids)
        await eventually(
            lambda: set(inserted) <= set(read_lines(a_log).done) | set(read_lines(b_log).done),
            timeout_s=20,
            message="nothing lost",
        )
        b.terminate()
    assert a.returncode == 0, a.text()[-3000:]
    assert handover < 2.0, handover
    handled_once_overall(inserted, read_lines(a_log), read_lines(b_log))


# -- the long variant (make soak) ----------------------------------------------------------

SOAK_MINUTES = float(os.environ.get("SOAK_MINUTES", "10") or 10)


@pytest.mark.slow
@pytest.mark.timeout(int(SOAK_MINUTES * 60) + 300)
async def test_soak_lease_handovers_by_sigterm_and_sigkill_lose_nothing(
    stack: Stack, tmp_path: Path
) -> None:
    """For SOAK_MINUTES: events inserted continuously while the leader is stopped in turn
    by SIGTERM and SIGKILL and a fresh worker joins as standby each time."""
    org = provision(stack, "Acme")
    logs: list[Path] = []
    deadline = time.monotonic() + SOAK_MINUTES * 60

    def env() -> dict[str, str]:
        logs.append(tmp_path / f"w{len(logs)}.log")
        return lease_env(stack, org, logs[-1], RECORD_DELAY_SECONDS="0.02")

    async with (
        inserting(stack, org, every_s=0.1) as ids,
        contextlib.AsyncExitStack() as workers,
    ):
        leader = await workers.enter_async_context(started(WorkerProcess(env())))
        await until(lambda: leads(leader), 15, "the first worker leads")
        rounds = 0
        while time.monotonic() < deadline:
            leader = await _hand_over(workers, leader, env(), kill=rounds % 2 == 1)
            await eventually(
                lambda: len(read_lines(logs[-1]).done) >= 5, timeout_s=20, message="it works"
            )
            rounds += 1
        ids.stop()
        inserted = list(ids)
        await eventually(
            lambda: set(inserted) <= {i for log in logs for i in read_lines(log).done},
            timeout_s=30,
            message="every event handled by one worker or another",
        )
        leader.terminate()
    assert rounds >= 2


async def _hand_over(
    workers: contextlib.AsyncExitStack, leader: WorkerProcess, env: dict[str, str], *, kill: bool
) -> WorkerProcess:
    """Start a standby next to ``leader``, stop the leader; the standby must lead."""
    standby = await workers.enter_async_context(started(WorkerProcess(env)))
    await until(lambda: ready(standby), 20, "the standby is warm")
    if kill:
        assert leader.process is not None
        leader.process.kill()
    else:
        leader.terminate()
    await until(lambda: leads(standby), TTL_S + 5, "the standby leads")
    return standby
