"""The JSON shapes of BAPI objects (``User``, ``Organization``, ``Session``...).

Fields follow clerk/openapi-specs ``bapi``; values the stand-in has no model for
(images, phone numbers, web3 wallets) are present with their empty values so that
strict client-side models still parse.
"""

from __future__ import annotations

from typing import Any

from devstack.clerk.store import Membership, Organization, Session, Store, User


def user(u: User) -> dict[str, Any]:
    """A ``User`` object."""
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
        "image_url": "",
        "has_image": False,
        "public_metadata": u.public_metadata,
        "private_metadata": u.private_metadata,
        "unsafe_metadata": {},
        "email_addresses": emails,
        "phone_numbers": [],
        "web3_wallets": [],
        "external_accounts": [],
        "password_enabled": False,
        "two_factor_enabled": u.second_factor,
        "totp_enabled": u.second_factor,
        "backup_code_enabled": False,
        "banned": False,
        "locked": False,
        "last_sign_in_at": None,
        "created_at": u.created_at,
        "updated_at": u.created_at,
    }


def _email(u: User, address: str, index: int) -> dict[str, Any]:
    # Stable per user and position, so the primary id matches the first entry.
    return {
        "object": "email_address",
        "id": f"idn_{u.id.removeprefix('user_')}{index}",
        "email_address": address,
        "reserved": False,
        "verification": {"status": "verified", "strategy": "admin"},
        "linked_to": [],
        "created_at": u.created_at,
        "updated_at": u.created_at,
    }


def organization(org: Organization, store: Store) -> dict[str, Any]:
    """An ``Organization`` object."""
    members = sum(1 for org_id, _ in store.memberships if org_id == org.id)
    return {
        "object": "organization",
        "id": org.id,
        "name": org.name,
        "slug": org.slug,
        "image_url": "",
        "has_image": False,
        "members_count": members,
        "max_allowed_memberships": 0,
        "admin_delete_enabled": True,
        "public_metadata": org.public_metadata,
        "private_metadata": org.private_metadata,
        "created_by": org.created_by,
        "created_at": org.created_at,
        "updated_at": org.created_at,
    }


def membership(m: Membership, store: Store) -> dict[str, Any]:
    """An ``OrganizationMembership`` object with its org and public user data."""
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
            "image_url": "",
            "has_image": False,
            "identifier": member.email_addresses[0] if member.email_addresses else "",
            "username": member.username,
        },
        "created_at": m.created_at,
        "updated_at": m.created_at,
    }


def session(s: Session, now_ms: int) -> dict[str, Any]:
    """A ``Session`` object; ``status`` reflects expiry at ``now_ms``."""
    return {
        "object": "session",
        "id": s.id,
        "user_id": s.user_id,
        "client_id": s.client_id,
        "actor": None,
        "status": s.status_at(now_ms),
        "last_active_organization_id": s.active_org_id,
        "last_active_at": s.updated_at,
        "latest_activity": None,
        "expire_at": s.expire_at,
        "abandon_at": s.abandon_at,
        "created_at": s.created_at,
        "updated_at": s.updated_at,
    }
