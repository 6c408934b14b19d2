"""Issue 14's recoveries and stops: a revoked session is replaced within seconds with no
event lost; a restart reuses a still-good session; when no session can be had (Native
API off, the user out of the org or deleted, the secret key refused) the worker stops
with its own message and exit 1, without a retry storm."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import anyio
import httpx
import pytest

from devstack.postgres import Server
from devstack.stack import Stack
from tests.e2e.conftest import Recorder
from tests.e2e.sessions_support import (
    active_sessions,
    channel_closes,
    produce,
    service_user,
    session_of,
    session_stack,
    user_env,
)
from tests.e2e.test_newcomer_errors import cli
from worker.app import running
from worker.errors import SessionUnobtainable
from worker.settings import Settings
from worker.testing import eventually

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(120)]


@pytest.fixture
async def stack(pg_server: Server) -> AsyncIterator[Stack]:
    async with session_stack(pg_server, "development") as running_stack:
        yield running_stack


@pytest.fixture
async def production(pg_server: Server) -> AsyncIterator[Stack]:
    async with session_stack(pg_server, "production") as running_stack:
        yield running_stack


async def test_a_revoked_session_is_replaced_within_seconds_losing_no_event(stack: Stack) -> None:
    org = service_user(stack, "Acme")
    recorder = Recorder()
    async with running(Settings.from_env(user_env(stack, org)), registry=recorder.registry) as w:
        first = session_of(w)["session_id"]
        before = await produce(stack, w, org, 2)
        stack.clerk.revoke_session(first)
        revoked_at = anyio.current_time()
        await eventually(
            lambda: session_of(w)["session_id"] != first, timeout_s=10, message="a new session"
        )
        replaced_in = anyio.current_time() - revoked_at
        after = await produce(stack, w, org, 3)
        inserted = before.inserted + after.inserted
        await eventually(recorder.handled(inserted), timeout_s=20, message="every event handled")
        assert sorted(recorder.ids()) == sorted(inserted)
        assert channel_closes(w) == 0
        assert after.not_ready == []
        assert session_of(w)["replacements"] == 1
        async with httpx.AsyncClient() as http:
            status = (await http.get(f"http://127.0.0.1:{w.http_port}/status")).text
        assert '"session_id"' in status
        assert "eyJ" not in status  # no token, no client JWT
        assert stack.env["CLERK_SECRET_KEY"] not in status
    assert replaced_in < 8  # tokens live 5 s here: the next mint sees the 404
    assert [s["id"] for s in active_sessions(stack, org.user_id)] == [session_of(w)["session_id"]]


async def test_a_restart_reuses_the_still_good_session(stack: Stack) -> None:
    org = service_user(stack, "Acme")
    settings = Settings.from_env(user_env(stack, org))
    async with running(settings, registry=Recorder().registry) as first:
        made = session_of(first)
    async with running(settings, registry=Recorder().registry) as second:
        again = session_of(second)
    assert made["obtained"] == "created"
    assert again["obtained"] == "reused"
    assert again["session_id"] == made["session_id"]
    assert stack.clerk.requests["POST /v1/sessions"] == 1


async def test_a_given_session_is_used_first_then_replaced_when_it_ends(stack: Stack) -> None:
    org = service_user(stack, "Acme")
    given = stack.clerk.create_session(org.user_id, active_organization_id=org.org_id)["id"]
    env = user_env(stack, org, CLERK_SESSION_ID=given)
    async with running(Settings.from_env(env), registry=Recorder().registry) as w:
        first = session_of(w)
        assert (first["session_id"], first["obtained"]) == (given, "given")
        stack.clerk.end_session(given)
        await eventually(
            lambda: session_of(w)["session_id"] != given, timeout_s=10, message="a new session"
        )
        assert session_of(w)["obtained"] == "created"


async def test_native_api_disabled_stops_with_its_fix_and_exit_1(production: Stack) -> None:
    org = service_user(production, "Acme")
    production.clerk.set_native_api(False)
    code, _, err = await cli("run", user_env(production, org))
    assert code == 1, err
    last = err.strip().splitlines()[-1]
    assert "Native API is disabled" in last
    assert "enable the Native API in the Clerk Dashboard" in last
    assert production.clerk.requests["POST /v1/client/sign_ins"] == 1  # no retry storm
    assert production.clerk.requests["POST /v1/sign_in_tokens"] == 1
    assert production.clerk.requests["POST /v1/sign_in_tokens/{token_id}/revoke"] == 1


async def test_a_refused_secret_key_stops_with_its_fix_and_exit_1(stack: Stack) -> None:
    org = service_user(stack, "Acme")
    wrong = "sk_test_" + "Wr0ngKey" * 4
    code, out, err = await cli("run", user_env(stack, org, CLERK_SECRET_KEY=wrong))
    assert code == 1, err
    assert "Clerk refused CLERK_SECRET_KEY" in err.strip().splitlines()[-1]
    assert wrong not in out + err
    assert sum(stack.clerk.requests.values()) == 1  # one refusal, no retry


async def run_then(settings: Settings, action: Callable[[], object]) -> None:
    """Run a worker, do ``action`` once it is ready, and wait up to 30 s for it to stop."""
    async with running(settings, registry=Recorder().registry):
        action()
        await anyio.sleep(30)  # the worker stops on its next mint, within a token's life


async def test_a_secret_key_rotated_away_mid_run_stops_the_worker(stack: Stack) -> None:
    org = service_user(stack, "Acme")
    settings = Settings.from_env(user_env(stack, org))
    with pytest.raises(SessionUnobtainable, match="CLERK_SECRET_KEY") as stopped:
        await run_then(settings, stack.clerk.rotate_secret_key)
    assert stopped.value.reason == "secret_key_refused"
    assert stack.clerk.requests["POST /v1/sessions/{session_id}/tokens"] < 10


@pytest.mark.parametrize("how", ["removed from the org", "deleted"])
async def test_a_user_out_of_the_org_stops_the_worker_with_its_fix(stack: Stack, how: str) -> None:
    org = service_user(stack, "Acme")
    clerk = stack.clerk

    def take_out() -> None:
        clerk.requests.clear()
        if how == "deleted":
            clerk.delete_user(org.user_id)
        else:
            clerk.remove_membership(org.org_id, org.user_id)

    with pytest.raises(SessionUnobtainable) as stopped:
        await run_then(Settings.from_env(user_env(stack, org)), take_out)
    reason = "user_not_found" if how == "deleted" else "not_a_member"
    assert stopped.value.reason == reason
    assert "CLERK_USER_ID" in str(stopped.value)
    assert stack.clerk.requests["POST /v1/sessions"] == 1  # no retry storm
    assert sum(stack.clerk.requests.values()) < 15


async def test_check_shows_the_session_its_expiry_and_how_it_was_obtained(stack: Stack) -> None:
    org = service_user(stack, "Acme")
    code, out, err = await cli("check", user_env(stack, org))
    assert code == 0, out + err
    line = next(x for x in out.splitlines() if x.startswith("PASS  clerk session"))
    (made,) = [s["id"] for s in active_sessions(stack, org.user_id)]
    assert made in line
    assert "created (POST /v1/sessions, a development instance), ends 20" in line
    assert "(in 7 days, 0:00:00)" in line or "(in 6 days, 23:59:" in line
    code, out, _ = await cli("check", user_env(stack, org))
    assert code == 0
    assert f"{made} reused (an active session of CLERK_USER_ID in ORG_ID)" in out
    assert stack.env["CLERK_SECRET_KEY"] not in out
