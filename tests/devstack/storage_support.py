"""The Storage stand-in on a loopback port, tokens for the policy personas, storage3 clients.

Tokens are the personas of ``tests/db/personas.py`` signed as Clerk signs them (RS256 with a
``kid`` from the project's stored JWKS), their ``iat``/``exp`` taken from the test's clock;
the ``apikey`` is an HS256 anon key signed by the project secret. Time belongs to the test:
signed URLs and tokens expire by ``clock``, which moves only when told.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import jwt
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm
from storage3 import AsyncStorageClient

from devstack.gateway import ApiKeys, Gateway
from devstack.jwt import Keyring
from devstack.storage import Storage
from tests.db.personas import ORG_A, ORG_B, PERSONAS
from tests.devstack.clerk_support import FakeClock

SECRET = "devstack-storage-test-secret-of-32-bytes!"
KID = "clerk-storage-test-kid"
BUCKET = "org-files"

__all__ = ["BUCKET", "ORG_A", "ORG_B", "StorageEnv", "served_storage"]


@dataclass
class StorageEnv:
    """A running Storage stand-in, its clock and keys."""

    base: str  # the gateway's root: SUPABASE_URL
    storage: Storage
    clock: FakeClock
    key: rsa.RSAPrivateKey

    @property
    def url(self) -> str:
        return f"{self.base}/storage/v1/"  # supabase-py joins it with a trailing slash

    @property
    def anon_key(self) -> str:
        claims = {"role": "anon", "iss": "supabase-demo", "exp": int(time.time()) + 86400}
        return jwt.encode(claims, SECRET, algorithm="HS256")

    @property
    def service_key(self) -> str:
        claims = {"role": "service_role", "iss": "supabase-demo", "exp": int(time.time()) + 86400}
        return jwt.encode(claims, SECRET, algorithm="HS256")

    def token(self, persona: str, ttl_s: float = 3600) -> str:
        """The persona's claims as a Clerk session token, live for ``ttl_s`` on the clock."""
        claims: dict[str, Any] = dict(PERSONAS[persona])
        if claims["role"] == "anon":
            return self.anon_key
        now = int(self.clock())
        claims.update(iat=now, exp=now + int(ttl_s))
        return jwt.encode(claims, self.key, algorithm="RS256", headers={"kid": KID})

    def headers(self, persona: str) -> dict[str, str]:
        """What supabase-py sends to Storage: the apikey, and the user's token as bearer."""
        return {"apikey": self.anon_key, "Authorization": f"Bearer {self.token(persona)}"}

    def client(self, persona: str) -> AsyncStorageClient:
        """An official storage3 client as ``persona`` (close it, or use ``async with``)."""
        return AsyncStorageClient(self.url, self.headers(persona))


@asynccontextmanager
async def served_storage(database_url: str) -> AsyncIterator[StorageEnv]:
    """Storage in an aiohttp app on a free loopback port; stopped on exit."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
    jwk.update(kid=KID, alg="RS256", use="sig")
    clock = FakeClock()
    keyring = Keyring(SECRET, jwks=lambda: {"keys": [jwk]}, clock=clock)
    storage = Storage(database_url=database_url, keyring=keyring, jwt_secret=SECRET, clock=clock)
    app = web.Application()
    Gateway(ApiKeys.generate(SECRET), keyring).install(app)  # as in the Stack: apikey first
    storage.add_routes(app)
    await storage.start()
    runner = web.AppRunner(app, shutdown_timeout=2.0)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        host, port = runner.addresses[0][:2]
        yield StorageEnv(f"http://{host}:{port}", storage, clock, key)
    finally:
        await runner.cleanup()
        await storage.close()
