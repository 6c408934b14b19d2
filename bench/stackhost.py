"""The devstack in a process of its own, driven over stdin/stdout (one JSON line each).

``python -m bench.stackhost [--database-url URL]`` starts ``devstack.stack.Stack`` and
prints ``READY {env}``. Commands (one JSON object per line), each answered ``OK {...}``:

* ``{"cmd": "provision", "name": ...}``: a Clerk org with a worker-role service user and an
  active session (as ``tests/e2e/conftest.py: provision``);
* ``{"cmd": "blast", "org_id", "topic", "count", "rate"}``: ``count`` outbox events at
  ``rate``/s, faster than the stand-in's per-row pickup allows: rows are bulk-inserted
  (1,000 per statement, broadcast trigger off) and each row is then broadcast through
  the Realtime stand-in's control surface, so the worker sees real outbox ids;
* ``{"cmd": "fanouts"}``: ``{outbox id: unix time}`` of every outbox broadcast the Realtime
  stand-in fanned out since the last call (to split latency into stack and worker parts);
* ``{"cmd": "quit"}``.

Keeping the stack out of the measuring process gives the worker a core of its own.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from typing import Any

import asyncpg

from devstack.realtime import db_broadcast
from devstack.stack import Stack, StackConfig

FANOUTS: dict[int, float] = {}


def _record_fanouts() -> None:
    """Wrap the stand-in's fan-out (in this process only) to time each outbox broadcast."""
    original = db_broadcast._fan_out

    def timed(tenant: Any, message_id: str, **kwargs: Any) -> None:
        original(tenant, message_id, **kwargs)
        payload = kwargs.get("payload")
        if isinstance(payload, dict) and isinstance(payload.get("id"), int):
            FANOUTS[payload["id"]] = time.time()

    db_broadcast._fan_out = timed


def provision(stack: Stack, name: str) -> dict[str, str]:
    clerk = stack.clerk
    user = clerk.create_user(first_name=f"{name}-worker")
    org = clerk.create_organization(name)
    clerk.add_membership(org["id"], user["id"], "org:worker")
    session = clerk.create_session(user["id"], active_organization_id=org["id"])
    return {"org_id": org["id"], "session_id": session["id"]}


CHUNK = 1000
BULK_SQL = """
insert into org_events (org_id, topic, event, payload)
select $1, $2, 'task.created', jsonb_build_object('n', g, 'title', 'Send the invoice')
from generate_series(1, $3) g
returning id, org_id, topic, event, payload, created_at
"""


async def _rows(conn: asyncpg.Connection, org_id: str, topic: str, n: int) -> list[dict[str, Any]]:
    async with conn.transaction():
        await conn.execute("set local session_replication_role = replica")
        records = await conn.fetch(BULK_SQL, org_id, topic, n)
    return [
        {
            "id": r["id"],
            "org_id": r["org_id"],
            "topic": r["topic"],
            "event": r["event"],
            "payload": json.loads(r["payload"]),
            "created_at": r["created_at"].isoformat(),
        }
        for r in records
    ]


async def blast(stack: Stack, cmd: dict[str, Any]) -> dict[str, Any]:
    assert stack.realtime is not None
    control = stack.realtime.control
    org_id, topic = cmd["org_id"], cmd.get("topic", "events")
    count, rate = int(cmd["count"]), float(cmd.get("rate", 1000))
    sub = f"org:{org_id}:{topic}"
    conn = await asyncpg.connect(stack.database_url)
    try:
        started = time.perf_counter()
        sent = 0
        rows: list[dict[str, Any]] = []
        while sent < count:
            due = min(count, int((time.perf_counter() - started) * rate) + 1)
            while sent < due:
                if not rows:
                    rows = await _rows(conn, org_id, topic, min(CHUNK, count - sent))
                control.broadcast(sub, "task.created", rows.pop(0), private=True)
                sent += 1
            await asyncio.sleep(0.002)
    finally:
        await conn.close()
    return {"sent": sent, "seconds": time.perf_counter() - started}


async def serve(database_url: str | None) -> None:
    _record_fanouts()
    config = StackConfig(database_url=database_url)
    loop = asyncio.get_running_loop()
    async with Stack(config) as stack:
        print("READY " + json.dumps(stack.env), flush=True)
        while True:
            line = await loop.run_in_executor(None, sys.stdin.readline)
            if not line:
                return
            cmd = json.loads(line)
            if cmd["cmd"] == "quit":
                return
            if cmd["cmd"] == "provision":
                reply: dict[str, Any] = provision(stack, cmd["name"])
            elif cmd["cmd"] == "fanouts":
                reply = {str(k): v for k, v in FANOUTS.items()}
                FANOUTS.clear()
            elif cmd["cmd"] == "blast":
                reply = await blast(stack, cmd)
            else:
                reply = {"error": f"unknown command {cmd['cmd']!r}"}
            print("OK " + json.dumps(reply), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    asyncio.run(serve(args.database_url))


if __name__ == "__main__":
    main()
