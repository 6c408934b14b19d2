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

SESSION_LIFETIME_MS = 7 * 24 * 3600 * 1000  # Clerk's default maximum session lifetime
SESSION_ABANDON_MS = 30 * 24 * 3600 * 1000
USABLE_STATUSES = frozenset({"active", "pending"})
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
    token_format: int | None = None  # None: the instance's format
    token_org_id: str | None = None  # forces ``o.id``/``org_id`` for negative tests

    def status_at(self, now_ms: int) -> str:
        """The status a reader sees at ``now_ms``: usable sessions expire at ``expire_at``."""
        if self.status in USABLE_STATUSES and now_ms >= self.expire_at:
            return "expired"
        return self.status


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

    def create_session(self, user_id: str, active_org_id: str | None) -> Session:
        """An active session; with an org, the user must be a member of it."""
        self.user(user_id)
        if active_org_id is not None:
            self.org(active_org_id)
            if (active_org_id, user_id) not in self.memberships:
                raise errors.ClerkAPIError(
                    422,
                    "not_a_member_in_organization",
                    "not a member",
                    f"User {user_id} is not a member of {active_org_id}.",
                )
        now = self.now_ms()
        session = Session(
            id=new_id("sess"),
            user_id=user_id,
            client_id=new_id("client"),
            status="active",
            active_org_id=active_org_id,
            created_at=now,
            updated_at=now,
            expire_at=now + SESSION_LIFETIME_MS,
            abandon_at=now + SESSION_ABANDON_MS,
        )
        self.sessions[session.id] = session
        return session

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
        """Move a session to ``status`` (``revoked``, ``ended``, ``pending``...)."""
        session = self.session(session_id)
        session.status = status
        session.updated_at = self.now_ms()
        return session
