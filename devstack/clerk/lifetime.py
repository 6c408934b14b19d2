"""A Clerk session's record and how it ends: maximum lifetime and inactivity timeout.

``expire_at`` is the creation time plus the instance's maximum lifetime; ``abandon_at``
is the last activity plus the inactivity timeout when one is on (otherwise far away).
Status is computed when read, on the instance's clock, so a session really ends at
those instants without anything running in the background.
"""

from __future__ import annotations

from dataclasses import dataclass

SESSION_ABANDON_MS = 30 * 24 * 3600 * 1000  # abandon_at when the inactivity timeout is off
USABLE_STATUSES = frozenset({"active", "pending"})


@dataclass
class Session:
    """A Clerk session plus the per-session token settings the control surface changes."""

    id: str
    user_id: str
    client_id: str
    status: str
    active_org_id: str | None
    created_at: int
    updated_at: int
    expire_at: int
    abandon_at: int
    last_active_at: int
    inactivity_ms: int | None = None  # the instance's inactivity timeout at creation
    token_format: int | None = None  # None: the instance's format
    token_org_id: str | None = None  # forces ``o.id``/``org_id`` for negative tests

    def status_at(self, now_ms: int) -> str:
        """The status a reader sees at ``now_ms``.

        A usable session becomes ``expired`` at ``expire_at`` (the maximum lifetime) and
        ``abandoned`` at ``abandon_at`` (the inactivity timeout), whichever comes first.
        """
        if self.status not in USABLE_STATUSES:
            return self.status
        if now_ms >= self.expire_at and self.expire_at <= self.abandon_at:
            return "expired"
        if now_ms >= self.abandon_at:
            return "abandoned"
        return self.status

    def record_activity(self, now_ms: int) -> None:
        """Activity moves ``abandon_at`` when an inactivity timeout is on."""
        self.last_active_at = self.updated_at = now_ms
        if self.inactivity_ms is not None:
            self.abandon_at = now_ms + self.inactivity_ms
