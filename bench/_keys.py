"""An RS256 key pair and Clerk-shaped session tokens for runs without the Clerk stand-in."""

from __future__ import annotations

import json
import time
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

ISSUER = "https://bench.clerk.accounts.dev"
KID = "bench-key-1"


def new_private_pem() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def jwks_of(private_pem: str) -> dict[str, Any]:
    key = serialization.load_pem_private_key(private_pem.encode(), password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    return {"keys": [jwk | {"kid": KID, "alg": "RS256", "use": "sig"}]}


class StaticTokenSource:
    """A ``worker.tokens.TokenSource`` minting v2 session tokens locally (no Clerk)."""

    def __init__(self, private_pem: str, org_id: str, lifetime_s: int = 3600) -> None:
        self._pem = private_pem
        self._org_id = org_id
        self._lifetime_s = lifetime_s

    async def fetch(self) -> str:
        now = int(time.time())
        claims = {
            "iss": ISSUER,
            "sub": "user_bench",
            "sid": "sess_bench",
            "iat": now,
            "nbf": now - 5,
            "exp": now + self._lifetime_s,
            "role": "authenticated",
            "v": 2,
            "o": {"id": self._org_id, "rol": "worker", "slg": "bench"},
        }
        return jwt.encode(claims, self._pem, algorithm="RS256", headers={"kid": KID})
