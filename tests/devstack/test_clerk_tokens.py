"""Clerk stand-in session and template tokens: headers, v1/v2 claims, lifetimes."""

from __future__ import annotations

import httpx
import jwt
import pytest

from devstack.clerk import Clerk
from tests.devstack.clerk_support import (
    assert_clerk_error,
    mint,
    minted_claims,
)

pytestmark = pytest.mark.anyio


# -- session tokens -----------------------------------------------------------------


async def test_create_token_returns_a_token_object(
    bapi: httpx.AsyncClient, session_id: str
) -> None:
    response = await mint(bapi, session_id)
    assert response.status_code == 200
    assert set(response.json()) == {"object", "jwt"}
    assert response.json()["object"] == "token"


async def test_v2_token_header_is_rs256_with_the_current_kid(
    clerk: Clerk, bapi: httpx.AsyncClient, session_id: str
) -> None:
    header = jwt.get_unverified_header((await mint(bapi, session_id)).json()["jwt"])
    assert (header["alg"], header["typ"], header["kid"]) == ("RS256", "JWT", clerk.keys.current_kid)
    assert "oiat" in header


async def test_v2_token_carries_clerk_v2_claims_and_the_supabase_role(
    clerk: Clerk, bapi: httpx.AsyncClient, session_id: str
) -> None:
    claims = await minted_claims(bapi, session_id)
    session = clerk.get_session(session_id)
    assert claims["sub"] == session["user_id"]
    assert (claims["sid"], claims["iss"], claims["v"]) == (session_id, clerk.issuer, 2)
    assert claims["nbf"] == claims["iat"] - 5
    assert claims["exp"] == claims["iat"] + 60
    assert claims["fva"] == [0, -1]
    assert claims["role"] == "authenticated"
    assert claims["jti"]
    org_id = session["last_active_organization_id"]
    assert claims["o"] == {"id": org_id, "rol": "worker", "slg": "acme", "per": ""}
    assert not {"azp", "sts", "org_id", "org_role"} & set(claims)


async def test_v2_token_lists_role_permissions_in_o_per_with_features(
    clerk: Clerk, bapi: httpx.AsyncClient, session_id: str
) -> None:
    clerk.define_role("org:worker", ["org:events:read", "org:events:manage", "org:jobs:read"])
    claims = await minted_claims(bapi, session_id)
    assert claims["o"]["per"] == "read,manage"
    assert claims["o"]["fpm"] == "3,1"
    assert claims["fea"] == "o:events,o:jobs"


@pytest.mark.parametrize("token_format", [1])
async def test_v1_token_carries_flat_org_claims_without_v_or_jti(
    clerk: Clerk, bapi: httpx.AsyncClient, session_id: str
) -> None:
    claims = await minted_claims(bapi, session_id)
    org_id = clerk.get_session(session_id)["last_active_organization_id"]
    assert claims["org_id"] == org_id
    assert (claims["org_role"], claims["org_slug"], claims["org_permissions"]) == (
        "org:worker",
        "acme",
        [],
    )
    assert claims["role"] == "authenticated"
    assert not {"v", "jti", "o", "sts"} & set(claims)


async def test_token_format_can_be_set_per_session(
    clerk: Clerk, bapi: httpx.AsyncClient, session_id: str
) -> None:
    url = f"/__devstack/clerk/sessions/{session_id}/token_format"
    assert (await bapi.post(url, json={"token_format": 1})).status_code == 200
    claims = await minted_claims(bapi, session_id)
    assert "org_id" in claims
    assert "v" not in claims


async def test_second_factor_user_gets_fva_zero_zero(clerk: Clerk, bapi: httpx.AsyncClient) -> None:
    user = clerk.create_user(second_factor=True)
    session = clerk.create_session(user["id"])
    assert (await minted_claims(bapi, session["id"]))["fva"] == [0, 0]


async def test_session_without_an_org_has_no_org_claim(
    clerk: Clerk, bapi: httpx.AsyncClient
) -> None:
    session = clerk.create_session(clerk.create_user()["id"])
    claims = await minted_claims(bapi, session["id"])
    assert not {"o", "sts"} & set(claims)


async def test_pending_session_token_carries_sts_pending(
    clerk: Clerk, bapi: httpx.AsyncClient
) -> None:
    session = clerk.create_session(clerk.create_user()["id"])
    url = f"/__devstack/clerk/sessions/{session['id']}/pending"
    assert (await bapi.post(url, json={"pending": True})).status_code == 200
    assert (await minted_claims(bapi, session["id"]))["sts"] == "pending"


async def test_expires_in_seconds_below_clerks_minimum_is_accepted(
    bapi: httpx.AsyncClient, session_id: str
) -> None:
    claims = await minted_claims(bapi, session_id, expires_in_seconds=2)
    assert claims["exp"] == claims["iat"] + 2


async def test_null_expires_in_seconds_means_the_60_second_default(
    bapi: httpx.AsyncClient, session_id: str
) -> None:
    claims = await minted_claims(bapi, session_id, expires_in_seconds=None, unused=1)
    assert claims["exp"] == claims["iat"] + 60


@pytest.mark.parametrize("value", [0, -5, 315_360_001, 1.5, "60", True])
async def test_invalid_expires_in_seconds_answers_422(
    bapi: httpx.AsyncClient, session_id: str, value: object
) -> None:
    response = await mint(bapi, session_id, expires_in_seconds=value)
    assert_clerk_error(response, 422, "form_param_format_invalid")


async def test_template_token_has_no_sid_and_no_v(
    clerk: Clerk, bapi: httpx.AsyncClient, session_id: str
) -> None:
    clerk.add_jwt_template("backend", {"org": "{{org.id}}", "aud": "svc"}, lifetime_seconds=120)
    response = await bapi.post(f"/v1/sessions/{session_id}/tokens/backend")
    token = response.json()["jwt"]
    claims = jwt.decode(token, options={"verify_signature": False})
    assert not {"sid", "v"} & set(claims)
    assert claims["org"] == clerk.get_session(session_id)["last_active_organization_id"]
    assert claims["exp"] == claims["iat"] + 120


async def test_unknown_template_answers_404(bapi: httpx.AsyncClient, session_id: str) -> None:
    response = await bapi.post(f"/v1/sessions/{session_id}/tokens/nope")
    assert_clerk_error(response, 404, "resource_not_found")
