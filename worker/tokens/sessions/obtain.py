"""Getting a session for the service user: adopt the given one, reuse, or create.

``Obtainer.obtain()`` first reuses an active session of the user whose active
organization is the org and with more than the renewal margin left (a restart does not
pile up sessions), else creates one: ``POST /v1/sessions`` on development instances; on
production ones (``sk_live_``, or when that call answers
``request_invalid_for_environment``) a sign-in token redeemed through the Frontend API's
native ticket sign-in, then ``touch`` with the org when the session came without it.
Every session is checked before use: its first token must verify (signature, ``iss``,
org, ``role``); a session made here that fails is revoked.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from worker.clock import Clock
from worker.errors import SessionEnded, TokenRejected, TokenUnavailable
from worker.tokens.manager import Verifier
from worker.tokens.sessions.clerk_api import ClerkSessionApi, DevelopmentOnly
from worker.tokens.sessions.model import Obtained, SessionInfo
from worker.tokens.sessions.schedule import renewal_margin
from worker.tokens.sources import TokenSource

__all__ = ["Minter", "Obtainer"]

log = logging.getLogger("worker.tokens.sessions")

#: ``mint(session_id)``: a token source minting from that session.
Minter = Callable[[str], TokenSource]
MAX_REUSE_CANDIDATES = 3


class Obtainer:
    """Gets checked sessions of ``user_id`` with ``org_id`` active; no Settings needed."""

    def __init__(
        self,
        api: ClerkSessionApi,
        *,
        user_id: str,
        org_id: str,
        verifier: Verifier,
        mint: Minter,
        clock: Clock,
        margin_s: float | None = None,
    ) -> None:
        self._api = api
        self._user_id = user_id
        self._org_id = org_id
        self._verifier = verifier
        self._mint = mint
        self._clock = clock
        self._margin_s = margin_s
        self.production = api.production_key

    @property
    def instance(self) -> str:
        """``production`` or ``development``, as far as the worker has seen."""
        return "production" if self.production else "development"

    async def adopt(self, session_id: str) -> SessionInfo | None:
        """The given session, checked, or None when it has ended (get another then)."""
        try:
            session = _parsed(await self._api.get(session_id), Obtained.GIVEN)
        except SessionEnded:
            return None
        if session.status != "active" or session.ends_at <= self._clock.time():
            return None
        await self.check(session)
        return session

    async def obtain(self, *, exclude: str | None = None) -> SessionInfo:
        """A reusable session other than ``exclude``, else a new one; checked."""
        reused = await self._reuse(exclude)
        if reused is not None:
            return reused
        session = await self._create()
        await self.check(session)
        return session

    async def check(self, session: SessionInfo) -> None:
        """Its first token verifies; a session made here that fails is revoked."""
        try:
            await self._verifier.verify(await self._mint(session.id).fetch())
        except (TokenRejected, SessionEnded) as exc:
            if session.obtained in (Obtained.CREATED, Obtained.SIGNED_IN):
                await self._revoke_quietly(session.id)
            if isinstance(exc, SessionEnded):  # ended between making and minting: retry
                raise TokenUnavailable(f"the new session {session.id} ended at once") from exc
            raise

    def _reusable(self, body: dict[str, object], exclude: str | None) -> SessionInfo | None:
        try:
            session = SessionInfo.parse(body, Obtained.REUSED)
        except ValueError:
            return None
        left = session.ends_at - self._clock.time()
        if session.id == exclude or session.org_id != self._org_id:
            return None
        return session if left > renewal_margin(session.lifetime_s, self._margin_s) else None

    async def _reuse(self, exclude: str | None) -> SessionInfo | None:
        found = [self._reusable(s, exclude) for s in await self._api.list_active(self._user_id)]
        candidates = sorted((s for s in found if s), key=lambda s: s.ends_at, reverse=True)
        for session in candidates[:MAX_REUSE_CANDIDATES]:
            try:
                await self.check(session)
            except (TokenRejected, TokenUnavailable) as exc:
                log.warning("not reusing session", extra={"session": session.id, "error": str(exc)})
                continue
            return session
        return None

    async def _create(self) -> SessionInfo:
        if not self.production:
            try:
                body = await self._api.create(self._user_id, self._org_id)
                return _parsed(body, Obtained.CREATED)
            except DevelopmentOnly:
                log.info("a production instance: sessions come from sign-in tokens from now on")
                self.production = True
        return await self._sign_in()

    async def _sign_in(self) -> SessionInfo:
        token_id, ticket = await self._api.sign_in_token(self._user_id, self._org_id)
        try:
            signed = await self._api.sign_in(ticket)
        except Exception:
            await self._revoke_ticket_quietly(token_id)
            raise
        body = signed.session
        if body.get("last_active_organization_id") != self._org_id:
            body = await self._api.touch(str(body.get("id")), signed.client_jwt, self._org_id)
        return _parsed(body, Obtained.SIGNED_IN)

    async def _revoke_quietly(self, session_id: str) -> None:
        try:
            await self._api.revoke(session_id)
        except Exception as exc:  # best effort: it ends by itself at its lifetime
            log.warning(
                "revoking a session failed", extra={"session": session_id, "error": str(exc)}
            )

    async def _revoke_ticket_quietly(self, token_id: str) -> None:
        try:
            await self._api.revoke_sign_in_token(token_id)
        except Exception as exc:  # best effort: it expires within minutes
            log.warning("revoking an unused sign-in token failed", extra={"error": str(exc)})


def _parsed(body: Mapping[str, Any], obtained: Obtained) -> SessionInfo:
    try:
        return SessionInfo.parse(body, obtained)
    except ValueError as exc:
        raise TokenUnavailable(f"Clerk answered a session without its times: {exc}") from exc
