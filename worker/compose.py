"""Composition: build one organization's parts from ``Settings`` and wire them together.

``compose()`` is the only place that knows every part. It returns a frozen
``Components`` whose ``children`` the app starts in order, each reporting ready before
the next: the token manager (first verified token), leadership (the lease, and the term
it leads: the dispatcher, delivery's catch-up and checkpoints; ``worker.terms``), the
supervisor (first join attempt on every channel), the HTTP server (bound port). Nothing
here does I/O: building is cheap and cannot fail half-way.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import uuid
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
from worker.context import make_data_client
from worker.delivery import Delivery
from worker.dispatch import Dispatcher
from worker.lease import Leadership, LeaseStore
from worker.lifespan import Resources
from worker.observe import HealthChecks, HttpServer, Metrics
from worker.realtime import RealtimeAdapter, Supervisor, SupervisorTiming
from worker.registry import HandlerRegistry
from worker.settings import Settings
from worker.storage import make_storage_client
from worker.terms import OrgTerm, TermFactory
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
    leadership: Leadership[OrgTerm]
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
            self.leadership.run,
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

    @property
    def dispatcher(self) -> Dispatcher | None:
        """The leading term's dispatcher (None on a standby)."""
        term = self.leadership.term
        return term.dispatcher if term is not None else None

    @property
    def delivery(self) -> Delivery | None:
        """The leading term's catch-up and checkpoints (None on a standby)."""
        term = self.leadership.term
        return term.delivery if term is not None else None

    def status(self) -> dict[str, Any]:
        """Each part's statistics for ``/status``: no token text, no secrets."""
        dispatcher, delivery = self.dispatcher, self.delivery
        session = {"session": self.sessions.statistics()} if self.sessions else {}
        return session | {
            "token": self.tokens.statistics(),
            "realtime": dataclasses.asdict(self.supervisor.statistics()),
            "lease": dataclasses.asdict(self.leadership.statistics()),
            "dispatch": dataclasses.asdict(dispatcher.statistics()) if dispatcher else None,
            "delivery": delivery.statistics() if delivery else None,
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
    terms = TermFactory(
        s, opts.registry, opts.clock, metrics, data, storage, adapter, opts.resources
    )
    leadership = _leadership(s, opts, metrics, data, terms)
    supervisor = _supervisor(
        s, opts, metrics=metrics, adapter=adapter, tokens=tokens, leadership=leadership
    )
    _add_checks(checks, tokens, supervisor)
    server = HttpServer(opts.metrics_registry, checks, status, host=s.http_host, port=s.http_port)
    parts = (tokens, data, leadership, supervisor, server, checks, storage)
    return Components(*parts, sessions=keeper)


def _leadership(
    s: Settings, opts: Options, metrics: Metrics, data: AsyncPostgrestClient, terms: TermFactory
) -> Leadership[OrgTerm]:
    store = None
    if s.lease_enabled:
        holder = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        store = LeaseStore(data, consumer=s.consumer, holder=holder, ttl_s=s.lease_ttl_s)
    return Leadership(
        new_term=terms,
        store=store,
        clock=opts.clock,
        renew_s=s.lease_renew_s,
        ttl_s=s.lease_ttl_s,
        metrics=metrics,
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
    leadership: Leadership[OrgTerm],
) -> Supervisor:
    supervisor = Supervisor(
        link=adapter,
        org_id=s.org_id,
        topics=s.topics,
        tokens=tokens,
        sink=leadership.sink,
        clock=opts.clock,
        metrics=metrics,
        on_joined=leadership.on_joined,
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
