"""The whole local stack: `python -m devstack up` and the `Stack` context manager."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import anyio
import asyncpg
import httpx
import pytest

from devstack.postgres import Server
from devstack.stack import Stack, StackConfig

pytestmark = pytest.mark.anyio

REQUIRED_KEYS = {
    "SUPABASE_URL",
    "SUPABASE_ANON_KEY",
    "SUPABASE_PUBLISHABLE_KEY",
    "SUPABASE_SECRET_KEY",
    "DATABASE_URL",
    "CLERK_API_URL",
    "CLERK_SECRET_KEY",
    "CLERK_ISSUER",
    "CLERK_JWKS_URL",
}
ROOT = Path(__file__).resolve().parents[2]


async def test_stack_serves_migrated_database_clerk_and_gateway(pg_server: Server) -> None:
    async with Stack(StackConfig(database_url=pg_server.admin_url)) as stack:
        assert set(stack.env) >= REQUIRED_KEYS
        conn = await asyncpg.connect(stack.env["DATABASE_URL"])
        try:
            assert await conn.fetchval("select to_regclass('public.org_events')") is not None
        finally:
            await conn.close()
        async with httpx.AsyncClient() as http:
            jwks = await http.get(stack.env["CLERK_JWKS_URL"])
            ping = await http.get(f"{stack.env['SUPABASE_URL']}/realtime/v1/api/ping")
        assert jwks.status_code == 200
        assert jwks.json()["keys"]
        assert ping.status_code == 200


async def test_stack_gateway_maps_its_publishable_and_secret_keys(pg_server: Server) -> None:
    async with Stack(StackConfig(database_url=pg_server.admin_url)) as stack:
        env = stack.env
        assert env["SUPABASE_PUBLISHABLE_KEY"].startswith("sb_publishable_")
        assert env["SUPABASE_SECRET_KEY"].startswith("sb_secret_")
        async with httpx.AsyncClient(base_url=f"{env['SUPABASE_URL']}/rest/v1") as http:
            as_anon = await http.get("/tasks", headers={"apikey": env["SUPABASE_PUBLISHABLE_KEY"]})
            as_service = await http.get("/tasks", headers={"apikey": env["SUPABASE_SECRET_KEY"]})
    assert as_anon.status_code == 401  # anon may not read tasks at all
    assert as_service.status_code == 200  # service_role bypasses RLS: the seeded task
    assert [row["title"] for row in as_service.json()] == ["Try the worker"]


async def test_stack_drops_its_database_on_exit(pg_server: Server) -> None:
    async with Stack(StackConfig(database_url=pg_server.admin_url)) as stack:
        name = stack.env["DATABASE_URL"].rsplit("/", 1)[1]
    conn = await asyncpg.connect(pg_server.admin_url)
    try:
        assert await conn.fetchval("select 1 from pg_database where datname = $1", name) is None
    finally:
        await conn.close()


def _start_devstack(
    env_file: Path, database_url: str, log: Path, *extra: str
) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "devstack",
                "up",
                "--env-file",
                str(env_file),
                "--port",
                "0",
                "--database-url",
                database_url,
                *extra,
            ],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )


async def _wait_for_file(path: Path, proc: subprocess.Popen[bytes], log: Path) -> None:
    with anyio.fail_after(60):
        while not await anyio.Path(path).exists():
            assert proc.poll() is None, "devstack exited early; see its log"
            await anyio.sleep(0.1)


async def test_devstack_up_writes_the_env_file_and_stops_cleanly_on_sigint(
    pg_server: Server, tmp_path: Path
) -> None:
    env_file, log = tmp_path / "env", tmp_path / "devstack.log"
    proc = _start_devstack(env_file, pg_server.admin_url, log)
    try:
        await _wait_for_file(env_file, proc, log)
        values = dict(line.split("=", 1) for line in env_file.read_text().splitlines())
        assert set(values) >= REQUIRED_KEYS
        assert env_file.stat().st_mode & 0o077 == 0  # it holds secrets
        proc.send_signal(signal.SIGINT)
        assert await anyio.to_thread.run_sync(lambda: proc.wait(30)) == 0, log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert not env_file.exists()
    assert "devstack: stopped" in log.read_text()
