"""The Clerk instance: its data, its keys, and the helpers tests and routes share.

HTTP routes (``api``, ``api_sessions``, ``fapi``, ``control``) are thin: they parse a
request and call the same methods that tests call directly, so both paths behave the
same. The scripted side (faults, keys, Dashboard settings) is in ``scripting``.
"""

from __future__ import annotations

import secrets
import time
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

from aiohttp import web

from devstack.clerk import errors, fapi_objects, objects, params, tokens
from devstack.clerk.api import build_app
from devstack.clerk.faults import Faults
from devstack.clerk.keys import KeyRing
from devstack.clerk.ratelimit import SlidingWindow
from devstack.clerk.scripting import Scripting, check_format
from devstack.clerk.settings import SIGN_IN_LIMIT, SIGN_IN_WINDOW_S, InstanceSettings
from devstack.clerk.signin import Client, SignIns
from devstack.clerk.store import Session, Store, User, new_id

DEFAULT_ISSUER = "https://devstack.clerk.accounts.dev"  # until bind() knows the port


class Clerk(Scripting):
    """A Clerk instance (BAPI + the Frontend API's native sign-in) with a control surface.

    ``settings`` are the Dashboard's (instance type, session lifetime...). ``clock``
    returns Unix seconds; it drives token ``iat``/``exp``, session and ticket expiry and
    the rate-limit windows, so tests can move time without sleeping. ``requests``
    counts every BAPI/FAPI request by ``"<METHOD> <route template>"``.
    """

    def __init__(
        self,
        *,
        secret_key: str | None = None,
        token_format: int = 2,
        settings: InstanceSettings | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        check_format(token_format)
        self.settings = settings or InstanceSettings()
        self.secret_key = secret_key or self.settings.key_prefix + secrets.token_hex(20)
        self.issuer = DEFAULT_ISSUER
        self.token_format = token_format
        self.include_role = True
        self.token_requests = 0  # HTTP token requests, injected failures included
        self.requests: Counter[str] = Counter()
        self.templates: dict[str, tokens.JwtTemplate] = {}
        self.keys = KeyRing()
        self.store = Store(clock)
        self.sign_ins = SignIns(self.store, lambda claims: self.keys.sign(claims, {}))
        self.faults = Faults(clock)
        self.sign_in_limit = SlidingWindow(clock, SIGN_IN_LIMIT, SIGN_IN_WINDOW_S)
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

    def get_user(self, user_id: str) -> dict[str, Any]:
        """The ``User``, or 404."""
        return objects.user(self.store.user(user_id))

    def delete_user(self, user_id: str) -> dict[str, Any]:
        """Delete a user (its sessions end as ``removed``); answers a ``DeletedObject``."""
        self.store.delete_user(user_id)
        return {"object": "user", "id": user_id, "deleted": True}

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

    def remove_membership(self, org_id: str, user_id: str) -> dict[str, Any]:
        """Take ``user_id`` out of ``org_id``; answers the removed membership."""
        membership = self.store.memberships.get((org_id, user_id))
        body = objects.membership(membership, self.store) if membership else None
        self.store.remove_membership(org_id, user_id)
        assert body is not None  # remove_membership raised 404 otherwise
        return body

    def create_session(
        self, user_id: str, active_organization_id: str | None = None
    ) -> dict[str, Any]:
        """Create an active session, optionally with an active org the user belongs to.

        Development instances only: production ones answer 400
        ``request_invalid_for_environment`` (use a sign-in token, :meth:`sign_in`).
        """
        if self.settings.production:
            raise errors.invalid_for_environment()
        session = self.store.create_session(user_id, active_organization_id, self.settings)
        return objects.session(session, self.store.now_ms())

    def list_sessions(
        self,
        *,
        user_id: str | None = None,
        client_id: str | None = None,
        status: str | None = None,
    ) -> list[dict[str, Any]]:
        """``Session`` objects matching the filters (status as seen now), newest first."""
        now = self.store.now_ms()
        found = self.store.list_sessions(user_id, client_id, status)
        return [objects.session(session, now) for session in found]

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
        """A signed session token (or JWT-template token), exactly as the token endpoints mint.

        Minting counts as session activity (it moves ``abandon_at`` when an inactivity
        timeout is on); whether Clerk counts Backend API mints is *(unconfirmed)*.
        """
        lifetime_s = params.lifetime(expires_in_seconds)
        session = self.store.usable_session(session_id)
        session.record_activity(self.store.now_ms())
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

    # -- sign-in tokens and the Frontend API -----------------------------------------

    def create_sign_in_token(
        self, user_id: str, *, org_id: str | None = None, expires_in_seconds: int | None = None
    ) -> dict[str, Any]:
        """A ``SignInToken`` (with its one-use ``token``); with ``org_id`` a member check."""
        token = self.sign_ins.create_token(user_id, org_id, expires_in_seconds, self.issuer)
        return objects.sign_in_token(token)

    def revoke_sign_in_token(self, token_id: str) -> dict[str, Any]:
        """Revoke a pending sign-in token: its ticket answers ``sign_in_token_revoked_code``."""
        return objects.sign_in_token(self.sign_ins.revoke_token(token_id), include_token=False)

    def redeem_ticket(self, ticket: str, client: Client | None = None) -> Session:
        """What the FAPI ticket sign-in does: spend the ticket, sign in on ``client``."""
        return self.sign_ins.redeem(ticket, client, self.settings)

    def sign_in(self, user_id: str, org_id: str | None = None) -> dict[str, Any]:
        """A session made the production way (sign-in token + ticket), on any instance type."""
        ticket = self.sign_ins.create_token(user_id, org_id, 60, self.issuer).token
        return objects.session(self.redeem_ticket(ticket), self.store.now_ms())

    def fapi_client(self, client: Client) -> dict[str, Any]:
        """The FAPI ``Client`` object of ``client``."""
        return fapi_objects.client(client, self.store, self.store.now_ms())

    def fapi_session(self, session: Session) -> dict[str, Any]:
        """The FAPI ``Session`` object of ``session``."""
        return fapi_objects.session(session, self.store, self.store.now_ms())
