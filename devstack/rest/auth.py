"""Who is asking: PostgREST's JWT check.

The API keys are the gateway's business (``devstack.gateway``, in front of ``/rest/v1``):
by the time a request gets here its ``Authorization`` holds a JWT (a user's, a legacy key,
or one the gateway minted for a publishable or secret key). PostgREST verifies the bearer
token (signature by the project secret or a JWKS ``kid``), takes its ``role`` (the
anonymous role when absent, as when there is no ``Authorization`` at all) and tolerates
30 s of clock skew on ``exp``.

Signature checks reuse :class:`devstack.jwt.Keyring`; only the error texts are PostgREST's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from devstack.jwt import JwtFailure, Keyring, split_token
from devstack.rest.errors import ApiError

ANON_ROLE = "anon"
CLOCK_SKEW_S = 30.0  # PostgREST's allowedSkewSeconds


@dataclass(frozen=True)
class Identity:
    """The database role a request runs as and the claims RLS reads."""

    role: str
    claims: dict[str, Any] = field(repr=False)

    @property
    def authed(self) -> bool:
        """PostgREST's notion: any role but the anonymous one (decides 401 vs 403)."""
        return self.role != ANON_ROLE


def _jwt_error(code: str, message: str) -> ApiError:
    header = f'Bearer error="invalid_token", error_description="{message}"'
    return ApiError(401, code, message, headers={"WWW-Authenticate": header})


def verify_bearer(token: str, keyring: Keyring) -> dict[str, Any]:
    """The claims of a bearer token as PostgREST accepts it, or its 401 error."""
    if not token:
        raise _jwt_error("PGRST301", "Empty JWT is sent in Authorization header")
    parts = token.count(".") + 1
    if parts != 3:
        raise _jwt_error("PGRST301", f"Expected 3 parts in JWT; got {parts}")
    try:
        return keyring.verify(token)
    except JwtFailure as exc:
        return _accepted_anyway(token, exc, keyring)


def _accepted_anyway(token: str, exc: JwtFailure, keyring: Keyring) -> dict[str, Any]:
    """Realtime's rules are stricter than PostgREST's: relax them where PostgREST does."""
    if exc.kind == "signature":
        raise _jwt_error("PGRST301", "JWSError JWSInvalidSignature") from exc
    if exc.kind == "signer":
        raise _jwt_error("PGRST301", "No suitable key or wrong key type") from exc
    if exc.kind == "malformed":
        if exc.text == "Token expiration time is invalid":
            raise _jwt_error("PGRST303", "The JWT 'exp' claim must be a number") from exc
        raise _jwt_error("PGRST301", "JWT couldn't be decoded") from exc
    # The signature was good: only role/exp were judged, and PostgREST needs neither.
    _, _, claims = split_token(token)
    if exc.kind == "expired" and keyring.seconds_left(claims) <= -CLOCK_SKEW_S:
        raise _jwt_error("PGRST303", "JWT expired") from exc
    return claims


def _bearer(authorization: str) -> str | None:
    scheme, _, token = authorization.strip().partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


def authenticate(headers: Mapping[str, str], keyring: Keyring) -> Identity:
    """Run PostgREST's checks; the request's role and claims."""
    authorization = headers.get("Authorization")
    claims: dict[str, Any]
    if authorization is None:
        claims = {}  # no JWT at all: the anonymous role
    else:
        token = _bearer(authorization)
        # PostgREST ignores other schemes: the request is anonymous then.
        claims = {} if token is None else verify_bearer(token, keyring)
    role = claims.get("role") or ANON_ROLE
    if not isinstance(role, str):
        raise _jwt_error("PGRST301", "JWT couldn't be decoded")
    return Identity(role=role, claims=claims)
