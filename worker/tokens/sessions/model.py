"""The session part's vocabulary: a session as Clerk describes it, how the worker got it,
the keeper's states, the renewal results and the metrics it updates."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol

from worker.ports import Counter, Gauge

__all__ = [
    "Obtained",
    "RenewalResult",
    "SessionInfo",
    "SessionMetrics",
    "SessionState",
]


class Obtained(StrEnum):
    """How the worker got its current session (``/status``, ``check``, logs)."""

    GIVEN = "given"  # CLERK_SESSION_ID
    REUSED = "reused"  # an active session of the user in ORG_ID, found at start
    CREATED = "created"  # POST /v1/sessions (development instances)
    SIGNED_IN = "signed_in"  # sign-in token redeemed through the Frontend API (production)


class SessionState(StrEnum):
    """Where the session keeper is (``/status``)."""

    STARTING = "starting"
    ACTIVE = "active"
    RENEWING = "renewing"  # the end is near: getting the next session
    FAILING = "failing"  # a renewal attempt failed; retried with backoff
    REPLACING = "replacing"  # Clerk ended the session underneath: getting a new one now
    UNOBTAINABLE = "unobtainable"  # no session can be had: the worker stops


class RenewalResult(StrEnum):
    """The ``result`` label of ``realtime_worker_clerk_session_renewals_total``."""

    SUCCESS = "success"
    ERROR = "error"  # Clerk unreachable, 5xx or rate-limited: retried
    REJECTED = "rejected"  # the new session's first token failed verification
    UNOBTAINABLE = "unobtainable"  # no session can be had: the worker stops


class SessionMetrics(Protocol):
    """The members of ``observe.Metrics`` the session keeper updates."""

    @property
    def clerk_session_expiry_timestamp_seconds(self) -> Gauge: ...
    @property
    def clerk_session_renewals_total(self) -> Counter: ...


@dataclass(frozen=True)
class SessionInfo:
    """One Clerk session, times in Unix seconds. Holds no token and no client JWT."""

    id: str
    status: str
    org_id: str | None
    created_at: float
    expire_at: float
    abandon_at: float
    obtained: Obtained

    @property
    def ends_at(self) -> float:
        """When Clerk ends it: the maximum lifetime or the inactivity timeout, first."""
        return min(self.expire_at, self.abandon_at)

    @property
    def lifetime_s(self) -> float:
        """Seconds from creation to its end."""
        return max(0.0, self.ends_at - self.created_at)

    @classmethod
    def parse(cls, body: Mapping[str, Any], obtained: Obtained) -> SessionInfo:
        """A BAPI or FAPI ``Session`` object; ``ValueError`` when a field is missing."""
        try:
            return cls(
                id=str(body["id"]),
                status=str(body["status"]),
                org_id=body.get("last_active_organization_id"),
                created_at=float(body["created_at"]) / 1000,
                expire_at=float(body["expire_at"]) / 1000,
                abandon_at=float(body["abandon_at"]) / 1000,
                obtained=obtained,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"not a Clerk session object ({exc})") from exc

    def describe(self, now: float) -> str:
        """One line for people: the id, how it was obtained, when Clerk ends it."""
        ends = datetime.fromtimestamp(self.ends_at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        left = timedelta(seconds=round(max(0.0, self.ends_at - now)))
        return f"{self.id} {_HOW[self.obtained]}, ends {ends} (in {left})"


_HOW = {
    Obtained.GIVEN: "given (CLERK_SESSION_ID)",
    Obtained.REUSED: "reused (an active session of CLERK_USER_ID in ORG_ID)",
    Obtained.CREATED: "created (POST /v1/sessions, a development instance)",
    Obtained.SIGNED_IN: "signed in (a sign-in token, a production instance)",
}
