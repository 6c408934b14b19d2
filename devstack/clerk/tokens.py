"""Claims of Clerk session tokens (v1 and v2) and of JWT-template tokens.

v2 (Clerk's default since 2025-04-14) nests the active org in ``o`` with the role
*without* its ``org:`` prefix; v1 uses flat ``org_*`` claims with the prefix and has
no ``v`` or ``jti``. ``role: "authenticated"`` is what Clerk's Supabase integration
adds to every session token; the control surface can drop it for negative tests.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any

from devstack.clerk.store import Session, Store

DEFAULT_LIFETIME_S = 60
CLOCK_SKEW_S = 5  # Clerk sets nbf this far in the past
MAX_LIFETIME_S = 315_360_000
SUPABASE_ROLE = "authenticated"


@dataclass(frozen=True)
class JwtTemplate:
    """A JWT template: static claims (``"{{user.id}}"``-style shortcodes resolved)."""

    name: str
    claims: dict[str, Any] = field(default_factory=dict)
    lifetime_seconds: int = DEFAULT_LIFETIME_S


@dataclass(frozen=True)
class OrgContext:
    """The org a token speaks for, with the member's role and custom permissions."""

    id: str
    role: str
    slug: str
    permissions: list[str]


def org_context(store: Store, session: Session) -> OrgContext | None:
    """The session's active org, or the org forced by the control surface."""
    org_id = session.token_org_id or session.active_org_id
    if org_id is None:
        return None
    membership = store.memberships.get((org_id, session.user_id)) or store.memberships.get(
        (session.active_org_id or "", session.user_id)
    )
    role = membership.role if membership else "org:member"
    # A forced org need not exist: negative tests only need an o.id that differs.
    slug = store.orgs[org_id].slug if org_id in store.orgs else org_id.lower()
    return OrgContext(org_id, role, slug, store.permissions(role))


def session_claims(
    store: Store, session: Session, *, issuer: str, now: int, lifetime_s: int, fmt: int, role: bool
) -> dict[str, Any]:
    """The payload of a session token in format ``fmt`` (1 or 2)."""
    claims: dict[str, Any] = {
        "sub": session.user_id,
        "sid": session.id,
        "iss": issuer,
        "iat": now,
        "nbf": now - CLOCK_SKEW_S,
        "exp": now + lifetime_s,
        "fva": _fva(store, session, now),
    }
    if fmt == 2:
        claims |= {"jti": secrets.token_hex(10), "v": 2}
        if session.status == "pending":
            claims["sts"] = "pending"  # Clerk omits sts for active sessions
    if role:
        claims["role"] = SUPABASE_ROLE
    org = org_context(store, session)
    if org is not None:
        claims |= _org_v2(org) if fmt == 2 else _org_v1(org)
    return claims


def template_claims(
    store: Store, session: Session, template: JwtTemplate, *, issuer: str, now: int, lifetime_s: int
) -> dict[str, Any]:
    """A JWT-template token: no ``sid`` and no ``v``; the template's claims on top."""
    base: dict[str, Any] = {
        "sub": session.user_id,
        "iss": issuer,
        "iat": now,
        "nbf": now - CLOCK_SKEW_S,
        "exp": now + lifetime_s,
        "jti": secrets.token_hex(10),
    }
    shortcodes = _shortcodes(store, session)
    custom = {key: _resolve(value, shortcodes) for key, value in template.claims.items()}
    return base | custom


def _fva(store: Store, session: Session, now: int) -> list[int]:
    # Minutes since each factor; the session's creation stands in for the sign-in.
    minutes = max(0, (now * 1000 - session.created_at) // 60_000)
    return [minutes, minutes if store.users[session.user_id].second_factor else -1]


def _org_v2(org: OrgContext) -> dict[str, Any]:
    features: list[str] = []
    names: list[str] = []
    for key in org.permissions:  # org:<feature>:<permission>
        _, feature, name = key.split(":", 2)
        features += [feature] if feature not in features else []
        names += [name] if name not in names else []
    o: dict[str, Any] = {"id": org.id, "rol": org.role.removeprefix("org:"), "slg": org.slug}
    o["per"] = ",".join(names)
    if not features:
        return {"o": o}
    # fpm: per feature, a bitmask over ``per`` (least significant bit = first name).
    masks = [_mask(org.permissions, feature, names) for feature in features]
    o["fpm"] = ",".join(str(mask) for mask in masks)
    return {"o": o, "fea": ",".join("o:" + feature for feature in features)}


def _mask(permissions: list[str], feature: str, names: list[str]) -> int:
    owned = {key.split(":", 2)[2] for key in permissions if key.split(":", 2)[1] == feature}
    return sum(1 << index for index, name in enumerate(names) if name in owned)


def _org_v1(org: OrgContext) -> dict[str, Any]:
    return {
        "org_id": org.id,
        "org_role": org.role,
        "org_slug": org.slug,
        "org_permissions": list(org.permissions),
    }


def _shortcodes(store: Store, session: Session) -> dict[str, Any]:
    org = org_context(store, session)
    return {
        "{{user.id}}": session.user_id,
        "{{user.external_id}}": store.users[session.user_id].external_id,
        "{{session.id}}": session.id,
        "{{org.id}}": org.id if org else None,
        "{{org.role}}": org.role if org else None,
        "{{org.slug}}": org.slug if org else None,
    }


def _resolve(value: Any, shortcodes: dict[str, Any]) -> Any:
    if isinstance(value, str) and value in shortcodes:
        return shortcodes[value]
    return value
