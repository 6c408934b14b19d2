"""``SessionTokenSource``: the token source of a worker that keeps its own session.

It mints from the keeper's current session. When Clerk answers that the session is gone
(the token endpoint's 404) or its token no longer carries the org (the session lost its
active organization), it asks the keeper to replace the session at once and mints from
the new one: the token manager never sees an ended session while one can be had. A
secret key Clerk refuses ends the worker (the keeper's ``unobtainable`` state).
"""

from __future__ import annotations

from worker.errors import SessionEnded, SessionUnobtainable, TokenRejected, TokenUnavailable
from worker.tokens.manager import Verifier
from worker.tokens.sessions.keeper import SessionKeeper
from worker.tokens.sessions.obtain import Minter

__all__ = ["LOST_ORG_REASONS", "SessionTokenSource"]

#: Rejections that mean the session itself no longer serves the org: get another one.
LOST_ORG_REASONS = frozenset({"no_org", "wrong_org", "pending_session"})


class SessionTokenSource:
    """Mints from ``keeper``'s session; replaces it through the keeper when it ends."""

    def __init__(self, keeper: SessionKeeper, mint: Minter, verifier: Verifier) -> None:
        self._keeper = keeper
        self._mint = mint
        self._verifier = verifier

    def __repr__(self) -> str:
        return "SessionTokenSource(secret_key=[secure])"

    async def fetch(self) -> str:
        """A token of the current session (after replacing it if Clerk ended it)."""
        session_id = await self._keeper.usable_session_id()
        try:
            return await self._checked(session_id)
        except SessionEnded:
            why = "the token endpoint answered 404: Clerk ended the session"
        except TokenRejected as exc:
            if exc.reason not in LOST_ORG_REASONS:
                raise
            why = f"its token was rejected ({exc.reason}): the session lost the org"
        await self._keeper.replace(session_id, why)
        try:
            return await self._checked(await self._keeper.usable_session_id())
        except SessionEnded as exc:  # the new one ended too: the manager retries
            raise TokenUnavailable("the new Clerk session ended at once; retrying") from exc

    async def _checked(self, session_id: str) -> str:
        try:
            jwt = await self._mint(session_id).fetch()
        except TokenUnavailable as exc:
            if exc.status in (401, 403):
                refused = SessionUnobtainable(
                    "secret_key_refused",
                    f"{exc}; no session can be used without it: set CLERK_SECRET_KEY to the "
                    "instance's current secret key",
                )
                raise self._keeper.fail(refused) from exc
            raise
        await self._verifier.verify(jwt)
        return jwt
