"""``HandlerHarness``: the user's handlers on the real dispatcher, with time skipped.

Retries, backoff, per-call timeouts, dead letters and the canonical log line are the
worker's own (``worker.dispatch.Dispatcher``); the clock is a ``FakeClock`` in autojump
mode, so a ``Retry(after_s=30)`` costs no wall time. Handler timeouts are kept by the event
loop's clock (real time), as in the worker: give a hanging handler a small ``timeout_s``.
Nothing touches the network: broadcasts and data API calls go to a ``Recorder``.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import ModuleType, TracebackType
from typing import Any

import anyio

from worker.dispatch import Dispatcher, HandledResult, Outcome
from worker.events import Event
from worker.lifespan import Lifespan, Resources
from worker.registry import HandlerRegistry, load_handlers
from worker.settings import SecretStr, Settings
from worker.testing.factories import (
    DATA_API_URL,
    ORG_ID,
    Broadcast,
    Recorder,
    Responder,
    context_factory,
    make_event,
)
from worker.testing.fakeclock import FakeClock
from worker.testing.metrics import RecordingMetrics

__all__ = ["Delivered", "HandlerHarness"]

Handlers = HandlerRegistry | str | ModuleType | Iterable[str | ModuleType]


@dataclass(frozen=True, slots=True)
class Delivered:
    """How one delivered event ended: ``outcome`` (``success``, ``dead_letter``,
    ``ignored``: the metrics' words), the number of handler ``attempts``, the dead-letter
    ``reason``, and ``failures``: each failed attempt's ``error`` or ``timeout``."""

    event: Event
    outcome: Outcome
    attempts: int
    reason: str | None
    failures: tuple[HandledResult, ...]


class HandlerHarness:
    """``async with HandlerHarness("my.handlers") as h: done = await h.deliver(...)``.

    ``handlers``: a ``HandlerRegistry``, or module paths / modules as in
    ``WORKER_HANDLERS``. ``environ`` is what their ``Lifespan`` setups read
    (``settings.environ``); ``resources`` replaces hooks by ready values (never set up).
    ``respond(request)`` answers the data API. ``timeout_s`` and ``max_attempts`` are the
    worker-wide defaults that ``@on(...)`` overrides.
    """

    def __init__(
        self,
        handlers: Handlers,
        *,
        topics: Iterable[str] = ("events",),
        org_id: str = ORG_ID,
        environ: Mapping[str, str] | None = None,
        resources: Mapping[Lifespan[Any], Any] | None = None,
        respond: Responder | None = None,
        timeout_s: float = 30.0,
        max_attempts: int = 5,
    ) -> None:
        self.registry = _registry(handlers)
        self.settings = Settings(
            supabase_url=DATA_API_URL,
            supabase_anon_key=SecretStr("anon-test"),
            org_id=org_id,
            clerk_jwks_url="http://clerk.test/.well-known/jwks.json",
            topics=tuple(topics),
            handler_timeout_s=timeout_s,
            handler_max_attempts=max_attempts,
            environ=dict(environ or {}),
        )
        self.registry.validate(self.settings.topics)  # what the worker checks at start
        self.clock = FakeClock(autojump=True)
        self.recorder = Recorder(respond=respond) if respond else Recorder()
        self.metrics = RecordingMetrics()
        self._resources = Resources()
        provided = dict(resources or {})
        for hook, value in provided.items():
            self._resources.provide(hook, value)
        todo = [hook for hook in self.registry.lifespans if hook not in provided]
        self._resources.configure(todo, self.settings)
        self._ids = itertools.count(1)
        self._waiting: dict[int, anyio.Event] = {}
        self._stack = contextlib.AsyncExitStack()
        self._dispatcher = self._build_dispatcher()

    @property
    def broadcasts(self) -> list[Broadcast]:
        """Every ``ctx.broadcast`` the handlers made, in order."""
        return self.recorder.broadcasts

    @property
    def requests(self) -> list[Any]:
        """Every data API request (``httpx.Request``) the handlers made, in order."""
        return self.recorder.requests

    @property
    def logs(self) -> list[logging.LogRecord]:
        """The handlers' ``ctx.log`` records and the dispatcher's lines, in order."""
        return self.recorder.logs

    def _build_dispatcher(self) -> Dispatcher:
        contexts = context_factory(
            self.recorder, org_id=self.settings.org_id, resources=self._resources
        )
        self._data = contexts(make_event(), 1).data
        return Dispatcher(
            registry=self.registry,
            context_factory=contexts,
            clock=self.clock,
            concurrency=1,
            handler_timeout_s=self.settings.handler_timeout_s,
            max_attempts=self.settings.handler_max_attempts,
            metrics=self.metrics,
            on_done=self._done,
            rng=random.Random(0),  # noqa: S311 - jitter for tests, not secrets
        )

    async def __aenter__(self) -> HandlerHarness:
        stack = self._stack
        await stack.enter_async_context(self._data)
        await stack.enter_async_context(self._resources.opened())
        stack.enter_context(_capturing(self.recorder.logger().handlers[0]))
        tg = await stack.enter_async_context(anyio.create_task_group())
        await tg.start(self._dispatcher.run)
        stack.push_async_callback(self._dispatcher.drain, 5.0)
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        return await self._stack.__aexit__(kind, exc, tb)

    async def deliver(
        self,
        topic: str = "events",
        event: str = "test.event",
        payload: Mapping[str, Any] | None = None,
        **fields: Any,
    ) -> Delivered:
        """Deliver one event (``make_event`` fields; a fresh ``event_id`` unless given)
        through the dispatcher and wait until it is done: handled, dead-lettered or
        ignored."""
        fields.setdefault("event_id", next(self._ids))
        fields.setdefault("org_id", self.settings.org_id)
        return await self.deliver_event(make_event(topic, event, payload, **fields))

    async def deliver_event(self, event: Event) -> Delivered:
        """Deliver ``event`` as it is (see ``deliver``)."""
        done = self._waiting[id(event)] = anyio.Event()
        mark = len(self.metrics.handled)
        if not await self._dispatcher.put(event):
            raise RuntimeError("the harness is not running: use 'async with HandlerHarness'")
        await done.wait()
        return _result(event, self.logs, self.metrics.handled[mark:])

    def _done(self, event: Event, outcome: Outcome) -> None:
        waiter = self._waiting.pop(id(event), None)
        if waiter is not None:
            waiter.set()


def _registry(handlers: Handlers) -> HandlerRegistry:
    if isinstance(handlers, HandlerRegistry):
        return handlers
    items = [handlers] if isinstance(handlers, str | ModuleType) else list(handlers)
    return load_handlers(i if isinstance(i, str) else i.__name__ for i in items)


@contextlib.contextmanager
def _capturing(handler: logging.Handler) -> Any:
    """Record the dispatcher's lines (logger ``worker``) at DEBUG while the harness runs."""
    logger = logging.getLogger("worker.dispatch")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def _result(event: Event, logs: list[logging.LogRecord], handled: list[HandledResult]) -> Delivered:
    """Read the event's canonical log line (the dispatcher's own account of it)."""
    key = event.idempotency_key
    for record in reversed(logs):
        if getattr(record, "idempotency_key", None) == key and hasattr(record, "outcome"):
            args = record.args if isinstance(record.args, tuple) else ()
            reason = str(args[0]) if record.levelno >= logging.ERROR and args else None
            failures = tuple(
                r for r in handled if r in (HandledResult.ERROR, HandledResult.TIMEOUT)
            )
            attempts = int(getattr(record, "attempts", 0))
            return Delivered(event, Outcome(record.outcome), attempts, reason, failures)
    raise AssertionError(f"no canonical log line for {key}")  # pragma: no cover
