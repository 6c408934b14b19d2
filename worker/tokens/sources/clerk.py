"""The Clerk Backend API token source: ``POST /v1/sessions/{sid}/tokens[/{template}]``.

Every httpx and HTTP failure is translated here into ``SessionEnded`` (not retryable) or
``TokenUnavailable`` (retryable). No message ever contains the secret key.
"""

from __future__ import annotations

import email.utils
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from worker.errors import SessionEnded, TokenUnavailable
from worker.settings import CLERK_MIN_EXPIRES_IN_S, SecretStr

__all__ = ["ClerkTokenSource", "clerk_error", "retry_after_seconds"]

#: Clerk error codes that mean the session is gone for good (besides a plain 404).
_SESSION_GONE_CODES = frozenset(
    {
        "resource_not_found",
        "session_not_found",
        "session_ended",
        "session_expired",
        "session_revoked",
        "session_removed",
        "session_abandoned",
        "session_replaced",
    }
)


class ClerkTokenSource:
    """Mints session tokens for one Clerk session with the instance's secret key."""

    def __init__(
        self,
        api_url: str,
        secret_key: SecretStr | str,
        session_id: str,
        template: str | None = None,
        expires_in_s: int | None = None,
        *,
        http: httpx.AsyncClient,
    ) -> None:
        if (
            expires_in_s is not None
            and expires_in_s < CLERK_MIN_EXPIRES_IN_S
            and urlsplit(api_url).hostname == "api.clerk.com"
        ):
            raise ValueError(f"Clerk refuses expires_in_seconds below {CLERK_MIN_EXPIRES_IN_S}")
        self._secret = secret_key if isinstance(secret_key, SecretStr) else SecretStr(secret_key)
        path = f"/v1/sessions/{quote(session_id, safe='')}/tokens"
        if template:
            path += f"/{quote(template, safe='')}"
        self._url = api_url.rstrip("/") + path
        self._body: dict[str, Any] = {}
        if expires_in_s is not None:
            self._body["expires_in_seconds"] = expires_in_s
        self._http = http

    def __repr__(self) -> str:
        return f"ClerkTokenSource(url={self._url!r}, secret_key=[secure])"

    async def fetch(self) -> str:
        """Mint a new session token (the JWT text)."""
        headers = {"Authorization": f"Bearer {self._secret.get_secret_value()}"}
        try:
            response = await self._http.post(self._url, json=self._body, headers=headers)
        except httpx.TimeoutException as exc:
            raise TokenUnavailable(f"Clerk did not answer in time ({type(exc).__name__})") from exc
        except httpx.HTTPError as exc:
            raise TokenUnavailable(f"Clerk unreachable: {type(exc).__name__}: {exc}") from exc
        if response.status_code == 200:
            return _jwt_of(response)
        raise _error_for(response)


def _jwt_of(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        body = None
    token = body.get("jwt") if isinstance(body, dict) else None
    if not isinstance(token, str) or not token:
        raise TokenUnavailable("Clerk answered 200 without a jwt", status=200)
    return token


def _error_for(response: httpx.Response) -> Exception:
    status = response.status_code
    code, message = clerk_error(response)
    detail = f"{code}: {message}" if code else message
    if status == 404 or code in _SESSION_GONE_CODES:
        return SessionEnded(
            f"Clerk session is gone (HTTP {status}, {detail}): create a new session for "
            f"the service user and update CLERK_SESSION_ID"
        )
    if status in (401, 403):
        return TokenUnavailable(
            f"Clerk refused the secret key (HTTP {status}, {detail}): check CLERK_SECRET_KEY "
            f"belongs to this Clerk instance",
            status=status,
        )
    if status == 429:
        return TokenUnavailable(
            "Clerk rate limit reached (HTTP 429)",
            status=status,
            retry_after_s=retry_after_seconds(response.headers.get("Retry-After")),
        )
    return TokenUnavailable(f"Clerk answered HTTP {status} ({detail})", status=status)


def clerk_error(response: httpx.Response) -> tuple[str | None, str]:
    """The first ``{"errors": [{"code", "message", "long_message"}]}`` entry, if any."""
    try:
        body = response.json()
    except ValueError:
        return None, "no error details"
    errors = body.get("errors") if isinstance(body, dict) else None
    if not isinstance(errors, list) or not errors or not isinstance(errors[0], dict):
        return None, "no error details"
    first = errors[0]
    code = first.get("code")
    text = first.get("long_message") or first.get("message") or "no message"
    return (code if isinstance(code, str) else None), str(text)[:300]


def retry_after_seconds(value: str | None) -> float | None:
    """``Retry-After`` as seconds: either delta-seconds or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(UTC)).total_seconds())
