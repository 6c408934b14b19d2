"""``Worker``: one organization's parts, run as one task group, with a lifecycle API.

``run()`` owns one task group. The parts (``compose``) start in order, each reporting
ready before the next: the token manager, leadership (the lease and the term it leads:
dispatcher, catch-up, checkpoints), the supervisor, the HTTP server (bound port). A crash
in any child ends ``run()`` with that error. Shutdown is staged: stop catch-up, stop
intake and let in-flight handlers finish within the grace period, save the checkpoint,
release the lease, leave channels and close the socket, stop HTTP last.

For embedding and tests, ``async with running(settings) as worker:`` starts a worker in
the current task, waits until it is ready, and shuts it down on leaving the block.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Mapping
from typing import Any

import anyio
import httpx
from anyio.abc import TaskGroup, TaskStatus
from prometheus_client import CollectorRegistry

from worker import __version__
from worker.clock import Clock, SystemClock
from worker.compose import Components, Options, compose
from worker.delivery import Delivery
from worker.dispatch import Dispatcher
from worker.errors import WorkerError, sole_error
from worker.lifespan import Resources
from worker.observe import HealthChecks, Metrics
from worker.realtime import Supervisor, SupervisorTiming
from worker.registry import HandlerRegistry, load_handlers
from worker.settings import Settings
from worker.tokens import TokenManager, TokenSource

__all__ = ["Worker", "running"]

_log = logging.getLogger("worker.app")
CLOSE_TIMEOUT_S = 10.0


class Worker:
    """Serves one organization until stopped; see the module docstring."""

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
        handlers = registry or load_handlers(settings.handlers)
        handlers.validate(settings.topics)  # fail at start, not at the first event
        resources = Resources()
        resources.configure(handlers.lifespans, settings)  # ConfigError: exit 2, no I/O yet
        self._options = Options(
            resources=resources,
            registry=handlers,
            clock=clock or SystemClock(),
            metrics_registry=metrics_registry or CollectorRegistry(),
            token_source=token_source,
            supervisor_timing=supervisor_timing,
        )
        self.metrics = Metrics(self.metrics_registry, org_id=settings.org_id, version=__version__)
        self.metrics.init_topics(settings.topics)
        self.checks = HealthChecks()
        self.http_port: int | None = None
        self._parts: Components | None = None
        self._stop = anyio.Event()
        self._done: anyio.Event | None = None

    @property
    def handlers(self) -> HandlerRegistry:
        """The handlers this worker dispatches to."""
        return self._options.registry

    @property
    def clock(self) -> Clock:
        """The one clock every part of this worker reads."""
        return self._options.clock

    @property
    def metrics_registry(self) -> CollectorRegistry:
        """The registry ``/metrics`` serves."""
        return self._options.metrics_registry

    @property
    def tokens(self) -> TokenManager | None:
        """The token manager, once running."""
        return self._parts.tokens if self._parts else None

    @property
    def dispatcher(self) -> Dispatcher | None:
        """The dispatcher, once running."""
        return self._parts.dispatcher if self._parts else None

    @property
    def delivery(self) -> Delivery | None:
        """Catch-up and checkpoints, once running."""
        return self._parts.delivery if self._parts else None

    @property
    def supervisor(self) -> Supervisor | None:
        """The Realtime supervisor, once running."""
        return self._parts.supervisor if self._parts else None

    @property
    def is_running(self) -> bool:
        """True from the start of ``run()`` until it has returned or raised."""
        return self._done is not None and not self._done.is_set()

    async def run(
        self,
        stop: anyio.Event | None = None,
        *,
        task_status: TaskStatus[int] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        """Run until ``stop`` is set or ``shutdown()`` is called, then shut down in stages.

        Reports the HTTP port through ``task_status``. A failure of one part is raised as
        itself, not inside an ``ExceptionGroup``. A worker runs once.
        """
        if self._done is not None:
            raise WorkerError("this Worker has already run; build a new one")
        self._done = anyio.Event()
        try:
            await self._run(stop or self._stop, task_status)
        except BaseExceptionGroup as group:
            error = sole_error(group)
            if error is None:
                raise
            raise error from None
        finally:
            self._done.set()

    async def shutdown(self) -> None:
        """Ask ``run()`` to shut down in stages and wait until it has; idempotent, and a
        no-op for a worker that never ran."""
        self._stop.set()
        if self._done is not None:
            await self._done.wait()

    async def wait_ready(self, timeout_s: float) -> None:
        """Wait until every health check passes; ``TimeoutError`` after ``timeout_s``."""
        with anyio.fail_after(timeout_s):
            while self._parts is None or self.checks.failures():  # noqa: ASYNC110 - polled state
                await anyio.sleep(0.05)

    async def _run(self, stop: anyio.Event, task_status: TaskStatus[int]) -> None:
        async with contextlib.AsyncExitStack() as resources:
            http = await resources.enter_async_context(httpx.AsyncClient(timeout=15.0))
            parts = compose(
                self.settings,
                self._options,
                metrics=self.metrics,
                http=http,
                checks=self.checks,
                status=self.status,
            )
            await resources.enter_async_context(parts.data)  # closed after every child ended
            await resources.enter_async_context(parts.storage)  # likewise: its httpx client
            # Handler modules' lifespans: open before dispatch, closed after the drain.
            await resources.enter_async_context(self._options.resources.opened())
            tg = await resources.enter_async_context(anyio.create_task_group())
            first, *rest = parts.children
            await tg.start(first)  # the first verified token, or why there is none
            self._parts = parts  # only a worker that got a token shows its parts
            started = [await tg.start(child) for child in rest]
            self.http_port = started[-1]
            topics = list(self.settings.channel_topics)
            _log.info("worker started", extra={"http_port": self.http_port, "topics": topics})
            task_status.started(self.http_port)
            await stop.wait()
            await self._shutdown(tg, parts)

    def status(self) -> Mapping[str, Any]:
        """A JSON-able snapshot for ``/status``: no token text, no secrets."""
        out: dict[str, Any] = {
            "org_id": self.settings.org_id,
            "version": __version__,
            "failed_checks": self.checks.failures(),
        }
        if self._parts is not None:
            out |= self._parts.status()
        return out

    async def _shutdown(self, tg: TaskGroup, parts: Components) -> None:
        grace = self.settings.shutdown_grace_s
        _log.info("stopping: draining in-flight handlers", extra={"grace_s": grace})
        term = parts.leadership.term  # None on a standby
        with anyio.CancelScope(shield=True):
            steps = (
                parts.leadership.shutdown(grace),  # drain, save, release the lease
                parts.supervisor.close(),
            )
            for step in steps:
                with anyio.move_on_after(grace + CLOSE_TIMEOUT_S):
                    try:
                        await step
                    except Exception:
                        _log.exception("a shutdown step failed; continuing")
        stats = term.dispatcher.statistics() if term is not None else None
        _log.info(
            "worker stopped",
            extra={
                "handled": stats.succeeded if stats else 0,
                "dead_lettered": stats.dead_lettered if stats else 0,
            },
        )
        tg.cancel_scope.cancel()


@contextlib.asynccontextmanager
async def running(
    settings: Settings,
    *,
    ready_timeout_s: float | None = 30.0,
    **options: Any,
) -> AsyncIterator[Worker]:
    """Run a ``Worker`` in the current task for the duration of the block.

    Yields once it has started (``worker.http_port`` bound) and, unless
    ``ready_timeout_s`` is None, once every health check passes. Leaving the block shuts
    it down in stages and waits for it. ``options`` are ``Worker``'s keyword arguments.
    A failure of the worker, or in the block, is raised as itself.
    """
    worker = Worker(settings, **options)
    try:
        async with anyio.create_task_group() as tg:
            await tg.start(worker.run)
            try:
                if ready_timeout_s is not None:
                    await worker.wait_ready(ready_timeout_s)
                yield worker
            finally:
                await worker.shutdown()
    except BaseExceptionGroup as group:
        error = sole_error(group)
        if error is None:
            raise
        raise error from None
