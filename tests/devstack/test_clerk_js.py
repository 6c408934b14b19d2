"""Conformance with Clerk's official Node SDK, ``@clerk/backend`` (pinned in tests/js).

``tests/js/clerk_backend.mjs`` calls the stand-in through the SDK's own client: the SDK
parses a body only when ``Content-Type`` is exactly ``application/json`` and turns
refusals into ``ClerkAPIResponseError`` with Clerk's status and codes, and
``verifyToken`` checks a session token against ``GET /v1/jwks``.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from devstack.clerk import Clerk
from devstack.clerk.settings import InstanceSettings
from tests.devstack import js_support
from tests.devstack.clerk_support import SECRET, FakeClock, org_session, served

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="session")
def node() -> str:
    return js_support.ensure_installed()


@pytest.fixture
async def production(clock: FakeClock) -> AsyncIterator[Clerk]:
    async with served(clock, settings=InstanceSettings(instance_type="production")) as clerk:
        yield clerk


async def _run(node: str, clerk: Clerk, scenario: str, **fields: Any) -> dict[str, Any]:
    config = {"api_url": clerk.issuer, "secret_key": SECRET, **fields}
    line = await js_support.run(node, scenario, config, script=js_support.CLERK_SCRIPT)
    assert line["ok"], line
    return dict(line["result"])


async def test_every_bapi_answer_deserializes_into_the_sdk_resource(
    node: str, clerk: Clerk
) -> None:
    seen = await _run(node, clerk, "objects")

    assert seen["user"]["kind"] == "User"
    assert seen["user"]["primaryEmailAddressId"] == seen["user"]["email"]["id"]
    assert seen["verification"] == "verified"
    assert (seen["bare"]["emailAddresses"], seen["bare"]["phoneNumbers"]) == ([], [])
    assert (seen["org"]["kind"], seen["org"]["slug"]) == ("Organization", "acme")
    assert seen["membership"]["kind"] == "OrganizationMembership"
    assert seen["membership"]["publicUserData"]["userId"] == seen["bare"]["id"]
    session = seen["session"]
    assert (session["kind"], session["status"]) == ("Session", "active")
    assert session["lastActiveOrganizationId"] == seen["org"]["id"]
    assert (seen["fetched"]["kind"], seen["fetched"]["id"]) == ("Session", session["id"])
    assert seen["listed"] == {"totalCount": 1, "ids": [session["id"]], "kinds": ["Session"]}
    assert seen["token"]["kind"] == "Token"
    assert seen["token"]["jwt"].count(".") == 2
    assert (seen["ticket"]["kind"], seen["ticket"]["status"]) == ("SignInToken", "pending")
    assert seen["revokedTicket"]["status"] == "revoked"
    assert seen["revoked"]["status"] == "revoked"
    assert seen["jwks"]["kids"] == [clerk.keys.current_kid]
    assert seen["removed"] == {"kind": "OrganizationMembership", "role": "org:worker"}
    assert seen["got"]["kind"] == "User"
    assert seen["deleted"] == {"kind": "DeletedObject", "id": seen["user"]["id"], "deleted": True}


async def test_a_dead_session_token_call_raises_404_resource_not_found(
    node: str, clerk: Clerk
) -> None:
    session_id = org_session(clerk)
    clerk.revoke_session(session_id)

    seen = await _run(node, clerk, "refused", call="getToken", args=[session_id])

    assert seen["refused"]
    assert (seen["kind"], seen["status"], seen["codes"]) == (
        "ClerkAPIResponseError",
        404,
        ["resource_not_found"],
    )
    assert seen["clerkTraceId"]


async def test_an_unknown_session_raises_404(node: str, clerk: Clerk) -> None:
    seen = await _run(node, clerk, "refused", call="getSession", args=["sess_unknown"])
    assert (seen["status"], seen["codes"]) == (404, ["resource_not_found"])


async def test_a_429_carries_retry_after(node: str, clerk: Clerk) -> None:
    session_id = org_session(clerk)
    clerk.fail_next_tokens(1, 429, retry_after_s=4)
    seen = await _run(node, clerk, "refused", call="getToken", args=[session_id])
    assert (seen["status"], seen["codes"], seen["retryAfter"]) == (429, ["too_many_requests"], 4)


async def test_a_non_member_sign_in_token_raises_422(node: str, clerk: Clerk) -> None:
    user_id = clerk.create_user()["id"]
    org_id = clerk.create_organization("Acme")["id"]
    seen = await _run(node, clerk, "refused", call="createSignInToken", args=[user_id, org_id])
    assert (seen["status"], seen["codes"]) == (422, ["not_a_member_in_organization"])


async def test_production_refuses_create_session(node: str, production: Clerk) -> None:
    user_id = production.create_user()["id"]
    seen = await _run(node, production, "refused", call="createSession", args=[user_id])
    assert (seen["status"], seen["codes"]) == (400, ["request_invalid_for_environment"])
    assert seen["longMessages"] == ["Request only valid for development instances."]


async def test_verify_token_accepts_a_minted_session_token(node: str, clerk: Clerk) -> None:
    session_id = org_session(clerk)
    token = clerk.mint(session_id)

    seen = await _run(node, clerk, "verify", token=token, issuer=clerk.issuer)

    assert seen["verified"], seen
    assert seen["payload"]["sid"] == session_id


def _tampered(token: str) -> str:
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["o"]["rol"] = "admin"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{header}.{forged}.{signature}"


async def test_verify_token_refuses_a_tampered_token(node: str, clerk: Clerk) -> None:
    token = clerk.mint(org_session(clerk))

    seen = await _run(node, clerk, "verify", token=_tampered(token), issuer=clerk.issuer)

    assert not seen["verified"]
    assert seen["reason"] == "token-invalid-signature"


async def test_verify_token_refuses_a_token_of_another_issuer(node: str, clerk: Clerk) -> None:
    token = clerk.mint(org_session(clerk))
    seen = await _run(node, clerk, "verify", token=token, issuer="https://other.clerk.accounts.dev")
    assert not seen["verified"]
    assert seen["reason"] == "token-invalid-issuer"
