"""Sessions: the service user's Clerk session, owned by the worker (``CLERK_USER_ID``).

``SessionKeeper`` gets a session (the given ``CLERK_SESSION_ID``, an active one of the
user in the org, or a new one: ``POST /v1/sessions`` on development instances, a sign-in
token redeemed through the Frontend API's native ticket sign-in on production ones),
checks its first token, renews it before Clerk ends it, replaces it at once when Clerk
ends it underneath, and revokes the sessions it leaves. ``SessionTokenSource`` is the
token manager's source over it. Nothing in the lifecycle reads ``Settings``
(``managed_session`` is the worker's builder), so a broker can keep one keeper per org.
"""

from worker.tokens.sessions.build import managed_session
from worker.tokens.sessions.clerk_api import ClerkSessionApi
from worker.tokens.sessions.keeper import SessionKeeper
from worker.tokens.sessions.model import (
    Obtained,
    RenewalResult,
    SessionInfo,
    SessionMetrics,
    SessionState,
)
from worker.tokens.sessions.obtain import Obtainer
from worker.tokens.sessions.source import SessionTokenSource

__all__ = [
    "ClerkSessionApi",
    "Obtained",
    "Obtainer",
    "RenewalResult",
    "SessionInfo",
    "SessionKeeper",
    "SessionMetrics",
    "SessionState",
    "SessionTokenSource",
    "managed_session",
]
