"""The ``Context`` handed to each handler call, and the data API client it carries.

The data API client is one ``postgrest.AsyncPostgrestClient`` for the whole process. Its
httpx client reads the *current* Clerk token in a request hook on every request, so a
rotated token is used at once and no request ever carries a token that was replaced. The
Storage client (``worker.storage``) is shared the same way.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import httpx
from postgrest import AsyncPostgrestClient
from storage3 import AsyncStorageClient

from worker.errors import DataApiError, StorageError
from worker.events import Event, channel_topic
from worker.lifespan import Lifespan, Resources
from worker.ports import TokenProvider
from worker.storage import OrgFiles

__all__ = ["Broadcaster", "Context", "ContextFactory", "EventLogger", "make_data_client"]

_log = logging.getLogger("worker.handler")
T = TypeVar("T")


class Broadcaster(Protocol):
    """Sends a broadcast on a full channel topic (``org:<org>:<topic>``)."""

    async def broadcast(self, channel_topic: str, event: str, payload: Mapping[str, Any]) -> None:
        """Send; raise ``RealtimeError`` when it could not be sent."""


class EventLogger(logging.LoggerAdapter[logging.Logger]):
    """A logger adapter whose records carry org, topic, event and event id as fields."""

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, Any]:
        extra = dict(self.extra or {})
        extra.update(kwargs.get("extra") or {})
        kwargs["extra"] = extra
        return msg, kwargs


@dataclass(frozen=True, slots=True)
class Context:
    """What a handler may use besides the event itself.

    ``data`` is the shared PostgREST client, already authorized with the current token;
    ``storage`` the shared Storage client (storage3) likewise, and ``files`` this org's
    folder of the ``org-files`` bucket; ``attempt`` is 1 on the first call and grows on
    retries; ``resource(hook)`` the opened value of a module's ``Lifespan``; ``epoch`` the
    lease epoch this worker leads under (a fencing token that only grows;
    ``docs/reliability.md``), None with the lease disabled.
    """

    org_id: str
    event: Event
    log: EventLogger
    data: AsyncPostgrestClient
    _broadcaster: Broadcaster = field(repr=False)
    attempt: int = 1
    _storage: AsyncStorageClient | None = field(default=None, repr=False)
    epoch: int | None = None
    _resources: Resources = field(default_factory=Resources, repr=False)

    def resource(self, hook: Lifespan[T]) -> T:
        """The value ``hook`` opened, typed as its setup's manager yields it;
        ``ResourceError`` if it is not open."""
        return self._resources.get(hook)

    @property
    def storage(self) -> AsyncStorageClient:
        """The official Storage client (``storage.from_(bucket)``), sending the current
        token; ``StorageError`` if this context was built without one (unit tests)."""
        if self._storage is None:
            raise StorageError("this Context has no Storage client (built without one)")
        return self._storage

    @property
    def files(self) -> OrgFiles:
        """This org's folder ``<org_id>/`` of the ``org-files`` bucket: paths are relative
        to it, so a handler cannot name another org's folder (RLS refuses them anyway)."""
        return OrgFiles(self.storage, self.org_id)

    async def broadcast(self, topic: str, event: str, payload: Mapping[str, Any]) -> None:
        """Broadcast ``event`` with ``payload`` on this org's ``topic`` (a short name)."""
        if not topic or ":" in topic:
            raise ValueError(f"topic must be a short topic name, got {topic!r}")
        await self._broadcaster.broadcast(channel_topic(self.org_id, topic), event, payload)


class ContextFactory:
    """Builds one ``Context`` per handler attempt (``factory(event, attempt)``)."""

    def __init__(
        self,
        *,
        org_id: str,
        data: AsyncPostgrestClient,
        broadcaster: Broadcaster,
        storage: AsyncStorageClient | None = None,
        logger: logging.Logger = _log,
        resources: Resources | None = None,
        epoch: int | None = None,
    ) -> None:
        self._org_id = org_id
        #: What ``ctx.resource(hook)`` reads: the worker's opened lifespans.
        self.resources = resources or Resources()
        self._data = data
        self._broadcaster = broadcaster
        self._storage = storage
        self._logger = logger
        self.epoch = epoch

    def __call__(self, event: Event, attempt: int) -> Context:
        fields = {
            "org_id": self._org_id,
            "topic": event.topic,
            "event": event.event,
            "event_id": event.event_id,
            "attempt": attempt,
        }
        return Context(
            org_id=self._org_id,
            event=event,
            log=EventLogger(self._logger, fields),
            data=self._data,
            attempt=attempt,
            _broadcaster=self._broadcaster,
            _storage=self._storage,
            _resources=self.resources,
            epoch=self.epoch,
        )


def make_data_client(
    supabase_url: str,
    anon_key: str,
    tokens: TokenProvider,
    *,
    timeout_s: float = 10.0,
    transport: httpx.AsyncBaseTransport | None = None,
) -> AsyncPostgrestClient:
    """A PostgREST client for ``<supabase_url>/rest/v1`` that sends the current token.

    ``apikey`` stays the anon key; ``Authorization: Bearer <jwt>`` is set per request from
    ``tokens.current``. With no token yet, requests fail with ``DataApiError``.
    ``transport`` is the test seam (``httpx.MockTransport``).
    """

    async def authorize(request: httpx.Request) -> None:
        token = tokens.current
        if token is None:
            raise DataApiError("no verified session token yet; the data API call was not sent")
        request.headers["Authorization"] = f"Bearer {token.jwt}"

    http = httpx.AsyncClient(
        timeout=timeout_s, event_hooks={"request": [authorize]}, transport=transport
    )
    return AsyncPostgrestClient(
        f"{supabase_url.rstrip('/')}/rest/v1", headers={"apikey": anon_key}, http_client=http
    )
