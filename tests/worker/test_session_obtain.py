"""Obtainer and SessionKeeper against a 60-line fake Clerk (httpx.MockTransport): reuse,
the production fallback, the first-token check, renewal and replacement."""

from __future__ import annotations

import itertools
from typing import Any

import anyio
import httpx
import pytest
from prometheus_client import CollectorRegistry

from worker.clock import SystemClock
from worker.errors import TokenRejected
from worker.observe import Metrics
from worker.settings import SecretStr
from worker.tokens.sessions import ClerkSessionApi, Obtained, Obtainer, SessionKeeper
from worker.tokens.verify import Token

pytestmark = pytest.mark.anyio
ORG, USER = "org_1", "user_1"


class FakeClerk:
    """Sessions of one user; ``production`` refuses POST /v1/sessions like Clerk."""

    def __init__(self, *, production: bool = False, lifetime_s: float = 3600) -> None:
        self.production, self.lifetime_s = production, lifetime_s
        self.sessions: dict[str, dict[str, Any]] = {}
        self.calls: list[str] = []
        self.outage = 0  # answer this many POST /v1/sessions with 503
        self._ids = itertools.count(1)

    def new(self, org: str | None) -> dict[str, Any]:
        now = SystemClock().time() * 1000
        sid = f"sess_{next(self._ids)}"
        self.sessions[sid] = {
            "id": sid,
            "status": "active",
            "last_active_organization_id": org,
            "created_at": now,
            "expire_at": now + self.lifetime_s * 1000,
            "abandon_at": now + 30 * 86400 * 1000,
        }
        return self.sessions[sid]

    def __call__(self, request: httpx.Request) -> httpx.Response:  # noqa: PLR0911 - a route each
        path = request.url.path
        self.calls.append(f"{request.method} {path}")
        if path == "/v1/sessions" and request.method == "GET":
            active = [s for s in self.sessions.values() if s["status"] == "active"]
            return httpx.Response(200, json=active[::-1])
        if path == "/v1/sessions":
            if self.outage > 0:
                self.outage -= 1
                return httpx.Response(503, json={"errors": [{"code": "service_unavailable"}]})
            if self.production:
                body = {"errors": [{"code": "request_invalid_for_environment", "message": "x"}]}
                return httpx.Response(400, json=body)
            return httpx.Response(200, json=self.new(ORG))
        if path == "/v1/sign_in_tokens":
            return httpx.Response(200, json={"id": "sit_1", "token": "ticket"})
        if path == "/v1/client/sign_ins":
            session = self.new(None)  # signed in without the org: touch must follow
            body = {
                "response": {"created_session_id": session["id"]},
                "client": {"sessions": [session]},
            }
            return httpx.Response(200, json=body, headers={"Authorization": "client-jwt"})
        if path.endswith("/touch"):
            session = self.sessions[path.split("/")[-2]]
            session["last_active_organization_id"] = ORG
            return httpx.Response(200, json={"response": session})
        if path.endswith("/revoke"):
            self.sessions[path.split("/")[-2]]["status"] = "revoked"
            return httpx.Response(200, json=self.sessions[path.split("/")[-2]])
        return httpx.Response(200, json=self.sessions[path.split("/")[-1]])


class Minted:
    def __init__(self, session_id: str) -> None:
        self.session_id = session_id

    async def fetch(self) -> str:
        return self.session_id


class Verifier:
    def __init__(self, reject: set[str] | None = None) -> None:
        self.reject = reject or set()

    async def verify(self, token: str) -> Token:
        if token in self.reject:
            raise TokenRejected("missing_role", "no role")
        return Token(token, {}, 0.0, 0.0, ORG, "kid", token)


def obtainer(
    clerk: FakeClerk, verifier: Verifier | None = None, key: str = "sk_test_x"
) -> Obtainer:
    http = httpx.AsyncClient(transport=httpx.MockTransport(clerk))
    api = ClerkSessionApi("https://api.example", SecretStr(key), "https://fapi.example", http=http)
    return Obtainer(
        api,
        user_id=USER,
        org_id=ORG,
        verifier=verifier or Verifier(),
        mint=Minted,
        clock=SystemClock(),
    )


def api_of(clerk: FakeClerk) -> ClerkSessionApi:
    http = httpx.AsyncClient(transport=httpx.MockTransport(clerk))
    return ClerkSessionApi("https://api.example", SecretStr("sk_test_x"), None, http=http)


async def test_an_active_session_in_the_org_is_reused() -> None:
    clerk = FakeClerk()
    made = clerk.new(ORG)
    clerk.new("org_other")
    session = await obtainer(clerk).obtain()
    assert (session.id, session.obtained) == (made["id"], Obtained.REUSED)
    assert "POST /v1/sessions" not in clerk.calls


async def test_a_development_key_on_a_production_instance_falls_back_to_signing_in() -> None:
    clerk = FakeClerk(production=True)
    got = obtainer(clerk)
    session = await got.obtain()
    assert session.obtained is Obtained.SIGNED_IN
    assert session.org_id == ORG  # touched after a sign-in without the org
    assert got.instance == "production"
    await got.obtain(exclude=session.id)
    assert clerk.calls.count("POST /v1/sessions") == 1  # remembered: never asked again


async def test_a_production_key_never_tries_the_development_call() -> None:
    clerk = FakeClerk(production=True)
    await obtainer(clerk, key="sk_live_x").obtain()
    assert "POST /v1/sessions" not in clerk.calls


async def test_a_new_session_whose_token_fails_is_revoked() -> None:
    clerk = FakeClerk()
    with pytest.raises(TokenRejected):
        await obtainer(clerk, Verifier(reject={"sess_1"})).obtain()
    assert clerk.sessions["sess_1"]["status"] == "revoked"


async def test_the_keeper_renews_before_the_end_and_revokes_the_old_session() -> None:
    clerk = FakeClerk(lifetime_s=3)  # renewal margin 0.6 s, jittered up to 0.3 s more
    got = obtainer(clerk)
    keeper = SessionKeeper(got, api_of(clerk), SystemClock())
    async with anyio.create_task_group() as tg:
        first = await tg.start(keeper.run)
        with anyio.fail_after(5):
            while keeper.statistics()["renewals"] < 1:  # noqa: ASYNC110 - polled state
                await anyio.sleep(0.05)
        assert await keeper.usable_session_id() != first.id
        tg.cancel_scope.cancel()
    assert clerk.sessions[first.id]["status"] == "revoked"


async def test_the_keeper_replaces_an_ended_session_at_once() -> None:
    clerk = FakeClerk()
    got = obtainer(clerk)
    keeper = SessionKeeper(got, api_of(clerk), SystemClock())
    async with anyio.create_task_group() as tg:
        first = await tg.start(keeper.run)
        clerk.sessions[first.id]["status"] = "revoked"
        with anyio.fail_after(2):
            await keeper.replace(first.id, "404")
        assert keeper.statistics()["replacements"] == 1
        assert await keeper.usable_session_id() != first.id
        tg.cancel_scope.cancel()


async def test_a_clerk_outage_during_renewal_is_retried_while_the_old_session_works() -> None:
    clerk = FakeClerk(lifetime_s=4)
    got = obtainer(clerk)
    metrics = Metrics(CollectorRegistry())
    keeper = SessionKeeper(got, api_of(clerk), SystemClock(), metrics=metrics)
    async with anyio.create_task_group() as tg:
        first = await tg.start(keeper.run)
        clerk.outage = 2
        with anyio.fail_after(10):
            while keeper.statistics()["renewals"] < 1:
                if keeper.statistics()["failures"]:
                    assert await keeper.usable_session_id() == first.id  # still minting
                await anyio.sleep(0.05)
        tg.cancel_scope.cancel()
    registry = metrics.clerk_session_renewals_total
    assert registry.labels(result="error")._value.get() == 2
    assert registry.labels(result="success")._value.get() == 1
    posts = [c for c in clerk.calls if c == "POST /v1/sessions"]
    assert len(posts) == 4  # the first session, two refusals, the renewal: no hot loop
