"""TokenManager against a fake Clerk (real RS256 JWTs) and a clock the tests drive."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import httpx
import pytest
from prometheus_client import CollectorRegistry

from tests.worker.fakes import (
    API_URL,
    ISSUER,
    JWKS_URL,
    ORG,
    OTHER_ORG,
    SECRET,
    SESSION,
    FakeClerk,
    claims_v2,
    clerk_error,
    key,
    sign,
)
from worker.errors import ConfigError, SessionEnded, TokenRejected, TokenUnavailable
from worker.observe.metrics import Metrics
from worker.settings import Settings
from worker.testing import FakeClock
from worker.tokens import TokenManager, TokenSource, source_from_settings
from worker.tokens.sources.clerk import ClerkTokenSource
from worker.tokens.sources.file import FileTokenSource
from worker.tokens.verify import Token, TokenVerifier

pytestmark = pytest.mark.anyio


class NoJitter(random.Random):
    def random(self) -> float:
        return 0.0


class Harness:
    def __init__(self, clerk: FakeClerk, clock: FakeClock, http: httpx.AsyncClient) -> None:
        self.clerk, self.clock, self.http = clerk, clock, http
        self.registry = CollectorRegistry()
        self.metrics = Metrics(self.registry)
        self.received: list[Token] = []
        self.got_token = anyio.Event()
        self.seen = 0

    def manager(self, source: TokenSource | None = None, **kwargs: float) -> TokenManager:
        source = source or ClerkTokenSource(API_URL, SECRET, SESSION, http=self.http)
        verifier = TokenVerifier(JWKS_URL, ISSUER, ORG, self.http, self.clock)
        manager = TokenManager(
            source, verifier, self.clock, metrics=self.metrics, rng=NoJitter(), **kwargs
        )
        manager.add_listener(self.record)
        return manager

    async def record(self, token: Token) -> None:
        self.received.append(token)
        self.got_token.set()

    async def next_token(self) -> Token:
        """The next token listeners got, in order (waits for it)."""
        with anyio.fail_after(5):
            while len(self.received) <= self.seen:
                self.got_token = anyio.Event()
                await self.got_token.wait()
        self.seen += 1
        return self.received[self.seen - 1]

    def count(self, result: str) -> float:
        value = self.registry.get_sample_value(
            "realtime_worker_token_refresh_total", {"result": result}
        )
        assert value is not None
        return value


@pytest.fixture
def h(clerk: FakeClerk, clock: FakeClock, http: httpx.AsyncClient) -> Harness:
    return Harness(clerk, clock, http)


@asynccontextmanager
async def running(manager: TokenManager) -> AsyncIterator[Token]:
    async with anyio.create_task_group() as tg:
        with anyio.fail_after(5):
            first: Token = await tg.start(manager.run)
        yield first
        tg.cancel_scope.cancel()


async def test_run_reports_the_first_verified_token_and_listeners_get_it(h: Harness) -> None:
    manager = h.manager()
    async with running(manager) as first:
        assert first.org_id == ORG
        assert await h.next_token() is first
        assert manager.current is first
        assert manager.state == "fresh"
        assert manager.check_fresh() is None
        assert h.count("success") == 1
        expiry = h.registry.get_sample_value("realtime_worker_token_expiry_timestamp_seconds")
        assert expiry == first.expires_at


async def test_the_next_refresh_is_margin_seconds_before_expiry(h: Harness) -> None:
    async with running(h.manager(refresh_margin_s=15)) as first:
        await h.next_token()
        await h.clock.wait_sleeping()
        assert h.clock.next_wake_in() == pytest.approx(45)
        h.clock.advance(45)
        second = await h.next_token()
        assert second.expires_at == first.expires_at + 45
        assert len(h.clerk.token_requests) == 2


async def test_a_hung_listener_never_stalls_the_refresh_loop(h: Harness) -> None:
    manager = h.manager(listener_timeout_s=3600)
    hung = anyio.Event()

    async def stuck(_token: Token) -> None:
        hung.set()
        await anyio.sleep_forever()

    manager.add_listener(stuck)
    async with running(manager):
        with anyio.fail_after(5):
            await hung.wait()
        await h.next_token()
        for _ in range(3):
            await h.clock.wait_sleeping()
            h.clock.advance(45)
            await h.next_token()
        assert manager.statistics()["refreshes"] == 4


async def test_a_failing_listener_is_logged_and_others_still_get_tokens(h: Harness) -> None:
    manager = h.manager()

    async def broken(_token: Token) -> None:
        raise RuntimeError("listener bug")

    manager.add_listener(broken)
    async with running(manager):
        await h.next_token()
        await h.clock.wait_sleeping()
        h.clock.advance(45)
        await h.next_token()
        assert manager.statistics()["listener_errors"] >= 1


async def test_a_token_for_another_org_is_never_handed_on_and_is_retried(h: Harness) -> None:
    manager = h.manager()
    async with running(manager) as first:
        await h.next_token()
        h.clerk.claims_extra = {"o": {"id": OTHER_ORG}}
        await h.clock.wait_sleeping()
        h.clock.advance(45)
        await h.clock.wait_sleeping()  # backing off after the rejection
        assert h.count("invalid_claims") == 1
        assert manager.state == "failing"
        assert manager.current is first
        assert h.received == [first]
        h.clerk.claims_extra = {}
        h.clock.advance(h.clock.next_wake_in())
        assert (await h.next_token()).org_id == ORG
        assert manager.state == "fresh"


async def test_the_first_token_for_the_wrong_org_stops_the_worker(h: Harness) -> None:
    h.clerk.claims_extra = {"o": {"id": OTHER_ORG}}
    with pytest.raises(TokenRejected) as info, anyio.fail_after(5):
        await h.manager().run()
    assert info.value.reason == "wrong_org"


async def test_a_rotated_signing_key_is_picked_up_on_refresh(h: Harness) -> None:
    async with running(h.manager()):
        await h.next_token()
        h.clerk.published.append(key("key-2"))
        h.clerk.signer = key("key-2")
        await h.clock.wait_sleeping()
        h.clock.advance(45)
        assert (await h.next_token()).kid == "key-2"


async def test_a_rate_limit_waits_for_retry_after(h: Harness) -> None:
    manager = h.manager()
    async with running(manager):
        await h.next_token()
        h.clerk.script.append(clerk_error(429, "too_many_requests", **{"Retry-After": "12"}))
        await h.clock.wait_sleeping()
        h.clock.advance(45)
        await h.clock.wait_sleeping()
        assert h.clock.next_wake_in() == 12
        assert h.count("rate_limited") == 1


async def test_failures_past_expiry_show_as_expired_then_recover(h: Harness) -> None:
    manager = h.manager()
    async with running(manager):
        await h.next_token()
        h.clerk.script.extend([clerk_error(503)] * 3)
        for step in (45, 6, 10):  # attempts at t=45, 51 and 61; the token expires at 60
            await h.clock.wait_sleeping()
            h.clock.advance(step)
        await h.clock.wait_sleeping()
        assert h.count("http_error") == 3
        assert manager.state == "expired"
        h.clock.advance(h.clock.next_wake_in())
        await h.next_token()
        assert manager.state == "fresh"
        assert manager.statistics()["consecutive_failures"] == 0


async def test_an_expired_token_fails_the_readiness_check(h: Harness) -> None:
    manager = h.manager()
    async with running(manager):
        await h.next_token()
        h.clerk.script.extend([clerk_error(503)] * 50)
        await h.clock.wait_sleeping()
        h.clock.advance(45)
        await h.clock.wait_sleeping()
        assert manager.state == "failing"
        assert manager.check_fresh() is None
        h.clock.advance(15)  # past exp; the retry in flight fails too
        await h.clock.wait_sleeping()
        assert manager.state == "expired"
        reason = manager.check_fresh()
        assert reason is not None
        assert "expired" in reason


async def test_session_ended_stops_refreshing_loudly(h: Harness) -> None:
    manager = h.manager()
    with pytest.RaisesGroup(SessionEnded, flatten_subgroups=True):
        async with running(manager):
            await h.next_token()
            h.clerk.script.append(clerk_error(404, "resource_not_found"))
            await h.clock.wait_sleeping()
            h.clock.advance(45)
            await anyio.sleep_forever()
    assert manager.state == "session_ended"
    assert h.count("session_ended") == 1
    assert h.registry.get_sample_value("realtime_worker_token_session_ended") == 1
    assert len(h.clerk.token_requests) == 2
    with pytest.raises(SessionEnded):
        await manager.wait_fresh()


async def test_a_margin_not_below_the_lifetime_is_a_config_error(h: Harness) -> None:
    with pytest.raises(ConfigError, match="WORKER_TOKEN_REFRESH_MARGIN_SECONDS"):
        await h.manager(refresh_margin_s=60).run()


async def test_a_stale_token_file_is_retried_not_spun_on(h: Harness, tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text(sign(claims_v2(h.clock.time())))
    manager = h.manager(source=FileTokenSource(path))
    async with running(manager):
        await h.next_token()
        await h.clock.wait_sleeping()
        h.clock.advance(45)
        await h.clock.wait_sleeping()
        assert h.count("http_error") == 1
        assert 0 < h.clock.next_wake_in() <= 5
        path.write_text(sign(claims_v2(h.clock.time())) + "\n")
        h.clock.advance(h.clock.next_wake_in())
        assert (await h.next_token()).expires_at == int(h.clock.time()) + 60


async def test_a_hanging_source_times_out_and_is_counted(h: Harness) -> None:
    class Hanging:
        async def fetch(self) -> str:
            await anyio.sleep_forever()
            raise AssertionError

    manager = h.manager(source=Hanging(), fetch_timeout_s=0.01)
    async with anyio.create_task_group() as tg:
        tg.start_soon(manager.run)
        await h.clock.wait_sleeping()
        tg.cancel_scope.cancel()
    assert h.count("timeout") == 1
    assert manager.state == "starting"
    assert manager.check_fresh() is not None


async def test_statistics_never_contain_the_token(h: Harness) -> None:
    manager = h.manager()
    async with running(manager) as first:
        stats = manager.statistics()
    assert first.jwt not in repr(stats)
    assert "user_2service" not in repr(stats)
    assert stats["kid"] == "key-1"
    assert stats["state"] == "fresh"


async def test_the_source_follows_the_settings(http: httpx.AsyncClient) -> None:
    base = {
        "SUPABASE_URL": "https://proj.supabase.co",
        "SUPABASE_ANON_KEY": "anon",
        "ORG_ID": ORG,
        "CLERK_ISSUER": ISSUER,
    }
    clerk_env = base | {"CLERK_SECRET_KEY": SECRET, "CLERK_SESSION_ID": SESSION}
    file_env = base | {"WORKER_TOKEN_FILE": "/run/token"}
    assert isinstance(source_from_settings(Settings.from_env(clerk_env), http), ClerkTokenSource)
    assert isinstance(source_from_settings(Settings.from_env(file_env), http), FileTokenSource)


async def test_a_secret_key_clerk_refuses_at_start_stops_the_worker_at_once(h: Harness) -> None:
    h.clerk.script.append(clerk_error(401, "authentication_invalid"))
    with pytest.raises(TokenUnavailable) as info, anyio.fail_after(5):
        await h.manager().run()  # no retry loop: the fake clock is never advanced
    assert info.value.status == 401
    assert "CLERK_SECRET_KEY" in str(info.value)
