"""Helpers for the Clerk stand-in tests: a served instance, a fake clock, a verifier."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import jwt
from aiohttp import web

from devstack.clerk import Clerk
from devstack.clerk.settings import InstanceSettings

SECRET = "sk_test_devstack_clerk_tests"


class FakeClock:
    """Starts at the real time (so PyJWT accepts the tokens); moves only when told."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@asynccontextmanager
async def served(
    clock: FakeClock, token_format: int = 2, settings: InstanceSettings | None = None
) -> AsyncIterator[Clerk]:
    """A Clerk on a free loopback port, bound to its URL, stopped on exit."""
    clerk = Clerk(secret_key=SECRET, token_format=token_format, settings=settings, clock=clock)
    runner = web.AppRunner(clerk.app())
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        host, port = runner.addresses[0][:2]
        clerk.bind(f"http://{host}:{port}")
        yield clerk
    finally:
        await runner.cleanup()


@asynccontextmanager
async def bapi_client(clerk: Clerk) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client for ``clerk`` that sends the secret key."""
    headers = {"Authorization": f"Bearer {SECRET}"}
    async with httpx.AsyncClient(base_url=clerk.issuer, headers=headers, timeout=5) as client:
        yield client


def org_session(clerk: Clerk) -> str:
    """An active session of an ``org:worker`` user in the org ``acme``."""
    user = clerk.create_user(email_addresses=["worker@acme.test"])
    org = clerk.create_organization("Acme Inc", slug="acme")
    clerk.add_membership(org["id"], user["id"], "org:worker")
    return str(clerk.create_session(user["id"], org["id"])["id"])


async def mint(bapi: httpx.AsyncClient, session_id: str, **body: Any) -> httpx.Response:
    """``POST /v1/sessions/{id}/tokens`` with ``body`` (none when empty)."""
    return await bapi.post(f"/v1/sessions/{session_id}/tokens", json=body or None)


async def verify(bapi: httpx.AsyncClient, token: str) -> dict[str, Any]:
    """Verify like a consumer: the served JWKS, the token's kid, RS256, the issuer."""
    jwks = (await bapi.get("/.well-known/jwks.json")).json()
    key = jwt.PyJWKSet.from_dict(jwks)[jwt.get_unverified_header(token)["kid"]]
    claims: dict[str, Any] = jwt.decode(
        token,
        key,
        algorithms=["RS256"],
        issuer=str(bapi.base_url).rstrip("/"),
        leeway=5,
        options={"require": ["exp", "iat", "nbf", "sub", "iss"]},
    )
    return claims


async def minted_claims(bapi: httpx.AsyncClient, session_id: str, **body: Any) -> dict[str, Any]:
    """Mint over HTTP, insist on 200, and return the verified claims."""
    response = await mint(bapi, session_id, **body)
    assert response.status_code == 200, response.text
    return await verify(bapi, response.json()["jwt"])


def assert_clerk_error(response: httpx.Response, status: int, code: str) -> None:
    """``status`` with Clerk's error body and ``code``."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"errors", "clerk_trace_id"}
    (error,) = body["errors"]
    assert set(error) == {"message", "long_message", "code", "meta"}
    assert error["code"] == code


NATIVE_SIGN_IN = "/v1/client/sign_ins?_is_native=1"


def service_member(clerk: Clerk) -> tuple[str, str]:
    """``(user_id, org_id)``: an ``org:worker`` service user of the org ``acme``."""
    user_id = clerk.create_user(email_addresses=["svc@acme.test"])["id"]
    org_id = clerk.create_organization("Acme", slug="acme")["id"]
    clerk.add_membership(org_id, user_id, "org:worker")
    return user_id, org_id


async def make_ticket(bapi: httpx.AsyncClient, user_id: str, **body: Any) -> str:
    """``POST /v1/sign_in_tokens``; insist on 200 and return the ticket."""
    response = await bapi.post("/v1/sign_in_tokens", json={"user_id": user_id, **body})
    assert response.status_code == 200, response.text
    return str(response.json()["token"])


async def native_sign_in(fapi: httpx.AsyncClient, ticket: str, **headers: str) -> httpx.Response:
    """The FAPI native sign-in, form-encoded, with ``strategy=ticket``."""
    form = {"strategy": "ticket", "ticket": ticket}
    return await fapi.post(NATIVE_SIGN_IN, data=form, headers=headers)


async def signed_in(
    bapi: httpx.AsyncClient, fapi: httpx.AsyncClient, user_id: str
) -> tuple[str, str]:
    """A new session of ``user_id`` signed in by ticket: ``(session_id, client_jwt)``."""
    response = await native_sign_in(fapi, await make_ticket(bapi, user_id))
    assert response.status_code == 200, response.text
    return response.json()["response"]["created_session_id"], response.headers["Authorization"]
