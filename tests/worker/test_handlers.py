"""Built-in handlers (log, webhook) and the Context handed to them."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Mapping
from typing import Any

import httpx
import pytest

from tests.worker.rt_fakes import FakeTokens
from worker import testing
from worker.context import ContextFactory, make_data_client
from worker.errors import DataApiError, NonRetryable, Retry
from worker.events import Event
from worker.handlers import log as log_handler
from worker.handlers.webhook import SIGNATURE_HEADER, WebhookHandler, body_of, sign

pytestmark = pytest.mark.anyio

ORG = "org_2abc"
SECRET = "whsec_test"


def make_event(event_id: int | None = 7) -> Event:
    return testing.make_event(
        "events",
        "invoice.paid",
        {"amount": 10},
        org_id=ORG,
        event_id=event_id,
        message_id="m-1",
        received_at=1.0,
    )


class FakeBroadcaster:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str, dict[str, Any]]] = []

    async def broadcast(self, channel_topic: str, event: str, payload: Mapping[str, Any]) -> None:
        self.sent.append((channel_topic, event, dict(payload)))


def factory(broadcaster: FakeBroadcaster | None = None) -> ContextFactory:
    data = make_data_client("http://db.test", "anon", FakeTokens())
    return ContextFactory(org_id=ORG, data=data, broadcaster=broadcaster or FakeBroadcaster())


async def test_context_broadcast_targets_the_org_topic() -> None:
    broadcaster = FakeBroadcaster()
    ctx = factory(broadcaster)(make_event(), 2)
    await ctx.broadcast("notifications", "invoice.sent", {"id": 1})
    assert broadcaster.sent == [(f"org:{ORG}:notifications", "invoice.sent", {"id": 1})]
    assert ctx.attempt == 2
    with pytest.raises(ValueError, match="short topic"):
        await ctx.broadcast("org:other:x", "e", {})
    await ctx.data.aclose()


async def test_data_client_sends_the_current_token_per_request() -> None:
    seen: list[tuple[str | None, str | None]] = []

    def respond(request: httpx.Request) -> httpx.Response:
        seen.append((request.headers.get("authorization"), request.headers.get("apikey")))
        return httpx.Response(200, json=[])

    tokens = FakeTokens("jwt-1")
    client = make_data_client(
        "http://db.test", "anon", tokens, transport=httpx.MockTransport(respond)
    )
    await client.table("tasks").select("*").execute()
    tokens.rotate("jwt-2")
    await client.table("tasks").select("*").execute()
    assert seen == [("Bearer jwt-1", "anon"), ("Bearer jwt-2", "anon")]
    tokens.current = None
    with pytest.raises(DataApiError):
        await client.table("tasks").select("*").execute()
    await client.aclose()


async def test_log_handler_writes_one_line(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "worker.handler")
    ctx = factory()(make_event(), 1)
    await log_handler.handle(make_event(), ctx)
    (record,) = caplog.records
    assert record.getMessage() == "event invoice.paid on events"
    assert vars(record)["org_id"] == ORG
    assert vars(record)["event_id"] == 7
    assert vars(record)["payload_keys"] == ["amount"]
    await ctx.data.aclose()


def webhook(respond: Any) -> tuple[WebhookHandler, list[httpx.Request]]:
    requests: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        result: httpx.Response = respond(request)
        return result

    client = httpx.AsyncClient(transport=httpx.MockTransport(record))
    return WebhookHandler("https://hooks.test/in", SECRET, client=client), requests


async def test_webhook_posts_signed_json_with_an_idempotency_key() -> None:
    handler, requests = webhook(lambda r: httpx.Response(204))
    ctx = factory()(make_event(), 1)
    await handler(make_event(), ctx)
    (request,) = requests
    body = request.content
    expected = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert request.headers[SIGNATURE_HEADER] == f"sha256={expected}"
    assert request.headers["Idempotency-Key"] == f"{ORG}:events:7"
    assert json.loads(body)["payload"] == {"amount": 10}
    assert body == body_of(make_event())  # stable bytes across retries
    assert sign(SECRET, body) == f"sha256={expected}"
    assert "whsec" not in repr(handler)
    await handler.aclose()
    await ctx.data.aclose()


@pytest.mark.parametrize(
    ("status", "headers", "error", "after"),
    [
        (500, {}, Retry, None),
        (503, {"Retry-After": "12"}, Retry, 12.0),
        (429, {"Retry-After": "Wed, 21 Oct 2026 07:28:00 GMT"}, Retry, None),
        (400, {}, NonRetryable, None),
        (404, {}, NonRetryable, None),
    ],
)
async def test_webhook_status_mapping(
    status: int, headers: dict[str, str], error: type[Exception], after: float | None
) -> None:
    handler, _ = webhook(lambda r: httpx.Response(status, headers=headers))
    ctx = factory()(make_event(), 1)
    with pytest.raises(error) as info:
        await handler(make_event(), ctx)
    if isinstance(info.value, Retry):
        assert info.value.after_s == after
    await handler.aclose()
    await ctx.data.aclose()


async def test_webhook_timeouts_and_transport_errors_are_retried() -> None:
    def boom(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectTimeout("slow", request=request)

    handler, _ = webhook(boom)
    ctx = factory()(make_event(), 1)
    with pytest.raises(Retry, match="timed out"):
        await handler(make_event(), ctx)

    def refused(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    handler2, _ = webhook(refused)
    with pytest.raises(Retry, match="unreachable"):
        await handler2(make_event(), ctx)
    for h in (handler, handler2):
        await h.aclose()
    await ctx.data.aclose()


def test_webhook_rejects_bad_configuration() -> None:
    with pytest.raises(ValueError, match="https"):
        WebhookHandler("ftp://x", SECRET)
    with pytest.raises(ValueError, match="secret"):
        WebhookHandler("https://x", "")
