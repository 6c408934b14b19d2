"""The token steps of ``check`` and ``token``: the session the worker would use, and one
token minted and verified exactly as the worker would."""

from __future__ import annotations

import time
from typing import Any

import httpx

from worker.clock import SystemClock
from worker.settings import Settings
from worker.tokens import ClerkTokenSource, Token, TokenVerifier, source_from_settings
from worker.tokens.sessions import SessionInfo, managed_session

__all__ = [
    "describe_session",
    "describe_token",
    "keeps_its_session",
    "mint_and_verify",
    "session_for",
]


def _verifier(settings: Settings, http: httpx.AsyncClient) -> TokenVerifier:
    return TokenVerifier(
        settings.clerk_jwks_url,
        settings.clerk_issuer,
        settings.org_id,
        http,
        SystemClock(),
        role=settings.token_role,
    )


def keeps_its_session(settings: Settings) -> bool:
    """True when the worker gets and renews its own session (``CLERK_USER_ID``)."""
    return settings.clerk_user_id is not None and settings.token_file is None


async def session_for(settings: Settings, http: httpx.AsyncClient) -> SessionInfo:
    """The session a worker with ``CLERK_USER_ID`` would start with (it may create one,
    which the worker then reuses)."""
    keeper, _ = managed_session(
        settings, http=http, verifier=_verifier(settings, http), clock=SystemClock()
    )
    return await keeper.obtain_first()


async def mint_and_verify(
    settings: Settings, http: httpx.AsyncClient, session_id: str | None = None
) -> Token:
    """One token from the configured source (or from ``session_id``), verified exactly as
    the worker would."""
    if session_id is None or settings.clerk_secret_key is None:
        source = source_from_settings(settings, http)
    else:
        source = ClerkTokenSource(
            settings.clerk_api_url,
            settings.clerk_secret_key,
            session_id,
            settings.clerk_token_template,
            settings.clerk_token_expires_in_s,
            http=http,
        )
    return await _verifier(settings, http).verify(await source.fetch())


def describe_session(session: SessionInfo) -> str:
    """One line: the session, how it was obtained, when Clerk ends it."""
    return session.describe(time.time())


def describe_token(token: Token) -> dict[str, Any]:
    """The decoded token without its signature: safe to print."""
    return {
        "kid": token.kid,
        "expires_at": token.expires_at,
        "org_id": token.org_id,
        "claims": token.claims,
    }
