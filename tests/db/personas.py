"""Token claims for the policy matrix: who asks, in which Clerk token format."""

from __future__ import annotations

from typing import Any

# Org A's id is a prefix of org B's and both contain '_', a LIKE wildcard: a policy that
# matches topics with LIKE or startswith fails the cross-org rows of the matrix.
ORG_A = "org_2aB_c"
ORG_B = "org_2aB_cd"


def v2(sub: str, org: str | None, rol: str | None, fva: list[int] | None = None) -> dict[str, Any]:
    claims: dict[str, Any] = {
        "role": "authenticated",
        "sub": sub,
        "sid": f"sess_{sub}",
        "v": 2,
        "iss": "https://clerk.test",
        "exp": 4102444800,
        "iat": 1700000000,
        "fva": fva if fva is not None else [3, 3],
    }
    if org is not None:
        claims["o"] = {"id": org, "rol": rol, "slg": org.lower()}
    return claims


def v1(sub: str, org: str, role: str, fva: list[int] | None = None) -> dict[str, Any]:
    return {
        "role": "authenticated",
        "sub": sub,
        "sid": f"sess_{sub}",
        "iss": "https://clerk.test",
        "exp": 4102444800,
        "iat": 1700000000,
        "org_id": org,
        "org_role": f"org:{role}",
        "org_slug": org.lower(),
        "fva": fva if fva is not None else [3, 3],
    }


PERSONAS: dict[str, dict[str, Any]] = {
    "a_member": v2("user_a_member", ORG_A, "member"),
    "a_admin": v2("user_a_admin", ORG_A, "admin"),
    "a_worker": v2("user_a_worker", ORG_A, "worker"),
    "b_member": v2("user_b_member", ORG_B, "member"),
    "b_admin": v2("user_b_admin", ORG_B, "admin"),
    "no_org": v2("user_no_org", None, None),
    "a_admin_v1": v1("user_a_admin_v1", ORG_A, "admin"),
    "a_member_v1": v1("user_a_member_v1", ORG_A, "member"),
    "a_worker_v1": v1("user_a_worker_v1", ORG_A, "worker"),
    "a_admin_no_2fa": v2("user_a_admin_no2fa", ORG_A, "admin", fva=[3, -1]),
    "anon": {"role": "anon", "iss": "supabase-demo", "exp": 4102444800},
}
