"""The worker against the whole local stack: real Postgres, migrations, RLS and stand-ins."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import AbstractAsyncContextManager

import anyio
import asyncpg
import pytest

import worker
from devstack.postgres import Server
from devstack.realtime.settings import RealtimeSettings
from devstack.stack import Stack, StackConfig
from worker import Context, Event, HandlerRegistry, Settings, Worker
from worker.realtime import SupervisorTiming


@pytest.fixture
async def stack(pg_server: Server) -> AsyncIterator[Stack]:
    config = StackConfig(
        database_url=pg_server.admin_url,
        port=0,
        realtime=RealtimeSettings(join_error_delay_s=0, connect_error_delay_s=0),
    )
    async with Stack(config) as running:
        yield running


@dataclasses.dataclass
class Org:
    org_id: str
    user_id: str
    session_id: str


def provision(stack: Stack, name: str, role: str = "org:worker") -> Org:
    """A Clerk org with a service user holding ``role`` and an active session in that org."""
    clerk = stack.clerk
    user = clerk.create_user(first_name=f"{name}-worker")
    org = clerk.create_organization(name)
    clerk.add_membership(org["id"], user["id"], role)
    session = clerk.create_session(user["id"], active_organization_id=org["id"])
    return Org(org["id"], user["id"], session["id"])


def worker_env(stack: Stack, org: Org, **overrides: str) -> dict[str, str]:
    """Settings for a worker of ``org`` on this stack, with short tokens."""
    env = {
        k: stack.env[k]
        for k in (
            "SUPABASE_URL",
            "CLERK_API_URL",
            "CLERK_SECRET_KEY",
            "CLERK_ISSUER",
            "CLERK_JWKS_URL",
        )
    }
    # The publishable key when the stack issues one, else its legacy anon key.
    key = stack.env.get("SUPABASE_PUBLISHABLE_KEY") or stack.env["SUPABASE_ANON_KEY"]
    env |= {
        "SUPABASE_PUBLISHABLE_KEY": key,
        "ORG_ID": org.org_id,
        "CLERK_SESSION_ID": org.session_id,
        "CLERK_TOKEN_EXPIRES_IN_SECONDS": "5",
        "WORKER_TOKEN_REFRESH_MARGIN_SECONDS": "2",
        "WORKER_HTTP_PORT": "0",
        "WORKER_HTTP_HOST": "127.0.0.1",
        "WORKER_SHUTDOWN_GRACE_SECONDS": "5",
        "WORKER_LOG_LEVEL": "INFO",
    }
    return env | overrides


def run_worker(
    stack: Stack,
    org: Org,
    registry: HandlerRegistry | None = None,
    *,
    ready_timeout_s: float | None = 30.0,
    supervisor_timing: SupervisorTiming | None = None,
    **env: str,
) -> AbstractAsyncContextManager[Worker]:
    """``worker.running`` for a worker of ``org`` on ``stack``, configured by
    ``worker_env(stack, org, **env)``: ``registry``'s handlers (else those ``WORKER_HANDLERS``
    names), ready within ``ready_timeout_s`` (None: only started), stopped on leaving."""
    return worker.running(
        Settings.from_env(worker_env(stack, org, **env)),
        ready_timeout_s=ready_timeout_s,
        registry=registry,
        supervisor_timing=supervisor_timing,
    )


async def insert_events(
    database_url: str, org_id: str, count: int, topic: str = "events", event: str = "task.created"
) -> list[int]:
    conn = await asyncpg.connect(database_url)
    try:
        return [
            await conn.fetchval(
                "insert into org_events (org_id, topic, event, payload) values ($1, $2, $3, $4) "
                "returning id",
                org_id,
                topic,
                event,
                json.dumps({"n": i}),
            )
            for i in range(count)
        ]
    finally:
        await conn.close()


async def insert_burst(database_url: str, org_id: str, count: int) -> list[int]:
    """``count`` events in one transaction: one burst of broadcasts at its commit."""
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            "insert into org_events (org_id, topic, event, payload) "
            "select $1, 'events', 'task.created', jsonb_build_object('n', n) "
            "from generate_series(1, $2) as n returning id",
            org_id,
            count,
        )
    finally:
        await conn.close()
    return [r["id"] for r in rows]


class Recorder:
    """A handler for every event of ``topics``: records each call when it starts (``events``)
    and when it finishes (``finished``), after ``delay_s`` of simulated work."""

    def __init__(self, topics: Iterable[str] = ("events",), delay_s: float = 0.0) -> None:
        self.events: list[Event] = []
        self.finished: list[Event] = []
        self.delay_s = delay_s
        self.registry = HandlerRegistry()
        for topic in topics:
            self.registry.add(topic, "*", self.handle)

    async def handle(self, event: Event, ctx: Context) -> None:
        self.events.append(event)
        if self.delay_s:
            await anyio.sleep(self.delay_s)  # simulated work
        self.finished.append(event)

    def ids(self, topic: str | None = None) -> list[int]:
        """Outbox ids of the calls started so far (of ``topic`` if given), in order."""
        return [
            e.event_id
            for e in self.events
            if e.event_id is not None and (topic is None or e.topic == topic)
        ]

    def finished_ids(self) -> set[int]:
        return {e.event_id for e in self.finished if e.event_id is not None}

    def handled(self, ids: Iterable[int]) -> Callable[[], bool]:
        """A condition for ``eventually``: every id in ``ids`` has been started."""
        wanted = set(ids)
        return lambda: wanted <= set(self.ids())
