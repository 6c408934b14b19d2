"""The Clerk stand-in over real HTTP: BAPI objects, auth, not-found answers, JWKS."""

from __future__ import annotations

import httpx
import pytest

from devstack.clerk import Clerk
from tests.devstack.clerk_support import (
    SECRET,
    FakeClock,
    assert_clerk_error,
    mint,
)

pytestmark = pytest.mark.anyio


# -- BAPI objects -----------------------------------------------------------------


async def test_create_user_returns_a_user_object(bapi: httpx.AsyncClient) -> None:
    body = {"email_address": ["a@b.test"], "first_name": "Ada", "external_id": "ext-1"}
    user = (await bapi.post("/v1/users", json=body)).json()
    assert user["object"] == "user"
    assert user["id"].startswith("user_")
    assert user["id"][5:].isalnum()
    assert user["email_addresses"][0]["email_address"] == "a@b.test"
    assert user["primary_email_address_id"] == user["email_addresses"][0]["id"]
    assert (user["first_name"], user["external_id"]) == ("Ada", "ext-1")
    assert len(str(user["created_at"])) == 13  # Unix milliseconds


async def test_create_organization_returns_an_organization_object(
    bapi: httpx.AsyncClient,
) -> None:
    user = (await bapi.post("/v1/users", json={})).json()
    body = {"name": "Acme Inc", "created_by": user["id"]}
    org = (await bapi.post("/v1/organizations", json=body)).json()
    assert org["object"] == "organization"
    assert org["id"].startswith("org_")
    assert (org["name"], org["slug"], org["created_by"]) == ("Acme Inc", "acme-inc", user["id"])
    assert org["members_count"] == 1  # the creator joins as admin


async def test_add_membership_returns_a_membership_with_a_custom_role(
    clerk: Clerk, bapi: httpx.AsyncClient
) -> None:
    user = clerk.create_user()
    org = clerk.create_organization("Acme")
    url = f"/v1/organizations/{org['id']}/memberships"
    membership = (await bapi.post(url, json={"user_id": user["id"], "role": "org:worker"})).json()
    assert membership["object"] == "organization_membership"
    assert membership["role"] == "org:worker"
    assert membership["organization"]["id"] == org["id"]
    assert membership["public_user_data"]["user_id"] == user["id"]


async def test_create_session_returns_an_active_session(
    clerk: Clerk, bapi: httpx.AsyncClient, clock: FakeClock
) -> None:
    user = clerk.create_user()
    org = clerk.create_organization("Acme")
    clerk.add_membership(org["id"], user["id"], "org:member")
    body = {"user_id": user["id"], "active_organization_id": org["id"]}
    session = (await bapi.post("/v1/sessions", json=body)).json()
    assert session["object"] == "session"
    assert session["id"].startswith("sess_")
    assert session["client_id"].startswith("client_")
    assert (session["status"], session["user_id"]) == ("active", user["id"])
    assert session["last_active_organization_id"] == org["id"]
    assert session["created_at"] == int(clock.now * 1000)
    assert session["expire_at"] == session["created_at"] + 7 * 24 * 3600 * 1000
    assert {"last_active_at", "abandon_at", "updated_at"} <= set(session)


async def test_create_session_in_an_org_the_user_is_not_in_answers_422(
    clerk: Clerk, bapi: httpx.AsyncClient
) -> None:
    user = clerk.create_user()
    org = clerk.create_organization("Acme")
    body = {"user_id": user["id"], "active_organization_id": org["id"]}
    assert_clerk_error(
        await bapi.post("/v1/sessions", json=body), 422, "not_a_member_in_organization"
    )


async def test_missing_user_id_answers_422_form_param_missing(bapi: httpx.AsyncClient) -> None:
    response = await bapi.post("/v1/sessions", json={})
    assert_clerk_error(response, 422, "form_param_missing")
    assert response.json()["errors"][0]["meta"] == {"param_name": "user_id"}


async def test_get_session_returns_the_session(bapi: httpx.AsyncClient, session_id: str) -> None:
    session = (await bapi.get(f"/v1/sessions/{session_id}")).json()
    assert (session["id"], session["status"]) == (session_id, "active")


async def test_revoke_session_sets_status_revoked(bapi: httpx.AsyncClient, session_id: str) -> None:
    session = (await bapi.post(f"/v1/sessions/{session_id}/revoke")).json()
    assert session["status"] == "revoked"


# -- auth and not-found ---------------------------------------------------------------


@pytest.mark.parametrize("authorization", [None, "Bearer sk_test_wrong", SECRET])
async def test_missing_or_wrong_secret_key_answers_401(
    clerk: Clerk, session_id: str, authorization: str | None
) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    async with httpx.AsyncClient(base_url=clerk.issuer, headers=headers) as client:
        response = await client.post(f"/v1/sessions/{session_id}/tokens")
    assert_clerk_error(response, 401, "authentication_invalid")


async def test_bapi_jwks_needs_the_secret_key(clerk: Clerk) -> None:
    async with httpx.AsyncClient(base_url=clerk.issuer) as client:
        assert (await client.get("/v1/jwks")).status_code == 401


async def test_unknown_session_answers_404_resource_not_found(bapi: httpx.AsyncClient) -> None:
    assert_clerk_error(await mint(bapi, "sess_unknown"), 404, "resource_not_found")


async def test_ended_session_answers_404(bapi: httpx.AsyncClient, session_id: str) -> None:
    ended = await bapi.post(f"/__devstack/clerk/sessions/{session_id}/end")
    assert ended.json()["status"] == "ended"
    assert_clerk_error(await mint(bapi, session_id), 404, "resource_not_found")


async def test_revoked_session_answers_404(bapi: httpx.AsyncClient, session_id: str) -> None:
    await bapi.post(f"/v1/sessions/{session_id}/revoke")
    assert_clerk_error(await mint(bapi, session_id), 404, "resource_not_found")


async def test_session_past_its_lifetime_is_expired_and_answers_404(
    bapi: httpx.AsyncClient, session_id: str, clock: FakeClock
) -> None:
    clock.advance(7 * 24 * 3600)
    assert (await bapi.get(f"/v1/sessions/{session_id}")).json()["status"] == "expired"
    assert_clerk_error(await mint(bapi, session_id), 404, "resource_not_found")


# -- JWKS and discovery -------------------------------------------------------------------


async def test_public_jwks_is_served_without_auth_and_matches_bapi_jwks(
    clerk: Clerk, bapi: httpx.AsyncClient
) -> None:
    async with httpx.AsyncClient(base_url=clerk.issuer) as anonymous:
        public = (await anonymous.get("/.well-known/jwks.json")).json()
    assert public == (await bapi.get("/v1/jwks")).json() == clerk.public_jwks()
    (key,) = public["keys"]
    assert (key["kty"], key["alg"], key["use"], key["kid"]) == (
        "RSA",
        "RS256",
        "sig",
        clerk.keys.current_kid,
    )


async def test_openid_configuration_names_the_issuer_and_jwks_uri(
    clerk: Clerk, bapi: httpx.AsyncClient
) -> None:
    config = (await bapi.get("/.well-known/openid-configuration")).json()
    assert config["issuer"] == clerk.issuer
    assert config["jwks_uri"] == clerk.issuer + "/.well-known/jwks.json"
