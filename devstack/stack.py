"""The whole local stack: Postgres, the Supabase gateway (Realtime, data API, Storage) and Clerk.

The gateway (``devstack.gateway``) holds the project's API keys (publishable and secret,
plus the legacy JWTs) and sits in front of every service mounted on the gateway app under
``/realtime/v1``, ``/rest/v1`` and ``/storage/v1``.

``async with Stack(StackConfig()) as stack:`` starts everything, applies the platform
bootstrap, ``supabase/migrations`` and ``supabase/seed.sql`` to a fresh database, and
exposes ``stack.env`` (what a worker or any Supabase client needs). Leaving the block
stops everything in reverse order, each step bounded, even if an earlier one failed.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass, field

import anyio
from aiohttp import web

from devstack import postgres, schema
from devstack.clerk import Clerk
from devstack.clerk.provision import demo_env
from devstack.clerk.settings import DEFAULT_SESSION_LIFETIME_S, InstanceSettings, InstanceType
from devstack.gateway import ApiKeys, Gateway
from devstack.jwt import Keyring
from devstack.realtime import Realtime
from devstack.realtime.postgres_changes import PostgresChanges
from devstack.realtime.settings import RealtimeSettings
from devstack.rest import DataApi
from devstack.storage import Storage

CLOSE_TIMEOUT_S = 10.0
log = logging.getLogger("devstack")


@dataclass(frozen=True)
class StackConfig:
    """How to start the stack. Port 0 picks a free port."""

    database_url: str | None = None  # a server to make a fresh database on; None = embedded
    host: str = "127.0.0.1"
    port: int = 0  # the Supabase gateway: /realtime/v1, /rest/v1, /storage/v1
    clerk_port: int = 0
    jwt_secret: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    realtime: RealtimeSettings = field(default_factory=RealtimeSettings)
    clerk_token_format: int = 2
    # The Clerk instance (Dashboard settings): development (sk_test_, POST /v1/sessions)
    # or production (sk_live_, sessions only through sign-in tokens); session lifetime
    # and inactivity timeout (None: off), Clerk's defaults.
    clerk_instance: InstanceType = "development"
    clerk_session_lifetime_s: int = DEFAULT_SESSION_LIFETIME_S
    clerk_session_inactivity_s: int | None = None
    # Orgs "Org <key>" with a service user each, described in ``env`` (DEMO_ORG_<KEY>_*).
    clerk_demo_orgs: tuple[str, ...] = ()
    seed: bool = True


async def _serve(app: web.Application, host: str, port: int) -> tuple[web.AppRunner, str]:
    # No access log: websocket URLs carry the apikey (a JWT) in their query string.
    runner = web.AppRunner(app, shutdown_timeout=2.0, handle_signals=False, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound = runner.addresses[0][1]
    return runner, f"http://{host}:{bound}"


class Stack:
    """A running local stack. Use as an async context manager."""

    def __init__(self, config: StackConfig | None = None) -> None:
        self.config = config or StackConfig()
        self.env: dict[str, str] = {}
        self.database_url = ""
        self.supabase_url = ""
        self.clerk = Clerk(
            token_format=self.config.clerk_token_format,
            settings=InstanceSettings(
                instance_type=self.config.clerk_instance,
                session_lifetime_s=self.config.clerk_session_lifetime_s,
                session_inactivity_s=self.config.clerk_session_inactivity_s,
            ),
        )
        self.keyring = Keyring(self.config.jwt_secret, jwks=self.clerk.public_jwks)
        self.keys = ApiKeys.generate(self.config.jwt_secret)
        self.gateway = Gateway(self.keys, self.keyring)
        self.realtime: Realtime | None = None
        self.data_api: DataApi | None = None
        self.storage: Storage | None = None
        self._stack: contextlib.AsyncExitStack | None = None

    async def __aenter__(self) -> Stack:
        async with contextlib.AsyncExitStack() as stack:
            await self._start(stack)
            self._stack = stack.pop_all()
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._stack is not None:
            with anyio.CancelScope(shield=True):
                await self._stack.aclose()

    async def _start(self, stack: contextlib.AsyncExitStack) -> None:
        server = await stack.enter_async_context(_postgres(self.config.database_url))
        self.database_url = await postgres.create_database(server, prefix="devstack")
        stack.push_async_callback(_bounded, postgres.drop_database(server, self.database_url))
        await schema.apply_all(self.database_url, seed=self.config.seed)

        clerk_runner, clerk_url = await _serve(
            self.clerk.app(), self.config.host, self.config.clerk_port
        )
        stack.push_async_callback(_bounded, clerk_runner.cleanup())
        self.clerk.bind(clerk_url)

        pg_changes = PostgresChanges(database_url=self.database_url)
        self.realtime = Realtime(
            database_url=self.database_url,
            keyring=self.keyring,
            settings=self.config.realtime,
            postgres_changes=pg_changes,
        )
        self.data_api = DataApi(database_url=self.database_url, keyring=self.keyring)
        self.storage = Storage(
            database_url=self.database_url, keyring=self.keyring, jwt_secret=self.config.jwt_secret
        )
        gateway = web.Application(client_max_size=6 * 1024 * 1024)
        self.gateway.install(gateway)
        self.realtime.add_routes(gateway)
        self.data_api.add_routes(gateway)
        self.storage.add_routes(gateway)
        for component in (pg_changes, self.realtime, self.data_api, self.storage):
            await component.start()
            stack.push_async_callback(_bounded, component.close())
        runner, self.supabase_url = await _serve(gateway, self.config.host, self.config.port)
        stack.push_async_callback(_bounded, runner.cleanup())
        # Websockets first: aiohttp's cleanup would otherwise wait on them (pitfall 7).
        stack.push_async_callback(_bounded, self.realtime.close())
        self.env = self._environment(clerk_url) | demo_env(self.clerk, self.config.clerk_demo_orgs)

    def _environment(self, clerk_url: str) -> dict[str, str]:
        # The legacy JWT keys stay (today's worker reads SUPABASE_ANON_KEY), next to the
        # publishable and secret keys a new project has.
        return {
            "SUPABASE_URL": self.supabase_url,
            "SUPABASE_PUBLISHABLE_KEY": self.keys.publishable,
            "SUPABASE_SECRET_KEY": self.keys.secret,
            "SUPABASE_ANON_KEY": self.keys.anon,
            "SUPABASE_SERVICE_ROLE_KEY": self.keys.service_role,
            "SUPABASE_JWT_SECRET": self.config.jwt_secret,
            "DATABASE_URL": self.database_url,
            "CLERK_API_URL": clerk_url,
            "CLERK_SECRET_KEY": self.clerk.secret_key,
            "CLERK_ISSUER": self.clerk.issuer,
            "CLERK_JWKS_URL": f"{clerk_url}/.well-known/jwks.json",
        }


@contextlib.asynccontextmanager
async def _postgres(database_url: str | None) -> AsyncIterator[postgres.Server]:
    if database_url:
        yield postgres.Server(database_url)
        return
    embedded = postgres.EmbeddedPostgres()
    try:
        yield await anyio.to_thread.run_sync(embedded.start)
    finally:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(embedded.stop)


async def _bounded(step: Awaitable[object]) -> None:
    """Run one shutdown step within CLOSE_TIMEOUT_S; a failure is logged, not fatal."""
    with anyio.move_on_after(CLOSE_TIMEOUT_S) as scope:
        try:
            await step
        except Exception:
            log.exception("shutdown step failed; continuing with the next one")
    if scope.cancelled_caught:
        log.warning("shutdown step timed out after %.0f s", CLOSE_TIMEOUT_S)
