"""``make_event``, ``make_context`` and ``Recorder``: a handler's inputs, and what it did.

For plain unit tests of one handler call; ``HandlerHarness`` (``worker.testing.harness``)
uses the same pieces around the real dispatcher. No network: data API requests go to an
in-memory ``httpx.MockTransport`` that the test answers, broadcasts are recorded.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from worker.context import Context, ContextFactory, make_data_client
from worker.events import Event, channel_topic
from worker.lifespan import Lifespan, Resources

__all__ = [
    "DATA_API_URL",
    "ORG_ID",
    "Broadcast",
    "Recorder",
    "make_context",
    "make_event",
]

#: The organization a test event belongs to unless told otherwise.
ORG_ID = "org_test"
#: Where the test data API client sends its requests (answered in memory, never sent).
DATA_API_URL = "http://data-api.test"

Responder = Callable[[httpx.Request], httpx.Response]


def make_event(
    topic: str = "events",
    event: str = "test.event",
    payload: Mapping[str, Any] | None = None,
    *,
    org_id: str = ORG_ID,
    event_id: int | None = 1,
    message_id: str | None = None,
    created_at: str | None = "2027-01-15T08:00:00+00:00",
    replayed: bool = False,
    received_at: float = 0.0,
) -> Event:
    """An ``Event`` as the worker would hand it to a handler (outbox-shaped by default)."""
    return Event(
        org_id=org_id,
        topic=topic,
        channel_topic=channel_topic(org_id, topic),
        event=event,
        payload=dict(payload or {}),
        event_id=event_id,
        message_id=message_id,
        received_at=received_at,
        replayed=replayed,
        created_at=created_at,
    )


@dataclass(frozen=True, slots=True)
class Broadcast:
    """One ``ctx.broadcast(topic, event, payload)`` a handler made (``topic`` short)."""

    topic: str
    event: str
    payload: dict[str, Any]


def _no_content(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json=[], request=request)


@dataclass
class Recorder:
    """Records what handlers did: ``broadcasts``, data API ``requests`` (each answered by
    ``respond(request)``, by default ``200 []``), and ``logs`` of ``ctx.log``."""

    respond: Responder = _no_content
    broadcasts: list[Broadcast] = field(default_factory=list)
    requests: list[httpx.Request] = field(default_factory=list)
    logs: list[logging.LogRecord] = field(default_factory=list)

    async def broadcast(self, channel_topic: str, event: str, payload: Mapping[str, Any]) -> None:
        """The ``Broadcaster`` seam: record instead of sending."""
        self.broadcasts.append(Broadcast(channel_topic.split(":", 2)[-1], event, dict(payload)))

    def transport(self) -> httpx.MockTransport:
        """An in-memory transport recording each request and answering with ``respond``."""

        def handle(request: httpx.Request) -> httpx.Response:
            self.requests.append(request)
            return self.respond(request)

        return httpx.MockTransport(handle)

    def logger(self) -> logging.Logger:
        """A handler logger that records into ``logs`` and still propagates to
        ``worker.handler`` (so pytest's ``caplog`` sees the records too)."""
        logger = logging.Logger("worker.handler", logging.DEBUG)
        logger.parent = logging.getLogger("worker.handler")
        logger.addHandler(_Capture(self.logs))
        return logger


class _Capture(logging.Handler):
    def __init__(self, into: list[logging.LogRecord]) -> None:
        super().__init__(logging.DEBUG)
        self._into = into

    def emit(self, record: logging.LogRecord) -> None:
        self._into.append(record)


@dataclass(frozen=True, slots=True)
class _TestToken:
    jwt: str = "test-session-token"


class _TestTokens:
    current = _TestToken()


def context_factory(
    recorder: Recorder, *, org_id: str = ORG_ID, resources: Resources | None = None
) -> ContextFactory:
    """A ``ContextFactory`` whose contexts record into ``recorder``."""
    data = make_data_client(
        DATA_API_URL, "anon-test", _TestTokens(), transport=recorder.transport()
    )
    return ContextFactory(
        org_id=org_id,
        data=data,
        broadcaster=recorder,
        logger=recorder.logger(),
        resources=resources,
    )


def make_context(
    event: Event | None = None,
    *,
    recorder: Recorder | None = None,
    attempt: int = 1,
    resources: Mapping[Lifespan[Any], Any] | None = None,
) -> Context:
    """A ``Context`` for one call of a handler with ``event`` (``make_event()`` if None):
    broadcasts, data API requests and log records go to ``recorder`` (a new one if None;
    read it back as ``ctx``'s with ``Recorder`` passed in), ``resources`` are the values
    ``ctx.resource(hook)`` returns."""
    event = event or make_event()
    opened = Resources()
    for hook, value in (resources or {}).items():
        opened.provide(hook, value)
    factory = context_factory(recorder or Recorder(), org_id=event.org_id, resources=opened)
    return factory(event, attempt)
