"""Clerk sessions on the stand-in: clerk types, lifetime, inactivity, listing, revoking.

Time is the stand-in's injected clock (``FakeClock``): a session ends at the instant its
``expire_at``/``abandon_at`` says, with no sleeping.
"""

from __future__ import annotations

from typing import Any

import httpx
import jwt
import pytest

from devstack.clerk import Clerk, ClerkAPIError
from devstack.clerk.settings import InstanceSettings
from tests.devstack.clerk_support import (
    FakeClock,
    assert_clerk_error,
    mint,
)

pytestmark = pytest.mark.anyio

CONTROL = "/__devstack/clerk"


@pytest.fixture
def settings() -> InstanceSettings:
    return InstanceSettings(session_lifetime_s=20)


@pytest.fixture
def member(clerk: Clerk) -> tuple[str, str]:
    user_id = clerk.create_user()["id"]
    org_id = clerk.create_organization("Acme")["id"]
    clerk.add_membership(org_id, user_id, "org:worker")
    return user_id, org_id


async def _create(bapi: httpx.AsyncClient, member: tuple[str, str]) -> dict[str, Any]:
    body = {"user_id": member[0], "active_organization_id": member[1]}
    response = await bapi.post("/v1/sessions", json=body)
    assert response.status_code == 200, response.text
    return dict(response.json())


# -- clerk types --------------------------------------------------------------------


def test_a_development_instance_has_a_sk_test_key_and_production_a_sk_live_key() -> None:
    assert Clerk().secret_key.startswith("sk_test_")
    production = Clerk(settings=InstanceSettings(instance_type="production"))
    assert production.secret_key.startswith("sk_live_")


@pytest.mark.parametrize("settings", [InstanceSettings(instance_type="production")])
async def test_production_refuses_post_sessions_with_the_real_400(
    clerk: Clerk, bapi: httpx.AsyncClient, member: tuple[str, str]
) -> None:
    response = await bapi.post("/v1/sessions", json={"user_id": member[0]})
    assert_clerk_error(response, 400, "request_invalid_for_environment")
    (error,) = response.json()["errors"]
    assert error["message"] == "Invalid request for environment"
    assert error["long_message"] == "Request only valid for development instances."
    with pytest.raises(ClerkAPIError) as caught:
        clerk.create_session(member[0])
    assert caught.value.code == "request_invalid_for_environment"


# -- maximum lifetime ------------------------------------------------------------------


async def test_a_session_lives_the_configured_lifetime(
    bapi: httpx.AsyncClient, member: tuple[str, str], clock: FakeClock
) -> None:
    session = await _create(bapi, member)
    assert session["expire_at"] == session["created_at"] + 20_000

    clock.advance(19.9)
    assert (await mint(bapi, session["id"])).status_code == 200
    clock.advance(0.1)

    current = (await bapi.get(f"/v1/sessions/{session['id']}")).json()
    assert current["status"] == "expired"
    assert_clerk_error(await mint(bapi, session["id"]), 404, "resource_not_found")


async def test_revoking_an_expired_session_leaves_it_expired(
    bapi: httpx.AsyncClient, member: tuple[str, str], clock: FakeClock
) -> None:
    session = await _create(bapi, member)
    clock.advance(20)
    revoked = (await bapi.post(f"/v1/sessions/{session['id']}/revoke")).json()
    assert revoked["status"] == "expired"


async def test_the_control_surface_expires_a_session_now(
    bapi: httpx.AsyncClient, member: tuple[str, str]
) -> None:
    session = await _create(bapi, member)
    expired = (await bapi.post(f"{CONTROL}/sessions/{session['id']}/expire")).json()
    assert expired["status"] == "expired"
    assert expired["expire_at"] <= expired["abandon_at"]
    assert_clerk_error(await mint(bapi, session["id"]), 404, "resource_not_found")


# -- inactivity timeout ----------------------------------------------------------------


@pytest.mark.parametrize("settings", [InstanceSettings(session_inactivity_s=30)])
async def test_without_activity_a_session_is_abandoned_at_abandon_at(
    bapi: httpx.AsyncClient, member: tuple[str, str], clock: FakeClock
) -> None:
    session = await _create(bapi, member)
    assert session["abandon_at"] == session["created_at"] + 30_000

    clock.advance(30)

    assert (await bapi.get(f"/v1/sessions/{session['id']}")).json()["status"] == "abandoned"
    assert_clerk_error(await mint(bapi, session["id"]), 404, "resource_not_found")


@pytest.mark.parametrize("settings", [InstanceSettings(session_inactivity_s=30)])
async def test_minting_a_token_is_activity_that_moves_abandon_at(
    bapi: httpx.AsyncClient, member: tuple[str, str], clock: FakeClock
) -> None:
    session = await _create(bapi, member)
    clock.advance(20)
    assert (await mint(bapi, session["id"])).status_code == 200
    clock.advance(20)

    current = (await bapi.get(f"/v1/sessions/{session['id']}")).json()

    assert current["status"] == "active"
    assert current["abandon_at"] == session["created_at"] + 20_000 + 30_000
    assert current["last_active_at"] == session["created_at"] + 20_000


def test_the_default_settings_are_clerks() -> None:
    settings = InstanceSettings()
    assert (settings.session_lifetime_s, settings.session_inactivity_s) == (7 * 24 * 3600, None)


async def test_session_settings_change_through_the_control_surface_for_new_sessions(
    bapi: httpx.AsyncClient, member: tuple[str, str]
) -> None:
    before = await _create(bapi, member)
    changed = await bapi.post(
        f"{CONTROL}/session_settings", json={"lifetime_seconds": 60, "inactivity_seconds": 15}
    )
    after = await _create(bapi, member)
    state = (await bapi.get(f"{CONTROL}/state")).json()

    assert changed.json()["session_lifetime_seconds"] == 60
    assert (state["session_lifetime_seconds"], state["session_inactivity_seconds"]) == (60, 15)
    assert after["expire_at"] - after["created_at"] == 60_000
    assert after["abandon_at"] - after["created_at"] == 15_000
    current = (await bapi.get(f"/v1/sessions/{before['id']}")).json()
    assert current["expire_at"] == before["expire_at"]  # existing sessions keep theirs


async def test_a_null_inactivity_turns_the_timeout_off(bapi: httpx.AsyncClient) -> None:
    await bapi.post(f"{CONTROL}/session_settings", json={"inactivity_seconds": 15})
    await bapi.post(f"{CONTROL}/session_settings", json={"inactivity_seconds": None})
    state = (await bapi.get(f"{CONTROL}/state")).json()
    assert (state["session_lifetime_seconds"], state["session_inactivity_seconds"]) == (20, None)


async def test_bad_session_settings_answer_400(bapi: httpx.AsyncClient) -> None:
    response = await bapi.post(f"{CONTROL}/session_settings", json={"lifetime_seconds": 0})
    assert response.status_code == 400


# -- listing ---------------------------------------------------------------------------


async def test_list_filters_by_user_and_status_newest_first(
    clerk: Clerk, bapi: httpx.AsyncClient, member: tuple[str, str], clock: FakeClock
) -> None:
    old = await _create(bapi, member)
    clock.advance(1)
    revoked = await _create(bapi, member)
    clock.advance(1)
    current = await _create(bapi, member)
    clerk.create_session(clerk.create_user()["id"])  # another user's
    await bapi.post(f"/v1/sessions/{revoked['id']}/revoke")
    clock.advance(18.5)  # old is 20 s old now: expired

    async def ids(**query: str) -> list[str]:
        response = await bapi.get("/v1/sessions", params={"user_id": member[0], **query})
        assert response.status_code == 200, response.text
        return [s["id"] for s in response.json()]

    assert await ids() == [current["id"], revoked["id"], old["id"]]
    assert await ids(status="active") == [current["id"]]
    assert await ids(status="revoked") == [revoked["id"]]
    assert await ids(status="expired") == [old["id"]]


async def test_list_paginated_answers_data_and_total_count(
    bapi: httpx.AsyncClient, member: tuple[str, str], clock: FakeClock
) -> None:
    made = []
    for _ in range(3):
        made.append((await _create(bapi, member))["id"])
        clock.advance(1)
    query = {"user_id": member[0], "paginated": "true", "limit": "2", "offset": "1"}

    body = (await bapi.get("/v1/sessions", params=query)).json()

    assert body["total_count"] == 3
    assert [s["id"] for s in body["data"]] == [made[1], made[0]]


async def test_list_needs_a_user_or_a_client(bapi: httpx.AsyncClient) -> None:
    assert_clerk_error(await bapi.get("/v1/sessions"), 422, "form_param_missing")


async def test_list_refuses_an_unknown_status(
    bapi: httpx.AsyncClient, member: tuple[str, str]
) -> None:
    response = await bapi.get("/v1/sessions", params={"user_id": member[0], "status": "alive"})
    assert_clerk_error(response, 422, "form_param_format_invalid")


# -- users and memberships that go away -----------------------------------------------


async def test_deleting_the_user_removes_its_sessions(
    bapi: httpx.AsyncClient, member: tuple[str, str]
) -> None:
    session = await _create(bapi, member)
    deleted = await bapi.delete(f"/v1/users/{member[0]}")
    assert deleted.json() == {"object": "user", "id": member[0], "deleted": True}
    assert_clerk_error(await mint(bapi, session["id"]), 404, "resource_not_found")


async def test_leaving_the_org_drops_it_from_the_sessions_and_their_tokens(
    clerk: Clerk, bapi: httpx.AsyncClient, member: tuple[str, str]
) -> None:
    session = await _create(bapi, member)
    removed = await bapi.delete(f"/v1/organizations/{member[1]}/memberships/{member[0]}")
    assert removed.json()["object"] == "organization_membership"

    current = (await bapi.get(f"/v1/sessions/{session['id']}")).json()
    assert current["last_active_organization_id"] is None
    assert "o" not in await _claims(clerk, session["id"])
    body = {"user_id": member[0], "active_organization_id": member[1]}
    again = await bapi.post("/v1/sessions", json=body)
    assert_clerk_error(again, 422, "not_a_member_in_organization")


async def _claims(clerk: Clerk, session_id: str) -> dict[str, Any]:
    token = clerk.mint(session_id)
    claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return claims
