"""``Broker``: the token broker as one anyio child: load the orgs file, serve, stop.

``run(stop)`` reports the bound port through ``task_status.started`` and returns after
``stop`` is set: readiness drops first (so the Service stops sending requests), then
the server closes. Nothing is kept between runs.
"""

from __future__ import annotations

import contextlib
import logging
import ssl
from pathlib import Path

import anyio
import httpx
from aiohttp import web
from anyio.abc import TaskStatus
from prometheus_client import CollectorRegistry

from worker.broker.cache import SourceFactory, TokenCache
from worker.broker.config import BrokerSettings
from worker.broker.identity import Identify, ServiceAccountVerifier
from worker.broker.metrics import BrokerMetrics
from worker.broker.orgs import load_orgs
from worker.broker.server import Readiness, make_app
from worker.broker.sources import clerk_sessions

__all__ = ["Broker"]

log = logging.getLogger("worker.broker")
_HTTP_TIMEOUT_S = 10.0


class Broker:
    """One broker process; ``port`` and ``registry`` are readable once started."""

    def __init__(self, settings: BrokerSettings, factory: SourceFactory | None = None) -> None:
        self.settings = settings
        self.registry = CollectorRegistry()
        self.port: int | None = None
        self._factory = factory
        self.readiness = Readiness()

    async def run(
        self, stop: anyio.Event, *, task_status: TaskStatus[int] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Serve until ``stop`` is set."""
        s = self.settings
        orgs = load_orgs(s.orgs_file)
        metrics = BrokerMetrics(self.registry, [e.org_id for e in orgs.entries])
        async with contextlib.AsyncExitStack() as stack:
            http = await stack.enter_async_context(httpx.AsyncClient(timeout=_HTTP_TIMEOUT_S))
            factory = self._factory or clerk_sessions(
                s.clerk_api_url,
                s.clerk_secret_key,
                http,
                s.clerk_token_template,
                s.clerk_token_expires_in_s,
            )
            verifier = None
            if s.oidc_issuer and s.oidc_jwks_url:
                verifier = ServiceAccountVerifier(
                    s.oidc_issuer,
                    s.oidc_jwks_url,
                    await stack.enter_async_context(_jwks_client(s.oidc_ca_file)),
                    s.audience,
                    s.oidc_token_file,
                )
            cache = TokenCache(factory, s.remint_margin_s, metrics.on_mint)
            app = make_app(
                Identify(orgs, verifier),
                cache,
                metrics,
                self.registry,
                request_timeout_s=s.request_timeout_s,
                readiness=self.readiness,
            )
            await self._serve(app, stop, task_status, len(orgs.entries))

    async def _serve(
        self, app: web.Application, stop: anyio.Event, task_status: TaskStatus[int], orgs: int
    ) -> None:
        runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=5.0)
        await runner.setup()
        try:
            site = web.TCPSite(runner, self.settings.http_host, self.settings.http_port)
            await site.start()
            self.port = int(runner.addresses[0][1])
            log.info("broker started", extra={"http_port": self.port, "orgs": orgs})
            task_status.started(self.port)
            await stop.wait()
            self.readiness.ready = False
        finally:
            with anyio.CancelScope(shield=True), anyio.move_on_after(10.0):
                await runner.cleanup()
            log.info("broker stopped")


def _jwks_client(ca_file: Path | None) -> httpx.AsyncClient:
    """The client for the issuer's JWKS: the cluster's CA when given (the API server's
    certificate is not from a public CA)."""
    verify: ssl.SSLContext | bool = True
    if ca_file is not None:
        verify = ssl.create_default_context(cafile=str(ca_file))
    return httpx.AsyncClient(timeout=_HTTP_TIMEOUT_S, verify=verify)
