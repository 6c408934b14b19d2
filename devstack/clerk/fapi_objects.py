"""The JSON shapes of Frontend API objects (``Client``, ``SignIn``, ``Session``).

Fields follow clerk/openapi-specs ``fapi/2026-05-12.yml`` (``Client.Client-2``,
``Client.SignIn-2``, ``Client.Session-2``): every required field is present, nullable
ones as null. FAPI answers wrap the object of the call in ``response`` and piggyback
the whole client in ``client`` (``Client.ClientWrappedSignIn``,
``Client.TouchWrappedSession``).
"""

from __future__ import annotations

from typing import Any

from devstack.clerk.objects import DEFAULT_IMAGE_URL
from devstack.clerk.signin import Client
from devstack.clerk.store import Session, Store

CLIENT_COOKIE_LIFETIME_MS = 365 * 24 * 3600 * 1000


def sign_in(sign_in_id: str, session: Session, store: Store) -> dict[str, Any]:
    """A completed ``strategy=ticket`` sign-in that created ``session``."""
    user = store.users[session.user_id]
    return {
        "object": "sign_in_attempt",
        "id": sign_in_id,
        "status": "complete",
        "supported_identifiers": [],
        "supported_first_factors": [],
        "supported_second_factors": None,
        "first_factor_verification": {
            "object": "verification_ticket",
            "status": "verified",
            "strategy": "ticket",
            "attempts": None,
            "expire_at": None,
        },
        "second_factor_verification": None,
        "identifier": user.email_addresses[0] if user.email_addresses else None,
        "user_data": {
            "first_name": user.first_name,
            "last_name": user.last_name,
            "image_url": DEFAULT_IMAGE_URL,
            "has_image": False,
        },
        "created_session_id": session.id,
        "abandon_at": session.created_at + 24 * 3600 * 1000,
        "client_trust_state": None,
    }


def session(s: Session, store: Store, now_ms: int) -> dict[str, Any]:
    """A FAPI ``Session`` (the BAPI one plus public user data and factor ages)."""
    user = store.users[s.user_id]
    minutes = max(0, (now_ms - s.created_at) // 60_000)
    return {
        "object": "session",
        "id": s.id,
        "status": s.status_at(now_ms),
        "expire_at": s.expire_at,
        "abandon_at": s.abandon_at,
        "last_active_at": s.last_active_at,
        "last_active_token": None,
        "last_active_organization_id": s.active_org_id,
        "actor": None,
        "tasks": None,
        "public_user_data": {
            "first_name": user.first_name,
            "last_name": user.last_name,
            "image_url": DEFAULT_IMAGE_URL,
            "has_image": False,
            "identifier": user.email_addresses[0] if user.email_addresses else "",
            "user_id": user.id,
            "username": user.username,
        },
        "factor_verification_age": [minutes, minutes if user.second_factor else -1],
        "created_at": s.created_at,
        "updated_at": s.updated_at,
    }


def client(c: Client, store: Store, now_ms: int) -> dict[str, Any]:
    """A ``Client`` with every session signed in on it."""
    return {
        "object": "client",
        "id": c.id,
        "sessions": [session(store.sessions[sid], store, now_ms) for sid in c.session_ids],
        "sign_in": None,  # the sign-in completed, so the client no longer holds one
        "sign_up": None,
        "last_active_session_id": c.last_active_session_id,
        "last_authentication_strategy": "ticket",
        "cookie_expires_at": c.created_at + CLIENT_COOKIE_LIFETIME_MS,
        "captcha_bypass": False,
        "created_at": c.created_at,
        "updated_at": c.updated_at,
    }
