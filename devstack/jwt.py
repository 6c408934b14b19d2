"""JWT verification as the Supabase services do it (Realtime's rules; the data API reuses them).

Follows ``supabase/realtime: lib/realtime_web/channels/auth/jwt_verification.ex``: the
token is URL-decoded and stripped of whitespace; header and claims must be JSON objects;
HS* tokens use a matching ``oct`` JWK or else the project secret; RS/ES/EdDSA tokens need
a ``kid`` found in the tenant's stored JWKS (the server never downloads a JWKS URL);
``role`` and ``exp`` must both be present and ``exp`` must be in the future. ``iss`` and
``aud`` are not checked. Error texts are the server's own.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import unquote

import jwt as pyjwt

SIGNER_TEXT = "Failed to generate JWT signer, check your JWT secret or JWKS configuration"
ASYMMETRIC = ("RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "EdDSA", "Ed25519", "Ed448")
SYMMETRIC = ("HS256", "HS384", "HS512")


class JwtFailure(Exception):
    """A token the server refuses; ``code`` and ``text`` are the server's words."""

    def __init__(self, kind: str, code: str, text: str) -> None:
        self.kind = kind  # malformed | signer | signature | missing_fields | expired
        self.code = code
        self.text = text
        super().__init__(f"{code}: {text}")

    @property
    def join_reason(self) -> str:
        """The ``reason`` of a refused ``phx_join``: ``"<Code>: <message>"``."""
        return f"{self.code}: {self.text}"


def _malformed() -> JwtFailure:
    return JwtFailure("malformed", "MalformedJWT", "The token provided is not a valid JWT")


def _segment(part: str) -> dict[str, Any]:
    try:
        raw = base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
        value = json.loads(raw)
    except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
        raise _malformed() from exc
    if not isinstance(value, dict):
        raise _malformed()
    return value


def split_token(token: str) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """Normalise and decode (without verifying) a JWT: (clean token, header, claims)."""
    clean = "".join(unquote(token).split())
    parts = clean.split(".")
    if len(parts) != 3 or not all(parts[:2]):
        raise _malformed()
    return clean, _segment(parts[0]), _segment(parts[1])


class Keyring:
    """The keys a Supabase project trusts: its HS256 secret plus a stored JWKS."""

    def __init__(
        self,
        jwt_secret: str,
        jwks: Callable[[], Mapping[str, Any]] = lambda: {"keys": []},
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._secret = jwt_secret
        self._jwks = jwks
        self._clock = clock

    @property
    def secret(self) -> str:
        """The project's HS256 secret (the gateway signs the JWTs it mints with it)."""
        return self._secret

    def _key_for(self, header: Mapping[str, Any]) -> Any:
        alg, kid = header.get("alg"), header.get("kid")
        keys = [k for k in self._jwks().get("keys", []) if isinstance(k, Mapping)]
        if alg in SYMMETRIC:
            match = next((k for k in keys if k.get("kty") == "oct" and k.get("kid") == kid), None)
            return pyjwt.PyJWK(dict(match)).key if match and kid else self._secret.encode()
        if alg in ASYMMETRIC and kid is not None:
            match = next((k for k in keys if k.get("kid") == kid and k.get("kty") != "oct"), None)
            if match is None:
                raise JwtFailure(
                    "signer",
                    "JwtSignerError",
                    f'Failed to generate JWT signer for key ID (kid) "{kid}", check your JWT '
                    "secret or JWKS configuration",
                )
            return pyjwt.PyJWK(dict(match)).key
        raise JwtFailure("signer", "JwtSignerError", SIGNER_TEXT)

    def verify(self, token: str) -> dict[str, Any]:
        """The claims of a valid token; raises JwtFailure with the server's text otherwise."""
        if not isinstance(token, str) or not token:
            raise _malformed()
        clean, header, _ = split_token(token)
        key = self._key_for(header)
        try:
            claims: dict[str, Any] = pyjwt.decode(
                clean,
                key,
                algorithms=[str(header.get("alg"))],
                options={
                    "verify_exp": False,
                    "verify_nbf": False,
                    "verify_iat": False,
                    "verify_aud": False,
                    "verify_iss": False,
                },
            )
        except pyjwt.InvalidSignatureError as exc:
            raise JwtFailure(
                "signature", "JwtSignatureError", "Failed to validate JWT signature"
            ) from exc
        except pyjwt.PyJWTError as exc:
            raise _malformed() from exc
        return self.check_claims(claims)

    def check_claims(self, claims: dict[str, Any]) -> dict[str, Any]:
        """``role`` and ``exp`` present, ``exp`` in the future (second resolution)."""
        if "role" not in claims or "exp" not in claims:
            raise JwtFailure(
                "missing_fields", "InvalidJWTToken", "Fields `role` and `exp` are required in JWT"
            )
        exp = claims["exp"]
        if not isinstance(exp, int | float) or isinstance(exp, bool):
            raise JwtFailure("malformed", "InvalidJWTToken", "Token expiration time is invalid")
        now = math.floor(self._clock())
        if exp <= now:
            raise JwtFailure(
                "expired",
                "InvalidJWTToken",
                f"Token has expired {now - math.floor(exp)} seconds ago",
            )
        return claims

    def seconds_left(self, claims: Mapping[str, Any]) -> float:
        """Seconds until ``exp`` (negative once expired)."""
        return float(claims["exp"]) - self._clock()
