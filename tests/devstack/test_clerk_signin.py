"""Sign-in tokens and the Frontend API's native ticket sign-in: the production way to a session.

``POST /v1/sign_in_tokens`` (BAPI) makes a ticket; ``POST /v1/client/sign_ins?_is_native=1``
(FAPI, form-encoded) redeems it once into a new client and session, the client JWT in the
``Authorization`` response header; ``touch`` with that JWT sets the active organization.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import jwt
import pytest

from devstack.clerk import Clerk
from devstack.clerk.settings import InstanceSettings
from tests.devstack.clerk_support import (
    FakeClock,
    assert_clerk_error,
    bapi_client,
    served,
)

pytestmark = pytest.mark.anyio

CONTROL = "/__devstack/clerk"
SIGN_IN = "/v1/client/sign_ins?_is_native=1"


@pytest.fixture
def settings() -> InstanceSettings:
    return InstanceSettings(instance_type="production")


@pytest.fixture
async def instance(clock: FakeClock, settings: InstanceSettings) -> AsyncIterator[Clerk]:
    async with served(clock, settings=settings) as clerk:
        yield clerk


@pytest.fixture
async def api(instance: Clerk) -> AsyncIterator[httpx.AsyncClient]:
    async with bapi_client(instance) as client:
        yield client


@pytest.fixture
async def fapi(instance: Clerk) -> AsyncIterator[httpx.AsyncClient]:
    """A Frontend API client: no secret key, at the issuer URL."""
    async with httpx.AsyncClient(base_url=instance.issuer, timeout=5) as client:
        yield client


@pytest.fixture
def member(instance: Clerk) -> tuple[str, str]:
    user_id = instance.create_user(email_addresses=["svc@acme.test"])["id"]
    org_id = instance.create_organization("Acme", slug="acme")["id"]
    instance.add_membership(org_id, user_id, "org:worker")
    return user_id, org_id


async def _ticket(api: httpx.AsyncClient, user_id: str, **body: Any) -> str:
    response = await api.post("/v1/sign_in_tokens", json={"user_id": user_id, **body})
    assert response.status_code == 200, response.text
    return str(response.json()["token"])


async def _sign_in(fapi: httpx.AsyncClient, ticket: str, **headers: str) -> httpx.Response:
    return await fapi.post(SIGN_IN, data={"strategy": "ticket", "ticket": ticket}, headers=headers)


# -- sign-in tokens (BAPI) ---------------------------------------------------------------


async def test_a_sign_in_token_is_pending_with_a_ticket_and_a_url(
    api: httpx.AsyncClient, member: tuple[str, str], instance: Clerk
) -> None:
    body = {"user_id": member[0], "org_id": member[1], "expires_in_seconds": 300}
    token = (await api.post("/v1/sign_in_tokens", json=body)).json()
    assert (token["object"], token["status"], token["user_id"]) == (
        "sign_in_token",
        "pending",
        member[0],
    )
    assert token["id"].startswith("sit_")
    assert token["url"] == f"{instance.issuer}/v1/tickets/accept?ticket={token['token']}"


async def test_a_sign_in_token_for_an_org_needs_a_member(
    api: httpx.AsyncClient, instance: Clerk, member: tuple[str, str]
) -> None:
    outsider = instance.create_user()["id"]
    body = {"user_id": outsider, "org_id": member[1]}
    response = await api.post("/v1/sign_in_tokens", json=body)
    assert_clerk_error(response, 422, "not_a_member_in_organization")
    unknown_org = await api.post(
        "/v1/sign_in_tokens", json={"user_id": outsider, "org_id": "org_x"}
    )
    assert_clerk_error(unknown_org, 404, "resource_not_found")


async def test_expires_in_seconds_must_be_positive(
    api: httpx.AsyncClient, member: tuple[str, str]
) -> None:
    body = {"user_id": member[0], "expires_in_seconds": 0}
    response = await api.post("/v1/sign_in_tokens", json=body)
    assert_clerk_error(response, 422, "form_param_format_invalid")


# -- the native ticket sign-in (FAPI) ---------------------------------------------------


async def test_a_ticket_signs_in_to_an_active_session_in_the_tokens_org(
    api: httpx.AsyncClient, fapi: httpx.AsyncClient, instance: Clerk, member: tuple[str, str]
) -> None:
    ticket = await _ticket(api, member[0], org_id=member[1], expires_in_seconds=60)

    response = await _sign_in(fapi, ticket)

    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"] == "application/json"
    client_jwt = response.headers["Authorization"]
    assert client_jwt.count(".") == 2
    sign_in, client = response.json()["response"], response.json()["client"]
    assert (sign_in["object"], sign_in["status"]) == ("sign_in_attempt", "complete")
    session_id = sign_in["created_session_id"]
    assert [s["id"] for s in client["sessions"]] == [session_id]
    assert client["last_active_session_id"] == session_id
    session = (await api.get(f"/v1/sessions/{session_id}")).json()
    assert (session["status"], session["last_active_organization_id"]) == ("active", member[1])
    assert session["client_id"] == client["id"]
    claims = jwt.decode(instance.mint(session_id), options={"verify_signature": False})
    assert (claims["sid"], claims["o"]["id"]) == (session_id, member[1])


async def test_the_session_lives_the_instance_lifetime(
    api: httpx.AsyncClient, fapi: httpx.AsyncClient, instance: Clerk, member: tuple[str, str]
) -> None:
    instance.configure_sessions(lifetime_seconds=20)
    response = await _sign_in(fapi, await _ticket(api, member[0], org_id=member[1]))
    session = response.json()["client"]["sessions"][0]
    assert session["expire_at"] - session["created_at"] == 20_000


async def test_a_ticket_works_once(
    api: httpx.AsyncClient, fapi: httpx.AsyncClient, member: tuple[str, str]
) -> None:
    ticket = await _ticket(api, member[0])
    assert (await _sign_in(fapi, ticket)).status_code == 200
    assert_clerk_error(await _sign_in(fapi, ticket), 400, "sign_in_token_already_used_code")


async def test_an_expired_ticket_is_refused(
    api: httpx.AsyncClient, fapi: httpx.AsyncClient, member: tuple[str, str], clock: FakeClock
) -> None:
    ticket = await _ticket(api, member[0], expires_in_seconds=30)
    clock.advance(30)
    assert_clerk_error(await _sign_in(fapi, ticket), 400, "ticket_expired_code")


async def test_a_revoked_or_unknown_ticket_is_refused(
    api: httpx.AsyncClient, fapi: httpx.AsyncClient, member: tuple[str, str]
) -> None:
    created = (await api.post("/v1/sign_in_tokens", json={"user_id": member[0]})).json()
    revoked = (await api.post(f"/v1/sign_in_tokens/{created['id']}/revoke")).json()
    assert revoked["status"] == "revoked"
    assert "token" not in revoked
    assert_clerk_error(await _sign_in(fapi, created["token"]), 400, "sign_in_token_revoked_code")
    assert_clerk_error(await _sign_in(fapi, "not-a-ticket"), 400, "ticket_invalid_code")


async def test_a_ticket_for_an_org_the_user_has_left_is_refused(
    api: httpx.AsyncClient, fapi: httpx.AsyncClient, member: tuple[str, str]
) -> None:
    ticket = await _ticket(api, member[0], org_id=member[1])
    await api.delete(f"/v1/organizations/{member[1]}/memberships/{member[0]}")
    assert_clerk_error(await _sign_in(fapi, ticket), 422, "not_a_member_in_organization")


async def test_a_sign_in_needs_strategy_ticket(fapi: httpx.AsyncClient) -> None:
    assert_clerk_error(await fapi.post(SIGN_IN, data={}), 422, "form_param_missing")
    password = await fapi.post(SIGN_IN, data={"strategy": "password", "identifier": "x"})
    assert_clerk_error(password, 422, "form_param_format_invalid")
    assert_clerk_error(
        await fapi.post(SIGN_IN, data={"strategy": "ticket"}), 422, "form_param_missing"
    )


async def test_a_request_without_is_native_has_no_client(
    api: httpx.AsyncClient, fapi: httpx.AsyncClient, member: tuple[str, str]
) -> None:
    ticket = await _ticket(api, member[0])
    response = await fapi.post("/v1/client/sign_ins", data={"strategy": "ticket", "ticket": ticket})
    assert_clerk_error(response, 400, "client_not_found")


async def test_origin_and_authorization_together_are_refused(
    api: httpx.AsyncClient, fapi: httpx.AsyncClient, member: tuple[str, str]
) -> None:
    ticket = await _ticket(api, member[0])
    headers = {"Origin": "https://app.example", "Authorization": "some-client-jwt"}
    response = await _sign_in(fapi, ticket, **headers)
    assert_clerk_error(response, 400, "origin_authorization_headers_conflict")


# -- touch --------------------------------------------------------------------------------


async def _signed_in(
    api: httpx.AsyncClient, fapi: httpx.AsyncClient, user_id: str
) -> tuple[str, str]:
    response = await _sign_in(fapi, await _ticket(api, user_id))
    return response.json()["response"]["created_session_id"], response.headers["Authorization"]


async def test_touch_sets_the_active_organization(
    api: httpx.AsyncClient, fapi: httpx.AsyncClient, instance: Clerk, member: tuple[str, str]
) -> None:
    session_id, client_jwt = await _signed_in(api, fapi, member[0])
    assert (await api.get(f"/v1/sessions/{session_id}")).json()[
        "last_active_organization_id"
    ] is None

    touched = await fapi.post(
        f"/v1/client/sessions/{session_id}/touch?_is_native=1",
        data={"active_organization_id": member[1]},
        headers={"Authorization": client_jwt},
    )

    assert touched.status_code == 200, touched.text
    assert touched.json()["response"]["last_active_organization_id"] == member[1]
    assert touched.headers["Authorization"] == client_jwt
    session = (await api.get(f"/v1/sessions/{session_id}")).json()
    assert session["last_active_organization_id"] == member[1]
    claims = jwt.decode(instance.mint(session_id), options={"verify_signature": False})
    assert claims["o"]["id"] == member[1]


async def test_touch_accepts_the_org_slug_and_a_bearer_prefix(
    api: httpx.AsyncClient, fapi: httpx.AsyncClient, member: tuple[str, str]
) -> None:
    session_id, client_jwt = await _signed_in(api, fapi, member[0])
    touched = await fapi.post(
        f"/v1/client/sessions/{session_id}/touch?_is_native=1",
        data={"active_organization_id": "acme"},
        headers={"Authorization": f"Bearer {client_jwt}"},
    )
    assert touched.json()["response"]["last_active_organization_id"] == member[1]


async def test_touch_needs_the_client_jwt_of_that_session(
    api: httpx.AsyncClient, fapi: httpx.AsyncClient, member: tuple[str, str]
) -> None:
    session_id, _ = await _signed_in(api, fapi, member[0])
    _, other_jwt = await _signed_in(api, fapi, member[0])
    url = f"/v1/client/sessions/{session_id}/touch?_is_native=1"
    assert_clerk_error(await fapi.post(url, data={}), 401, "authentication_invalid")
    wrong = await fapi.post(url, data={}, headers={"Authorization": other_jwt})
    assert_clerk_error(wrong, 404, "resource_not_found")


async def test_touch_refuses_an_org_the_user_is_not_in(
    api: httpx.AsyncClient, fapi: httpx.AsyncClient, instance: Clerk, member: tuple[str, str]
) -> None:
    session_id, client_jwt = await _signed_in(api, fapi, member[0])
    other_org = instance.create_organization("Other")["id"]
    touched = await fapi.post(
        f"/v1/client/sessions/{session_id}/touch?_is_native=1",
        data={"active_organization_id": other_org},
        headers={"Authorization": client_jwt},
    )
    assert_clerk_error(touched, 422, "not_a_member_in_organization")


async def test_get_client_answers_the_client_of_the_jwt(
    api: httpx.AsyncClient, fapi: httpx.AsyncClient, member: tuple[str, str]
) -> None:
    session_id, client_jwt = await _signed_in(api, fapi, member[0])
    got = await fapi.get("/v1/client?_is_native=1", headers={"Authorization": client_jwt})
    assert [s["id"] for s in got.json()["response"]["sessions"]] == [session_id]


# -- the Native API switch and the sign-in limit -----------------------------------------


async def test_with_the_native_api_off_every_native_request_is_refused(
    api: httpx.AsyncClient, fapi: httpx.AsyncClient, member: tuple[str, str]
) -> None:
    session_id, client_jwt = await _signed_in(api, fapi, member[0])
    ticket = await _ticket(api, member[0])
    await api.post(f"{CONTROL}/native_api", json={"enabled": False})

    sign_in = await _sign_in(fapi, ticket)
    touch = await fapi.post(
        f"/v1/client/sessions/{session_id}/touch?_is_native=1",
        headers={"Authorization": client_jwt},
    )

    assert_clerk_error(sign_in, 400, "native_api_disabled")
    assert_clerk_error(touch, 400, "native_api_disabled")
    assert (await api.get(f"{CONTROL}/state")).json()["native_api"] is False
    await api.post(f"{CONTROL}/native_api", json={"enabled": True})
    assert (await _sign_in(fapi, ticket)).status_code == 200  # the refused try spent nothing


async def test_six_sign_ins_within_ten_seconds_get_429_with_retry_after(
    api: httpx.AsyncClient, fapi: httpx.AsyncClient, member: tuple[str, str], clock: FakeClock
) -> None:
    for _ in range(4):
        assert (await _sign_in(fapi, await _ticket(api, member[0]))).status_code == 200
        clock.advance(1)
    assert_clerk_error(await _sign_in(fapi, "bad"), 400, "ticket_invalid_code")  # counts too
    ticket = await _ticket(api, member[0])

    refused = await _sign_in(fapi, ticket)

    assert_clerk_error(refused, 429, "too_many_requests")
    assert refused.headers["Retry-After"] == "6"  # the first attempt leaves the window then
    clock.advance(6)
    assert (await _sign_in(fapi, ticket)).status_code == 200


async def test_the_sign_in_limit_is_set_through_the_control_surface(
    api: httpx.AsyncClient, fapi: httpx.AsyncClient, member: tuple[str, str]
) -> None:
    await api.post(f"{CONTROL}/sign_in_rate_limit", json={"requests": 1, "window_seconds": 60})
    assert (await _sign_in(fapi, await _ticket(api, member[0]))).status_code == 200
    refused = await _sign_in(fapi, await _ticket(api, member[0]))
    assert_clerk_error(refused, 429, "too_many_requests")
    assert refused.headers["Retry-After"] == "60"
    await api.post(f"{CONTROL}/sign_in_rate_limit", json={"requests": None})
    assert (await _sign_in(fapi, await _ticket(api, member[0]))).status_code == 200


async def test_the_direct_sign_in_helper_makes_a_session_on_production(
    instance: Clerk, member: tuple[str, str]
) -> None:
    session = instance.sign_in(member[0], member[1])
    assert (session["status"], session["last_active_organization_id"]) == ("active", member[1])
