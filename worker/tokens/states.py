"""The token part's vocabulary: its states, its refresh results, the metrics it updates,
and which failures say what."""

from __future__ import annotations

from enum import StrEnum
from typing import Protocol

import httpx

from worker.errors import SessionEnded, TokenRejected, TokenUnavailable
from worker.ports import Counter, Gauge, Histogram

__all__ = ["RefreshResult", "TokenMetrics", "TokenState", "fatal_at_start", "result_of"]


class TokenState(StrEnum):
    """Where the token manager is (``/status``, ``check_fresh``)."""

    STARTING = "starting"
    FRESH = "fresh"
    REFRESHING = "refreshing"
    FAILING = "failing"  # a refresh failed; the current token is still valid
    EXPIRED = "expired"  # derived: the current token's exp has passed
    SESSION_ENDED = "session_ended"


class RefreshResult(StrEnum):
    """The ``result`` label of ``realtime_worker_token_refresh_total``."""

    SUCCESS = "success"
    HTTP_ERROR = "http_error"
    TIMEOUT = "timeout"
    INVALID_CLAIMS = "invalid_claims"
    SESSION_ENDED = "session_ended"
    RATE_LIMITED = "rate_limited"


class TokenMetrics(Protocol):
    """The members of ``observe.Metrics`` the token manager updates."""

    @property
    def token_refresh_total(self) -> Counter: ...
    @property
    def token_refresh_duration_seconds(self) -> Histogram: ...
    @property
    def token_expiry_timestamp_seconds(self) -> Gauge: ...
    @property
    def token_last_refresh_success_timestamp_seconds(self) -> Gauge: ...
    @property
    def token_session_ended(self) -> Gauge: ...


#: Rejections that no retry can fix at start-up: the configuration or Clerk setup is wrong.
FATAL_AT_START = frozenset({"wrong_org", "no_org", "missing_role", "pending_session", "issuer"})


def result_of(exc: BaseException) -> RefreshResult:
    """The refresh result of a failed attempt."""
    if isinstance(exc, SessionEnded):
        return RefreshResult.SESSION_ENDED
    if isinstance(exc, TokenRejected):
        return RefreshResult.INVALID_CLAIMS
    if isinstance(exc, TimeoutError):
        return RefreshResult.TIMEOUT
    if isinstance(exc, TokenUnavailable):
        if exc.status == 429:
            return RefreshResult.RATE_LIMITED
        if isinstance(exc.__cause__, TimeoutError | httpx.TimeoutException):
            return RefreshResult.TIMEOUT
    return RefreshResult.HTTP_ERROR


def fatal_at_start(exc: BaseException) -> bool:
    """Errors that retrying cannot fix before the worker has ever had a token: a rejected
    claim (wrong org, no role, ...) or a Backend API key Clerk refuses (401/403). Mid-run
    the same errors are retried: a rotated key or a fixed claim then recovers by itself."""
    if isinstance(exc, TokenRejected):
        return exc.reason in FATAL_AT_START
    return isinstance(exc, TokenUnavailable) and exc.status in (401, 403)
