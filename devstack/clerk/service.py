"""The Clerk instance: its data, its keys, and the helpers tests and routes share.

HTTP routes (``api``, ``control``) are thin: they parse a request and call the same
methods that tests call directly, so both paths behave the same.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterable
from typing import Any

from aiohttp import web

from devstack.clerk import errors, objects, params, tokens
from devstack.clerk.api import build_app
from devstack.clerk.faults import Faults, HangEnd
from devstack.clerk.keys import KeyRing
from devstack.clerk.store import Store, User, new_id

DEFAULT_ISSUER = "https://devstack.clerk.accounts.dev"  # until bind() knows the port
TOKEN_FORMATS = (1, 2)


class Clerk:
    """A Clerk instance (BAPI + FAPI's JWKS) with a control surface for tests.

    ``clock`` returns Unix seconds; it drives token ``iat``/``exp``, session expiry
    and the rate-limit window, so tests can move time without sleeping.
    """

    def __init__(
        self,
        *,
        secret_key: str | None = None,
        token_format: int = 2,
        clock: Callable[[], float] = time.time,
    ) -> None:
        _check_format(token_format)
        self.secret_key = secret_key or "sk_test_" + secrets.token_hex(20)
        self.issuer = DEFAULT_ISSUER
        self.token_format = token_format
        self.include_role = True
        self.token_requests = 0  # HTTP token requests, injected failures included
        self.templates: dict[str, tokens.JwtTemplate] = {}
        self.keys = KeyRing()
        self.store = Store(clock)
        self.faults = Faults(clock)
        self._clock = clock

    def __repr__(self) -> str:
        return f"Clerk(issuer={self.issuer!r}, secret_key=[secure])"

    def bind(self, base_url: str) -> None:
        """Set the issuer to the server's base URL (like ``https://<slug>.clerk.accounts.dev``)."""
        self.issuer = base_url.rstrip("/")

    def app(self) -> web.Application:
        """The whole host: BAPI ``/v1``, ``/.well-known/*``, control ``/__devstack/clerk/``."""
        return build_app(self)

    def public_jwks(self) -> dict[str, Any]:
        """``{"keys": [...]}``: the signing key and retired keys still published."""
        return self.keys.jwks()

    # -- BAPI objects ---------------------------------------------------------------

    def create_user(
        self,
        *,
        email_addresses: Iterable[str] = (),
        first_name: str | None = None,
        last_name: str | None = None,
        username: str | None = None,
        external_id: str | None = None,
        public_metadata: dict[str, Any] | None = None,
        private_metadata: dict[str, Any] | None = None,
        second_factor: bool = False,
    ) -> dict[str, Any]:
        """Create a user; ``second_factor`` makes tokens carry ``fva`` ``[n, n]``, not ``[n, -1]``.

        Unknown ids and bad values raise :class:`ClerkAPIError` as the HTTP route answers.
        """
        user = User(
            id=new_id("user"),
            created_at=self.store.now_ms(),
            email_addresses=list(email_addresses),
            first_name=first_name,
            last_name=last_name,
            username=username,
            external_id=external_id,
            public_metadata=public_metadata or {},
            private_metadata=private_metadata or {},
            second_factor=second_factor,
        )
        return objects.user(self.store.add_user(user))

    def create_organization(
        self, name: str, *, slug: str | None = None, created_by: str | None = None
    ) -> dict[str, Any]:
        """Create an org; ``created_by`` becomes its first ``org:admin``."""
        org = self.store.create_org(name, slug, created_by)
        return objects.organization(org, self.store)

    def add_membership(self, org_id: str, user_id: str, role: str = "org:member") -> dict[str, Any]:
        """Add ``user_id`` to ``org_id`` as ``org:admin``, ``org:member`` or ``org:<custom>``."""
        membership = self.store.add_membership(org_id, user_id, role)
        return objects.membership(membership, self.store)

    def create_session(
        self, user_id: str, active_organization_id: str | None = None
    ) -> dict[str, Any]:
        """Create an active session, optionally with an active org the user belongs to."""
        session = self.store.create_session(user_id, active_organization_id)
        return objects.session(session, self.store.now_ms())

    def get_session(self, session_id: str) -> dict[str, Any]:
        """The ``Session`` object, or a 404 :class:`ClerkAPIError`."""
        return objects.session(self.store.session(session_id), self.store.now_ms())

    def revoke_session(self, session_id: str) -> dict[str, Any]:
        """Revoke a session (status ``revoked``); its tokens can no longer be minted."""
        session = self.store.set_status(session_id, "revoked")
        return objects.session(session, self.store.now_ms())

    def mint(
        self, session_id: str, expires_in_seconds: int | None = None, template: str | None = None
    ) -> str:
        """A signed session token (or JWT-template token), exactly as the token endpoints mint."""
        lifetime_s = params.lifetime(expires_in_seconds)
        session = self.store.usable_session(session_id)
        now = int(self._clock())
        if template is not None:
            if template not in self.templates:
                raise errors.not_found(f"JWT template {template}")
            spec = self.templates[template]
            claims = tokens.template_claims(
                self.store,
                session,
                spec,
                issuer=self.issuer,
                now=now,
                lifetime_s=lifetime_s or spec.lifetime_seconds,
            )
        else:
            claims = tokens.session_claims(
                self.store,
                session,
                issuer=self.issuer,
                now=now,
                lifetime_s=lifetime_s or tokens.DEFAULT_LIFETIME_S,
                fmt=session.token_format or self.token_format,
                role=self.include_role,
            )
        # oiat is an internal Clerk header parameter; sending one keeps verifiers honest
        # about ignoring header parameters they do not know.
        return self.keys.sign(claims, {"oiat": now})

    # -- control surface --------------------------------------------------------------

    def fail_next_tokens(self, count: int, status: int, retry_after_s: int | None = None) -> None:
        """Answer the next ``count`` HTTP token requests with ``status`` (and Retry-After)."""
        self.faults.fail_next(count, status, retry_after_s)

    def hang_next_tokens(self, count: int, seconds: float, then: HangEnd = "answer") -> None:
        """Hold the next ``count`` HTTP token requests for ``seconds``, then answer or drop."""
        self.faults.hang_next(count, seconds, then)

    def clear_faults(self) -> None:
        """Forget scripted faults and release running hangs."""
        self.faults.clear()

    def set_rate_limit(self, requests: int | None, window_seconds: float = 10.0) -> None:
        """Budget BAPI requests per window (``GET /v1/jwks`` exempt); None lifts the limit."""
        self.faults.set_rate_limit(requests, window_seconds)

    def end_session(self, session_id: str) -> dict[str, Any]:
        """End a session (status ``ended``), as signing out does."""
        session = self.store.set_status(session_id, "ended")
        return objects.session(session, self.store.now_ms())

    def set_session_pending(self, session_id: str, pending: bool = True) -> dict[str, Any]:
        """Mark an org-less session ``pending``; its v2 tokens then carry ``sts: "pending"``."""
        if pending and self.store.session(session_id).active_org_id is not None:
            raise errors.ClerkAPIError(
                422, "invalid_request", "has an org", "Only sessions without an org are pending."
            )
        session = self.store.set_status(session_id, "pending" if pending else "active")
        return objects.session(session, self.store.now_ms())

    def set_token_format(self, session_id: str, token_format: int | None) -> None:
        """Mint this session's tokens in format 1 or 2 (None: the instance's format)."""
        if token_format is not None:
            _check_format(token_format)
        self.store.session(session_id).token_format = token_format

    def set_token_org(self, session_id: str, org_id: str | None) -> None:
        """Make this session's tokens claim ``org_id`` (None: its real active org)."""
        self.store.session(session_id).token_org_id = org_id

    def mint_for_org(
        self, session_id: str, org_id: str, expires_in_seconds: int | None = None
    ) -> str:
        """One token whose org claim is ``org_id`` instead of the session's active org."""
        session = self.store.session(session_id)
        previous, session.token_org_id = session.token_org_id, org_id
        try:
            return self.mint(session_id, expires_in_seconds)
        finally:
            session.token_org_id = previous

    def rotate_key(self, *, drop_old: bool = False) -> str:
        """Sign with a new key (returned: its kid); old keys stay published unless ``drop_old``."""
        return self.keys.rotate(drop_old=drop_old)

    def drop_retired_keys(self) -> None:
        """Unpublish keys retired by :meth:`rotate_key`."""
        self.keys.drop_retired()

    def set_drop_role(self, drop: bool = True) -> None:
        """Leave the Supabase ``role`` claim out of future session tokens (or put it back)."""
        self.include_role = not drop

    def add_jwt_template(
        self, name: str, claims: dict[str, Any], lifetime_seconds: int = 60
    ) -> None:
        """Define a JWT template; values like ``"{{user.id}}"``/``"{{org.id}}"`` are resolved."""
        self.templates[name] = tokens.JwtTemplate(name, dict(claims), lifetime_seconds)

    def define_role(self, role: str, permissions: Iterable[str]) -> None:
        """Give ``role`` custom permissions ``org:<feature>:<permission>`` (they reach tokens)."""
        keys = list(permissions)
        if any(key.count(":") != 2 or not key.startswith("org:") for key in keys):
            raise ValueError(f"permissions must look like org:<feature>:<name>, got {keys}")
        self.store.role_permissions[role] = keys


def _check_format(token_format: int) -> None:
    if token_format not in TOKEN_FORMATS:
        raise ValueError(f"token_format must be 1 or 2, got {token_format}")
