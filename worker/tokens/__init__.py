"""Tokens: the org's Clerk session token, minted, verified and kept fresh.

Owns where tokens come from (``sources``), how they are checked (``verify``: JWKS
signature, ``iss``, org, ``role``), when they are refreshed (``schedule``) and who hears
of a new one (``fanout``, through ``TokenManager.add_listener``), and, with
``CLERK_USER_ID``, the Clerk session itself (``sessions``: got, renewed, replaced, revoked).
Never touches Realtime, the dispatcher or delivery: they receive tokens through listeners
or read ``TokenManager.current``.
"""

from worker.tokens.manager import Listener, TokenManager, Verifier
from worker.tokens.sources import (
    ClerkTokenSource,
    FileTokenSource,
    TokenSource,
    source_from_settings,
)
from worker.tokens.states import RefreshResult, TokenMetrics, TokenState
from worker.tokens.verify import Token, TokenVerifier

__all__ = [
    "ClerkTokenSource",
    "FileTokenSource",
    "Listener",
    "RefreshResult",
    "Token",
    "TokenManager",
    "TokenMetrics",
    "TokenSource",
    "TokenState",
    "TokenVerifier",
    "Verifier",
    "source_from_settings",
]
