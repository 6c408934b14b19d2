"""The worker keeping its own Clerk session on the local stack: stacks with short session
lifetimes, service users without a session, and the long run every instance type passes."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import anyio
import httpx

from devstack.clerk.settings import InstanceType
from devstack.postgres import Server
from devstack.realtime.settings import RealtimeSettings
from devstack.stack import Stack, StackConfig
from tests.e2e.conftest import Org, Recorder, insert_events, worker_env
from worker.app import Worker, running
from worker.settings import Settings
from worker.testing import eventually

CLOSE_REASONS = (
    "token_expired",
    "permission_revoked",
    "rate_limited",
    "server_disconnect",
    "other",
)


@contextlib.asynccontextmanager
async def session_stack(
    pg_server: Server, instance: InstanceType, lifetime_s: int = 7 * 24 * 3600
) -> AsyncIterator[Stack]:
    config = StackConfig(
        database_url=pg_server.admin_url,
        port=0,
        realtime=RealtimeSettings(join_error_delay_s=0, connect_error_delay_s=0),
        clerk_instance=instance,
        clerk_session_lifetime_s=lifetime_s,
    )
    async with Stack(config) as running_stack:
        yield running_stack


def service_user(stack: Stack, name: str, role: str = "org:worker") -> Org:
    """An org and a member service user holding ``role``, with no session yet."""
    clerk = stack.clerk
    user = clerk.create_user(first_name=f"{name}-worker")
    org = clerk.create_organization(name)
    clerk.add_membership(org["id"], user["id"], role)
    return Org(org["id"], user["id"], "")


def user_env(stack: Stack, org: Org, **overrides: str) -> dict[str, str]:
    """Settings of a worker that keeps its own session: ``CLERK_USER_ID``, no session id."""
    env = worker_env(stack, org, CLERK_USER_ID=org.user_id, **overrides)
    if not overrides.get("CLERK_SESSION_ID"):
        env.pop("CLERK_SESSION_ID", None)
    return env


def active_sessions(stack: Stack, user_id: str) -> list[dict[str, Any]]:
    return stack.clerk.list_sessions(user_id=user_id, status="active")


def session_of(worker: Worker) -> dict[str, Any]:
    return dict(worker.status()["session"])


def sample(worker: Worker, name: str, **labels: str) -> float:
    return worker.metrics_registry.get_sample_value(name, labels) or 0.0


def channel_closes(worker: Worker) -> float:
    return sum(
        sample(worker, "realtime_worker_channel_closes_total", topic="events", reason=r)
        for r in CLOSE_REASONS
    )


@dataclass
class Watch:
    """What a producer loop saw while the worker ran."""

    inserted: list[int] = field(default_factory=list)
    not_ready: list[int] = field(default_factory=list)
    max_active: int = 0
    sessions: set[str] = field(default_factory=set)


async def produce(stack: Stack, worker: Worker, org: Org, seconds: float) -> Watch:
    """Insert events every 0.5 s for ``seconds``; watch /readyz and the user's sessions."""
    watch = Watch()
    base = f"http://127.0.0.1:{worker.http_port}"
    async with httpx.AsyncClient(timeout=5.0) as http:
        start = anyio.current_time()
        while anyio.current_time() - start < seconds:
            watch.inserted += await insert_events(stack.database_url, org.org_id, 1)
            ready = await http.get(f"{base}/readyz")
            if ready.status_code != 200:
                watch.not_ready.append(ready.status_code)
            watch.max_active = max(watch.max_active, len(active_sessions(stack, org.user_id)))
            watch.sessions.add(session_of(worker)["session_id"])
            await anyio.sleep(0.5)  # pacing the producer, not waiting for a result
    return watch


async def run_through_lifetimes(stack: Stack, lifetimes: int, lifetime_s: float) -> None:
    """The "Done when" run: a worker with only ``CLERK_USER_ID`` through ``lifetimes``
    session lifetimes while events arrive; every check of issue 14 on the way."""
    org = service_user(stack, "Acme")
    recorder = Recorder()
    settings = Settings.from_env(user_env(stack, org))
    async with running(settings, registry=recorder.registry) as worker:
        first = session_of(worker)["session_id"]
        watch = await produce(stack, worker, org, lifetimes * lifetime_s + 2)
        await eventually(
            recorder.handled(watch.inserted), timeout_s=20, message="every event handled"
        )
        assert sorted(recorder.ids()) == sorted(watch.inserted)  # each exactly once
        assert worker.is_running
        assert watch.not_ready == []
        assert channel_closes(worker) == 0
        assert watch.max_active <= 2
        renewed = sample(worker, "realtime_worker_clerk_session_renewals_total", result="success")
        assert renewed >= lifetimes, session_of(worker)
        assert len(watch.sessions) >= lifetimes + 1
        current = session_of(worker)["session_id"]
    statuses = {s["id"]: s["status"] for s in stack.clerk.list_sessions(user_id=org.user_id)}
    assert statuses[current] == "active"
    assert statuses[first] == "revoked"
    assert {sid: st for sid, st in statuses.items() if sid != current} == dict.fromkeys(
        set(statuses) - {current}, "revoked"
    )
