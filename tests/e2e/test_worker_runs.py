"""The worker end to end: short-lived Clerk tokens, private channels, handlers, metrics."""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator

import anyio
import httpx
import pytest
from prometheus_client import CollectorRegistry

from devstack.stack import Stack
from tests.e2e.conftest import Org, Recorder, insert_events, provision, run_worker, worker_env
from worker import Context, Event, HandlerRegistry
from worker.app import Worker
from worker.testing import eventually

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(180)]


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return registry.get_sample_value(name, labels) or 0.0


@pytest.fixture
async def running_worker(stack: Stack) -> AsyncIterator[tuple[Worker, Recorder, Org]]:
    """A started worker of a new org (the tests wait for readiness themselves)."""
    org = provision(stack, "Acme")
    recorder = Recorder()
    async with run_worker(stack, org, recorder.registry, ready_timeout_s=None) as worker:
        yield worker, recorder, org


async def test_worker_handles_every_event_across_six_token_lifetimes_without_channel_loss(
    stack: Stack, running_worker: tuple[Worker, Recorder, Org]
) -> None:
    worker, recorder, org = running_worker
    registry = worker.metrics_registry
    refreshes_before = sample(registry, "realtime_worker_token_refresh_total", result="success")
    inserted: list[int] = []
    with anyio.fail_after(60):
        start = anyio.current_time()
        while anyio.current_time() - start < 31:  # six 5 s token lifetimes, and a bit
            inserted += await insert_events(stack.database_url, org.org_id, 2)
            await anyio.sleep(0.5)  # pacing the producer, not waiting for a result
    await eventually(
        lambda: set(recorder.ids()) >= set(inserted), timeout_s=20, message="every event handled"
    )
    assert sorted(recorder.ids()) == sorted(inserted)  # each exactly once
    closes = sum(
        sample(registry, "realtime_worker_channel_closes_total", topic="events", reason=r)
        for r in (
            "token_expired",
            "permission_revoked",
            "rate_limited",
            "server_disconnect",
            "other",
        )
    )
    assert closes == 0
    refreshes = sample(registry, "realtime_worker_token_refresh_total", result="success")
    assert refreshes - refreshes_before >= 6


async def test_worker_reports_ready_and_status_without_secrets(
    stack: Stack, running_worker: tuple[Worker, Recorder, Org]
) -> None:
    worker, _, org = running_worker
    base = f"http://127.0.0.1:{worker.http_port}"
    async with httpx.AsyncClient() as http:
        await eventually(lambda: worker.checks.failures() == {}, timeout_s=20, message="ready")
        ready = await http.get(f"{base}/readyz")
        status = await http.get(f"{base}/status")
        metrics = await http.get(f"{base}/metrics")
    assert ready.status_code == 200
    assert status.json()["org_id"] == org.org_id
    text = status.text + metrics.text
    for secret in (stack.env["CLERK_SECRET_KEY"], stack.env["SUPABASE_ANON_KEY"]):
        assert secret[:12] not in text
    assert worker.tokens is not None
    assert worker.tokens.current is not None
    assert worker.tokens.current.jwt.split(".")[2][:12] not in text
    assert f'realtime_worker_org_info{{org="{org.org_id}"}} 1.0' in metrics.text


async def test_another_orgs_events_never_reach_the_worker(
    stack: Stack, running_worker: tuple[Worker, Recorder, Org]
) -> None:
    _, recorder, org = running_worker
    other = provision(stack, "Globex")
    foreign = await insert_events(stack.database_url, other.org_id, 3)
    marker = await insert_events(stack.database_url, org.org_id, 1)
    await eventually(lambda: marker[0] in recorder.ids(), timeout_s=20, message="own event handled")
    assert not set(foreign) & set(recorder.ids())
    assert all(e.org_id == org.org_id for e in recorder.events)


async def test_cli_check_passes_against_the_stack_for_a_worker_user(stack: Stack) -> None:
    org = provision(stack, "Initech")
    env = {**os.environ, **worker_env(stack, org)}
    with anyio.fail_after(90):
        done = await anyio.run_process(
            [sys.executable, "-m", "worker", "check"], env=env, check=False
        )
    out = done.stdout.decode() + done.stderr.decode()
    assert done.returncode == 0, out
    assert "all checks passed" in out
    assert stack.env["CLERK_SECRET_KEY"] not in out


async def test_a_handler_that_raises_or_hangs_does_not_stop_other_events(stack: Stack) -> None:
    org = provision(stack, "Hooli")
    handled: list[int] = []
    registry = HandlerRegistry()

    async def handle(event: Event, ctx: Context) -> None:
        if event.event == "boom":
            raise RuntimeError("handler bug")
        if event.event == "hang":
            await anyio.sleep_forever()
        assert event.event_id is not None
        handled.append(event.event_id)

    registry.add("events", "*", handle)
    async with run_worker(
        stack,
        org,
        registry,
        WORKER_HANDLER_TIMEOUT_SECONDS="0.5",
        WORKER_HANDLER_MAX_ATTEMPTS="2",
        WORKER_CONCURRENCY="2",
    ) as worker:
        await insert_events(stack.database_url, org.org_id, 2, event="hang")
        await insert_events(stack.database_url, org.org_id, 2, event="boom")
        good = await insert_events(stack.database_url, org.org_id, 5, event="ok")
        registry_ = worker.metrics_registry
        await eventually(
            lambda: set(handled) >= set(good), timeout_s=20, message="good events handled"
        )
        await eventually(
            lambda: (
                sample(
                    registry_,
                    "realtime_worker_events_handled_total",
                    topic="events",
                    result="dead_letter",
                )
                >= 4
            ),
            timeout_s=20,
            message="bad events dead-lettered",
        )
        assert (
            sample(
                registry_, "realtime_worker_events_handled_total", topic="events", result="success"
            )
            >= 5
        )


async def test_cli_check_reads_the_lease_with_ha_on_without_taking_it(stack: Stack) -> None:
    org = provision(stack, "Initech")
    env = {**os.environ, **worker_env(stack, org, WORKER_LEASE_ENABLED="true")}
    with anyio.fail_after(90):
        done = await anyio.run_process(
            [sys.executable, "-m", "worker", "check"], env=env, check=False
        )
    out = done.stdout.decode() + done.stderr.decode()
    assert done.returncode == 0, out
    assert "no lease of 'default' yet" in out  # read, never taken
