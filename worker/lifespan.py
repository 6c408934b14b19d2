"""Resources with a lifecycle: a handler module's ``Lifespan`` hooks.

A handler that needs a pool or an HTTP client defines, in its module::

    @lifespan
    def client(settings: Settings) -> AbstractAsyncContextManager[httpx.AsyncClient]:
        url = read_my_settings(settings.environ)  # raise ConfigError: the worker exits 2
        return httpx.AsyncClient(base_url=url)     # opened before dispatch, closed after

and reads the opened value, typed, with ``ctx.resource(client)``. Calling the setup is
the *configure* step, run when the worker is built (before it connects anywhere): a
``ConfigError`` there exits 2 like any other setting. Entering the returned async context
manager is the *open* step, run before dispatch starts; a failure there stops the worker
with ``ResourceError`` (exit 1, naming the hook and the reason). Hooks close in reverse
order after the drain, each even if another failed.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from worker.errors import ConfigError, ResourceError

if TYPE_CHECKING:
    from worker.settings import Settings

__all__ = ["Lifespan", "Resources", "lifespan"]

T = TypeVar("T")


class Lifespan(Generic[T]):
    """A module's resource: ``setup(settings)`` validates and returns the async context
    manager whose value handlers read with ``ctx.resource(hook)``."""

    def __init__(
        self, setup: Callable[[Settings], AbstractAsyncContextManager[T]], name: str = ""
    ) -> None:
        self.setup = setup
        self.name = name or f"{setup.__module__}.{setup.__qualname__}"

    def __repr__(self) -> str:
        return f"Lifespan({self.name})"


def lifespan(setup: Callable[[Settings], AbstractAsyncContextManager[T]]) -> Lifespan[T]:
    """Decorator: make ``setup`` a module's ``Lifespan`` (found by ``load_handlers``)."""
    return Lifespan(setup)


class Resources:
    """The lifespans of one worker: configured at build, opened around dispatch."""

    def __init__(self) -> None:
        self._configured: list[tuple[Lifespan[Any], AbstractAsyncContextManager[Any]]] = []
        self._values: dict[Lifespan[Any], Any] = {}

    def configure(self, hooks: Iterable[Lifespan[Any]], settings: Settings) -> None:
        """Run every hook's setup; ``ConfigError`` listing every problem at once."""
        problems: list[str] = []
        for hook in hooks:
            try:
                self._configured.append((hook, hook.setup(settings)))
            except ConfigError as exc:
                problems.extend(exc.problems)
        if problems:
            raise ConfigError(problems)

    def describe(self) -> list[tuple[str, str]]:
        """``(hook name, repr of what it will open)``: shown by ``check``, so the
        managers' reprs must hide secrets (``SecretStr``)."""
        return [(hook.name, repr(manager)) for hook, manager in self._configured]

    @contextlib.asynccontextmanager
    async def opened(self) -> AsyncIterator[Resources]:
        """Open every configured hook in order; close them in reverse on leaving."""
        async with contextlib.AsyncExitStack() as stack:
            for hook, manager in self._configured:
                try:
                    self._values[hook] = await stack.enter_async_context(manager)
                except Exception as exc:
                    raise ResourceError(f"{hook.name} failed to start: {exc!r}") from exc
                stack.callback(self._values.pop, hook, None)
            yield self

    def provide(self, hook: Lifespan[T], value: T) -> None:
        """Use ``value`` as ``hook``'s, without running its setup (tests: a fake client)."""
        self._values[hook] = value

    def get(self, hook: Lifespan[T]) -> T:
        """The opened value of ``hook``; ``ResourceError`` if it is not open."""
        try:
            value: T = self._values[hook]
        except KeyError:
            raise ResourceError(
                f"{hook.name} is not open: load its module through WORKER_HANDLERS (or the "
                "harness), and read resources only while the worker runs"
            ) from None
        return value
