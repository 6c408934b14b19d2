"""The mistakes a newcomer makes first, through the CLI: each message says what is wrong
and what to do, names the variable to fix, and never prints a secret."""

from __future__ import annotations

import base64
import os
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import anyio
import asyncpg
import pytest

from devstack.stack import Stack
from tests.e2e.conftest import provision, worker_env

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(180)]

_OURS = ("SUPABASE_", "CLERK_", "WORKER_", "REALTIME_", "ORG_ID")


async def cli(command: str, env: dict[str, str]) -> tuple[int, str, str]:
    """``python -m worker <command>`` with only ``env`` as its settings: (code, out, err)."""
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(_OURS)}
    with anyio.fail_after(90):
        done = await anyio.run_process(
            [sys.executable, "-m", "worker", command], env=inherited | env, check=False
        )
    out, err = done.stdout.decode(), done.stderr.decode()
    assert "Traceback" not in out + err
    return done.returncode, out, err


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A loopback port bound but not listening while the test runs: connections are refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield int(sock.getsockname()[1])


@pytest.mark.parametrize("command", ["run", "check"])
async def test_missing_variable_exits_2_naming_it_and_the_fix(command: str) -> None:
    env = {
        "SUPABASE_URL": "http://127.0.0.1:54321",
        "SUPABASE_ANON_KEY": "anon",
        "CLERK_SECRET_KEY": "sk_test_abc",
        "CLERK_SESSION_ID": "sess_abc",
        "CLERK_ISSUER": "http://127.0.0.1:1",
    }
    code, out, err = await cli(command, env)
    assert code == 2, err
    assert "ORG_ID is required: set it to the Clerk organization id (org_...)" in err
    assert "configuration reference in README.md" in err
    assert "sk_test_abc" not in out + err


_SERVICE_ROLE = (  # a legacy service_role JWT's shape: header.payload.signature
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
    "eyJpc3MiOiJzdXBhYmFzZS1kZW1vIiwicm9sZSI6InNlcnZpY2Vfcm9sZSIsImV4cCI6MTk4MzgxMjk5Nn0."
    "EGIM96RAZx35lJzdJsyH-qQwv8Hdp7fsn3W0YpN81IU"
)


@pytest.mark.parametrize("key", ["sb_secret_N7UND0UgjKTVK-Uodkm0Hg_xSvEMPvz", _SERVICE_ROLE])
async def test_a_key_that_bypasses_rls_is_refused_at_start_with_exit_2(key: str) -> None:
    env = {
        "SUPABASE_URL": "http://127.0.0.1:54321",
        "SUPABASE_PUBLISHABLE_KEY": key,
        "ORG_ID": "org_abc",
        "CLERK_SECRET_KEY": "sk_test_abc",
        "CLERK_SESSION_ID": "sess_abc",
        "CLERK_ISSUER": "http://127.0.0.1:1",
    }
    code, out, err = await cli("run", env)
    assert code == 2, err
    assert "SUPABASE_PUBLISHABLE_KEY is " in err
    assert "bypasses row level security" in err
    assert "set SUPABASE_PUBLISHABLE_KEY to the project's publishable key" in err
    for piece in key.split("."):
        assert piece[-12:] not in out + err


async def test_wrong_clerk_secret_key_names_the_variable_and_never_prints_a_key(
    stack: Stack,
) -> None:
    org = provision(stack, "Acme")
    wrong = "sk_test_" + "Wr0ngKey" * 4
    env = worker_env(stack, org, CLERK_SECRET_KEY=wrong)
    code, out, err = await cli("check", env)
    assert code == 1, out + err
    assert "FAIL  clerk token" in out
    assert "Clerk refused the secret key" in out
    assert "check CLERK_SECRET_KEY belongs to this Clerk instance" in out
    code, _, err = await cli("token", env)
    assert code == 1
    assert err.startswith("realtime-worker: Clerk refused the secret key")
    for output in (out, err):
        assert wrong not in output
        assert stack.env["CLERK_SECRET_KEY"] not in output


async def test_ended_session_says_to_create_a_new_one(stack: Stack) -> None:
    org = provision(stack, "Acme")
    stack.clerk.end_session(org.session_id)
    env = worker_env(stack, org)
    code, out, _ = await cli("check", env)
    assert code == 1
    assert "FAIL  clerk token" in out
    assert "Clerk session is gone" in out
    assert "create a new session for the service user and update CLERK_SESSION_ID" in out
    code, _, err = await cli("run", env)
    assert code == 1, err
    last = err.strip().splitlines()[-1]
    assert "sign the service user in again" in last
    assert "set CLERK_SESSION_ID to its sess_... id and restart" in last


async def test_channel_refused_by_missing_policies_says_to_apply_the_migrations(
    stack: Stack,
) -> None:
    # What a project without supabase/migrations looks like to Realtime: RLS on
    # realtime.messages with no policy admitting the org's members.
    conn = await asyncpg.connect(stack.database_url)
    try:
        await conn.execute(
            'drop policy "org members receive their org\'s channels" on realtime.messages'
        )
    finally:
        await conn.close()
    org = provision(stack, "Acme")
    code, out, _ = await cli("check", worker_env(stack, org))
    assert code == 1
    refused = next(line for line in out.splitlines() if line.startswith("FAIL  join"))
    assert f"org:{org.org_id}:events" in refused
    assert "Unauthorized" in refused
    assert "apply supabase/migrations to the project (supabase db push)" in refused
    assert "ORG_ID is the session's active organization" in refused
    assert "PASS  data api write" in out  # only the channel is refused


async def test_member_role_refused_by_the_checkpoint_policy_says_which_role_to_give(
    stack: Stack,
) -> None:
    org = provision(stack, "Acme", role="org:member")
    code, out, _ = await cli("check", worker_env(stack, org))
    assert code == 1
    assert f"PASS  join org:{org.org_id}:events" in out  # members may listen
    refused = next(line for line in out.splitlines() if line.startswith("FAIL"))
    assert refused.startswith("FAIL  data api write")
    assert "row-level security" in refused
    assert "this token's org role is 'member'" in refused
    assert "give the service user the role org:worker in ORG_ID" in refused


async def test_unreachable_supabase_url_says_it_cannot_reach_it(
    stack: Stack, closed_port: int
) -> None:
    org = provision(stack, "Acme")
    url = f"http://127.0.0.1:{closed_port}"
    code, out, _ = await cli("check", worker_env(stack, org, SUPABASE_URL=url))
    assert code == 1
    assert "PASS  clerk token" in out
    connect = next(line for line in out.splitlines() if "realtime connect" in line)
    assert connect.startswith("FAIL")
    assert f"cannot reach SUPABASE_URL={url} (connection refused)" in connect
    assert "check the URL" in connect
    data = next(line for line in out.splitlines() if "data api" in line)
    assert f"cannot reach the data API at {url}/rest/v1" in data


@pytest.mark.parametrize(
    "header",
    ['{"alg":"RS256","kid":"k","crit":["exp"]}', '{"alg":"RS256","kid":"k","crit":["x"],"x":1}'],
)
async def test_a_hostile_token_is_refused_with_a_reason_not_a_traceback(
    tmp_path: Path, header: str
) -> None:
    def b64(text: str) -> str:
        return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")

    token_file = tmp_path / "token"
    claims = b64('{"exp": 1e400}')
    token_file.write_text(f"{b64(header)}.{claims}.c2ln")
    env = {
        "SUPABASE_URL": "http://127.0.0.1:54321",
        "SUPABASE_PUBLISHABLE_KEY": "sb_publishable_x",
        "ORG_ID": "org_abc",
        "WORKER_TOKEN_FILE": str(token_file),
        "CLERK_JWKS_URL": "http://127.0.0.1:1/jwks.json",
    }
    code, out, err = await cli("token", env)  # cli() asserts there is no traceback
    assert code == 1, out + err
    assert "'crit' extensions: refused" in err
