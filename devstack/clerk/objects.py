"""The JSON shapes of BAPI objects (``User``, ``Organization``, ``Session``...).

Every field that clerk/openapi-specs ``bapi/2026-05-12.yml`` (the version of
``clerk-backend-api`` 7.0.0) lists as ``required`` is present, nullable ones as null;
values the stand-in has no model for (images, phone numbers, passkeys, SSO accounts)
are present with their empty values, so that the official SDKs' models parse them
(tests/clerk_sdk). Optional fields are sent where Clerk's own answers carry them.
"""

from __future__ import annotations

from typing import Any

from devstack.clerk.signin import SignInToken
from devstack.clerk.store import Membership, Organization, Session, Store, User

# Clerk's default avatar for users and orgs without an image (``has_image: false``).
DEFAULT_IMAGE_URL = "https://img.clerk.com/eyJ0eXBlIjoiZGVmYXVsdCJ9"


def user(u: User) -> dict[str, Any]:
    """A ``User`` object (schema ``User``)."""
    emails = [_email(u, address, index) for index, address in enumerate(u.email_addresses)]
    return {
        "object": "user",
        "id": u.id,
        "external_id": u.external_id,
        "primary_email_address_id": emails[0]["id"] if emails else None,
        "primary_phone_number_id": None,
        "primary_web3_wallet_id": None,
        "username": u.username,
        "first_name": u.first_name,
        "last_name": u.last_name,
        "locale": None,
        "profile_image_url": DEFAULT_IMAGE_URL,
        "image_url": DEFAULT_IMAGE_URL,
        "has_image": False,
        "public_metadata": u.public_metadata,
        "private_metadata": u.private_metadata,
        "unsafe_metadata": {},
        "email_addresses": emails,
        "phone_numbers": [],
        "web3_wallets": [],
        "passkeys": [],
        "external_accounts": [],
        "saml_accounts": [],
        "enterprise_accounts": [],
        **_user_security(u),
        "created_at": u.created_at,
        "updated_at": u.created_at,
    }


def _user_security(u: User) -> dict[str, Any]:
    # Second factors, lockout and self-service flags: none of them modelled but ``fva``.
    return {
        "password_enabled": False,
        "password_last_updated_at": None,
        "two_factor_enabled": u.second_factor,
        "totp_enabled": u.second_factor,
        "backup_code_enabled": False,
        "mfa_enabled_at": u.created_at if u.second_factor else None,
        "mfa_disabled_at": None,
        "banned": False,
        "locked": False,
        "lockout_expires_in_seconds": None,
        "verification_attempts_remaining": 100,
        "last_sign_in_at": None,
        "last_active_at": None,
        "legal_accepted_at": None,
        "delete_self_enabled": True,
        "create_organization_enabled": True,
        "create_organizations_limit": None,
        "bypass_client_trust": False,
        "deprovisioned": False,
        "scim": None,
    }


def _email(u: User, address: str, index: int) -> dict[str, Any]:
    # Stable per user and position, so the primary id matches the first entry.
    return {
        "object": "email_address",
        "id": f"idn_{u.id.removeprefix('user_')}{index}",
        "email_address": address,
        "reserved": False,
        # Addresses created through the Backend API are verified by the admin
        # (schema ``verification_admin``; its ``object`` is the SDKs' discriminator).
        "verification": {
            "object": "verification_admin",
            "status": "verified",
            "strategy": "admin",
            "attempts": None,
            "expire_at": None,
        },
        "linked_to": [],
        "matches_sso_connection": False,
        "created_at": u.created_at,
        "updated_at": u.created_at,
    }


def organization(org: Organization, store: Store) -> dict[str, Any]:
    """An ``Organization`` object (schema ``Organization``)."""
    members = sum(1 for org_id, _ in store.memberships if org_id == org.id)
    return {
        "object": "organization",
        "id": org.id,
        "name": org.name,
        "slug": org.slug,
        "image_url": DEFAULT_IMAGE_URL,
        "has_image": False,
        "members_count": members,
        "missing_member_with_elevated_permissions": False,
        "pending_invitations_count": 0,
        "max_allowed_memberships": 0,
        "role_set_key": None,
        "admin_delete_enabled": True,
        "public_metadata": org.public_metadata,
        "private_metadata": org.private_metadata,
        "created_by": org.created_by,
        "created_at": org.created_at,
        "updated_at": org.created_at,
    }


def membership(m: Membership, store: Store) -> dict[str, Any]:
    """An ``OrganizationMembership`` with its org and ``OrganizationMembershipPublicUserData``."""
    member = store.users[m.user_id]
    return {
        "object": "organization_membership",
        "id": m.id,
        "role": m.role,
        "role_name": m.role.removeprefix("org:").replace("_", " ").title(),
        "permissions": store.permissions(m.role),
        "public_metadata": {},
        "private_metadata": {},
        "organization": organization(store.orgs[m.org_id], store),
        "public_user_data": {
            "user_id": member.id,
            "first_name": member.first_name,
            "last_name": member.last_name,
            "profile_image_url": DEFAULT_IMAGE_URL,
            "image_url": DEFAULT_IMAGE_URL,
            "has_image": False,
            "identifier": member.email_addresses[0] if member.email_addresses else "",
            "username": member.username,
            "banned": False,
            "deprovisioned": False,
        },
        "created_at": m.created_at,
        "updated_at": m.created_at,
    }


def session(s: Session, now_ms: int) -> dict[str, Any]:
    """A ``Session`` object; ``status`` reflects expiry and abandonment at ``now_ms``."""
    return {
        "object": "session",
        "id": s.id,
        "user_id": s.user_id,
        "client_id": s.client_id,
        "actor": None,
        "status": s.status_at(now_ms),
        "last_active_organization_id": s.active_org_id,
        "last_active_at": s.last_active_at,
        "latest_activity": None,
        "expire_at": s.expire_at,
        "abandon_at": s.abandon_at,
        "tasks": None,
        "created_at": s.created_at,
        "updated_at": s.updated_at,
    }


def sign_in_token(t: SignInToken, *, include_token: bool = True) -> dict[str, Any]:
    """A ``SignInToken``; only the create answer carries the secret ``token`` and ``url``."""
    body: dict[str, Any] = {
        "object": "sign_in_token",
        "id": t.id,
        "user_id": t.user_id,
        "status": t.status,
        "created_at": t.created_at,
        "updated_at": t.updated_at,
    }
    if include_token:
        body |= {"token": t.token, "url": t.url}
    return body
