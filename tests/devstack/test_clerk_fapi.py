"""The Frontend API after the sign-in: ``touch`` sets the active organization with the
client JWT, the Native API switch refuses every native request, and sign-ins are limited
to 5 per 10 s per IP (429 with ``Retry-After``).
"""

from __future__ import annotations

import httpx
import jwt
import pytest

from devstack.clerk import Clerk
from devstack.clerk.settings import InstanceSettings
from tests.devstack.clerk_support import (
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


# -- touch --------------------------------------------------------------------------------


async def test_touch_sets_the_active_organization(
    bapi: httpx.AsyncClient, fapi: httpx.AsyncClient, clerk: Clerk, member: tuple[str, str]
) -> None:
    session_id, client_jwt = await signed_in(bapi, fapi, member[0])
    assert (await bapi.get(f"/v1/sessions/{session_id}")).json()[
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
    session = (await bapi.get(f"/v1/sessions/{session_id}")).json()
    assert session["last_active_organization_id"] == member[1]
    claims = jwt.decode(clerk.mint(session_id), options={"verify_signature": False})
    assert claims["o"]["id"] == member[1]


async def test_touch_accepts_the_org_slug_and_a_bearer_prefix(
    bapi: httpx.AsyncClient, fapi: httpx.AsyncClient, member: tuple[str, str]
) -> None:
    session_id, client_jwt = await signed_in(bapi, fapi, member[0])
    touched = await fapi.post(
        f"/v1/client/sessions/{session_id}/touch?_is_native=1",
        data={"active_organization_id": "acme"},
        headers={"Authorization": f"Bearer {client_jwt}"},
    )
    assert touched.json()["response"]["last_active_organization_id"] == member[1]


async def test_touch_needs_the_client_jwt_of_that_session(
    bapi: httpx.AsyncClient, fapi: httpx.AsyncClient, member: tuple[str, str]
) -> None:
    session_id, _ = await signed_in(bapi, fapi, member[0])
    _, other_jwt = await signed_in(bapi, fapi, member[0])
    url = f"/v1/client/sessions/{session_id}/touch?_is_native=1"
    assert_clerk_error(await fapi.post(url, data={}), 401, "authentication_invalid")
    wrong = await fapi.post(url, data={}, headers={"Authorization": other_jwt})
    assert_clerk_error(wrong, 404, "resource_not_found")


async def test_touch_refuses_an_org_the_user_is_not_in(
    bapi: httpx.AsyncClient, fapi: httpx.AsyncClient, clerk: Clerk, member: tuple[str, str]
) -> None:
    session_id, client_jwt = await signed_in(bapi, fapi, member[0])
    other_org = clerk.create_organization("Other")["id"]
    touched = await fapi.post(
        f"/v1/client/sessions/{session_id}/touch?_is_native=1",
        data={"active_organization_id": other_org},
        headers={"Authorization": client_jwt},
    )
    assert_clerk_error(touched, 422, "not_a_member_in_organization")


async def test_get_client_answers_the_client_of_the_jwt(
    bapi: httpx.AsyncClient, fapi: httpx.AsyncClient, member: tuple[str, str]
) -> None:
    session_id, client_jwt = await signed_in(bapi, fapi, member[0])
    got = await fapi.get("/v1/client?_is_native=1", headers={"Authorization": client_jwt})
    assert [s["id"] for s in got.json()["response"]["sessions"]] == [session_id]


# -- the Native API switch and the sign-in limit -----------------------------------------


async def test_with_the_native_api_off_every_native_request_is_refused(
    bapi: httpx.AsyncClient, fapi: httpx.AsyncClient, member: tuple[str, str]
) -> None:
    session_id, client_jwt = await signed_in(bapi, fapi, member[0])
    ticket = await make_ticket(bapi, member[0])
    await bapi.post(f"{CONTROL}/native_api", json={"enabled": False})

    sign_in = await native_sign_in(fapi, ticket)
    touch = await fapi.post(
        f"/v1/client/sessions/{session_id}/touch?_is_native=1",
        headers={"Authorization": client_jwt},
    )

    assert_clerk_error(sign_in, 400, "native_api_disabled")
    assert_clerk_error(touch, 400, "native_api_disabled")
    assert (await bapi.get(f"{CONTROL}/state")).json()["native_api"] is False
    await bapi.post(f"{CONTROL}/native_api", json={"enabled": True})
    assert (await native_sign_in(fapi, ticket)).status_code == 200  # the refused try spent nothing


async def test_six_sign_ins_within_ten_seconds_get_429_with_retry_after(
    bapi: httpx.AsyncClient, fapi: httpx.AsyncClient, member: tuple[str, str], clock: FakeClock
) -> None:
    for _ in range(4):
        assert (await native_sign_in(fapi, await make_ticket(bapi, member[0]))).status_code == 200
        clock.advance(1)
    assert_clerk_error(await native_sign_in(fapi, "bad"), 400, "ticket_invalid_code")  # counts too
    ticket = await make_ticket(bapi, member[0])

    refused = await native_sign_in(fapi, ticket)

    assert_clerk_error(refused, 429, "too_many_requests")
    assert refused.headers["Retry-After"] == "6"  # the first attempt leaves the window then
    clock.advance(6)
    assert (await native_sign_in(fapi, ticket)).status_code == 200


async def test_the_sign_in_limit_is_set_through_the_control_surface(
    bapi: httpx.AsyncClient, fapi: httpx.AsyncClient, member: tuple[str, str]
) -> None:
    await bapi.post(f"{CONTROL}/sign_in_rate_limit", json={"requests": 1, "window_seconds": 60})
    assert (await native_sign_in(fapi, await make_ticket(bapi, member[0]))).status_code == 200
    refused = await native_sign_in(fapi, await make_ticket(bapi, member[0]))
    assert_clerk_error(refused, 429, "too_many_requests")
    assert refused.headers["Retry-After"] == "60"
    await bapi.post(f"{CONTROL}/sign_in_rate_limit", json={"requests": None})
    assert (await native_sign_in(fapi, await make_ticket(bapi, member[0]))).status_code == 200


async def test_the_direct_sign_in_helper_makes_a_session_on_production(
    clerk: Clerk, member: tuple[str, str]
) -> None:
    session = clerk.sign_in(member[0], member[1])
    assert (session["status"], session["last_active_organization_id"]) == ("active", member[1])
