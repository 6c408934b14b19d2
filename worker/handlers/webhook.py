"""The ``webhook`` handler: POST each event as JSON to a URL, signed with HMAC-SHA256.

Enable with ``WORKER_HANDLERS=worker.handlers.webhook`` and set ``WORKER_WEBHOOK_URL`` and
``WORKER_WEBHOOK_SECRET``; or build ``WebhookHandler(url, secret)`` and register it yourself.

Each request carries:

* ``X-Worker-Signature: sha256=<hex>``: HMAC-SHA256 of the exact body bytes with the
  secret, so the receiver can check origin and integrity (compare in constant time);
* ``Idempotency-Key``: ``Event.idempotency_key``, identical for every retry and replay.

Outcomes: 2xx succeeds; 408, 429, 5xx, timeouts and transport errors raise ``Retry``
(honouring a numeric ``Retry-After``); any other status raises ``NonRetryable``.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import os
from collections.abc import Mapping

import httpx

from worker.context import Context
from worker.errors import NonRetryable, Retry
from worker.events import Event
from worker.registry import on

__all__ = ["SIGNATURE_HEADER", "WebhookHandler", "body_of", "handle", "sign"]

SIGNATURE_HEADER = "X-Worker-Signature"
_RETRYABLE_4XX = frozenset({408, 425, 429})


def sign(secret: str, body: bytes) -> str:
    """The signature header value for ``body``: ``sha256=<hex digest>``."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def body_of(event: Event) -> bytes:
    """The JSON body sent for ``event`` (compact, keys sorted: stable across retries)."""
    document = {
        "org_id": event.org_id,
        "topic": event.topic,
        "event": event.event,
        "event_id": event.event_id,
        "message_id": event.message_id,
        "idempotency_key": event.idempotency_key,
        "created_at": event.created_at,
        "replayed": event.replayed,
        "payload": event.payload,
    }
    return json.dumps(document, sort_keys=True, separators=(",", ":"), default=str).encode()


class WebhookHandler:
    """An async handler posting events to ``url``; see the module docstring."""

    def __init__(
        self,
        url: str,
        secret: str,
        *,
        client: httpx.AsyncClient | None = None,
        timeout_s: float = 10.0,
    ) -> None:
        if not url.startswith(("https://", "http://")):
            raise ValueError("the webhook URL must start with https:// or http://")
        if not secret:
            raise ValueError("the webhook secret must not be empty")
        self._url = url
        self._secret = secret
        self._client = client or httpx.AsyncClient(timeout=timeout_s)

    def __repr__(self) -> str:
        return f"WebhookHandler(url={self._url!r}, secret=[secure])"

    async def __call__(self, event: Event, ctx: Context) -> None:
        """POST the event; raise ``Retry`` or ``NonRetryable`` as the response says."""
        body = body_of(event)
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign(self._secret, body),
            "Idempotency-Key": event.idempotency_key,
            "X-Worker-Event": event.event,
            "X-Worker-Topic": event.topic,
        }
        try:
            response = await self._client.post(self._url, content=body, headers=headers)
        except httpx.TimeoutException as exc:
            raise Retry(f"webhook timed out: {type(exc).__name__}") from exc
        except httpx.TransportError as exc:
            raise Retry(f"webhook unreachable: {type(exc).__name__}") from exc
        _raise_for(response.status_code, response.headers)
        ctx.log.debug("webhook accepted the event", extra={"status": response.status_code})

    async def aclose(self) -> None:
        """Close the HTTP client."""
        await self._client.aclose()


def _raise_for(status: int, headers: Mapping[str, str]) -> None:
    if 200 <= status < 300:
        return
    if status >= 500 or status in _RETRYABLE_4XX:
        raise Retry(f"webhook answered {status}", after_s=_retry_after(headers))
    raise NonRetryable(f"webhook answered {status}; the request will not succeed on retry")


def _retry_after(headers: Mapping[str, str]) -> float | None:
    value = headers.get("Retry-After", "")
    try:
        seconds = float(value)
    except ValueError:
        return None  # HTTP-date form: use the dispatcher's own backoff
    return min(max(seconds, 0.0), 300.0)


@functools.cache
def _from_env() -> WebhookHandler:
    url = os.environ.get("WORKER_WEBHOOK_URL", "")
    secret = os.environ.get("WORKER_WEBHOOK_SECRET", "")
    if not url or not secret:
        raise NonRetryable("worker.handlers.webhook needs WORKER_WEBHOOK_URL and _SECRET set")
    try:
        return WebhookHandler(url, secret)
    except ValueError as exc:
        raise NonRetryable(f"worker.handlers.webhook is misconfigured: {exc}") from exc


@on("*")
async def handle(event: Event, ctx: Context) -> None:
    """The env-configured webhook (read on first use, then kept)."""
    await _from_env()(event, ctx)
