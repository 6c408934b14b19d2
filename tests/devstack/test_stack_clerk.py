"""The stack's Clerk instance: chosen at start (``StackConfig``, ``devstack up`` flags),
and the env file's demo orgs, each with a service user a worker can manage sessions for.
"""

from __future__ import annotations

import signal
from pathlib import Path

import anyio
import httpx
import pytest

from devstack import __main__ as devstack_main
from devstack.postgres import Server
from devstack.stack import Stack, StackConfig
from tests.devstack.test_stack import _start_devstack, _wait_for_file

pytestmark = pytest.mark.anyio

DEMO_KEYS = {
    f"DEMO_ORG_{key}_{name}"
    for key in ("A", "B")
    for name in ("ORG_ID", "CLERK_USER_ID", "CLERK_SESSION_ID")
}


async def test_a_stack_config_picks_the_instance_and_provisions_demo_orgs(
    pg_server: Server,
) -> None:
    config = StackConfig(
        database_url=pg_server.admin_url,
        clerk_instance="production",
        clerk_session_lifetime_s=20,
        clerk_session_inactivity_s=30,
        clerk_demo_orgs=("A",),
    )
    async with Stack(config) as stack:
        env = stack.env
        settings = stack.clerk.settings
        session = stack.clerk.get_session(env["DEMO_ORG_A_CLERK_SESSION_ID"])
    assert env["CLERK_SECRET_KEY"].startswith("sk_live_")
    assert (settings.session_lifetime_s, settings.session_inactivity_s) == (20, 30)
    assert (env["ORG_ID"], env["CLERK_USER_ID"]) == (
        env["DEMO_ORG_A_ORG_ID"],
        env["DEMO_ORG_A_CLERK_USER_ID"],
    )
    assert session["user_id"] == env["CLERK_USER_ID"]
    assert session["last_active_organization_id"] == env["ORG_ID"]
    assert session["expire_at"] - session["created_at"] == 20_000


async def test_a_default_stack_provisions_nothing(pg_server: Server) -> None:
    async with Stack(StackConfig(database_url=pg_server.admin_url)) as stack:
        assert not any(key.startswith("DEMO_ORG_") for key in stack.env)
        assert "CLERK_USER_ID" not in stack.env
        assert stack.env["CLERK_SECRET_KEY"].startswith("sk_test_")
        assert stack.clerk.store.users == {}


async def test_devstack_up_flags_choose_the_instance_and_the_env_file_has_the_demo_orgs(
    pg_server: Server, tmp_path: Path
) -> None:
    env_file, log = tmp_path / "env", tmp_path / "devstack.log"
    flags = ("--clerk-instance", "production", "--clerk-session-lifetime", "20")
    proc = _start_devstack(env_file, pg_server.admin_url, log, *flags)
    try:
        await _wait_for_file(env_file, proc, log)
        env = dict(line.split("=", 1) for line in env_file.read_text().splitlines())
        headers = {"Authorization": f"Bearer {env['CLERK_SECRET_KEY']}"}
        async with httpx.AsyncClient(base_url=env["CLERK_API_URL"], headers=headers) as bapi:
            query = {"user_id": env["DEMO_ORG_B_CLERK_USER_ID"], "status": "active"}
            listed = (await bapi.get("/v1/sessions", params=query)).json()
            refused = await bapi.post("/v1/sessions", json={"user_id": env["CLERK_USER_ID"]})
        proc.send_signal(signal.SIGINT)
        assert await anyio.to_thread.run_sync(lambda: proc.wait(30)) == 0, log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert set(env) >= DEMO_KEYS | {"ORG_ID", "CLERK_USER_ID", "CLERK_SESSION_ID"}
    assert env["CLERK_SECRET_KEY"].startswith("sk_live_")
    (session,) = listed
    assert session["id"] == env["DEMO_ORG_B_CLERK_SESSION_ID"]
    assert session["last_active_organization_id"] == env["DEMO_ORG_B_ORG_ID"]
    assert session["expire_at"] - session["created_at"] == 20_000
    assert refused.status_code == 400
    assert refused.json()["errors"][0]["code"] == "request_invalid_for_environment"


@pytest.mark.parametrize(
    "flags",
    [
        ("--clerk-instance", "staging"),
        ("--clerk-session-lifetime", "0"),
        ("--clerk-session-inactivity", "-5"),
    ],
)
def test_devstack_up_refuses_bad_clerk_flags(flags: tuple[str, str]) -> None:
    with pytest.raises(SystemExit) as caught:
        devstack_main.main(["up", *flags])
    assert caught.value.code == 2


def test_devstack_up_defaults_are_clerks() -> None:
    args = devstack_main._parser().parse_args(["up"])
    assert (args.clerk_instance, args.clerk_session_lifetime, args.clerk_session_inactivity) == (
        "development",
        7 * 24 * 3600,
        None,
    )
