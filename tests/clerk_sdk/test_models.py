"""Every field of the SDK's models is in every object the stand-in makes, required or not.

Parsing (the other tests here) proves the required fields; this also catches optional
ones a caller may read (``passkeys``, ``profile_image_url``...), without a server.
Fields Clerk sends only on request are listed in ``ON_REQUEST``.
"""

from __future__ import annotations

from typing import Any

import pytest
from clerk_backend_api import models
from pydantic import BaseModel

from devstack.clerk import Clerk
from devstack.clerk.settings import InstanceSettings

# Organization.last_active_at and User.organization_memberships come with query options.
ON_REQUEST = {"organization_memberships", "last_active_at"}


def _objects(clerk: Clerk) -> list[tuple[type[BaseModel], dict[str, Any]]]:
    user = clerk.create_user(email_addresses=["ada@acme.test"])
    bare = clerk.create_user(second_factor=True)
    org = clerk.create_organization("Acme", created_by=user["id"])
    membership = clerk.add_membership(org["id"], bare["id"], "org:worker")
    session = clerk.sign_in(bare["id"], org["id"])
    ticket = clerk.create_sign_in_token(bare["id"], org_id=org["id"])
    return [
        (models.User, user),
        (models.User, bare),
        (models.EmailAddress, user["email_addresses"][0]),
        (models.Organization, org),
        (models.OrganizationMembership, membership),
        (models.OrganizationMembershipPublicUserData, membership["public_user_data"]),
        (models.Session, session),
        (models.SignInToken, ticket),
    ]


def _field_names(model: type[BaseModel]) -> set[str]:
    return {field.alias or name for name, field in model.model_fields.items()}


@pytest.mark.parametrize("instance_type", ["development", "production"])
def test_every_object_has_every_field_of_its_sdk_model(instance_type: str) -> None:
    clerk = Clerk(settings=InstanceSettings(instance_type=instance_type))  # type: ignore[arg-type]
    for model, obj in _objects(clerk):
        model.model_validate(obj)
        missing = _field_names(model) - set(obj) - ON_REQUEST
        assert not missing, f"{model.__name__} lacks {sorted(missing)}"
        assert not set(obj) - _field_names(model), f"{model.__name__} has unknown fields"
