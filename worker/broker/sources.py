"""The seam where each org's token source is made: ``SourceFactory`` for the cache.

Today every org mints from the Clerk session named in its orgs-file entry
(``session_id``) with the instance's secret key, through the worker's own
``ClerkTokenSource``. A source that owns the session lifecycle (create, reuse, renew,
recover from the service user ``user_id``) plugs in by returning it from
``clerk_sessions`` instead: the cache, the server and the callers do not change.
"""

from __future__ import annotations

import httpx

from worker.broker.cache import SourceFactory
from worker.broker.orgs import OrgEntry
from worker.errors import SessionEnded
from worker.settings import SecretStr
from worker.tokens.sources import ClerkTokenSource, TokenSource

__all__ = ["clerk_sessions"]


def clerk_sessions(
    api_url: str,
    secret_key: SecretStr,
    http: httpx.AsyncClient,
    template: str | None = None,
    expires_in_s: int | None = None,
) -> SourceFactory:
    """One ``ClerkTokenSource`` per org, from the session id in its orgs-file entry."""

    def make(entry: OrgEntry) -> TokenSource:
        if entry.session_id is None:
            return _NoSession(entry.org_id)
        return ClerkTokenSource(
            api_url, secret_key, entry.session_id, template, expires_in_s, http=http
        )

    return make


class _NoSession:
    """An org whose entry names no session: every mint says so."""

    def __init__(self, org_id: str) -> None:
        self._org_id = org_id

    async def fetch(self) -> str:
        raise SessionEnded(f"the orgs file names no session_id for {self._org_id}")
