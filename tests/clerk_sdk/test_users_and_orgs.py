"""Users, organizations and memberships through ``clerk-backend-api``: every answer parses
into the SDK's models (which require every field bapi/2026-05-12.yml marks required),
and refusals raise the SDK's ``ClerkErrors`` with Clerk's status and code.
"""

from __future__ import annotations

import pytest
from clerk_backend_api import Clerk as ClerkSDK
from clerk_backend_api import models

from devstack.clerk import Clerk
from tests.clerk_sdk.conftest import Member

pytestmark = pytest.mark.anyio


async def test_a_user_with_an_email_parses_with_an_admin_verification(sdk: ClerkSDK) -> None:
    user = await sdk.users.create_async(email_address=["ada@acme.test"], first_name="Ada")
    assert isinstance(user, models.User)
    assert user.id.startswith("user_")
    (email,) = user.email_addresses
    assert email.email_address == "ada@acme.test"
    assert user.primary_email_address_id == email.id
    assert isinstance(email.verification, models.Admin)
    assert email.verification.status == "verified"


async def test_a_user_without_email_parses_with_every_required_field(sdk: ClerkSDK) -> None:
    user = await sdk.users.create_async(username="svc")
    assert user.email_addresses == []
    assert user.passkeys == []
    assert user.mfa_enabled_at is None
    assert (user.delete_self_enabled, user.create_organization_enabled) == (True, True)


async def test_get_and_delete_user(sdk: ClerkSDK, clerk: Clerk) -> None:
    user_id = clerk.create_user()["id"]
    assert (await sdk.users.get_async(user_id=user_id)).id == user_id
    deleted = await sdk.users.delete_async(user_id=user_id)
    assert (deleted.id, deleted.deleted) == (user_id, True)


async def test_an_unknown_user_raises_clerk_errors_404(sdk: ClerkSDK) -> None:
    with pytest.raises(models.ClerkErrors) as caught:
        await sdk.users.get_async(user_id="user_unknown")
    assert caught.value.raw_response.status_code == 404
    assert caught.value.data.errors[0].code == "resource_not_found"


async def test_an_organization_parses(sdk: ClerkSDK, clerk: Clerk) -> None:
    creator = clerk.create_user()["id"]
    org = await sdk.organizations.create_async(request={"name": "Acme", "created_by": creator})
    assert isinstance(org, models.Organization)
    assert (org.name, org.slug, org.members_count) == ("Acme", "acme", 1)


async def test_a_taken_slug_raises_clerk_errors_422(sdk: ClerkSDK) -> None:
    await sdk.organizations.create_async(request={"name": "Acme", "slug": "acme"})
    with pytest.raises(models.ClerkErrors) as caught:
        await sdk.organizations.create_async(request={"name": "Other", "slug": "acme"})
    assert caught.value.raw_response.status_code == 422
    assert caught.value.data.errors[0].code == "form_identifier_exists"


async def test_a_membership_parses_with_its_public_user_data(sdk: ClerkSDK, clerk: Clerk) -> None:
    user_id = clerk.create_user(email_addresses=["w@acme.test"])["id"]
    org_id = clerk.create_organization("Acme")["id"]
    membership = await sdk.organization_memberships.create_async(
        organization_id=org_id, user_id=user_id, role="org:worker"
    )
    assert isinstance(membership, models.OrganizationMembership)
    assert membership.role == "org:worker"
    assert membership.public_user_data is not None
    assert membership.public_user_data.user_id == user_id
    assert membership.public_user_data.identifier == "w@acme.test"


async def test_removing_a_membership_answers_it_then_404(sdk: ClerkSDK, member: Member) -> None:
    removed = await sdk.organization_memberships.delete_async(
        organization_id=member.org_id, user_id=member.user_id
    )
    assert removed.public_user_data is not None
    assert removed.public_user_data.user_id == member.user_id
    with pytest.raises(models.ClerkErrors) as caught:
        await sdk.organization_memberships.delete_async(
            organization_id=member.org_id, user_id=member.user_id
        )
    assert caught.value.raw_response.status_code == 404


async def test_a_second_membership_raises_clerk_errors_422(sdk: ClerkSDK, member: Member) -> None:
    with pytest.raises(models.ClerkErrors) as caught:
        await sdk.organization_memberships.create_async(
            organization_id=member.org_id, user_id=member.user_id, role="org:member"
        )
    assert caught.value.data.errors[0].code == "already_a_member_in_organization"


async def test_jwks_parses_and_matches_the_served_keys(sdk: ClerkSDK, clerk: Clerk) -> None:
    jwks = await sdk.jwks.get_jwks_async()
    assert jwks.keys is not None
    assert [key.kid for key in jwks.keys] == [clerk.keys.current_kid]
