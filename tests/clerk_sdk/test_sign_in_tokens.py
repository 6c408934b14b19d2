"""Sign-in tokens through ``clerk-backend-api``: create (with the org check), revoke."""

from __future__ import annotations

import pytest
from clerk_backend_api import Clerk as ClerkSDK
from clerk_backend_api import models

from devstack.clerk import Clerk
from devstack.clerk.settings import InstanceSettings
from tests.clerk_sdk.conftest import Member

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(
    "settings", [InstanceSettings(), InstanceSettings(instance_type="production")]
)
async def test_create_parses_as_a_pending_token_with_its_ticket(
    sdk: ClerkSDK, member: Member
) -> None:
    token = await sdk.sign_in_tokens.create_async(
        request={"user_id": member.user_id, "org_id": member.org_id, "expires_in_seconds": 60}
    )
    assert isinstance(token, models.SignInToken)
    assert (token.user_id, token.status) == (member.user_id, "pending")
    assert token.token
    assert isinstance(token.url, str)
    assert token.url.endswith(token.token)


async def test_an_org_the_user_is_not_in_raises_422(sdk: ClerkSDK, clerk: Clerk) -> None:
    outsider = clerk.create_user()["id"]
    org_id = clerk.create_organization("Acme")["id"]
    with pytest.raises(models.ClerkErrors) as caught:
        await sdk.sign_in_tokens.create_async(request={"user_id": outsider, "org_id": org_id})
    assert caught.value.raw_response.status_code == 422
    assert caught.value.data.errors[0].code == "not_a_member_in_organization"


async def test_an_unknown_user_raises_404(sdk: ClerkSDK) -> None:
    with pytest.raises(models.ClerkErrors) as caught:
        await sdk.sign_in_tokens.create_async(request={"user_id": "user_unknown"})
    assert caught.value.raw_response.status_code == 404
    assert caught.value.data.errors[0].code == "resource_not_found"


async def test_revoke_parses_as_revoked(sdk: ClerkSDK, member: Member) -> None:
    token = await sdk.sign_in_tokens.create_async(request={"user_id": member.user_id})
    revoked = await sdk.sign_in_tokens.revoke_async(sign_in_token_id=token.id)
    assert (revoked.id, revoked.status) == (token.id, "revoked")
