"""Verification of Clerk session tokens: RS256 against the JWKS, then the claims we need.

A token is only ever handed on as a ``Token`` built here, after every check passed.
Timing claims are checked against the injected clock (not PyJWT's own ``now``), so the
schedule tests and the verifier agree on what time it is.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from math import isfinite
from typing import Any

import anyio
import httpx
import jwt

from worker.clock import Clock
from worker.errors import TokenRejected, TokenUnavailable

__all__ = ["Token", "TokenVerifier", "check_claims"]

log = logging.getLogger("worker.tokens")


@dataclass(frozen=True, eq=False)
class Token:
    """A verified Clerk session token. ``jwt`` and ``claims`` never appear in its repr."""

    jwt: str = field(repr=False)
    claims: Mapping[str, Any] = field(repr=False)
    expires_at: float
    issued_at: float
    org_id: str
    kid: str
    session_id: str | None = None

    @property
    def lifetime_s(self) -> float:
        """Seconds between ``iat`` and ``exp``."""
        return self.expires_at - self.issued_at

    def expires_in(self, now: float) -> float:
        """Seconds left at wall-clock ``now`` (negative once expired)."""
        return self.expires_at - now


def check_claims(
    claims: Mapping[str, Any],
    *,
    org_id: str,
    now: float,
    leeway_s: float,
    role: str = "authenticated",
) -> str:
    """Check the claims of a token whose signature is valid; return its org id.

    Raises ``TokenRejected`` with reason ``malformed``, ``expired``, ``not_yet_valid``,
    ``missing_role`` (no ``role``, or not the one required), ``pending_session``,
    ``no_org`` or ``wrong_org``.
    """
    exp, iat, nbf = _number(claims, "exp"), _number(claims, "iat"), _number(claims, "nbf", 0.0)
    if now > exp + leeway_s:
        raise TokenRejected("expired", f"token expired {now - exp:.0f}s ago (exp={exp})")
    if nbf > now + leeway_s or iat > now + leeway_s:
        raise TokenRejected("not_yet_valid", "token is not valid yet: check the host's clock")
    _check_role(claims.get("role"), role)
    if claims.get("sts") == "pending":
        raise TokenRejected("pending_session", "the Clerk session is pending (no active org)")
    found = _org_of(claims)
    if found is None:
        raise TokenRejected("no_org", "token carries no organization: activate the org")
    if found != org_id:
        raise TokenRejected("wrong_org", f"token is for organization {found}, not {org_id}")
    return found


def _check_role(found: object, wanted: str) -> None:
    if not isinstance(found, str) or not found:
        raise TokenRejected(
            "missing_role",
            f"token has no 'role' claim: add role={wanted} to Clerk's session token",
        )
    if found != wanted:
        shown = repr(found) if len(found) <= _MAX_SHOWN else "a long value"
        raise TokenRejected(
            "missing_role",
            f"token's role is {shown}, not {wanted}: set role={wanted} in Clerk's session "
            "token (or WORKER_TOKEN_ROLE to the role your policies use)",
        )


#: Timing claims are seconds since the epoch: anything past year 5000 is not a time.
_MAX_TIME = 1e11
_MAX_SHOWN = 40


def _number(claims: Mapping[str, Any], name: str, default: float | None = None) -> float:
    value = claims.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TokenRejected("malformed", f"token claim {name!r} is missing or not a number")
    # A huge JSON integer (10**400) is a Python int too large for a float: compare first.
    if not -_MAX_TIME < value < _MAX_TIME or not isfinite(value):
        raise TokenRejected("malformed", f"token claim {name!r} is not a time in seconds")
    return float(value)


def _org_of(claims: Mapping[str, Any]) -> str | None:
    """v2 tokens nest the org as ``o.id``; v1 tokens carry a flat ``org_id``."""
    nested = claims.get("o")
    if isinstance(nested, Mapping) and isinstance(nested.get("id"), str):
        return str(nested["id"])
    flat = claims.get("org_id")
    return flat if isinstance(flat, str) and flat else None


class TokenVerifier:
    """Verifies tokens against a JWKS fetched with httpx and cached by ``kid``.

    An unknown ``kid`` triggers one refetch (a rotated key is picked up), but at most once
    per ``refetch_cooldown_s`` so a flood of bad tokens cannot hammer the JWKS endpoint.
    The cooldown is short on purpose: tokens come from Clerk at refresh pace, and a key
    rotated soon after the last fetch must not leave the worker without a valid token.
    """

    def __init__(
        self,
        jwks_url: str,
        issuer: str | None,
        org_id: str,
        http: httpx.AsyncClient,
        clock: Clock,
        *,
        leeway_s: float = 5.0,
        refetch_cooldown_s: float = 5.0,
        max_age_s: float = 3600.0,
        role: str = "authenticated",
    ) -> None:
        self._jwks_url = jwks_url
        self._issuer = issuer
        self._org_id = org_id
        self._http = http
        self._clock = clock
        self._leeway_s = leeway_s
        self._cooldown_s = refetch_cooldown_s
        self._max_age_s = max_age_s
        self._role = role
        self._keys: dict[str, jwt.PyJWK] = {}
        self._refused: dict[str, str] = {}  # kid -> why the JWKS's key cannot be used
        self._fetched_at: float | None = None
        self._lock = anyio.Lock()
        self.jwks_fetches = 0

    async def verify(self, token: str) -> Token:
        """Return the verified ``Token`` or raise ``TokenRejected`` (``TokenUnavailable``
        when the JWKS cannot be fetched at all)."""
        kid = _kid_of(_header_of(token))
        key = await self._key_for(kid)
        claims = self._decode(token, key)
        org = check_claims(
            claims,
            org_id=self._org_id,
            now=self._clock.time(),
            leeway_s=self._leeway_s,
            role=self._role,
        )
        sid = claims.get("sid")
        return Token(
            jwt=token,
            claims=claims,
            expires_at=float(claims["exp"]),
            issued_at=float(claims["iat"]),
            org_id=org,
            kid=kid,
            session_id=sid if isinstance(sid, str) else None,
        )

    def _decode(self, token: str, key: jwt.PyJWK) -> dict[str, Any]:
        options: Any = {
            "require": ["exp", "iat", "sub"],
            # Timing is checked in check_claims against the injected clock.
            "verify_exp": False,
            "verify_nbf": False,
            "verify_iat": False,
            "verify_aud": False,  # Clerk session tokens carry no aud
        }
        try:
            return jwt.decode(
                token, key.key, algorithms=["RS256"], issuer=self._issuer, options=options
            )
        except jwt.InvalidSignatureError as exc:
            raise TokenRejected("signature", "token signature does not verify") from exc
        except (jwt.InvalidIssuerError, jwt.MissingRequiredClaimError) as exc:
            reason = "issuer" if isinstance(exc, jwt.InvalidIssuerError) else "malformed"
            raise TokenRejected(reason, f"token rejected: {exc}") from exc
        except jwt.InvalidTokenError as exc:
            raise TokenRejected("malformed", f"token cannot be decoded: {exc}") from exc
        except (ValueError, TypeError, OverflowError, RecursionError) as exc:
            # What the JSON inside a signed token can still do to PyJWT's own checks.
            raise TokenRejected("malformed", "token claims cannot be read") from exc

    async def _key_for(self, kid: str) -> jwt.PyJWK:
        async with self._lock:
            if self._should_fetch(kid):
                await self._fetch()
            key = self._keys.get(kid)
        if kid in self._refused:
            raise TokenRejected(
                "unusable_kid",
                f"key {kid!r} in the JWKS at {self._jwks_url} is refused: "
                f"{self._refused[kid]}; fix the JWKS (one key per kid, use=sig)",
            )
        if key is None:
            raise TokenRejected("unknown_kid", f"no key {kid!r} in the JWKS at {self._jwks_url}")
        return key

    def _should_fetch(self, kid: str) -> bool:
        if self._fetched_at is None or not self._keys:
            return True
        age = self._clock.monotonic() - self._fetched_at
        if age >= self._max_age_s:
            return True
        known = kid in self._keys or kid in self._refused
        return not known and age >= self._cooldown_s

    async def _fetch(self) -> None:
        """Download the JWKS; on failure keep the old keys if there are any."""
        self.jwks_fetches += 1
        try:
            response = await self._http.get(self._jwks_url)
            response.raise_for_status()
            keys, refused = _parse_jwks(response.json())
        except (httpx.HTTPError, ValueError, RecursionError, jwt.PyJWTError) as exc:
            # Stamp the attempt too, so an unreachable JWKS is not retried on every token.
            self._fetched_at = self._clock.monotonic()
            if not self._keys:
                raise TokenUnavailable(f"JWKS {self._jwks_url} unavailable: {exc}") from exc
            log.warning("JWKS refetch failed, keeping cached keys", extra={"error": str(exc)})
            return
        if refused:
            log.warning(
                "JWKS keys refused: %s",
                "; ".join(f"{kid!r} {why}" for kid, why in sorted(refused.items())),
                extra={"jwks_url": self._jwks_url},
            )
        self._keys, self._refused = keys, refused
        self._fetched_at = self._clock.monotonic()


def _parse_jwks(data: object) -> tuple[dict[str, jwt.PyJWK], dict[str, str]]:
    """Usable signing keys by kid, and the kids refused with why: a kid listed twice (which
    key would sign?) and keys not for signatures (``use`` other than ``sig``) are never
    used. Raises ``PyJWKSetError`` when no key is usable."""
    if not isinstance(data, dict) or not isinstance(data.get("keys"), list):
        raise jwt.PyJWKSetError("the JWKS is not a JSON object with a 'keys' list")
    seen: set[str] = set()
    keys: dict[str, jwt.PyJWK] = {}
    refused: dict[str, str] = {}
    for jwk in data["keys"]:
        kid = jwk.get("kid") if isinstance(jwk, dict) else None
        if not isinstance(kid, str) or not kid:
            continue
        if kid in seen:
            keys.pop(kid, None)
            refused[kid] = "it is listed more than once"
            continue
        seen.add(kid)
        if jwk.get("use", "sig") != "sig":
            refused[kid] = "it is not a signing key (use is not 'sig')"
            continue
        try:
            keys[kid] = jwt.PyJWK.from_dict(jwk)
        except (jwt.PyJWTError, ValueError, TypeError):
            refused[kid] = "it is not an RSA signing key the worker can read"
    if not keys:
        raise jwt.PyJWKSetError("the JWKS has no usable signing key")
    return keys, refused


def _header_of(token: str) -> dict[str, Any]:
    try:
        return jwt.get_unverified_header(token)
    except (jwt.DecodeError, ValueError, TypeError, RecursionError) as exc:
        raise TokenRejected("malformed", "token is not a JWT") from exc
    except jwt.InvalidTokenError as exc:  # PyJWT refuses a 'crit' it does not support
        raise TokenRejected("malformed", "token header has 'crit' extensions: refused") from exc


def _kid_of(header: Mapping[str, Any]) -> str:
    if "crit" in header:
        # RFC 7515 4.1.11: critical extensions must be understood; the worker knows none.
        raise TokenRejected("malformed", "token header has 'crit' extensions: refused")
    kid = header.get("kid")
    if header.get("alg") != "RS256" or not isinstance(kid, str):
        raise TokenRejected("malformed", "token is not RS256 with a kid header")
    return kid
