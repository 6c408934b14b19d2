"""Composition: build one organization's parts from ``Settings`` and wire them together.

``compose()`` is the only place that knows every part. It returns a frozen
``Components`` whose ``children`` the app starts in order, each reporting ready before
the next: the token manager (first verified token), the dispatcher, delivery (catch-up and
checkpoints), the supervisor (first join attempt on every channel), the HTTP server
(bound port). Nothing here does I/O: building is cheap and cannot fail half-way.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import Any

import anyio
import httpx
from anyio.abc import TaskStatus
from postgrest import AsyncPostgrestClient
from prometheus_client import CollectorRegistry
from storage3 import AsyncStorageClient

from worker.clock import Clock
from worker.context import ContextFactory, make_data_client
from worker.delivery import Delivery, Ledger, finisher
from worker.dispatch import Dispatcher
from worker.lifespan import Resources
from worker.observe import HealthChecks, HttpServer, Metrics
from worker.realtime import Intake, RealtimeAdapter, Supervisor, SupervisorTiming
from worker.registry import HandlerRegistry
from worker.settings import Settings
from worker.storage import make_storage_client
from worker.tokens import Token, TokenManager, TokenSource, TokenVerifier, source_from_settings
from worker.tokens.sessions import SessionKeeper, managed_session

__all__ = ["Components", "Options", "compose"]


@dataclass(frozen=True)
class Options:
    """What tests and embedders may swap; everything else comes from ``Settings``."""

    registry: HandlerRegistry
    clock: Clock
    metrics_registry: CollectorRegistry
    token_source: TokenSource | None = None
    supervisor_timing: SupervisorTiming | None = None  # tests shrink backoffs and floors
    resources: Resources = dataclasses.field(default_factory=Resources)  # handler lifespans


@dataclass(frozen=True)
class Components:
    """One organization's running parts, in start order."""

    tokens: TokenManager
    data: AsyncPostgrestClient
    dispatcher: Dispatcher
    delivery: Delivery
    supervisor: Supervisor
    server: HttpServer
    checks: HealthChecks
    storage: AsyncStorageClient
    sessions: SessionKeeper | None = None  # with CLERK_USER_ID: the worker's own session

    @property
    def children(self) -> tuple[Callable[..., Coroutine[Any, Any, Any]], ...]:
        """The ``run``/``serve`` methods the app starts, in order (the tokens first: the
        session keeper, if any, and the token manager; nothing else starts without a
        verified token)."""
        return (
            self.run_tokens,
            self.dispatcher.run,
            self.delivery.run,
            self.supervisor.run,
            self.server.serve,
        )

    async def run_tokens(
        self, *, task_status: TaskStatus[Token] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """The session keeper (when the worker keeps its own session), then the token
        manager; reports the first verified token."""
        if self.sessions is None:
            await self.tokens.run(task_status=task_status)
            return
        async with anyio.create_task_group() as tg:
            await tg.start(self.sessions.run)
            task_status.started(await tg.start(self.tokens.run))

    def status(self) -> dict[str, Any]:
        """Each part's statistics for ``/status``: no token text, no secrets."""
        session = {"session": self.sessions.statistics()} if self.sessions else {}
        return session | {
            "token": self.tokens.statistics(),
            "realtime": dataclasses.asdict(self.supervisor.statistics()),
            "dispatch": dataclasses.asdict(self.dispatcher.statistics()),
            "delivery": self.delivery.statistics(),
        }


def compose(
    s: Settings,
    opts: Options,
    *,
    metrics: Metrics,
    http: httpx.AsyncClient,
    checks: HealthChecks,
    status: Callable[[], Mapping[str, Any]],
) -> Components:
    """Build and wire every part for ``s`` (no I/O); health checks go into ``checks``."""
    tokens, keeper = _token_manager(s, opts, metrics, http)
    anon_key = s.supabase_anon_key.get_secret_value()
    data = make_data_client(s.supabase_url, anon_key, tokens)
    storage = make_storage_client(s.supabase_url, anon_key, tokens)
    adapter = RealtimeAdapter(
        url=f"{s.supabase_url}/realtime/v1",
        apikey=anon_key,
        join_timeout_s=s.realtime_join_timeout_s,
        heartbeat_s=s.realtime_heartbeat_s,
        clock=opts.clock,
    )
    ledger = Ledger(settle_s=s.settle_s)
    contexts = _contexts(s, opts, data, adapter, storage)
    dispatcher = _dispatcher(s, opts, metrics, contexts, ledger)
    delivery = Delivery(
        s, data, ledger=ledger, put=dispatcher.put, clock=opts.clock, metrics=metrics
    )
    supervisor = _supervisor(
        s,
        opts,
        metrics=metrics,
        adapter=adapter,
        tokens=tokens,
        dispatcher=dispatcher,
        delivery=delivery,
    )
    _add_checks(checks, tokens, supervisor)
    server = HttpServer(opts.metrics_registry, checks, status, host=s.http_host, port=s.http_port)
    parts = (tokens, data, dispatcher, delivery, supervisor, server, checks, storage)
    return Components(*parts, sessions=keeper)


def _contexts(
    s: Settings,
    opts: Options,
    data: AsyncPostgrestClient,
    adapter: RealtimeAdapter,
    storage: AsyncStorageClient,
) -> ContextFactory:
    """The handlers' contexts, reading the handler modules' lifespans (opened by the app)."""
    return ContextFactory(
        org_id=s.org_id,
        data=data,
        broadcaster=adapter,
        storage=storage,
        resources=opts.resources,
    )


def _dispatcher(
    s: Settings, opts: Options, metrics: Metrics, contexts: ContextFactory, ledger: Ledger
) -> Dispatcher:
    return Dispatcher(
        registry=opts.registry,
        context_factory=contexts,
        clock=opts.clock,
        concurrency=s.concurrency,
        queue_size=s.queue_size,
        handler_timeout_s=s.handler_timeout_s,
        max_attempts=s.handler_max_attempts,
        metrics=metrics,
        on_done=finisher(ledger),
    )


def _token_manager(
    s: Settings, opts: Options, metrics: Metrics, http: httpx.AsyncClient
) -> tuple[TokenManager, SessionKeeper | None]:
    verifier = TokenVerifier(
        s.clerk_jwks_url, s.clerk_issuer, s.org_id, http, opts.clock, role=s.token_role
    )
    keeper, source = None, opts.token_source
    if source is None and s.clerk_user_id is not None and s.token_file is None:
        keeper, source = managed_session(
            s, http=http, verifier=verifier, clock=opts.clock, metrics=metrics
        )
    manager = TokenManager(
        source or source_from_settings(s, http),
        verifier,
        opts.clock,
        refresh_margin_s=s.token_refresh_margin_s,
        metrics=metrics,
    )
    return manager, keeper


def _supervisor(
    s: Settings,
    opts: Options,
    *,
    metrics: Metrics,
    adapter: RealtimeAdapter,
    tokens: TokenManager,
    dispatcher: Dispatcher,
    delivery: Delivery,
) -> Supervisor:
    intake = Intake(
        org_id=s.org_id,
        topics=s.topics,
        offer=dispatcher.offer,
        clock=opts.clock,
        metrics=metrics,
        gate=delivery.catchup,
    )
    supervisor = Supervisor(
        link=adapter,
        org_id=s.org_id,
        topics=s.topics,
        tokens=tokens,
        sink=intake,
        clock=opts.clock,
        metrics=metrics,
        on_joined=delivery.catchup.on_joined,
        timing=opts.supervisor_timing,
    )
    tokens.add_listener(supervisor.on_token)
    return supervisor


def _add_checks(checks: HealthChecks, tokens: TokenManager, supervisor: Supervisor) -> None:
    checks.add("token.fresh", tokens.check_fresh)
    checks.add(
        "realtime.connected",
        lambda: None if supervisor.statistics().connected else "socket not connected",
    )

    def channels_joined() -> str | None:
        down = [
            f"{c.topic}={c.state}" for c in supervisor.statistics().channels if c.state != "joined"
        ]
        return f"not joined: {', '.join(down)}" if down else None

    checks.add("channels.joined", channels_joined)
