"""What every Clerk answer has in common: the exact JSON content type, request counters
the tests can read, and a secret key that can be rotated away underneath a client.
"""

from __future__ import annotations

import httpx
import pytest

from devstack.clerk import Clerk
from tests.devstack.clerk_support import assert_clerk_error, mint

pytestmark = pytest.mark.anyio

CONTROL = "/__devstack/clerk"


async def test_answers_and_refusals_say_exactly_application_json(
    clerk: Clerk, bapi: httpx.AsyncClient, session_id: str
) -> None:
    async with httpx.AsyncClient(base_url=clerk.issuer) as anonymous:
        answers = [
            await mint(bapi, session_id),
            await bapi.get(f"/v1/sessions/{session_id}"),
            await mint(bapi, "sess_unknown"),
            await bapi.get("/v1/jwks"),
            await anonymous.get("/.well-known/jwks.json"),
            await anonymous.post("/v1/client/sign_ins?_is_native=1", data={}),
            await anonymous.get("/v1/jwks"),
        ]
    assert [a.headers["Content-Type"] for a in answers] == ["application/json"] * len(answers)


async def test_requests_are_counted_by_route_refusals_included(
    clerk: Clerk, bapi: httpx.AsyncClient, session_id: str
) -> None:
    await bapi.post(f"{CONTROL}/requests/reset")
    await mint(bapi, session_id)
    await mint(bapi, "sess_unknown")
    await bapi.get(f"/v1/sessions/{session_id}")
    async with httpx.AsyncClient(base_url=clerk.issuer) as anonymous:
        await anonymous.post(f"/v1/sessions/{session_id}/tokens")  # 401
        await anonymous.post("/v1/client/sign_ins?_is_native=1", data={})

    state = (await bapi.get(f"{CONTROL}/state")).json()

    assert state["requests"] == {
        "POST /v1/sessions/{session_id}/tokens": 3,
        "GET /v1/sessions/{session_id}": 1,
        "POST /v1/client/sign_ins": 1,
    }
    assert clerk.requests["POST /v1/sessions/{session_id}/tokens"] == 3
    assert state["token_requests"] == 2  # the 401 never reached the token route


async def test_a_rotated_secret_key_refuses_the_old_one(
    clerk: Clerk, bapi: httpx.AsyncClient, session_id: str
) -> None:
    new_key = (await bapi.post(f"{CONTROL}/secret_key/rotate")).json()["secret_key"]

    assert new_key.startswith("sk_test_")
    assert_clerk_error(await mint(bapi, session_id), 401, "authentication_invalid")
    headers = {"Authorization": f"Bearer {new_key}"}
    response = await bapi.post(f"/v1/sessions/{session_id}/tokens", headers=headers)
    assert response.status_code == 200


async def test_state_shows_the_instance_settings(bapi: httpx.AsyncClient) -> None:
    state = (await bapi.get(f"{CONTROL}/state")).json()
    assert state["instance_type"] == "development"
    assert (state["session_lifetime_seconds"], state["session_inactivity_seconds"]) == (
        7 * 24 * 3600,
        None,
    )
    assert state["native_api"] is True
    assert state["sign_in_limit"] == {"requests": 5, "window_seconds": 10.0}
