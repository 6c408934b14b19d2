"""The Clerk stand-in's control surface: scripted failures, hangs, rate limits, keys, claims."""

from __future__ import annotations

import time

import anyio
import httpx
import jwt
import pytest

import devstack.clerk
from devstack.clerk import Clerk
from tests.devstack.clerk_support import (
    FakeClock,
    assert_clerk_error,
    mint,
    minted_claims,
    verify,
)

pytestmark = pytest.mark.anyio

CONTROL = "/__devstack/clerk"


# -- scripted failures ------------------------------------------------------------------


async def test_injected_failures_answer_their_status_then_recover(
    bapi: httpx.AsyncClient, session_id: str
) -> None:
    await bapi.post(f"{CONTROL}/faults/fail", json={"count": 2, "status": 503})
    assert_clerk_error(await mint(bapi, session_id), 503, "service_unavailable")
    assert_clerk_error(await mint(bapi, session_id), 503, "service_unavailable")
    assert (await mint(bapi, session_id)).status_code == 200


async def test_injected_429_carries_retry_after(
    clerk: Clerk, bapi: httpx.AsyncClient, session_id: str
) -> None:
    clerk.fail_next_tokens(1, 429, retry_after_s=7)
    response = await mint(bapi, session_id)
    assert_clerk_error(response, 429, "too_many_requests")
    assert response.headers["Retry-After"] == "7"


async def test_hang_then_answer_delays_a_normal_token(
    clerk: Clerk, bapi: httpx.AsyncClient, session_id: str
) -> None:
    clerk.hang_next_tokens(1, 0.2)
    started = time.monotonic()
    with anyio.fail_after(5):
        response = await mint(bapi, session_id)
    assert response.status_code == 200
    assert time.monotonic() - started >= 0.2


async def test_hang_outlasting_the_client_timeout_times_out_then_recovers(
    clerk: Clerk, bapi: httpx.AsyncClient, session_id: str
) -> None:
    clerk.hang_next_tokens(1, 30)
    with anyio.fail_after(5), pytest.raises(httpx.ReadTimeout):
        await bapi.post(f"/v1/sessions/{session_id}/tokens", timeout=0.2)
    assert (await mint(bapi, session_id)).status_code == 200


async def test_hang_then_drop_closes_the_connection_without_an_answer(
    clerk: Clerk, bapi: httpx.AsyncClient, session_id: str
) -> None:
    clerk.hang_next_tokens(1, 0.05, then="drop")
    with anyio.fail_after(5), pytest.raises(httpx.RemoteProtocolError):
        await mint(bapi, session_id)


async def test_token_requests_are_counted_including_failures(
    clerk: Clerk, bapi: httpx.AsyncClient, session_id: str
) -> None:
    clerk.fail_next_tokens(1, 500)
    await mint(bapi, session_id)
    await mint(bapi, session_id)
    await bapi.get(f"/v1/sessions/{session_id}")
    assert clerk.token_requests == 2
    assert (await bapi.get(f"{CONTROL}/state")).json()["token_requests"] == 2


# -- rate limit ------------------------------------------------------------------------


async def test_rate_limit_answers_429_with_retry_after(
    bapi: httpx.AsyncClient, session_id: str
) -> None:
    await bapi.post(f"{CONTROL}/rate_limit", json={"requests": 1, "window_seconds": 10})
    assert (await mint(bapi, session_id)).status_code == 200
    response = await mint(bapi, session_id)
    assert_clerk_error(response, 429, "too_many_requests")
    assert response.headers["Retry-After"] == "10"


async def test_rate_limit_resets_with_the_next_window(
    clerk: Clerk, bapi: httpx.AsyncClient, session_id: str, clock: FakeClock
) -> None:
    clerk.set_rate_limit(1, window_seconds=10)
    await mint(bapi, session_id)
    clock.advance(10)
    assert (await mint(bapi, session_id)).status_code == 200


async def test_bapi_jwks_is_never_rate_limited(clerk: Clerk, bapi: httpx.AsyncClient) -> None:
    clerk.set_rate_limit(1)
    statuses = {(await bapi.get("/v1/jwks")).status_code for _ in range(5)}
    assert statuses == {200}


# -- keys --------------------------------------------------------------------------------


async def test_rotation_signs_with_a_new_kid_and_keeps_the_old_key_published(
    clerk: Clerk, bapi: httpx.AsyncClient
) -> None:
    old_kid = clerk.keys.current_kid
    new_kid = (await bapi.post(f"{CONTROL}/keys/rotate")).json()["kid"]
    assert new_kid != old_kid
    kids = [key["kid"] for key in (await bapi.get("/.well-known/jwks.json")).json()["keys"]]
    assert kids == [new_kid, old_kid]


async def test_tokens_signed_before_rotation_still_verify(
    clerk: Clerk, bapi: httpx.AsyncClient, session_id: str
) -> None:
    old_token = (await mint(bapi, session_id)).json()["jwt"]
    clerk.rotate_key()
    new_token = (await mint(bapi, session_id)).json()["jwt"]
    assert jwt.get_unverified_header(new_token)["kid"] == clerk.keys.current_kid
    assert (await verify(bapi, old_token))["sid"] == session_id
    assert (await verify(bapi, new_token))["sid"] == session_id


async def test_rotation_with_drop_old_unpublishes_the_old_key(
    clerk: Clerk, bapi: httpx.AsyncClient, session_id: str
) -> None:
    old_token = (await mint(bapi, session_id)).json()["jwt"]
    clerk.rotate_key(drop_old=True)
    assert [key["kid"] for key in clerk.public_jwks()["keys"]] == [clerk.keys.current_kid]
    with pytest.raises(KeyError):
        await verify(bapi, old_token)


# -- claims --------------------------------------------------------------------------------


async def test_drop_role_toggle_removes_then_restores_the_role_claim(
    bapi: httpx.AsyncClient, session_id: str
) -> None:
    await bapi.post(f"{CONTROL}/drop_role", json={"drop": True})
    assert "role" not in await minted_claims(bapi, session_id)
    await bapi.post(f"{CONTROL}/drop_role", json={"drop": False})
    assert (await minted_claims(bapi, session_id))["role"] == "authenticated"


async def test_foreign_org_token_claims_a_different_org(
    clerk: Clerk, bapi: httpx.AsyncClient, session_id: str
) -> None:
    url = f"{CONTROL}/sessions/{session_id}/foreign_org_token"
    token = (await bapi.post(url, json={"org_id": "org_other"})).json()["jwt"]
    assert (await verify(bapi, token))["o"]["id"] == "org_other"
    real_org = clerk.get_session(session_id)["last_active_organization_id"]
    assert (await minted_claims(bapi, session_id))["o"]["id"] == real_org


async def test_token_org_override_applies_to_bapi_tokens_until_cleared(
    clerk: Clerk, bapi: httpx.AsyncClient, session_id: str
) -> None:
    url = f"{CONTROL}/sessions/{session_id}/token_org"
    await bapi.post(url, json={"org_id": "org_other"})
    assert (await minted_claims(bapi, session_id))["o"]["id"] == "org_other"
    await bapi.post(url, json={"org_id": None})
    real_org = clerk.get_session(session_id)["last_active_organization_id"]
    assert (await minted_claims(bapi, session_id))["o"]["id"] == real_org


async def test_bad_control_input_answers_400(bapi: httpx.AsyncClient) -> None:
    response = await bapi.post(f"{CONTROL}/faults/fail", json={"count": 1})
    assert response.status_code == 400
    assert "status" in response.json()["error"]


# -- public surface ---------------------------------------------------------------------------


def test_repr_hides_the_secret_key() -> None:
    clerk = Clerk(secret_key="sk_test_hidden")
    assert "sk_test_hidden" not in repr(clerk)


def test_default_secret_key_is_a_test_key() -> None:
    assert Clerk().secret_key.startswith("sk_test_")


def test_package_exports_only_the_public_surface() -> None:
    assert sorted(devstack.clerk.__all__) == ["Clerk", "ClerkAPIError"]
