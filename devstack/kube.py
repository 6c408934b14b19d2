"""A stand-in for the Kubernetes API server's ServiceAccount issuer: OIDC discovery, JWKS,
and projected-token minting for tests.

The real API server publishes ``/.well-known/openid-configuration`` (``issuer``,
``jwks_uri``) and ``/openid/v1/jwks``, and the kubelet writes each pod a token of its
ServiceAccount with the audience and lifetime of the pod's projected volume. Claims as
the API server's (``iss``, ``sub = system:serviceaccount:<ns>:<name>``, ``aud`` a list,
``exp``, ``iat``, ``nbf``, ``kubernetes.io``). ``mint`` lets a test forge what it needs
(wrong audience, expired, an unknown ServiceAccount, a key the issuer never published).
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import jwt
from aiohttp import web

from devstack.clerk.keys import SigningKey

DEFAULT_AUDIENCE = "realtime-worker-broker"


class KubeIssuer:
    """One cluster's ServiceAccount issuer; ``bind(url)`` once its app is served."""

    def __init__(self) -> None:
        self.key = SigningKey.generate()
        self.issuer = ""
        self.requests = 0

    def bind(self, url: str) -> None:
        self.issuer = url

    @property
    def jwks_url(self) -> str:
        return f"{self.issuer}/openid/v1/jwks"

    def mint(
        self,
        namespace: str,
        name: str,
        *,
        audience: str = DEFAULT_AUDIENCE,
        expires_in_s: float = 3600,
        issuer: str | None = None,
        key: SigningKey | None = None,
    ) -> str:
        """A projected ServiceAccount token (``key``: sign with another, unpublished key)."""
        now = int(time.time())
        claims: dict[str, Any] = {
            "aud": [audience],
            "exp": int(now + expires_in_s),
            "iat": now,
            "nbf": now,
            "iss": issuer or self.issuer,
            "sub": f"system:serviceaccount:{namespace}:{name}",
            "kubernetes.io": {
                "namespace": namespace,
                "serviceaccount": {"name": name, "uid": str(uuid.uuid4())},
            },
        }
        signer = key or self.key
        return jwt.encode(
            claims, signer.private_key, algorithm="RS256", headers={"kid": signer.kid}
        )

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/.well-known/openid-configuration", self._discovery)
        app.router.add_get("/openid/v1/jwks", self._jwks)
        return app

    async def _discovery(self, _request: web.Request) -> web.Response:
        self.requests += 1
        return web.json_response(
            {
                "issuer": self.issuer,
                "jwks_uri": self.jwks_url,
                "response_types_supported": ["id_token"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
            }
        )

    async def _jwks(self, _request: web.Request) -> web.Response:
        self.requests += 1
        return web.json_response({"keys": [self.key.public_jwk()]})
