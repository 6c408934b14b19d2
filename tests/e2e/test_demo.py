"""``make demo`` cannot rot: the same demo, headless, against the test Postgres."""

from __future__ import annotations

import itertools
import json
import os
import re
import sys
from pathlib import Path

import anyio
import asyncpg
import pytest

from devstack.demo import DemoOrg, DemoState, apply_log_line, apply_metrics, summary_line
from devstack.postgres import Server

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(180)]

ROOT = Path(__file__).resolve().parents[2]
_OURS = ("SUPABASE_", "CLERK_", "WORKER_", "REALTIME_", "ORG_ID", "DATABASE_URL")


def fields(line: str) -> dict[str, str]:
    """The ``key=value`` pairs of one summary line."""
    return dict(re.findall(r"(\w+)=(\S+)", line))


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def databases(server: Server) -> set[str]:
    conn = await asyncpg.connect(server.admin_url)
    try:
        return {r["datname"] for r in await conn.fetch("select datname from pg_database")}
    finally:
        await conn.close()


async def test_headless_demo_shows_rotations_org_a_events_and_no_org_b_events(
    pg_server: Server,
) -> None:
    before = await databases(pg_server)
    argv = [
        sys.executable,
        "-m",
        "devstack",
        "demo",
        "--headless",
        "--duration",
        "12",
        "--token-seconds",
        "6",
        "--database-url",
        pg_server.admin_url,
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith(_OURS)}
    with anyio.fail_after(150):
        done = await anyio.run_process(argv, env=env, cwd=ROOT, check=False)
    out, err = done.stdout.decode(), done.stderr.decode()
    assert done.returncode == 0, out + err
    assert "Traceback" not in out + err

    started = re.search(r"database (\S+);.*worker for org A started \(pid (\d+),", out)
    assert started, out
    database, worker_pid = started[1].rsplit("/", 1)[-1], int(started[2])
    assert not pid_alive(worker_pid), "the worker process outlived the demo"
    assert database not in await databases(pg_server)
    assert await databases(pg_server) <= before  # nothing left on the server

    lines = out.splitlines()
    per_second = [fields(line) for line in lines if line.startswith("demo t=")]
    assert len(per_second) >= 8, out  # one line a second while it ran
    final = fields(next(line for line in lines if line.startswith("demo finished:")))
    assert int(final["org_a_handled"]) > 0
    assert int(final["org_b_inserted"]) > 0
    assert final["org_b_received"] == "0"
    assert all(line["org_b_received"] == "0" for line in per_second)
    assert int(final["token_rotations"]) >= 1
    assert final["channels"] == "events:joined,jobs:joined"
    assert final["worker_exit"] == "0"
    # The rotation is visible as it happens: time-to-expiry jumps back up between lines.
    expiries = [float(line["expires_in_s"]) for line in per_second if line["expires_in_s"] != "-"]
    assert any(later > earlier for earlier, later in itertools.pairwise(expiries))
    assert lines[-1] == "demo: stopped; the stack and its Postgres are gone"


def test_the_org_b_counter_would_count_what_org_a_received() -> None:
    # The demo's "received 0" is only worth something if the counter can move.
    a = DemoOrg("Org A", "org_a", "user_a", "sess_a")
    b = DemoOrg("Org B", "org_b", "user_b", "sess_b")
    state = DemoState(a, b, "http://s", "http://w/status", "http://w/metrics", 20)
    handled = {"msg": "demo handled", "demo": {"org_id": "org_a", "topic": "jobs", "event": "e"}}
    apply_log_line(state, json.dumps(handled | {"demo": handled["demo"] | {"payload": {"n": 1}}}))
    assert state.topics["jobs"].latest_payload == {"n": 1}
    assert state.org_b_received == 0
    apply_log_line(state, json.dumps({"msg": "demo handled", "demo": {"org_id": "org_b"}}))
    apply_metrics(state, 'realtime_worker_events_rejected_total{reason="wrong_org"} 2.0\n')
    assert state.org_b_received == 3
    assert "org_b_received=3" in summary_line(state)
