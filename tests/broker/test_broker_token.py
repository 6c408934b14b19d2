"""``POST /v1/token``: each caller gets its own org's token and nothing else; every
refusal has a status, a reason and a count; caching keeps Clerk at one mint per org."""

from __future__ import annotations

from pathlib import Path

import anyio
import httpx
import jwt
import pytest

from devstack.clerk.keys import SigningKey
from devstack.kube import KubeIssuer
from devstack.stack import Stack
from tests.broker.support import (
    NAMESPACE,
    ask,
    broker_settings,
    running_broker,
    service_account,
    write_orgs,
)
from tests.e2e.conftest import provision
from tests.faults.support import sample

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(60)]
MINT = "POST /v1/sessions/{session_id}/tokens"


def org_of(token: str) -> str:
    return jwt.decode(token, options={"verify_signature": False})["o"]["id"]


async def test_each_credential_gets_only_its_own_orgs_token(
    stack: Stack, kube: KubeIssuer, tmp_path: Path
) -> None:
    a, b = provision(stack, "Acme"), provision(stack, "Globex")
    statics = write_orgs(tmp_path / "orgs.json", [a, b])
    async with running_broker(broker_settings(stack, kube, tmp_path / "orgs.json")) as broker:
        for org in (a, b):
            by_sa = await ask(broker.url, kube.mint(NAMESPACE, service_account(org)))
            by_static = await ask(broker.url, statics[org.org_id])
            for response in (by_sa, by_static):
                assert response.status_code == 200
                assert response.headers["Cache-Control"] == "no-store"
                body = response.json()
                assert body["org_id"] == org.org_id
                assert org_of(body["token"]) == org.org_id
                assert (
                    body["expires_at"]
                    == jwt.decode(body["token"], options={"verify_signature": False})["exp"]
                )


@pytest.mark.parametrize(
    ("forge", "status", "reason"),
    [
        (lambda k: k.mint(NAMESPACE, "not-in-the-orgs-file"), 403, "unknown_service_account"),
        (lambda k: k.mint(NAMESPACE, "rw-x", audience="kubernetes"), 401, "wrong_audience"),
        (lambda k: k.mint(NAMESPACE, "rw-x", expires_in_s=-60), 401, "expired"),
        (lambda k: k.mint(NAMESPACE, "rw-x", issuer="https://other"), 401, "wrong_issuer"),
        (lambda k: k.mint(NAMESPACE, "rw-x", key=SigningKey.generate()), 401, "bad_signature"),
        (lambda _k: "rwb_not-a-credential-of-anyone", 401, "unknown_credential"),
        (lambda _k: "a.b.c", 401, "malformed_token"),
        (lambda _k: None, 401, "missing_credential"),
    ],
)
async def test_callers_it_cannot_map_to_an_org_are_refused_with_a_reason_and_counted(
    stack: Stack, kube: KubeIssuer, tmp_path: Path, forge: object, *, status: int, reason: str
) -> None:
    a = provision(stack, "Acme")
    write_orgs(tmp_path / "orgs.json", [a])
    async with running_broker(broker_settings(stack, kube, tmp_path / "orgs.json")) as broker:
        credential = forge(kube)  # type: ignore[operator]
        response = await ask(broker.url, credential)
        assert (response.status_code, response.json()["reason"]) == (status, reason)
        assert "token" not in response.json()
        if credential:
            assert credential not in response.text
        registry = broker.broker.registry
        assert sample(registry, "broker_denied_total", reason=reason) == 1
    assert stack.clerk.requests[MINT] == 0, "a refused caller never costs a Clerk mint"


async def test_many_callers_cost_one_clerk_mint_per_org_per_token(
    stack: Stack, kube: KubeIssuer, tmp_path: Path
) -> None:
    a, b = provision(stack, "Acme"), provision(stack, "Globex")
    statics = write_orgs(tmp_path / "orgs.json", [a, b])
    async with running_broker(broker_settings(stack, kube, tmp_path / "orgs.json")) as broker:
        stack.clerk.requests.clear()
        tokens: list[str] = []

        async def call(credential: str) -> None:
            response = await ask(broker.url, credential)
            assert response.status_code == 200, response.text
            tokens.append(response.json()["token"])

        async with anyio.create_task_group() as tg:
            for _ in range(10):  # at once, on a broker that has no JWKS and no token yet
                for org in (a, b):
                    tg.start_soon(call, statics[org.org_id])
                    tg.start_soon(call, kube.mint(NAMESPACE, service_account(org)))
        assert len(tokens) == 40
        assert len(set(tokens)) == 2
        assert kube.requests == 1, "one JWKS fetch for every concurrent first caller"
        assert stack.clerk.requests[MINT] == 2


async def test_what_the_caller_cannot_control_never_crashes_it(
    stack: Stack, kube: KubeIssuer, tmp_path: Path
) -> None:
    a = provision(stack, "Acme")
    statics = write_orgs(tmp_path / "orgs.json", [a])
    settings = broker_settings(stack, kube, tmp_path / "orgs.json")
    async with running_broker(settings) as broker, httpx.AsyncClient(timeout=10) as http:
        big = await http.post(
            f"{broker.url}/v1/token",
            content=b"x" * 100_000,
            headers={"Authorization": f"Bearer {statics[a.org_id]}"},
        )
        assert big.status_code in (200, 413)
        odd = await http.post(
            f"{broker.url}/v1/token",
            headers={"Authorization": "Bearer " + "ey" * 3000 + ".x.y"},
        )
        assert odd.status_code in (400, 401, 431)
        body = await http.post(
            f"{broker.url}/v1/token",
            json={"org_id": "org_other"},
            headers={"Authorization": f"Bearer {statics[a.org_id]}"},
        )
        assert body.json()["org_id"] == a.org_id, "the body never chooses the org"
        assert (await http.get(f"{broker.url}/healthz")).status_code == 200
        assert (await http.get(f"{broker.url}/readyz")).status_code == 200
