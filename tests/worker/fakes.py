"""Fakes at the seams: a Clerk that signs real RS256 JWTs (the clock is ``worker.testing``'s).

``FakeClerk`` answers the Backend API token endpoint and the JWKS through
``httpx.MockTransport`` (the HTTP transport is the seam), with real RSA keys.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from worker.testing import FakeClock

ORG = "org_2test"
OTHER_ORG = "org_2other"
SESSION = "sess_2test"
ISSUER = "https://clerk.example.test"
JWKS_URL = f"{ISSUER}/.well-known/jwks.json"
API_URL = "https://clerk-api.example.test"
SECRET = "sk_test_fakeSecretValue123"


@dataclass
class KeyPair:
    kid: str
    private: rsa.RSAPrivateKey = field(
        default_factory=lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048)
    )

    def jwk(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(
            jwt.algorithms.RSAAlgorithm.to_jwk(self.private.public_key())
        )
        return data | {"kid": self.kid, "alg": "RS256", "use": "sig"}


_KEYS: dict[str, KeyPair] = {}


def key(kid: str = "key-1") -> KeyPair:
    """RSA keys are slow to generate: one per kid for the whole test session."""
    if kid not in _KEYS:
        _KEYS[kid] = KeyPair(kid)
    return _KEYS[kid]


def claims_v2(now: float, lifetime_s: float = 60.0, **extra: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "iss": ISSUER,
        "sub": "user_2service",
        "sid": SESSION,
        "iat": int(now),
        "nbf": int(now) - 5,
        "exp": int(now + lifetime_s),
        "role": "authenticated",
        "v": 2,
        "o": {"id": ORG, "rol": "admin", "slg": "acme"},
    }
    return base | extra


def sign(claims: dict[str, Any], signer: KeyPair | None = None, kid: str | None = None) -> str:
    signer = signer or key()
    return jwt.encode(claims, signer.private, algorithm="RS256", headers={"kid": kid or signer.kid})


Responder = Callable[[httpx.Request], httpx.Response]


@dataclass
class FakeClerk:
    """Clerk's token endpoint and JWKS; script failures by pushing onto ``script``."""

    clock: FakeClock
    lifetime_s: float = 60.0
    signer: KeyPair = field(default_factory=key)
    published: list[KeyPair] = field(default_factory=lambda: [key()])
    claims_extra: dict[str, Any] = field(default_factory=dict)
    script: list[Responder] = field(default_factory=list)
    token_requests: list[httpx.Request] = field(default_factory=list)
    jwks_requests: int = 0

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=self.transport())

    def handle(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/.well-known/jwks.json":
            self.jwks_requests += 1
            return httpx.Response(200, json={"keys": [k.jwk() for k in self.published]})
        if re.fullmatch(r"/v1/sessions/[^/]+/tokens(/[^/]+)?", request.url.path):
            self.token_requests.append(request)
            if self.script:
                return self.script.pop(0)(request)
            return self.mint(request)
        return httpx.Response(404, json={"errors": [{"code": "resource_not_found"}]})

    def mint(self, request: httpx.Request) -> httpx.Response:
        del request
        claims = claims_v2(self.clock.time(), self.lifetime_s, **self.claims_extra)
        return httpx.Response(200, json={"object": "token", "jwt": sign(claims, self.signer)})


def clerk_error(status: int, code: str = "x", **headers: str) -> Responder:
    """A responder answering one Clerk-style error."""
    body = {"errors": [{"code": code, "message": code, "long_message": f"{code} happened"}]}
    return lambda _req: httpx.Response(status, json=body, headers=headers)


def raising(exc: Exception) -> Responder:
    def respond(_req: httpx.Request) -> httpx.Response:
        raise exc

    return respond
