"""Building a session keeper and its token source from ``Settings`` (the worker's way;
a broker builds ``ClerkSessionApi``, ``Obtainer`` and ``SessionKeeper`` per org itself)."""

from __future__ import annotations

import httpx

from worker.clock import Clock
from worker.errors import ConfigError
from worker.settings import SecretStr, Settings
from worker.tokens.manager import Verifier
from worker.tokens.sessions.clerk_api import ClerkSessionApi
from worker.tokens.sessions.keeper import SessionKeeper
from worker.tokens.sessions.model import SessionMetrics
from worker.tokens.sessions.obtain import Minter, Obtainer
from worker.tokens.sessions.source import SessionTokenSource
from worker.tokens.sources import ClerkTokenSource

__all__ = ["managed_session"]


def managed_session(
    settings: Settings,
    *,
    http: httpx.AsyncClient,
    verifier: Verifier,
    clock: Clock,
    metrics: SessionMetrics | None = None,
) -> tuple[SessionKeeper, SessionTokenSource]:
    """The keeper of ``CLERK_USER_ID``'s session in ``ORG_ID`` and the source minting
    from it (no I/O)."""
    secret, user_id = settings.clerk_secret_key, settings.clerk_user_id
    if secret is None or user_id is None:  # only reachable with hand-built Settings
        raise ConfigError(["CLERK_SECRET_KEY and CLERK_USER_ID are required to manage sessions"])
    api = ClerkSessionApi(settings.clerk_api_url, secret, settings.clerk_issuer, http=http)
    minter = _minter(settings, secret, http)
    margin = settings.clerk_session_renewal_margin_s
    obtainer = Obtainer(
        api,
        user_id=user_id,
        org_id=settings.org_id,
        verifier=verifier,
        mint=minter,
        clock=clock,
        margin_s=margin,
    )
    keeper = SessionKeeper(
        obtainer,
        api,
        clock,
        given_session_id=settings.clerk_session_id,
        margin_s=margin,
        metrics=metrics,
    )
    return keeper, SessionTokenSource(keeper, minter, verifier)


def _minter(settings: Settings, secret: SecretStr, http: httpx.AsyncClient) -> Minter:
    def mint(session_id: str) -> ClerkTokenSource:
        return ClerkTokenSource(
            settings.clerk_api_url,
            secret,
            session_id,
            settings.clerk_token_template,
            settings.clerk_token_expires_in_s,
            http=http,
        )

    return mint
