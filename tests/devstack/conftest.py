"""Realtime stand-in fixtures: keys, a running server (behind the gateway), token minting
and DB helpers.

The lead will switch ``rt`` to the full Stack later; tests only use the ``RealtimeEnv``
surface below.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import asyncpg
import httpx
import jwt
import pytest
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa
from realtime import AsyncRealtimeClient

from devstack.clerk import Clerk
from devstack.clerk.settings import InstanceSettings
from devstack.gateway import ApiKeys, Gateway
from devstack.jwt import Keyring
from devstack.realtime import Realtime, RealtimeSettings
from tests.devstack.clerk_support import FakeClock, bapi_client, org_session, served
from tests.devstack.rawclient import V1, RawClient

HS_SECRET = "super-secret-jwt-token-with-at-least-32-characters-long"
KID = "clerk-test-key"
API_KEYS = ApiKeys.generate(HS_SECRET)
KEY_KINDS = ("legacy", "publishable")


@dataclass(frozen=True)
class Keys:
    private_key: rsa.RSAPrivateKey
    jwks: dict[str, Any]


@pytest.fixture(scope="session")
def keys() -> Keys:
    private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(private_key.public_key()))
    jwk.update({"kid": KID, "alg": "RS256", "use": "sig"})
    return Keys(private_key, {"keys": [jwk]})


def new_org() -> str:
    """A fresh org id per test: the session database is shared."""
    return f"org_{secrets.token_hex(5)}"


@dataclass
class RealtimeEnv:
    """A running stand-in plus helpers."""

    base: str
    realtime: Realtime
    keys: Keys
    database_url: str
    key_kind: str = "legacy"  # which API key the clients use: legacy (JWT) or publishable
    _clients: list[Any] = field(default_factory=list)

    @property
    def anon_key(self) -> str:
        """The project's anonymous API key of :attr:`key_kind` (the gateway maps a
        publishable key to a short-lived anon JWT)."""
        if self.key_kind == "publishable":
            return API_KEYS.publishable
        claims = {"role": "anon", "iss": "supabase-demo", "exp": int(time.time()) + 3600 * 24}
        return jwt.encode(claims, HS_SECRET, algorithm="HS256")

    def mint(
        self,
        org: str | None,
        rol: str = "member",
        *,
        ttl: float = 3600,
        sub: str = "user_test",
        kid: str = KID,
        **extra: Any,
    ) -> str:
        """A Clerk-like v2 session token (RS256, kid) with role authenticated."""
        now = int(time.time())
        claims: dict[str, Any] = {
            "role": "authenticated",
            "sub": sub,
            "sid": f"sess_{sub}",
            "v": 2,
            "iss": "https://clerk.test",
            "iat": now,
            "exp": now + ttl,
            "fva": [3, 3],
            **extra,
        }
        if org is not None:
            claims["o"] = {"id": org, "rol": rol, "slg": org.lower()}
        return jwt.encode(claims, self.keys.private_key, algorithm="RS256", headers={"kid": kid})

    def ws_url(self, vsn: str | None = V1, apikey: str | None = "anon") -> str:
        params = []
        if apikey is not None:
            params.append(f"apikey={self.anon_key if apikey == 'anon' else apikey}")
        if vsn is not None:
            params.append(f"vsn={vsn}")
        return f"{self.base}/realtime/v1/websocket?" + "&".join(params)

    @asynccontextmanager
    async def raw(self, vsn: str = V1, apikey: str | None = "anon") -> AsyncIterator[RawClient]:
        async with (
            aiohttp.ClientSession() as session,
            session.ws_connect(self.ws_url(vsn, apikey), autoping=True) as ws,
        ):
            yield RawClient(ws, vsn)

    async def client(self, **kwargs: Any) -> AsyncRealtimeClient:
        """An official client (closed at teardown)."""
        client = AsyncRealtimeClient(f"{self.base}/realtime/v1", token=self.anon_key, **kwargs)
        self._clients.append(client)
        await client.connect()
        return client

    async def insert_event(
        self, org: str, topic: str, event: str, payload: dict[str, Any] | None = None
    ) -> int:
        """Append to the outbox; its trigger calls realtime.send on org:<org>:<topic>."""
        conn = await asyncpg.connect(self.database_url)
        try:
            return int(
                await conn.fetchval(
                    "insert into public.org_events (org_id, topic, event, payload) "
                    "values ($1, $2, $3, $4::jsonb) returning id",
                    org,
                    topic,
                    event,
                    json.dumps(payload or {}),
                )
            )
        finally:
            await conn.close()

    async def send(self, topic: str, event: str, payload: dict[str, Any], private: bool) -> None:
        """Call realtime.send directly."""
        conn = await asyncpg.connect(self.database_url)
        try:
            await conn.execute(
                "select realtime.send($1::jsonb, $2, $3, $4)",
                json.dumps(payload),
                event,
                topic,
                private,
            )
        finally:
            await conn.close()


def upgrade_headers() -> dict[str, str]:
    """Headers of a websocket upgrade, for reading refusals with a plain GET."""
    return {
        "Connection": "Upgrade",
        "Upgrade": "websocket",
        "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": base64.b64encode(os.urandom(16)).decode(),
    }


TEST_SETTINGS = RealtimeSettings(join_error_delay_s=0.0, connect_error_delay_s=0.0)


@asynccontextmanager
async def running(
    database_url: str,
    keys: Keys,
    settings: RealtimeSettings = TEST_SETTINGS,
    key_kind: str = "legacy",
    *,
    behind_gateway: bool = False,
    **kwargs: Any,
) -> AsyncIterator[RealtimeEnv]:
    """The stand-in on a loopback port; with ``behind_gateway`` (implied by a publishable
    ``key_kind``) the gateway of devstack.gateway is in front, as in the Stack."""
    keyring = Keyring(HS_SECRET, jwks=lambda: keys.jwks)
    realtime = Realtime(database_url=database_url, keyring=keyring, settings=settings, **kwargs)
    app = web.Application()
    if behind_gateway or key_kind != "legacy":
        Gateway(API_KEYS, keyring).install(app)
    realtime.add_routes(app)
    await realtime.start()
    runner = web.AppRunner(app, shutdown_timeout=5.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    env = RealtimeEnv(f"http://127.0.0.1:{port}", realtime, keys, database_url, key_kind)
    try:
        yield env
    finally:
        for client in env._clients:
            await client.close()
        await realtime.close()
        await runner.cleanup()


@pytest.fixture
async def rt(database_url: str, keys: Keys) -> AsyncIterator[RealtimeEnv]:
    async with running(database_url, keys) as env:
        yield env


@pytest.fixture
def org() -> str:
    return new_org()


def sub_topic(org: str, name: str = "events") -> str:
    return f"org:{org}:{name}"


def is_uuid(value: Any) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True


Pred = Callable[[Any], bool]


# -- the Clerk stand-in on a loopback port (test_clerk*.py) ------------------------------


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def token_format() -> int:
    return 2


@pytest.fixture
def settings() -> InstanceSettings:
    """The instance's Dashboard settings; a module or a test may override them."""
    return InstanceSettings()


@pytest.fixture
async def clerk(
    clock: FakeClock, token_format: int, settings: InstanceSettings
) -> AsyncIterator[Clerk]:
    async with served(clock, token_format, settings) as instance:
        yield instance


@pytest.fixture
async def bapi(clerk: Clerk) -> AsyncIterator[httpx.AsyncClient]:
    async with bapi_client(clerk) as client:
        yield client


@pytest.fixture
async def fapi(clerk: Clerk) -> AsyncIterator[httpx.AsyncClient]:
    """A Frontend API client: at the issuer URL, without the secret key."""
    async with httpx.AsyncClient(base_url=clerk.issuer, timeout=5) as client:
        yield client


@pytest.fixture
def session_id(clerk: Clerk) -> str:
    return org_session(clerk)
