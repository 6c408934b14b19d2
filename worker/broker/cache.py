"""Per-org token cache: one mint per org per token lifetime, however many callers.

A cached token is served while it has more than ``remint_margin_s`` left; the first
request after that mints a new one while concurrent requests for the same org wait on
the same mint (one lock per org). Tokens live only in memory: a restarted broker mints
again. The token source of each org comes from a ``SourceFactory`` (``worker.broker.sources``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import anyio
import jwt

from worker.broker.orgs import OrgEntry
from worker.errors import TokenUnavailable
from worker.tokens.sources import TokenSource

__all__ = ["CachedToken", "SourceFactory", "TokenCache"]

SourceFactory = Callable[[OrgEntry], TokenSource]


@dataclass(frozen=True)
class CachedToken:
    """A minted token and its ``exp`` (epoch seconds)."""

    jwt: str
    expires_at: float

    def __repr__(self) -> str:
        return f"CachedToken(expires_at={self.expires_at})"


class TokenCache:
    """The current token of each org, minted through that org's source."""

    def __init__(
        self,
        factory: SourceFactory,
        remint_margin_s: float,
        on_mint: Callable[[str, str], None] = lambda _org, _result: None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._factory = factory
        self._margin = remint_margin_s
        self._on_mint = on_mint
        self._clock = clock
        self._sources: dict[str, TokenSource] = {}
        self._tokens: dict[str, CachedToken] = {}
        self._locks: dict[str, anyio.Lock] = {}

    def expires_at(self, org_id: str) -> float | None:
        """When the cached token of ``org_id`` expires (None if there is none)."""
        cached = self._tokens.get(org_id)
        return cached.expires_at if cached else None

    async def get(self, entry: OrgEntry) -> CachedToken:
        """A token of ``entry``'s org with more than the margin left (minting if needed)."""
        fresh = self._fresh(entry.org_id)
        if fresh is not None:
            return fresh
        lock = self._locks.setdefault(entry.org_id, anyio.Lock())
        async with lock:
            fresh = self._fresh(entry.org_id)  # minted while this request waited
            if fresh is not None:
                return fresh
            return await self._mint(entry)

    def _fresh(self, org_id: str) -> CachedToken | None:
        cached = self._tokens.get(org_id)
        if cached is not None and cached.expires_at - self._clock() > self._margin:
            return cached
        return None

    async def _mint(self, entry: OrgEntry) -> CachedToken:
        source = self._sources.get(entry.org_id)
        if source is None:
            source = self._sources[entry.org_id] = self._factory(entry)
        try:
            text = await source.fetch()
            minted = CachedToken(text, _expiry(text))
        except Exception:
            self._on_mint(entry.org_id, "error")
            raise
        self._on_mint(entry.org_id, "success")
        self._tokens[entry.org_id] = minted
        return minted


def _expiry(token: str) -> float:
    """``exp`` of a token Clerk just minted (the worker verifies the signature itself)."""
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
        return float(claims["exp"])
    except (jwt.PyJWTError, KeyError, TypeError, ValueError) as exc:
        raise TokenUnavailable("Clerk answered with a token without a readable exp") from exc
