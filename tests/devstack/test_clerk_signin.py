"""Sign-in tokens and the Frontend API's native ticket sign-in: the production way to a session.

``POST /v1/sign_in_tokens`` (BAPI) makes a ticket; ``POST /v1/client/sign_ins?_is_native=1``
(FAPI, form-encoded) redeems it once into a new client and session, the client JWT in the
``Authorization`` response header (touch, the Native API switch and the sign-in limit:
test_clerk_fapi.py).
"""

from __future__ import annotations

import httpx
import jwt
import pytest

from devstack.clerk import Clerk
from devstack.clerk.settings import InstanceSettings
from tests.devstack.clerk_support import (
    NATIVE_SIGN_IN,
    FakeClock,
    assert_clerk_error,
    make_ticket,
    native_sign_in,
    service_member,
    signed_in,
)

pytestmark = pytest.mark.anyio

CONTROL = "/__devstack/clerk"


@pytest.fixture
def settings() -> InstanceSettings:
    return InstanceSettings(instance_type="production")


@pytest.fixture
def member(clerk: Clerk) -> tuple[str, str]:
    return service_member(clerk)


# -- sign-in tokens (BAPI) ---------------------------------------------------------------


async def test_a_sign_in_token_is_pending_with_a_ticket_and_a_url(
    bapi: httpx.AsyncClient, member: tuple[str, str], clerk: Clerk
) -> None:
    body = {"user_id": member[0], "org_id": member[1], "expires_in_seconds": 300}
    token = (await bapi.post("/v1/sign_in_tokens", json=body)).json()
    assert (token["object"], token["status"], token["user_id"]) == (
        "sign_in_token",
        "pending",
        member[0],
    )
    assert token["id"].startswith("sit_")
    assert token["url"] == f"{clerk.issuer}/v1/tickets/accept?ticket={token['token']}"


async def test_a_sign_in_token_for_an_org_needs_a_member(
    bapi: httpx.AsyncClient, clerk: Clerk, member: tuple[str, str]
) -> None:
    outsider = clerk.create_user()["id"]
    body = {"user_id": outsider, "org_id": member[1]}
    response = await bapi.post("/v1/sign_in_tokens", json=body)
    assert_clerk_error(response, 422, "not_a_member_in_organization")
    unknown_org = await bapi.post(
        "/v1/sign_in_tokens", json={"user_id": outsider, "org_id": "org_x"}
    )
    assert_clerk_error(unknown_org, 404, "resource_not_found")


async def test_expires_in_seconds_must_be_positive(
    bapi: httpx.AsyncClient, member: tuple[str, str]
) -> None:
    body = {"user_id": member[0], "expires_in_seconds": 0}
    response = await bapi.post("/v1/sign_in_tokens", json=body)
    assert_clerk_error(response, 422, "form_param_format_invalid")


# -- the native ticket sign-in (FAPI) ---------------------------------------------------


async def test_a_ticket_signs_in_to_an_active_session_in_the_tokens_org(
    bapi: httpx.AsyncClient, fapi: httpx.AsyncClient, clerk: Clerk, member: tuple[str, str]
) -> None:
    ticket = await make_ticket(bapi, member[0], org_id=member[1], expires_in_seconds=60)

    response = await native_sign_in(fapi, ticket)

    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"] == "application/json"
    client_jwt = response.headers["Authorization"]
    assert client_jwt.count(".") == 2
    sign_in, client = response.json()["response"], response.json()["client"]
    assert (sign_in["object"], sign_in["status"]) == ("sign_in_attempt", "complete")
    session_id = sign_in["created_session_id"]
    assert [s["id"] for s in client["sessions"]] == [session_id]
    assert client["last_active_session_id"] == session_id
    session = (await bapi.get(f"/v1/sessions/{session_id}")).json()
    assert (session["status"], session["last_active_organization_id"]) == ("active", member[1])
    assert session["client_id"] == client["id"]
    claims = jwt.decode(clerk.mint(session_id), options={"verify_signature": False})
    assert (claims["sid"], claims["o"]["id"]) == (session_id, member[1])


async def test_the_session_lives_the_instance_lifetime(
    bapi: httpx.AsyncClient, fapi: httpx.AsyncClient, clerk: Clerk, member: tuple[str, str]
) -> None:
    clerk.configure_sessions(lifetime_seconds=20)
    response = await native_sign_in(fapi, await make_ticket(bapi, member[0], org_id=member[1]))
    session = response.json()["client"]["sessions"][0]
    assert session["expire_at"] - session["created_at"] == 20_000


async def test_a_ticket_works_once(
    bapi: httpx.AsyncClient, fapi: httpx.AsyncClient, member: tuple[str, str]
) -> None:
    ticket = await make_ticket(bapi, member[0])
    assert (await native_sign_in(fapi, ticket)).status_code == 200
    assert_clerk_error(await native_sign_in(fapi, ticket), 400, "sign_in_token_already_used_code")


async def test_an_expired_ticket_is_refused(
    bapi: httpx.AsyncClient, fapi: httpx.AsyncClient, member: tuple[str, str], clock: FakeClock
) -> None:
    ticket = await make_ticket(bapi, member[0], expires_in_seconds=30)
    clock.advance(30)
    assert_clerk_error(await native_sign_in(fapi, ticket), 400, "ticket_expired_code")


async def test_a_revoked_or_unknown_ticket_is_refused(
    bapi: httpx.AsyncClient, fapi: httpx.AsyncClient, member: tuple[str, str]
) -> None:
    created = (await bapi.post("/v1/sign_in_tokens", json={"user_id": member[0]})).json()
    revoked = (await bapi.post(f"/v1/sign_in_tokens/{created['id']}/revoke")).json()
    assert revoked["status"] == "revoked"
    assert "token" not in revoked
    assert_clerk_error(
        await native_sign_in(fapi, created["token"]), 400, "sign_in_token_revoked_code"
    )
    assert_clerk_error(await native_sign_in(fapi, "not-a-ticket"), 400, "ticket_invalid_code")


async def test_a_ticket_for_an_org_the_user_has_left_is_refused(
    bapi: httpx.AsyncClient, fapi: httpx.AsyncClient, member: tuple[str, str]
) -> None:
    ticket = await make_ticket(bapi, member[0], org_id=member[1])
    await bapi.delete(f"/v1/organizations/{member[1]}/memberships/{member[0]}")
    assert_clerk_error(await native_sign_in(fapi, ticket), 422, "not_a_member_in_organization")


async def test_a_sign_in_needs_strategy_ticket(fapi: httpx.AsyncClient) -> None:
    assert_clerk_error(await fapi.post(NATIVE_SIGN_IN, data={}), 422, "form_param_missing")
    password = await fapi.post(NATIVE_SIGN_IN, data={"strategy": "password", "identifier": "x"})
    assert_clerk_error(password, 422, "form_param_format_invalid")
    assert_clerk_error(
        await fapi.post(NATIVE_SIGN_IN, data={"strategy": "ticket"}), 422, "form_param_missing"
    )


async def test_a_request_without_is_native_has_no_client(
    bapi: httpx.AsyncClient, fapi: httpx.AsyncClient, member: tuple[str, str]
) -> None:
    ticket = await make_ticket(bapi, member[0])
    response = await fapi.post("/v1/client/sign_ins", data={"strategy": "ticket", "ticket": ticket})
    assert_clerk_error(response, 400, "client_not_found")


async def test_origin_and_authorization_together_are_refused(
    bapi: httpx.AsyncClient, fapi: httpx.AsyncClient, member: tuple[str, str]
) -> None:
    ticket = await make_ticket(bapi, member[0])
    headers = {"Origin": "https://app.example", "Authorization": "some-client-jwt"}
    response = await native_sign_in(fapi, ticket, **headers)
    assert_clerk_error(response, 400, "origin_authorization_headers_conflict")


async def test_a_sign_in_with_a_client_jwt_adds_the_session_to_that_client(
    bapi: httpx.AsyncClient, fapi: httpx.AsyncClient, clerk: Clerk, member: tuple[str, str]
) -> None:
    first, client_jwt = await signed_in(bapi, fapi, member[0])
    clients_before = len(clerk.sign_ins.clients)
    assert_clerk_error(await native_sign_in(fapi, "not-a-ticket"), 400, "ticket_invalid_code")
    assert len(clerk.sign_ins.clients) == clients_before  # a refused sign-in makes no client

    again = await native_sign_in(fapi, await make_ticket(bapi, member[0]), Authorization=client_jwt)

    sessions = [s["id"] for s in again.json()["client"]["sessions"]]
    assert sessions == [first, again.json()["response"]["created_session_id"]]
    assert again.headers["Authorization"] == client_jwt
