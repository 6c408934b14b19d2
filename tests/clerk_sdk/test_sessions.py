"""Sessions through ``clerk-backend-api``: create, get, list, revoke, tokens, expiry, and
the production instance's refusal of ``POST /v1/sessions``.
"""

from __future__ import annotations

import jwt
import pytest
from clerk_backend_api import Clerk as ClerkSDK
from clerk_backend_api import models

from devstack.clerk import Clerk
from devstack.clerk.settings import InstanceSettings
from tests.clerk_sdk.conftest import Member, sdk_for
from tests.devstack.clerk_support import FakeClock

pytestmark = pytest.mark.anyio


async def _session(sdk: ClerkSDK, member: Member) -> models.Session:
    return await sdk.sessions.create_async(
        request={"user_id": member.user_id, "active_organization_id": member.org_id}
    )


async def test_create_and_get_parse_as_active_sessions(sdk: ClerkSDK, member: Member) -> None:
    created = await _session(sdk, member)
    assert isinstance(created, models.Session)
    assert (created.status, created.last_active_organization_id) == ("active", member.org_id)
    fetched = await sdk.sessions.get_async(session_id=created.id)
    assert (fetched.id, fetched.expire_at, fetched.abandon_at) == (
        created.id,
        created.expire_at,
        created.abandon_at,
    )


async def test_list_filters_by_user_and_status(
    sdk: ClerkSDK, member: Member, clerk: Clerk, clock: FakeClock
) -> None:
    first = await _session(sdk, member)
    clock.advance(1)
    second = await _session(sdk, member)
    clerk.create_session(clerk.create_user()["id"])  # someone else's
    await sdk.sessions.revoke_async(session_id=first.id)

    everything = await sdk.sessions.list_async(user_id=member.user_id)
    active = await sdk.sessions.list_async(
        user_id=member.user_id, status=models.QueryParamStatus.ACTIVE
    )

    assert [s.id for s in everything] == [second.id, first.id]  # newest first
    assert [s.id for s in active] == [second.id]


async def test_list_without_user_or_client_raises_422(sdk: ClerkSDK) -> None:
    with pytest.raises(models.ClerkErrors) as caught:
        await sdk.sessions.list_async()
    assert caught.value.raw_response.status_code == 422


async def test_revoke_parses_and_the_token_endpoint_then_raises_404(
    sdk: ClerkSDK, member: Member
) -> None:
    session = await _session(sdk, member)
    revoked = await sdk.sessions.revoke_async(session_id=session.id)
    assert revoked.status == "revoked"
    with pytest.raises(models.ClerkErrors) as caught:
        await sdk.sessions.create_token_async(session_id=session.id)
    assert caught.value.raw_response.status_code == 404
    assert caught.value.data.errors[0].code == "resource_not_found"


async def test_create_token_parses_and_carries_the_session(sdk: ClerkSDK, member: Member) -> None:
    session = await _session(sdk, member)
    token = await sdk.sessions.create_token_async(session_id=session.id, expires_in_seconds=120)
    assert token.object == "token"
    assert token.jwt is not None
    claims = jwt.decode(token.jwt, options={"verify_signature": False})
    assert (claims["sid"], claims["o"]["id"], claims["exp"] - claims["iat"]) == (
        session.id,
        member.org_id,
        120,
    )


async def test_create_token_from_a_template_parses(
    sdk: ClerkSDK, member: Member, clerk: Clerk
) -> None:
    clerk.add_jwt_template("supabase", {"org": "{{org.id}}"})
    session = await _session(sdk, member)
    token = await sdk.sessions.create_token_from_template_async(
        session_id=session.id, template_name="supabase"
    )
    assert token.jwt is not None
    assert jwt.decode(token.jwt, options={"verify_signature": False})["org"] == member.org_id


async def test_an_expired_session_reads_expired_and_mints_nothing(
    sdk: ClerkSDK, member: Member, clock: FakeClock
) -> None:
    session = await _session(sdk, member)
    clock.advance(7 * 24 * 3600)
    assert (await sdk.sessions.get_async(session_id=session.id)).status == "expired"
    with pytest.raises(models.ClerkErrors) as caught:
        await sdk.sessions.create_token_async(session_id=session.id)
    assert caught.value.raw_response.status_code == 404


async def test_a_wrong_secret_key_raises_clerk_errors_401(clerk: Clerk, member: Member) -> None:
    async with sdk_for(clerk, "sk_test_wrong") as wrong:
        with pytest.raises(models.ClerkErrors) as caught:
            await wrong.sessions.get_async(session_id="sess_any")
    assert caught.value.raw_response.status_code == 401
    assert caught.value.data.errors[0].code == "authentication_invalid"


async def test_a_429_raises_the_sdk_error_with_retry_after(
    sdk: ClerkSDK, member: Member, clerk: Clerk
) -> None:
    session = await _session(sdk, member)
    clerk.fail_next_tokens(1, 429, retry_after_s=3)
    with pytest.raises(models.SDKError) as caught:
        await sdk.sessions.create_token_async(session_id=session.id)
    assert caught.value.raw_response.status_code == 429
    assert caught.value.raw_response.headers["Retry-After"] == "3"
    assert caught.value.raw_response.json()["errors"][0]["code"] == "too_many_requests"


@pytest.mark.parametrize("settings", [InstanceSettings(instance_type="production")])
async def test_production_refuses_create_with_request_invalid_for_environment(
    sdk: ClerkSDK, member: Member
) -> None:
    with pytest.raises(models.ClerkErrors) as caught:
        await _session(sdk, member)
    assert caught.value.raw_response.status_code == 400
    (error,) = caught.value.data.errors
    assert error.code == "request_invalid_for_environment"
    assert error.long_message == "Request only valid for development instances."
