"""Users, organizations, memberships and Clerk sessions, in memory.

Timestamps are Unix milliseconds, as in every BAPI object. The store only enforces
the rules a caller of the real API would trip over (unknown ids, duplicate slugs,
sessions in an org the user is not a member of); everything else is accepted.
"""

from __future__ import annotations

import re
import secrets
import string
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from devstack.clerk import errors
from devstack.clerk.lifetime import SESSION_ABANDON_MS, USABLE_STATUSES, Session
from devstack.clerk.settings import InstanceSettings

__all__ = ["USABLE_STATUSES", "Membership", "Organization", "Session", "Store", "User", "new_id"]

_BASE62 = string.digits + string.ascii_letters
_ROLE = re.compile(r"^org:[a-z0-9_][a-z0-9_:-]*$")


def new_id(prefix: str) -> str:
    """A Clerk-like id: ``<prefix>_`` and 27 base62 characters (the length of a KSUID)."""
    return prefix + "_" + "".join(secrets.choice(_BASE62) for _ in range(27))


def slugify(name: str) -> str:
    """Clerk's default slug: lowercase words joined by dashes."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "org"


@dataclass
class User:
    """A Clerk user; ``second_factor`` decides the second ``fva`` entry."""

    id: str
    created_at: int
    email_addresses: list[str] = field(default_factory=list)
    first_name: str | None = None
    last_name: str | None = None
    username: str | None = None
    external_id: str | None = None
    public_metadata: dict[str, Any] = field(default_factory=dict)
    private_metadata: dict[str, Any] = field(default_factory=dict)
    second_factor: bool = False


@dataclass
class Organization:
    """A Clerk organization."""

    id: str
    name: str
    slug: str
    created_at: int
    created_by: str | None = None
    public_metadata: dict[str, Any] = field(default_factory=dict)
    private_metadata: dict[str, Any] = field(default_factory=dict)


@dataclass
class Membership:
    """A user's role in an organization (``org:admin``, ``org:member``, ``org:<custom>``)."""

    id: str
    org_id: str
    user_id: str
    role: str
    created_at: int


class Store:
    """All Clerk objects of one instance."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self.users: dict[str, User] = {}
        self.orgs: dict[str, Organization] = {}
        self.memberships: dict[tuple[str, str], Membership] = {}  # (org_id, user_id)
        self.sessions: dict[str, Session] = {}
        # Instance-level role definitions. System permissions are not listed: Clerk
        # leaves them out of session tokens, so only custom ones matter here.
        self.role_permissions: dict[str, list[str]] = {"org:admin": [], "org:member": []}

    def now_ms(self) -> int:
        """The injected clock in Unix milliseconds."""
        return int(self._clock() * 1000)

    def add_user(self, user: User) -> User:
        """Store a user built by the caller (ids come from :func:`new_id`)."""
        self.users[user.id] = user
        return user

    def user(self, user_id: str) -> User:
        """The user, or 404."""
        if user_id not in self.users:
            raise errors.not_found(f"User {user_id}")
        return self.users[user_id]

    def delete_user(self, user_id: str) -> None:
        """Delete a user: memberships go, sessions end with status ``removed``."""
        self.user(user_id)
        del self.users[user_id]
        for key in [key for key in self.memberships if key[1] == user_id]:
            del self.memberships[key]
        for session in self.sessions.values():
            if session.user_id == user_id and session.status in USABLE_STATUSES:
                session.status, session.updated_at = "removed", self.now_ms()

    def org(self, org_id: str) -> Organization:
        """The organization, or 404."""
        if org_id not in self.orgs:
            raise errors.not_found(f"Organization {org_id}")
        return self.orgs[org_id]

    def create_org(self, name: str, slug: str | None, created_by: str | None) -> Organization:
        """A new org; ``created_by`` becomes its first ``org:admin``, as in Clerk."""
        if created_by is not None:
            self.user(created_by)
        slug = slug or slugify(name)
        if any(org.slug == slug for org in self.orgs.values()):
            raise errors.ClerkAPIError(
                422, "form_identifier_exists", "slug is taken", f"The slug {slug} is taken."
            )
        org = Organization(new_id("org"), name, slug, self.now_ms(), created_by)
        self.orgs[org.id] = org
        if created_by is not None:
            self.add_membership(org.id, created_by, "org:admin")
        return org

    def add_membership(self, org_id: str, user_id: str, role: str) -> Membership:
        """Make ``user_id`` a member of ``org_id``; roles are ``org:<key>``."""
        self.org(org_id)
        self.user(user_id)
        if not _ROLE.match(role):
            raise errors.param_invalid("role", "must be a role key such as org:admin")
        if (org_id, user_id) in self.memberships:
            raise errors.ClerkAPIError(
                422,
                "already_a_member_in_organization",
                "already a member",
                f"User {user_id} is already a member of {org_id}.",
            )
        membership = Membership(new_id("orgmem"), org_id, user_id, role, self.now_ms())
        self.memberships[(org_id, user_id)] = membership
        return membership

    def permissions(self, role: str) -> list[str]:
        """The custom permissions of a role (``org:<feature>:<permission>``)."""
        return list(self.role_permissions.get(role, []))

    def remove_membership(self, org_id: str, user_id: str) -> Membership:
        """Take ``user_id`` out of ``org_id`` (404 when not a member).

        The user's sessions with that org active lose it, so their tokens carry no org
        claims from now on *(Clerk's exact behaviour here is unconfirmed)*.
        """
        self.org(org_id)
        self.user(user_id)
        membership = self.memberships.pop((org_id, user_id), None)
        if membership is None:
            raise errors.not_found(f"Membership of {user_id} in {org_id}")
        for session in self.sessions.values():
            if session.user_id == user_id and session.active_org_id == org_id:
                session.active_org_id = None
        return membership

    def check_member(self, org_id: str, user_id: str) -> None:
        """404 for an unknown org, 422 ``not_a_member_in_organization`` for a non-member."""
        self.org(org_id)
        if (org_id, user_id) not in self.memberships:
            raise errors.ClerkAPIError(
                422,
                "not_a_member_in_organization",
                "not a member",
                f"User {user_id} is not a member of {org_id}.",
            )

    def create_session(
        self,
        user_id: str,
        active_org_id: str | None,
        settings: InstanceSettings,
        client_id: str | None = None,
    ) -> Session:
        """An active session living ``settings``' lifetime; with an org, the user is a member."""
        self.user(user_id)
        if active_org_id is not None:
            self.check_member(active_org_id, user_id)
        now = self.now_ms()
        lifetime_ms = settings.session_lifetime_s * 1000
        inactivity_ms = None
        abandon_at = now + max(lifetime_ms, SESSION_ABANDON_MS)
        if settings.session_inactivity_s is not None:
            inactivity_ms = settings.session_inactivity_s * 1000
            abandon_at = now + inactivity_ms
        session = Session(
            id=new_id("sess"),
            user_id=user_id,
            client_id=client_id or new_id("client"),
            status="active",
            active_org_id=active_org_id,
            created_at=now,
            updated_at=now,
            expire_at=now + lifetime_ms,
            abandon_at=abandon_at,
            last_active_at=now,
            inactivity_ms=inactivity_ms,
        )
        self.sessions[session.id] = session
        return session

    def list_sessions(
        self, user_id: str | None, client_id: str | None, status: str | None
    ) -> list[Session]:
        """Sessions matching every filter given, newest first (as Clerk lists them)."""
        now = self.now_ms()
        found = [
            s
            for s in self.sessions.values()
            if (user_id is None or s.user_id == user_id)
            and (client_id is None or s.client_id == client_id)
            and (status is None or s.status_at(now) == status)
        ]
        return sorted(found, key=lambda s: s.created_at, reverse=True)

    def session(self, session_id: str) -> Session:
        """The session in any status, or 404."""
        if session_id not in self.sessions:
            raise errors.not_found(f"Session {session_id}")
        return self.sessions[session_id]

    def usable_session(self, session_id: str) -> Session:
        """The session if tokens may be minted for it.

        Ended, revoked and expired sessions answer 404 ``resource_not_found``: the
        OpenAPI spec lists only 401 and 404 as errors of the token endpoints, and a
        session that cannot mint is, for that endpoint, not found.
        """
        session = self.session(session_id)
        status = session.status_at(self.now_ms())
        if status not in USABLE_STATUSES:
            raise errors.ClerkAPIError(
                404, "resource_not_found", "not found", f"Session {session_id} is {status}."
            )
        return session

    def set_status(self, session_id: str, status: str) -> Session:
        """Move a session to ``status`` (``revoked``, ``ended``, ``pending``...).

        A session that already ended (expired, abandoned, revoked...) keeps that status:
        Clerk does not revive it, and revoking it again answers the same object.
        """
        session = self.session(session_id)
        now = self.now_ms()
        current = session.status_at(now)
        if current not in USABLE_STATUSES:
            session.status = current
            return session
        session.status = status
        session.updated_at = now
        return session
