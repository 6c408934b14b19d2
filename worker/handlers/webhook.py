"""The ``webhook`` handler: POST each event as JSON to a URL, signed with HMAC-SHA256.

Enable with ``WORKER_HANDLERS=worker.handlers.webhook`` and set ``WORKER_WEBHOOK_URL``,
``WORKER_WEBHOOK_SECRET`` and optionally ``WORKER_WEBHOOK_TIMEOUT_SECONDS`` (default 10);
they are validated when the worker starts (missing or invalid: exit 2, before connecting
anywhere), and the module's ``Lifespan`` (``client``) opens the HTTP client before dispatch
starts and closes it after the drain. Or build ``WebhookHandler(url, secret)`` and register
it yourself.

Each request carries:

* ``X-Worker-Signature: sha256=<hex>``: HMAC-SHA256 of the exact body bytes with the
  secret, so the receiver can check origin and integrity (compare in constant time);
* ``Idempotency-Key``: ``Event.idempotency_key``, identical for every retry and replay.

Outcomes: 2xx succeeds; 408, 429, 5xx, timeouts and transport errors raise ``Retry``
(honouring a numeric ``Retry-After``); any other status raises ``NonRetryable``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from types import TracebackType

import httpx

from worker.context import Context
from worker.errors import ConfigError, NonRetryable, Retry
from worker.events import Event
from worker.lifespan import lifespan
from worker.registry import on
from worker.settings import SecretStr, Settings
from worker.settings.reader import Reader

__all__ = [
    "SIGNATURE_HEADER",
    "WebhookHandler",
    "WebhookSettings",
    "body_of",
    "client",
    "handle",
    "sign",
]

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


@dataclass(frozen=True)
class WebhookSettings:
    """The webhook's settings, read from the worker's environment at start."""

    url: str
    secret: SecretStr
    timeout_s: float = 10.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> WebhookSettings:
        """Read ``WORKER_WEBHOOK_*``; ``ConfigError`` listing every problem with its fix."""
        problems: list[str] = []
        r = Reader(environ, problems)
        url = r.url(
            "WORKER_WEBHOOK_URL",
            r.required("WORKER_WEBHOOK_URL", "the https:// URL that receives each event"),
        )
        secret = r.required(
            "WORKER_WEBHOOK_SECRET", "a long random string shared with the receiver"
        )
        timeout_s = r.number("WORKER_WEBHOOK_TIMEOUT_SECONDS", 10.0, float, 0.001)
        if problems or url is None or secret is None:
            raise ConfigError([f"worker.handlers.webhook: {p}" for p in problems])
        return cls(url, SecretStr(secret), timeout_s)


class _Opened(AbstractAsyncContextManager[WebhookHandler]):
    """The ``client`` lifespan's manager: one ``WebhookHandler``, closed on exit."""

    def __init__(self, settings: WebhookSettings) -> None:
        self.settings = settings
        self._handler: WebhookHandler | None = None

    def __repr__(self) -> str:  # shown by `realtime-worker check`: never the secret
        s = self.settings
        return f"POST to {s.url}, signed (secret [secure]), timeout {s.timeout_s:g}s"

    async def __aenter__(self) -> WebhookHandler:
        s = self.settings
        secret = s.secret.get_secret_value()
        self._handler = WebhookHandler(s.url, secret, timeout_s=s.timeout_s)
        return self._handler

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._handler is not None:
            await self._handler.aclose()


@lifespan
def client(settings: Settings) -> AbstractAsyncContextManager[WebhookHandler]:
    """Validate ``WORKER_WEBHOOK_*`` (at start) and open the webhook's HTTP client."""
    return _Opened(WebhookSettings.from_env(settings.environ))


@on("*")
async def handle(event: Event, ctx: Context) -> None:
    """POST ``event`` with the client the ``client`` lifespan opened."""
    await ctx.resource(client)(event, ctx)
