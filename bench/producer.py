"""The outbox producer: paced ``insert into org_events`` and the commit time of each row.

``python -m bench.producer --database-url URL --org ORG --rate R --seconds S`` inserts
``R*S`` rows on ``--connections`` autocommit asyncpg connections (row ``i`` is due at
``i/R`` s; a late producer catches up at once) and prints ``RESULT {...}`` with
``[[id, commit_unix_time], ...]``: the wall time when the commit was acknowledged.
Runs in its own process so that its timestamps are not delayed by the worker's loop.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any

import asyncpg

INSERT = (
    "insert into org_events (org_id, topic, event, payload) "
    "values ($1, 'events', 'task.created', $2) returning id"
)


async def produce(url: str, org_id: str, rate: float, seconds: float, connections: int) -> Any:
    total = max(1, int(rate * seconds))
    conns = [await asyncpg.connect(url) for _ in range(connections)]
    commits: list[list[float]] = []
    payload = json.dumps({"title": "Send the invoice", "priority": 2})
    start = time.perf_counter() + 0.05

    async def lane(k: int) -> None:
        conn = conns[k]
        for i in range(k, total, connections):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            event_id = await conn.fetchval(INSERT, org_id, payload)
            commits.append([event_id, time.time()])

    try:
        await asyncio.gather(*(lane(k) for k in range(connections)))
    finally:
        for conn in conns:
            await conn.close()
    elapsed = time.perf_counter() - start
    return {"commits": commits, "seconds": elapsed, "achieved_rate": total / elapsed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--org", required=True)
    parser.add_argument("--rate", type=float, required=True)
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--connections", type=int, default=2)
    args = parser.parse_args()
    result = asyncio.run(
        produce(args.database_url, args.org, args.rate, args.seconds, args.connections)
    )
    print("RESULT " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
