"""Handler registration: the ``on`` decorator, ``HandlerRegistry`` and ``load_handlers``.

``@on(topic, event)`` only *marks* a function with its routes; nothing global is mutated
at import. ``load_handlers(paths, registry)`` imports each path and registers the marked
functions into the registry it is given, so two workers (or two tests) never share state.

* ``package.module`` registers every function defined in that module and marked with ``on``;
* ``package.module:function`` registers that function: its ``on`` routes if marked, else
  every event of every topic (``"*"``, ``"*"``).

Topic ``"*"`` means every subscribed topic; event ``"*"`` every event (case-insensitive,
like the Realtime client). ``on`` also carries the route's own policy: ``payload`` (a
pydantic model the payload is validated into, ``event.data``), ``timeout_s`` and
``max_attempts`` (overriding the worker's settings). ``validate(topics)`` reports every
problem at once as a ``ConfigError``: non-async handlers, unknown topics, duplicates,
invalid policies. Modules may also define ``Lifespan`` hooks (``worker.lifespan``); loading
a module collects them into ``registry.lifespans``.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Awaitable, Callable, Collection, Iterable
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel

from worker.errors import ConfigError
from worker.lifespan import Lifespan

if TYPE_CHECKING:
    from worker.context import Context
    from worker.events import Event

__all__ = ["Handler", "HandlerRegistry", "Policy", "Route", "load_handlers", "on"]

Handler = Callable[["Event", "Context"], Awaitable[None]]
H = TypeVar("H", bound=Callable[..., Any])

WILDCARD = "*"
_ROUTES_ATTR = "__worker_routes__"


@dataclass(frozen=True, slots=True)
class Policy:
    """A route's own policy; ``None`` means the worker's setting (or a plain dict payload)."""

    payload: type[BaseModel] | None = None
    timeout_s: float | None = None
    max_attempts: int | None = None

    def problems(self, name: str) -> list[str]:
        """What is wrong with this policy, each naming the handler and the fix."""
        found: list[str] = []
        # Read as plain objects: the annotations are what callers should pass, not a proof.
        payload: object = self.payload
        timeout: object = self.timeout_s
        attempts: object = self.max_attempts
        if payload is not None and not (
            isinstance(payload, type) and issubclass(payload, BaseModel)
        ):
            found.append(f"handler {name}: payload={payload!r} must be a pydantic BaseModel class")
        if timeout is not None and (
            isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout > 0
        ):
            found.append(f"handler {name}: timeout_s={timeout!r} must be a number of seconds > 0")
        if attempts is not None and (
            isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 1
        ):
            found.append(f"handler {name}: max_attempts={attempts!r} must be an integer >= 1")
        return found


_DEFAULT_POLICY = Policy()


@dataclass(frozen=True, slots=True)
class Route:
    """One registration: ``handler`` runs for ``event`` on ``topic`` (either may be ``*``),
    under ``policy``."""

    topic: str
    event: str
    handler: Handler
    name: str
    policy: Policy = _DEFAULT_POLICY

    def matches(self, topic: str, event: str) -> bool:
        """Whether this route wants ``event`` on ``topic``."""
        topic_ok = self.topic in (WILDCARD, topic)
        return topic_ok and (self.event == WILDCARD or self.event.lower() == event.lower())


def on(
    topic: str,
    event: str = WILDCARD,
    *,
    payload: type[BaseModel] | None = None,
    timeout_s: float | None = None,
    max_attempts: int | None = None,
) -> Callable[[H], H]:
    """Mark ``async def handler(event, ctx)`` to run for ``event`` on ``topic``.

    ``payload``: a pydantic model; the handler then reads the validated model as
    ``event.data`` and an invalid payload is dead-lettered at once (never retried, the
    handler never called). ``timeout_s`` and ``max_attempts`` override
    ``WORKER_HANDLER_TIMEOUT_SECONDS`` and ``WORKER_HANDLER_MAX_ATTEMPTS`` for this route.
    Stackable. The mark is read by ``load_handlers``/``HandlerRegistry.add_marked``;
    the policy is checked by ``HandlerRegistry.validate``, at start.
    """
    _check_route_names(topic, event)
    policy = Policy(payload, timeout_s, max_attempts)

    def mark(fn: H) -> H:
        # Decorators apply bottom-up; prepend so routes read in source order.
        routes = ((topic, event, policy), *getattr(fn, _ROUTES_ATTR, ()))
        setattr(fn, _ROUTES_ATTR, routes)
        return fn

    return mark


def _check_route_names(topic: str, event: str) -> None:
    if not isinstance(topic, str) or not topic or ":" in topic:
        raise ConfigError([f"handler topic {topic!r} must be a short topic name or '*'"])
    if not isinstance(event, str) or not event:
        raise ConfigError([f"handler event {event!r} must be an event name or '*'"])


def _name_of(fn: Callable[..., Any]) -> str:
    module = getattr(fn, "__module__", "?")
    qualname = getattr(fn, "__qualname__", type(fn).__name__)
    return f"{module}.{qualname}"


def _is_async(fn: object) -> bool:
    if inspect.iscoroutinefunction(fn):
        return True
    # Instances with an async __call__ (e.g. a configured WebhookHandler) qualify too.
    return not inspect.isroutine(fn) and inspect.iscoroutinefunction(
        getattr(fn, "__call__", None)  # noqa: B004 - we need the bound method itself
    )


class HandlerRegistry:
    """Routes (topic, event) pairs to handlers; validated once, before the worker starts."""

    #: Lookups remembered per (topic, event); event names come off the wire, so bounded.
    CACHE_SIZE = 1024

    def __init__(self) -> None:
        self._routes: list[Route] = []
        self._cache: dict[tuple[str, str], tuple[Route, ...]] = {}
        #: The ``Lifespan`` hooks of the loaded modules, opened before dispatch starts.
        self.lifespans: list[Lifespan[Any]] = []

    def on(
        self,
        topic: str,
        event: str = WILDCARD,
        *,
        payload: type[BaseModel] | None = None,
        timeout_s: float | None = None,
        max_attempts: int | None = None,
    ) -> Callable[[H], H]:
        """Decorator registering directly into this registry (also marks the function)."""
        marker = on(topic, event, payload=payload, timeout_s=timeout_s, max_attempts=max_attempts)

        def register(fn: H) -> H:
            self.add(topic, event, fn, Policy(payload, timeout_s, max_attempts))
            return marker(fn)

        return register

    def add(
        self,
        topic: str,
        event: str,
        handler: Callable[..., Any],
        policy: Policy = _DEFAULT_POLICY,
    ) -> None:
        """Register ``handler``; problems are reported by ``validate``."""
        _check_route_names(topic, event)
        self._routes.append(Route(topic, event, handler, _name_of(handler), policy))
        self._cache.clear()

    def add_marked(self, fn: Callable[..., Any]) -> int:
        """Register ``fn`` under its ``on`` marks, or for everything if unmarked."""
        routes: tuple[tuple[str, str, Policy], ...] = getattr(
            fn, _ROUTES_ATTR, ((WILDCARD, WILDCARD, _DEFAULT_POLICY),)
        )
        for topic, event, policy in routes:
            self.add(topic, event, fn, policy)
        return len(routes)

    def add_lifespan(self, hook: Lifespan[Any]) -> None:
        """Open ``hook`` before dispatch starts and close it after the drain (once)."""
        if hook not in self.lifespans:
            self.lifespans.append(hook)

    @property
    def routes(self) -> tuple[Route, ...]:
        """Every registration, in order."""
        return tuple(self._routes)

    def handlers_for(self, topic: str, event: str) -> tuple[Route, ...]:
        """The routes that run for this event, in registration order."""
        key = (topic, event)
        found = self._cache.get(key)
        if found is None:
            found = tuple(r for r in self._routes if r.matches(topic, event))
            if len(self._cache) >= self.CACHE_SIZE:
                self._cache.clear()
            self._cache[key] = found
        return found

    def validate(self, topics: Collection[str]) -> None:
        """Raise ``ConfigError`` listing every non-async, unknown-topic or duplicate route."""
        problems: list[str] = []
        seen: set[tuple[str, str, int]] = set()
        for route in self._routes:
            if not _is_async(route.handler):
                problems.append(f"handler {route.name} must be 'async def handler(event, ctx)'")
            problems.extend(route.policy.problems(route.name))
            if route.topic != WILDCARD and route.topic not in topics:
                problems.append(
                    f"handler {route.name} listens on topic {route.topic!r}, which is not "
                    f"in WORKER_TOPICS ({', '.join(sorted(topics)) or 'empty'})"
                )
            key = (route.topic, route.event.lower(), id(route.handler))
            if key in seen:
                problems.append(
                    f"handler {route.name} is registered twice for {route.topic}/{route.event}"
                )
            seen.add(key)
        if problems:
            raise ConfigError(problems)


def load_handlers(
    import_paths: Iterable[str], registry: HandlerRegistry | None = None
) -> HandlerRegistry:
    """Import each ``package.module[:function]`` and register its handlers.

    Every failing path is reported at once in one ``ConfigError`` naming the path.
    """
    registry = registry if registry is not None else HandlerRegistry()
    problems: list[str] = []
    for path in import_paths:
        try:
            _load_one(path.strip(), registry)
        except ConfigError as exc:
            problems.extend(exc.problems)
    if problems:
        raise ConfigError(problems)
    return registry


def _load_one(path: str, registry: HandlerRegistry) -> None:
    module_name, _, attr = path.partition(":")
    module = _import(path, module_name)
    for value in vars(module).values():
        if isinstance(value, Lifespan):  # what the module's handlers need open
            registry.add_lifespan(value)
    if attr:
        fn = getattr(module, attr, None)
        if fn is None or not callable(fn):
            raise ConfigError([f"WORKER_HANDLERS {path!r}: {module_name} has no callable {attr}"])
        registry.add_marked(fn)
        return
    if not _register_marked_in(module, registry):
        raise ConfigError(
            [f"WORKER_HANDLERS {path!r}: the module defines no function decorated with @on"]
        )


def _import(path: str, module_name: str) -> ModuleType:
    if not module_name:
        raise ConfigError([f"WORKER_HANDLERS {path!r}: expected 'package.module[:function]'"])
    try:
        return importlib.import_module(module_name)
    except Exception as exc:  # any import-time failure is a configuration problem
        raise ConfigError(
            [f"WORKER_HANDLERS {path!r}: importing {module_name} failed: {exc!r}"]
        ) from exc


def _register_marked_in(module: ModuleType, registry: HandlerRegistry) -> int:
    count = 0
    for value in vars(module).values():
        # Only functions defined here: a re-exported handler would otherwise run twice.
        if hasattr(value, _ROUTES_ATTR) and getattr(value, "__module__", None) == module.__name__:
            count += registry.add_marked(value)
    return count
