"""The control surface of the stand-in: what a test scripts and Clerk's Dashboard changes.

:class:`Clerk` inherits these methods; ``control.py`` serves each of them over HTTP
under ``/__devstack/clerk/`` for tests and demos in other processes.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from typing import Any

from devstack.clerk import errors, objects, tokens
from devstack.clerk.faults import Faults, HangEnd
from devstack.clerk.keys import KeyRing
from devstack.clerk.ratelimit import SlidingWindow
from devstack.clerk.settings import InstanceSettings, check_session_times
from devstack.clerk.store import Store

TOKEN_FORMATS = (1, 2)
KEEP: Any = object()  # configure_sessions: leave this setting as it is


class Scripting:
    """Faults, limits, keys, claims and instance settings, changed while running."""

    secret_key: str
    settings: InstanceSettings
    include_role: bool
    templates: dict[str, tokens.JwtTemplate]
    keys: KeyRing
    store: Store
    faults: Faults
    sign_in_limit: SlidingWindow

    def mint(
        self, session_id: str, expires_in_seconds: int | None = None, template: str | None = None
    ) -> str:
        raise NotImplementedError  # Clerk's

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
            check_format(token_format)
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

    # -- instance settings (the Dashboard's) ------------------------------------------

    def configure_sessions(
        self, lifetime_seconds: int | None = None, inactivity_seconds: Any = KEEP
    ) -> dict[str, object]:
        """Maximum lifetime, and inactivity timeout (None: off), of sessions created from now.

        Leaving an argument out keeps the current value. Existing sessions keep the times
        they were created with, as their ``expire_at`` says.
        """
        settings = self.settings
        lifetime = settings.session_lifetime_s if lifetime_seconds is None else lifetime_seconds
        keep = inactivity_seconds is KEEP
        inactivity = settings.session_inactivity_s if keep else inactivity_seconds
        check_session_times(lifetime, inactivity)
        settings.session_lifetime_s, settings.session_inactivity_s = lifetime, inactivity
        return settings.describe()

    def set_native_api(self, enabled: bool) -> None:
        """Turn the Native API on or off (off: every ``_is_native`` request is refused)."""
        self.settings.native_api = enabled

    def set_sign_in_limit(self, requests: int | None, window_seconds: float = 10.0) -> None:
        """Frontend API sign-ins allowed per IP and window (None: unlimited)."""
        self.sign_in_limit.configure(requests, window_seconds)

    def rotate_secret_key(self) -> str:
        """A new secret key (returned); the old one is refused with 401 from now on."""
        self.secret_key = self.settings.key_prefix + secrets.token_hex(20)
        return self.secret_key

    def expire_session(self, session_id: str) -> dict[str, Any]:
        """Make a usable session reach its maximum lifetime now (status ``expired``)."""
        session = self.store.session(session_id)
        now = self.store.now_ms()
        if session.status_at(now) in ("active", "pending"):
            session.expire_at = min(session.expire_at, now)
            session.abandon_at = max(session.abandon_at, session.expire_at)
        return objects.session(session, now)


def check_format(token_format: int) -> None:
    """ValueError unless ``token_format`` is 1 or 2."""
    if token_format not in TOKEN_FORMATS:
        raise ValueError(f"token_format must be 1 or 2, got {token_format}")
