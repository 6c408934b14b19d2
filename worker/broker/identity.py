"""Who is calling: a Kubernetes ServiceAccount token or a static credential, to one org.

A bearer that looks like a JWT is a projected ServiceAccount token: verified against the
cluster's OIDC issuer JWKS (``iss``, ``aud``, ``exp``, signature), its ``sub``
(``system:serviceaccount:<ns>:<name>``) looked up in the orgs file. Anything else is a
static credential, looked up by its hash. A refusal carries a ``DenyReason`` (a metric
label and the response's ``reason``), never any part of what the caller sent.
"""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import httpx
import jwt

from worker.broker.orgs import OrgEntry, Orgs

__all__ = ["DENY_STATUS", "Caller", "Denied", "DenyReason", "Identify", "ServiceAccountVerifier"]

AUDIENCE = "realtime-worker-broker"
_ALGORITHMS = ["RS256", "ES256"]
_LEEWAY_S = 5.0
_JWKS_MIN_REFETCH_S = 10.0


class DenyReason(enum.StrEnum):
    """Why a caller was refused (the ``reason`` label of ``broker_denied_total``)."""

    MISSING = "missing_credential"
    MALFORMED = "malformed_token"
    BAD_SIGNATURE = "bad_signature"
    WRONG_ISSUER = "wrong_issuer"
    WRONG_AUDIENCE = "wrong_audience"
    EXPIRED = "expired"
    UNKNOWN_CREDENTIAL = "unknown_credential"
    UNKNOWN_SERVICE_ACCOUNT = "unknown_service_account"
    NO_ISSUER = "service_accounts_not_configured"
    JWKS_UNAVAILABLE = "jwks_unavailable"


#: 403 for an identity that is proven but maps to no org; 503 when the broker cannot
#: check; 401 for everything else.
DENY_STATUS = {DenyReason.UNKNOWN_SERVICE_ACCOUNT: 403, DenyReason.JWKS_UNAVAILABLE: 503}


class Denied(Exception):
    """The caller is refused for ``reason``."""

    def __init__(self, reason: DenyReason) -> None:
        self.reason = reason
        super().__init__(reason.value)

    @property
    def status(self) -> int:
        return DENY_STATUS.get(self.reason, 401)


@dataclass(frozen=True)
class Caller:
    """A recognised caller: its org entry and a printable name (never a credential)."""

    entry: OrgEntry
    name: str
    mode: str  # "service_account" | "static"


class ServiceAccountVerifier:
    """Verifies projected ServiceAccount tokens against the issuer's JWKS (cached)."""

    def __init__(
        self,
        issuer: str,
        jwks_url: str,
        http: httpx.AsyncClient,
        audience: str = AUDIENCE,
        bearer_file: Path | None = None,
    ) -> None:
        self._issuer, self._jwks_url, self._audience = issuer, jwks_url, audience
        self._http = http
        self._bearer_file = bearer_file  # the API server wants a token for its JWKS
        self._keys: dict[str, Any] = {}
        self._fetched_at = -_JWKS_MIN_REFETCH_S
        self._lock = anyio.Lock()

    async def subject(self, token: str) -> str:
        """The verified ``sub``; ``Denied`` otherwise."""
        try:
            kid = jwt.get_unverified_header(token).get("kid")
        except jwt.PyJWTError as exc:
            raise Denied(DenyReason.MALFORMED) from exc
        key = await self._key(str(kid))
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=_ALGORITHMS,
                audience=self._audience,
                issuer=self._issuer,
                leeway=_LEEWAY_S,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
        except jwt.PyJWTError as exc:
            raise Denied(_reason_of(exc)) from exc
        return str(claims["sub"])

    async def _key(self, kid: str) -> Any:
        if kid not in self._keys:
            async with self._lock:  # one fetch at a time; waiters see its keys
                recent = time.monotonic() - self._fetched_at < _JWKS_MIN_REFETCH_S
                if kid not in self._keys and not recent:
                    await self._refetch()
        if kid not in self._keys:
            raise Denied(DenyReason.BAD_SIGNATURE)
        return self._keys[kid]

    async def _refetch(self) -> None:
        self._fetched_at = time.monotonic()  # an unknown kid refetches at most every 10 s
        headers = {}
        try:
            if self._bearer_file is not None:
                bearer = (await anyio.Path(self._bearer_file).read_text()).strip()
                headers["Authorization"] = f"Bearer {bearer}"
            response = await self._http.get(self._jwks_url, headers=headers)
            response.raise_for_status()
            keys = jwt.PyJWKSet.from_dict(response.json()).keys
        except (OSError, httpx.HTTPError, ValueError, jwt.PyJWTError) as exc:
            raise Denied(DenyReason.JWKS_UNAVAILABLE) from exc
        self._keys = {str(k.key_id): k.key for k in keys if k.key_id}


def _reason_of(exc: jwt.PyJWTError) -> DenyReason:
    if isinstance(exc, jwt.ExpiredSignatureError):
        return DenyReason.EXPIRED
    if isinstance(exc, jwt.InvalidAudienceError):
        return DenyReason.WRONG_AUDIENCE
    if isinstance(exc, jwt.InvalidIssuerError):
        return DenyReason.WRONG_ISSUER
    if isinstance(exc, jwt.InvalidSignatureError):
        return DenyReason.BAD_SIGNATURE
    return DenyReason.MALFORMED


class Identify:
    """Maps an ``Authorization`` header to a ``Caller`` or raises ``Denied``."""

    def __init__(self, orgs: Orgs, service_accounts: ServiceAccountVerifier | None) -> None:
        self.orgs = orgs
        self._sa = service_accounts

    async def __call__(self, authorization: str | None) -> Caller:
        scheme, _, bearer = (authorization or "").partition(" ")
        bearer = bearer.strip()
        if scheme.lower() != "bearer" or not bearer:
            raise Denied(DenyReason.MISSING)
        if bearer.count(".") == 2:
            return await self._service_account(bearer)
        entry = self.orgs.for_credential(bearer)
        if entry is None:
            raise Denied(DenyReason.UNKNOWN_CREDENTIAL)
        return Caller(entry, f"static credential of {entry.org_id}", "static")

    async def _service_account(self, token: str) -> Caller:
        if self._sa is None:
            raise Denied(DenyReason.NO_ISSUER)
        subject = await self._sa.subject(token)
        entry = self.orgs.for_service_account(subject)
        if entry is None:
            raise Denied(DenyReason.UNKNOWN_SERVICE_ACCOUNT)
        return Caller(entry, subject, "service_account")
