"""The worker end to end under faults: Clerk outages, dropped sockets, refused tokens."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from typing import Any

import anyio
import httpx
import pytest
from prometheus_client import CollectorRegistry

from devstack.stack import Stack
from tests.e2e.conftest import Recorder, insert_events, provision, run_worker, worker_env
from worker.app import Worker
from worker.errors import TokenRejected
from worker.realtime.link import CLOSE_LABELS as CLOSE_REASONS
from worker.settings import Settings
from worker.testing import eventually

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(120)]


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return registry.get_sample_value(name, labels) or 0.0


def counter(registry: CollectorRegistry, name: str, **labels: str) -> Callable[[], float]:
    return lambda: sample(registry, name, **labels)


def channel_closes(registry: CollectorRegistry, topic: str = "events") -> float:
    return sum(
        sample(registry, "realtime_worker_channel_closes_total", topic=topic, reason=r)
        for r in CLOSE_REASONS
    )


async def readyz(worker: Worker) -> int:
    async with httpx.AsyncClient() as http:
        return (await http.get(f"http://127.0.0.1:{worker.http_port}/readyz")).status_code


def org_channels(stack: Stack, org_id: str, *, details: bool = False) -> list[Any]:
    """The org's channel sub-topics on the server (or each channel's stats)."""
    channels = stack.realtime.control.stats()["channels"]
    subs = [sub for sub in channels if org_id in sub]
    return [c for sub in subs for c in channels[sub]] if details else subs


async def test_clerk_outage_within_token_lifetime_is_ridden_out_without_channel_loss(
    stack: Stack,
) -> None:
    org = provision(stack, "Acme")
    # A 5 s token refreshed with 3.5 s still left: room for ~2 s of Clerk failures.
    recorder = Recorder()
    async with run_worker(
        stack, org, recorder.registry, WORKER_TOKEN_REFRESH_MARGIN_SECONDS="3.5"
    ) as worker:
        registry = worker.metrics_registry
        http_errors = counter(registry, "realtime_worker_token_refresh_total", result="http_error")
        successes = counter(registry, "realtime_worker_token_refresh_total", result="success")
        assert worker.tokens is not None
        tokens = worker.tokens

        stack.clerk.fail_next_tokens(1000, 503)
        await eventually(
            lambda: http_errors() >= 1, timeout_s=10, message="a refresh failed with 503"
        )
        held = tokens.current
        assert held is not None
        successes_during = successes()
        inserted = await insert_events(stack.database_url, org.org_id, 5)
        await eventually(lambda: http_errors() >= 2, timeout_s=10, message="the worker retried")
        # Everything above happened inside the outage, on the still-valid token.
        assert successes() == successes_during
        assert tokens.current is held
        assert time.time() < held.expires_at

        stack.clerk.clear_faults()
        await eventually(
            lambda: successes() > successes_during, timeout_s=10, message="refresh succeeded again"
        )
        assert tokens.current is not held
        # The server re-checks the old token at its exp: let that moment pass.
        await eventually(
            lambda: time.time() > held.expires_at + 1,
            timeout_s=10,
            message="old token's exp passed",
        )
        await eventually(
            lambda: set(recorder.ids()) >= set(inserted), timeout_s=10, message="events handled"
        )
        assert sorted(recorder.ids()) == sorted(inserted)
        assert channel_closes(registry) == 0
        assert worker.checks.failures() == {}


async def test_clerk_outage_past_expiry_closes_the_channel_then_the_worker_recovers(
    stack: Stack,
) -> None:
    org = provision(stack, "Acme")
    recorder = Recorder()
    async with run_worker(stack, org, recorder.registry) as worker:
        registry = worker.metrics_registry
        assert worker.tokens is not None
        tokens = worker.tokens
        supervisor = worker.supervisor
        assert supervisor is not None

        stack.clerk.fail_next_tokens(1000, 503)
        await eventually(
            lambda: tokens.state == "expired", timeout_s=15, message="the token expired"
        )

        def channel_lost() -> bool:
            expired = sample(
                registry,
                "realtime_worker_channel_closes_total",
                topic="events",
                reason="token_expired",
            )
            return expired >= 1 or supervisor.statistics().channels[0].state != "joined"

        await eventually(channel_lost, timeout_s=15, message="the server closed the channel")
        failures = worker.checks.failures()
        assert "token.fresh" in failures
        assert await readyz(worker) == 503

        stack.clerk.clear_faults()
        await eventually(
            lambda: worker.checks.failures() == {}, timeout_s=75, message="ready again"
        )
        assert await readyz(worker) == 200
        inserted = await insert_events(stack.database_url, org.org_id, 3)
        await eventually(
            lambda: set(recorder.ids()) >= set(inserted), timeout_s=15, message="events handled"
        )


async def test_repeated_socket_drops_are_survived_by_reconnecting_and_rejoining(
    stack: Stack,
) -> None:
    org = provision(stack, "Acme")
    control = stack.realtime.control
    recorder = Recorder()
    async with run_worker(stack, org, recorder.registry) as worker:
        # Six abrupt drops in a row, each as soon as the worker has rejoined on a new socket
        # (a new join ref on the server). Each reconnect succeeds at once, so this does not
        # exhaust the client's max_retries (that counts failed connects within one outage).
        seen: set[Any] = set()

        def rejoined() -> bool:
            refs = {c["join_ref"] for c in org_channels(stack, org.org_id, details=True)}
            return bool(refs - seen)

        for n in range(6):
            await eventually(rejoined, timeout_s=30, message=f"rejoined before drop {n}")
            seen |= {c["join_ref"] for c in org_channels(stack, org.org_id, details=True)}
            assert control.drop_all() >= 1
        await eventually(rejoined, timeout_s=30, message="rejoined after the last drop")
        await eventually(
            lambda: worker.checks.failures() == {}, timeout_s=60, message="ready again"
        )
        assert control.stats()["sockets"] == 1
        inserted = await insert_events(stack.database_url, org.org_id, 3)
        await eventually(
            lambda: set(recorder.ids()) >= set(inserted), timeout_s=15, message="events handled"
        )
        # Every drop healed by the client is counted, even several within one tick.
        await eventually(
            lambda: (
                sample(
                    worker.metrics_registry,
                    "realtime_worker_realtime_reconnects_total",
                    reason="closed",
                )
                >= 6
            ),
            timeout_s=10,
            message="six reconnects counted",
        )


async def test_token_without_role_is_refused_before_any_join(stack: Stack) -> None:
    org = provision(stack, "Acme")
    stack.clerk.set_drop_role(True)
    worker = Worker(Settings.from_env(worker_env(stack, org)), registry=Recorder().registry)
    with anyio.fail_after(30), pytest.raises(TokenRejected) as caught:
        await worker.run(anyio.Event())
    assert caught.value.reason == "missing_role"
    registry = worker.metrics_registry
    assert sample(registry, "realtime_worker_token_refresh_total", result="invalid_claims") >= 1
    assert sample(registry, "realtime_worker_token_refresh_total", result="success") == 0
    assert worker.supervisor is None
    assert org_channels(stack, org.org_id) == []
    assert stack.realtime.control.stats()["sockets"] == 0


async def test_token_for_another_org_is_refused_before_any_join(stack: Stack) -> None:
    org = provision(stack, "Acme")
    other = provision(stack, "Globex")
    stack.clerk.set_token_org(org.session_id, other.org_id)
    worker = Worker(Settings.from_env(worker_env(stack, org)), registry=Recorder().registry)
    with anyio.fail_after(30), pytest.raises(TokenRejected) as caught:
        await worker.run(anyio.Event())
    assert caught.value.reason == "wrong_org"
    registry = worker.metrics_registry
    assert sample(registry, "realtime_worker_token_refresh_total", result="invalid_claims") >= 1
    assert worker.supervisor is None
    assert org_channels(stack, org.org_id) == []
    assert org_channels(stack, other.org_id) == []
    assert stack.realtime.control.stats()["sockets"] == 0


async def test_cli_run_exits_1_naming_the_refused_token(stack: Stack) -> None:
    org = provision(stack, "Acme")
    stack.clerk.set_drop_role(True)
    env = {**os.environ, **worker_env(stack, org)}
    with anyio.fail_after(60):
        done = await anyio.run_process(
            [sys.executable, "-m", "worker", "run"], env=env, check=False
        )
    err = done.stderr.decode()
    assert done.returncode == 1, err
    assert "realtime-worker: token has no 'role' claim" in err
    assert "Traceback" not in err
