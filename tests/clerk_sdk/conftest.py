"""The Clerk stand-in on a loopback port and Clerk's official Python SDK pointed at it.

``clerk-backend-api`` (Speakeasy-generated) parses every answer into its pydantic
models and raises ``ClerkErrors`` for documented error statuses: a test passes only
when the stand-in's answer is what the SDK accepts from the real Backend API. Only the
``*_async`` calls are used: the stand-in runs on the test's own event loop.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from clerk_backend_api import Clerk as ClerkSDK

from devstack.clerk import Clerk
from devstack.clerk.settings import InstanceSettings
from tests.devstack.clerk_support import SECRET, FakeClock, served


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def settings() -> InstanceSettings:
    return InstanceSettings()


@pytest.fixture
async def clerk(clock: FakeClock, settings: InstanceSettings) -> AsyncIterator[Clerk]:
    async with served(clock, settings=settings) as instance:
        yield instance


def sdk_for(clerk: Clerk, secret_key: str = SECRET) -> ClerkSDK:
    """The SDK against the stand-in's BAPI (``server_url`` is the ``/v1`` base), no retries."""
    return ClerkSDK(bearer_auth=secret_key, server_url=clerk.issuer + "/v1")


@pytest.fixture
async def sdk(clerk: Clerk) -> AsyncIterator[ClerkSDK]:
    async with sdk_for(clerk) as client:
        yield client


@dataclass(frozen=True)
class Member:
    """A service user in an org."""

    user_id: str
    org_id: str


@pytest.fixture
def member(clerk: Clerk) -> Member:
    user = clerk.create_user(email_addresses=["worker@acme.test"])
    org = clerk.create_organization("Acme Inc", slug="acme")
    clerk.add_membership(org["id"], user["id"], "org:worker")
    return Member(user["id"], org["id"])
