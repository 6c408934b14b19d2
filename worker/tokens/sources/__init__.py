"""Where session tokens come from: the ``TokenSource`` protocol and its implementations.

* ``clerk.ClerkTokenSource``: Clerk's Backend API, minting from one session;
* ``file.FileTokenSource``: a file a sidecar keeps fresh;
* ``broker.BrokerTokenSource``: the token broker, with this worker's credential.

To add a source: write a class with ``async fetch() -> str`` in a module here, raising
``TokenUnavailable`` (retryable) or ``SessionEnded``, and choose it in
``source_from_settings`` from a setting read in ``worker/settings``. Sources only fetch:
verification, scheduling and retries are the token manager's.
"""

from __future__ import annotations

from typing import Protocol

import httpx

from worker.errors import ConfigError
from worker.settings import Settings
from worker.tokens.sources.broker import BrokerTokenSource, describe_credential
from worker.tokens.sources.clerk import ClerkTokenSource
from worker.tokens.sources.file import FileTokenSource

__all__ = [
    "BrokerTokenSource",
    "ClerkTokenSource",
    "FileTokenSource",
    "TokenSource",
    "describe_source",
    "source_from_settings",
]


class TokenSource(Protocol):
    """Anything that can produce a new session token (the JWT text)."""

    async def fetch(self) -> str:
        """Return a token; raise ``TokenUnavailable`` (retryable) or ``SessionEnded``."""
        ...


def source_from_settings(settings: Settings, http: httpx.AsyncClient) -> TokenSource:
    """The broker with ``WORKER_TOKEN_BROKER_URL``, the file source with
    ``WORKER_TOKEN_FILE``, else Clerk's Backend API."""
    if settings.token_broker_url is not None and settings.token_broker_credential_file:
        return BrokerTokenSource(
            settings.token_broker_url, settings.token_broker_credential_file, http=http
        )
    if settings.token_file is not None:
        return FileTokenSource(settings.token_file)
    secret, session_id = settings.clerk_secret_key, settings.clerk_session_id
    if secret is None or session_id is None:  # only reachable with hand-built Settings
        raise ConfigError(
            ["CLERK_SECRET_KEY and CLERK_SESSION_ID are required without a token file"]
        )
    return ClerkTokenSource(
        settings.clerk_api_url,
        secret,
        session_id,
        settings.clerk_token_template,
        settings.clerk_token_expires_in_s,
        http=http,
    )


def describe_source(settings: Settings) -> str:
    """Which source the worker mints from, and as whom (printable: no secret)."""
    if settings.token_broker_url is not None and settings.token_broker_credential_file:
        who = describe_credential(settings.token_broker_credential_file)
        return f"broker {settings.token_broker_url} as {who}"
    if settings.token_file is not None:
        return f"token file {settings.token_file}"
    return f"Clerk {settings.clerk_api_url}, session {settings.clerk_session_id}"
