"""The broker's HTTP surface (aiohttp): ``POST /v1/token``, ``/healthz``, ``/readyz``,
``/status``, ``/metrics``.

``POST /v1/token`` takes no parameters: the org is the caller's (``Identify``), so there is
nothing to ask for another org; a body is ignored (and capped at 4 KiB). Every request
has a deadline; any failure the caller can cause is an answer, never a crash. Answers
never echo what the caller sent; log lines carry the reason and the caller's name only.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from worker.broker.cache import TokenCache
from worker.broker.identity import Caller, Denied, Identify
from worker.broker.metrics import BrokerMetrics
from worker.errors import SessionEnded, TokenError

__all__ = ["MAX_BODY_BYTES", "Readiness", "make_app"]

log = logging.getLogger("worker.broker")
MAX_BODY_BYTES = 4096
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_NO_STORE = {"Cache-Control": "no-store"}


@dataclass
class Readiness:
    """``/readyz`` answers 200 while ``ready``; cleared when the broker starts stopping."""

    ready: bool = True


def make_app(
    identify: Identify,
    cache: TokenCache,
    metrics: BrokerMetrics,
    registry: CollectorRegistry,
    *,
    request_timeout_s: float,
    readiness: Readiness,
) -> web.Application:
    """The aiohttp application."""
    app = web.Application(
        client_max_size=MAX_BODY_BYTES, middlewares=[_deadline(request_timeout_s)]
    )
    routes = _Routes(identify, cache, metrics, registry, readiness=readiness)
    app.router.add_post("/v1/token", routes.token)
    app.router.add_get("/healthz", routes.healthz)
    app.router.add_get("/readyz", routes.readyz)
    app.router.add_get("/status", routes.status)
    app.router.add_get("/metrics", routes.metrics)
    return app


def _deadline(seconds: float) -> Callable[..., Awaitable[web.StreamResponse]]:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            async with asyncio.timeout(seconds):
                return await handler(request)
        except TimeoutError:
            return _error(504, "timeout", "the broker did not answer in time")

    return middleware


def _error(status: int, error: str, reason: str) -> web.Response:
    return web.json_response({"error": error, "reason": reason}, status=status, headers=_NO_STORE)


class _Routes:
    def __init__(
        self,
        identify: Identify,
        cache: TokenCache,
        metrics: BrokerMetrics,
        registry: CollectorRegistry,
        *,
        readiness: Readiness,
    ) -> None:
        self._identify, self._cache = identify, cache
        self._metrics, self._registry = metrics, registry
        self._readiness = readiness

    async def token(self, request: web.Request) -> web.Response:
        try:
            caller = await self._identify(request.headers.get("Authorization"))
        except Denied as denied:
            self._metrics.denied.labels(reason=denied.reason.value).inc()
            self._metrics.requests.labels(org="", status=str(denied.status)).inc()
            log.warning(
                "caller refused",
                extra={"reason": denied.reason.value, "remote": request.remote or ""},
            )
            kind = "forbidden" if denied.status == 403 else "unauthenticated"
            return _error(denied.status, kind, denied.reason.value)
        return await self._serve(caller)

    async def _serve(self, caller: Caller) -> web.Response:
        org = caller.entry.org_id
        try:
            token = await self._cache.get(caller.entry)
        except TokenError as exc:
            reason = "session_ended" if isinstance(exc, SessionEnded) else "clerk_unavailable"
            self._metrics.requests.labels(org=org, status="503").inc()
            log.warning("mint failed", extra={"org": org, "reason": reason, "error": str(exc)})
            return _error(503, "unavailable", reason)
        self._metrics.requests.labels(org=org, status="200").inc()
        self._metrics.expires_at.labels(org=org).set(token.expires_at)
        body = {"token": token.jwt, "expires_at": token.expires_at, "org_id": org}
        return web.json_response(body, headers=_NO_STORE | {"X-Caller": caller.name})

    async def healthz(self, _request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    async def readyz(self, _request: web.Request) -> web.Response:
        ready = self._readiness.ready
        return web.json_response({"ready": ready}, status=200 if ready else 503)

    async def status(self, _request: web.Request) -> web.Response:
        orgs = {
            entry.org_id: {"token_expires_at": self._cache.expires_at(entry.org_id)}
            for entry in self._identify.orgs.entries
        }
        return web.json_response({"ready": self._readiness.ready, "orgs": orgs})

    async def metrics(self, _request: web.Request) -> web.Response:
        body = generate_latest(self._registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
