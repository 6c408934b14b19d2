"""``Worker``: one organization's token manager, Realtime supervisor, dispatcher, outbox
delivery and HTTP.

``run()`` owns one task group. Children start in order, each reporting ready before the
next: the token manager (first verified token), the dispatcher, delivery (catch-up and
checkpoints; ready at once, the checkpoint loads in the background), the supervisor (first
join attempt on every channel), the HTTP server (bound port). A crash in any child ends
``run()`` with that error. Shutdown is staged: stop catch-up, stop intake and let in-flight
handlers finish within the grace period, save the checkpoint, leave channels and close the
socket, stop HTTP last.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import Mapping
from typing import Any

import anyio
import httpx
from anyio.abc import TaskGroup, TaskStatus
from postgrest import AsyncPostgrestClient
from prometheus_client import CollectorRegistry

from worker import __version__
from worker._intake import Intake
from worker._realtime import RealtimeAdapter
from worker.catchup import finisher
from worker.checkpoint import Delivery
from worker.clock import Clock, SystemClock
from worker.context import ContextFactory, make_data_client
from worker.delivery import Ledger
from worker.dispatch import Dispatcher
from worker.errors import sole_error
from worker.http import HealthChecks, HttpServer
from worker.metrics import Metrics
from worker.registry import HandlerRegistry, load_handlers
from worker.settings import Settings
from worker.supervisor import Supervisor, SupervisorTiming
from worker.tokens import TokenManager, TokenSource, TokenVerifier, source_from_settings

_log = logging.getLogger("worker.app")
CLOSE_TIMEOUT_S = 10.0


class Worker:
    """Serves one organization until ``stop`` is set; see the module docstring."""

    def __init__(
        self,
        settings: Settings,
        *,
        registry: HandlerRegistry | None = None,
        clock: Clock | None = None,
        metrics_registry: CollectorRegistry | None = None,
        token_source: TokenSource | None = None,
        supervisor_timing: SupervisorTiming | None = None,
    ) -> None:
        self.settings = settings
        self._supervisor_timing = supervisor_timing  # tests shrink backoffs and floors
        self.handlers = registry or load_handlers(settings.handlers)
        self.handlers.validate(settings.topics)  # fail at start, not at the first event
        self.clock = clock or SystemClock()
        self.metrics_registry = metrics_registry or CollectorRegistry()
        self.metrics = Metrics(self.metrics_registry, org_id=settings.org_id, version=__version__)
        self.metrics.init_topics(settings.topics)
        self._token_source = token_source
        self.checks = HealthChecks()
        self.http_port: int | None = None
        self.tokens: TokenManager | None = None
        self.supervisor: Supervisor | None = None
        self.dispatcher: Dispatcher | None = None
        self.delivery: Delivery | None = None

    async def run(
        self, stop: anyio.Event, *, task_status: TaskStatus[int] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Run until ``stop`` is set, then shut down in stages. Reports the HTTP port.

        A failure of one child is raised as itself, not inside an ``ExceptionGroup``.
        """
        try:
            await self._run(stop, task_status)
        except BaseExceptionGroup as group:
            error = sole_error(group)
            if error is None:
                raise
            raise error from None

    async def _run(self, stop: anyio.Event, task_status: TaskStatus[int]) -> None:
        s = self.settings
        async with contextlib.AsyncExitStack() as resources:
            http = await resources.enter_async_context(httpx.AsyncClient(timeout=15.0))
            tokens = self._token_manager(http)
            data = make_data_client(s.supabase_url, s.supabase_anon_key.get_secret_value(), tokens)
            await resources.enter_async_context(data)  # closed after every child has ended
            tg = await resources.enter_async_context(anyio.create_task_group())
            await tg.start(tokens.run)
            adapter = RealtimeAdapter(
                url=f"{s.supabase_url}/realtime/v1",
                apikey=s.supabase_anon_key.get_secret_value(),
                join_timeout_s=s.realtime_join_timeout_s,
                heartbeat_s=s.realtime_heartbeat_s,
            )
            ledger = Ledger(settle_s=s.settle_s)
            dispatcher = self._dispatcher(data, adapter, ledger)
            await tg.start(dispatcher.run)
            delivery = Delivery(
                s, data, ledger=ledger, put=dispatcher.put, clock=self.clock, metrics=self.metrics
            )
            self.delivery = delivery
            await tg.start(delivery.run)
            intake = Intake(
                org_id=s.org_id,
                topics=s.topics,
                offer=dispatcher.offer,
                clock=self.clock,
                metrics=self.metrics,
                gate=delivery.catchup,
            )
            supervisor = Supervisor(
                link=adapter,
                org_id=s.org_id,
                topics=s.topics,
                tokens=tokens,
                sink=intake,
                clock=self.clock,
                metrics=self.metrics,
                on_joined=delivery.catchup.on_joined,
                timing=self._supervisor_timing,
            )
            tokens.add_listener(supervisor.on_token)
            self.tokens, self.dispatcher, self.supervisor = tokens, dispatcher, supervisor
            await tg.start(supervisor.run)
            self._register_checks(tokens, supervisor)
            server = HttpServer(
                self.metrics_registry, self.checks, self.status, host=s.http_host, port=s.http_port
            )
            self.http_port = await tg.start(server.serve)
            _log.info(
                "worker started",
                extra={"http_port": self.http_port, "topics": list(s.channel_topics)},
            )
            task_status.started(self.http_port)
            await stop.wait()
            await self._shutdown(tg, dispatcher, delivery, supervisor)

    def _token_manager(self, http: httpx.AsyncClient) -> TokenManager:
        s = self.settings
        source = self._token_source or source_from_settings(s, http)
        verifier = TokenVerifier(s.clerk_jwks_url, s.clerk_issuer, s.org_id, http, self.clock)
        return TokenManager(
            source,
            verifier,
            self.clock,
            refresh_margin_s=s.token_refresh_margin_s,
            metrics=self.metrics,
        )

    def _dispatcher(
        self, data: AsyncPostgrestClient, adapter: RealtimeAdapter, ledger: Ledger
    ) -> Dispatcher:
        s = self.settings
        contexts = ContextFactory(org_id=s.org_id, data=data, broadcaster=adapter)
        return Dispatcher(
            registry=self.handlers,
            context_factory=contexts,
            clock=self.clock,
            concurrency=s.concurrency,
            queue_size=s.queue_size,
            handler_timeout_s=s.handler_timeout_s,
            max_attempts=s.handler_max_attempts,
            metrics=self.metrics,
            on_done=finisher(ledger),
        )

    def _register_checks(self, tokens: TokenManager, supervisor: Supervisor) -> None:
        self.checks.add("token.fresh", tokens.check_fresh)
        self.checks.add(
            "realtime.connected",
            lambda: None if supervisor.statistics().connected else "socket not connected",
        )
        self.checks.add("channels.joined", self._channels_check)

    def _channels_check(self) -> str | None:
        assert self.supervisor is not None
        down = [
            f"{c.topic}={c.state}"
            for c in self.supervisor.statistics().channels
            if c.state != "joined"
        ]
        return f"not joined: {', '.join(down)}" if down else None

    def status(self) -> Mapping[str, Any]:
        """A JSON-able snapshot for ``/status``: no token text, no secrets."""
        out: dict[str, Any] = {
            "org_id": self.settings.org_id,
            "version": __version__,
            "failed_checks": self.checks.failures(),
        }
        if self.tokens is not None:
            out["token"] = self.tokens.statistics()
        if self.supervisor is not None:
            out["realtime"] = dataclasses.asdict(self.supervisor.statistics())
        if self.dispatcher is not None:
            out["dispatch"] = dataclasses.asdict(self.dispatcher.statistics())
        if self.delivery is not None:
            out["delivery"] = self.delivery.statistics()
        return out

    async def _shutdown(
        self, tg: TaskGroup, dispatcher: Dispatcher, delivery: Delivery, supervisor: Supervisor
    ) -> None:
        grace = self.settings.shutdown_grace_s
        _log.info("stopping: draining in-flight handlers", extra={"grace_s": grace})
        delivery.stop_catchup()  # no new puts: what is not queued yet is read after restart
        with anyio.CancelScope(shield=True):
            steps = (dispatcher.drain(grace), delivery.final_save(), supervisor.close())
            for step in steps:
                with anyio.move_on_after(grace + CLOSE_TIMEOUT_S):
                    try:
                        await step
                    except Exception:
                        _log.exception("a shutdown step failed; continuing")
        stats = dispatcher.statistics()
        _log.info(
            "worker stopped",
            extra={"handled": stats.succeeded, "dead_lettered": stats.dead_lettered},
        )
        tg.cancel_scope.cancel()
