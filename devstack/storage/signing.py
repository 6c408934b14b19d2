"""Signed download URLs as Supabase Storage makes and checks them (``src/storage/object.ts``:
``signObjectUrl``, ``verifyObjectSignature``; ``src/internal/auth/jwt.ts``).

The token is an HS256 JWT signed by the project's JWT secret with ``url`` (``<bucket>/<name>``),
``scope: "download"``, ``iat`` and ``exp``. A token that does not verify or has expired is
``InvalidJWT`` with jose's message; one for another object is ``InvalidSignature``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import jwt as pyjwt

from devstack.storage.errors import StorageError, invalid_jwt, invalid_parameter, invalid_signature

SCOPE_DOWNLOAD = "download"
MAX_EXPIRES_IN_S = 10 * 365 * 24 * 3600  # jose's numeric limit is far larger; any sane bound
EXPIRED_TEXT = '"exp" claim timestamp check failed'


def expires_in(value: object) -> int:
    """The ``expiresIn`` of a sign request: an integer of seconds >= 1 (digits in a string
    are coerced, as Fastify's schema does)."""
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_EXPIRES_IN_S:
        raise invalid_parameter("expiresIn")
    return value


class UrlSigner:
    """Signs and verifies object URLs with the project secret; time from ``clock``."""

    def __init__(self, secret: str, clock: Callable[[], float] = time.time) -> None:
        self._secret = secret
        self._clock = clock

    def sign(self, bucket: str, name: str, seconds: int) -> str:
        """The path Storage answers: ``/object/sign/<bucket>/<name>?token=<jwt>``."""
        now = math.floor(self._clock())
        url = f"{bucket}/{name}"
        claims = {"url": url, "scope": SCOPE_DOWNLOAD, "iat": now, "exp": now + seconds}
        token = pyjwt.encode(claims, self._secret, algorithm="HS256")
        return f"/object/sign/{url}?token={token}"

    def verify(self, token: str, bucket: str, name: str) -> dict[str, Any]:
        """The token's claims if it is a live download token for exactly this object."""
        claims = self._decode(token)
        scope = claims.get("scope")
        if not (scope == SCOPE_DOWNLOAD or (scope is None and "upsert" not in claims)):
            raise invalid_signature(f"Token is not scoped for {SCOPE_DOWNLOAD}")
        if claims.get("url") != f"{bucket}/{name}":
            raise invalid_signature()
        return claims

    def _decode(self, token: str) -> dict[str, Any]:
        try:
            # Times are judged below, by this signer's clock (jose checks exp, not iat).
            claims: dict[str, Any] = pyjwt.decode(
                token,
                self._secret,
                algorithms=["HS256"],
                options={"verify_exp": False, "verify_iat": False, "verify_nbf": False},
            )
        except pyjwt.InvalidSignatureError as exc:
            raise invalid_jwt("signature verification failed") from exc
        except pyjwt.PyJWTError as exc:
            raise invalid_jwt("Invalid Compact JWS") from exc
        exp = claims.get("exp")
        if not isinstance(exp, int | float) or exp <= self._clock():
            raise _expired()
        return claims


def _expired() -> StorageError:
    return invalid_jwt(EXPIRED_TEXT)
