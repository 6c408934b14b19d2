"""Who is asking: the gateway's apikey check, then PostgREST's JWT check.

The hosted stack has two layers and so does this module:

* the API gateway wants an ``apikey`` (header or query parameter) that is one of the
  project's own keys (HS-signed by the project secret, role ``anon`` or ``service_role``);
  a request without ``Authorization`` is forwarded with ``Bearer <apikey>``;
* PostgREST verifies the bearer token (signature by the project secret or a JWKS ``kid``),
  takes its ``role`` (the anonymous role when absent) and tolerates 30 s of clock skew
  on ``exp``.

Signature checks reuse :class:`devstack.jwt.Keyring`; only the error texts are PostgREST's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from devstack.jwt import SYMMETRIC, JwtFailure, Keyring, split_token
from devstack.rest.errors import ApiError, GatewayError

ANON_ROLE = "anon"
PROJECT_KEY_ROLES = frozenset({"anon", "service_role"})
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


def _gateway_refusal(message: str, hint: str) -> GatewayError:
    return GatewayError(401, "", message, hint=hint)


def check_apikey(apikey: str | None, keyring: Keyring) -> dict[str, Any]:
    """The project key's claims, or the gateway's 401."""
    if not apikey:
        raise _gateway_refusal(
            "No API key found in request", "No `apikey` request header or url param was found."
        )
    try:
        _, header, _ = split_token(apikey)
        claims = keyring.verify(apikey)
    except JwtFailure as exc:
        raise _invalid_apikey() from exc
    if header.get("alg") not in SYMMETRIC or claims.get("role") not in PROJECT_KEY_ROLES:
        raise _invalid_apikey()  # a user's token is not a project key
    return claims


def _invalid_apikey() -> GatewayError:
    return _gateway_refusal(
        "Invalid API key", "Double check your Supabase `anon` or `service_role` API key."
    )


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


def authenticate(
    headers: Mapping[str, str], query: Mapping[str, str], keyring: Keyring
) -> Identity:
    """Run the gateway's and PostgREST's checks; the request's role and claims."""
    apikey = headers.get("apikey") or query.get("apikey")
    key_claims = check_apikey(apikey, keyring)
    authorization = headers.get("Authorization")
    if authorization is None:
        claims = key_claims  # the gateway forwards the apikey as the bearer token
    else:
        token = _bearer(authorization)
        # PostgREST ignores other schemes: the request is anonymous then.
        claims = {} if token is None else verify_bearer(token, keyring)
    role = claims.get("role") or ANON_ROLE
    if not isinstance(role, str):
        raise _jwt_error("PGRST301", "JWT couldn't be decoded")
    return Identity(role=role, claims=claims)
