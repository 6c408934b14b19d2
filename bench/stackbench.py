"""Benchmarks through the whole local stack: latency, token rotation, footprint.

The stack runs in its own process (``bench.stackhost``), the outbox producer in another
(``bench.producer``), and the worker either in this process (latency, rotation: the
handler records when it starts) or as ``python -m worker run`` (footprint).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import httpx
import psutil
from prometheus_client import CollectorRegistry

from bench.stats import summary_ms
from worker import Context, Event, HandlerRegistry
from worker.app import Worker
from worker.observe.logs import configure_logging
from worker.realtime.link import CLOSE_LABELS as CLOSE_REASONS
from worker.settings import Settings
from worker.tokens import Token

ROOT = Path(__file__).resolve().parent.parent


class StackHost:
    """``bench.stackhost`` as a child process; ``await host.command({...})``."""

    def __init__(self, database_url: str | None) -> None:
        self._database_url = database_url
        self._proc: asyncio.subprocess.Process | None = None
        self.env: dict[str, str] = {}

    async def __aenter__(self) -> StackHost:
        args = [sys.executable, "-m", "bench.stackhost"]
        if self._database_url:
            args += ["--database-url", self._database_url]
        self._proc = await asyncio.create_subprocess_exec(
            *args,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            cwd=ROOT,
            limit=256 * 1024 * 1024,
        )
        line = await self._line(120)
        if not line.startswith("READY "):
            raise RuntimeError(f"the stack did not start: {line!r}")
        self.env = json.loads(line[len("READY ") :])
        return self

    async def __aexit__(self, *exc: object) -> None:
        proc = self._proc
        if proc is None or proc.stdin is None:
            return
        with contextlib.suppress(ConnectionError):
            proc.stdin.write(b'{"cmd": "quit"}\n')
            await proc.stdin.drain()
            proc.stdin.close()
        try:
            await asyncio.wait_for(proc.wait(), 30)
        except TimeoutError:
            proc.kill()
            await proc.wait()

    async def _line(self, timeout_s: float) -> str:
        assert self._proc is not None
        assert self._proc.stdout is not None
        raw = await asyncio.wait_for(self._proc.stdout.readline(), timeout_s)
        return raw.decode().strip()

    async def command(self, cmd: dict[str, Any], timeout_s: float = 3600) -> dict[str, Any]:
        assert self._proc is not None
        assert self._proc.stdin is not None
        self._proc.stdin.write((json.dumps(cmd) + "\n").encode())
        await self._proc.stdin.drain()
        line = await self._line(timeout_s)
        if not line.startswith("OK "):
            raise RuntimeError(f"stack host failed on {cmd['cmd']}: {line!r}")
        return dict(json.loads(line[3:]))

    async def provision(self, name: str) -> dict[str, str]:
        return {
            k: str(v) for k, v in (await self.command({"cmd": "provision", "name": name})).items()
        }


def worker_env(stack_env: dict[str, str], org: dict[str, str], **overrides: str) -> dict[str, str]:
    keys = ("SUPABASE_URL", "SUPABASE_PUBLISHABLE_KEY", "CLERK_API_URL", "CLERK_SECRET_KEY")
    env = {k: stack_env[k] for k in (*keys, "CLERK_ISSUER", "CLERK_JWKS_URL")}
    env |= {
        "ORG_ID": org["org_id"],
        "CLERK_SESSION_ID": org["session_id"],
        "WORKER_HTTP_PORT": "0",
        "WORKER_HTTP_HOST": "127.0.0.1",
        "WORKER_SHUTDOWN_GRACE_SECONDS": "5",
        "WORKER_LOG_LEVEL": "INFO",
    }
    return env | overrides


async def run_producer(
    database_url: str, org_id: str, rate: float, seconds: float, connections: int = 2
) -> dict[str, Any]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.producer",
        "--database-url",
        database_url,
        "--org",
        org_id,
        "--rate",
        str(rate),
        "--seconds",
        str(seconds),
        "--connections",
        str(connections),
        stdout=asyncio.subprocess.PIPE,
        cwd=ROOT,
    )
    out, _ = await proc.communicate()
    for line in out.decode().splitlines():
        if line.startswith("RESULT "):
            return dict(json.loads(line[len("RESULT ") :]))
    raise RuntimeError(f"the producer failed (exit {proc.returncode})")


@dataclass
class Recorder:
    """The no-op handler that records when it started, per outbox id."""

    started: dict[int, float] = field(default_factory=dict)
    duplicates: int = 0
    registry: HandlerRegistry = field(default_factory=HandlerRegistry)

    def __post_init__(self) -> None:
        self.registry.add("events", "*", self.handle)

    async def handle(self, event: Event, _ctx: Context) -> None:
        now = time.time()
        if event.event_id is None:
            return
        if event.event_id in self.started:
            self.duplicates += 1
            return
        self.started[event.event_id] = now


@dataclass
class RunningWorker:
    worker: Worker
    recorder: Recorder
    rotations: list[float]

    def channel_closes(self) -> int:
        registry = self.worker.metrics_registry
        return int(
            sum(
                registry.get_sample_value(
                    "realtime_worker_channel_closes_total", {"topic": "events", "reason": r}
                )
                or 0.0
                for r in CLOSE_REASONS
            )
        )

    def closes_by_reason(self) -> dict[str, int]:
        registry = self.worker.metrics_registry
        out = {}
        for r in CLOSE_REASONS:
            labels = {"topic": "events", "reason": r}
            value = registry.get_sample_value("realtime_worker_channel_closes_total", labels)
            if value:
                out[r] = int(value)
        return out

    def rejected(self) -> int:
        stats = self.worker.dispatcher.statistics() if self.worker.dispatcher else None
        return stats.rejected_full if stats else 0


@contextlib.asynccontextmanager
async def in_process_worker(env: dict[str, str]) -> AsyncIterator[RunningWorker]:
    """A Worker in this process, logging JSON at INFO into /dev/null (as in production)."""
    settings = Settings.from_env(env)
    with open(os.devnull, "w") as devnull:  # noqa: ASYNC230 - once, before the run
        handler = configure_logging(settings.log_level, settings.org_id, stream=devnull)
        recorder = Recorder()
        worker = Worker(settings, registry=recorder.registry, metrics_registry=CollectorRegistry())
        rotations: list[float] = []

        async def on_token(_token: Token) -> None:
            rotations.append(time.time())

        stop = anyio.Event()
        try:
            async with anyio.create_task_group() as tg:
                await tg.start(worker.run, stop)
                assert worker.tokens is not None
                worker.tokens.add_listener(on_token)
                await _wait_joined(worker)
                yield RunningWorker(worker, recorder, rotations)
                stop.set()
        finally:
            import logging  # noqa: PLC0415

            logging.getLogger().removeHandler(handler)


async def _wait_joined(worker: Worker, timeout_s: float = 30) -> None:
    with anyio.fail_after(timeout_s):
        while worker.checks.failures():  # noqa: ASYNC110 - polling state without an event
            await anyio.sleep(0.05)


async def _settle(running: RunningWorker, ids: set[int], quiet_s: float = 10.0) -> None:
    """Wait until every id is handled, or nothing new was handled for ``quiet_s`` (a
    backlog in the stand-in drains first; an event refused by a full queue may come back
    through catch-up), at most 300 s."""
    last, quiet_since = -1, time.monotonic()
    with anyio.move_on_after(300):
        while True:
            done = len(ids & running.recorder.started.keys())
            if done == len(ids):
                return
            if done != last:
                last, quiet_since = done, time.monotonic()
            elif time.monotonic() - quiet_since > quiet_s:
                return
            await anyio.sleep(0.1)


def _latencies(commits: list[list[float]], started: dict[int, float]) -> list[tuple[float, float]]:
    """(commit time, latency s) of each handled row, in commit order."""
    out = [(t, started[int(i)] - t) for i, t in commits if int(i) in started]
    out.sort()
    return out


def _split(
    commits: list[list[float]], fanouts: dict[str, float], started: dict[int, float]
) -> dict[str, Any]:
    """Latency in two parts: commit to the stand-in's fan-out, fan-out to handler start."""
    stack, worker = [], []
    for i, t in commits:
        fan = fanouts.get(str(int(i)))
        handled = started.get(int(i))
        if fan is not None and handled is not None:
            stack.append(fan - t)
            worker.append(handled - fan)
    return {"commit_to_fanout": summary_ms(stack), "fanout_to_handler": summary_ms(worker)}


async def latency_at(
    host: StackHost, running: RunningWorker, org_id: str, rate: float, seconds: float
) -> dict[str, Any]:
    """Producer at ``rate``/s for ``seconds``; commit-to-handler-start summary."""
    rejected_before = running.rejected()
    produced = await run_producer(host.env["DATABASE_URL"], org_id, rate, seconds)
    ids = {int(i) for i, _ in produced["commits"]}
    await _settle(running, ids)
    lat = _latencies(produced["commits"], running.recorder.started)
    result: dict[str, Any] = summary_ms([v for _, v in lat])
    fanouts = await host.command({"cmd": "fanouts"})
    result["split"] = _split(produced["commits"], fanouts, running.recorder.started)
    result |= {
        "target_rate": rate,
        "achieved_rate": round(produced["achieved_rate"], 1),
        "inserted": len(ids),
        "lost": len(ids - running.recorder.started.keys()),
        "rejected_queue_full": running.rejected() - rejected_before,
    }
    return result


async def latency_suite(
    host: StackHost, rates: list[float], seconds: float, max_rates: list[float], max_seconds: float
) -> dict[str, Any]:
    org = await host.provision("latency")
    out: dict[str, Any] = {"runs": {}, "max_search": []}
    async with in_process_worker(worker_env(host.env, org)) as running:
        await latency_at(host, running, org["org_id"], 50, 1)  # warm-up, discarded
        for rate in rates:
            out["runs"][str(int(rate))] = await latency_at(
                host, running, org["org_id"], rate, seconds
            )
        best: dict[str, Any] | None = None
        for rate in max_rates:
            run = await latency_at(host, running, org["org_id"], rate, max_seconds)
            ok = (
                run["lost"] == 0
                and run["achieved_rate"] >= 0.9 * rate
                and (run["p99_ms"] or 1e9) < 250
            )
            run["sustained"] = ok
            out["max_search"].append(run)
            if not ok:
                break
            best = run
        out["max_sustainable"] = best
    return out


def _windowed(
    lat: list[tuple[float, float]], rotations: list[float], before_s: float, after_s: float
) -> tuple[list[float], list[float]]:
    during, steady = [], []
    for t, v in lat:
        near = any(r - before_s <= t <= r + after_s for r in rotations)
        (during if near else steady).append(v)
    return during, steady


async def rotation_suite(
    host: StackHost, rate: float, seconds: float, token_s: int = 5, margin_s: int = 2
) -> dict[str, Any]:
    org = await host.provision("rotation")
    env = worker_env(
        host.env,
        org,
        CLERK_TOKEN_EXPIRES_IN_SECONDS=str(token_s),
        WORKER_TOKEN_REFRESH_MARGIN_SECONDS=str(margin_s),
    )
    async with in_process_worker(env) as running:
        await latency_at(host, running, org["org_id"], 50, 1)  # warm-up, discarded
        first = len(running.rotations)
        produced = await run_producer(host.env["DATABASE_URL"], org["org_id"], rate, seconds)
        ids = {int(i) for i, _ in produced["commits"]}
        await _settle(running, ids)
        lat = _latencies(produced["commits"], running.recorder.started)
        fanouts = await host.command({"cmd": "fanouts"})
        t0, t1 = produced["commits"][0][1], produced["commits"][-1][1]
        rotations = [r for r in running.rotations[first:] if t0 - 1 <= r <= t1 + 1]
        during, steady = _windowed(lat, rotations, 0.25, 1.0)
        lost = len(ids - running.recorder.started.keys())
        result: dict[str, Any] = {
            "token_seconds": token_s,
            "refresh_margin_seconds": margin_s,
            "target_rate": rate,
            "seconds": seconds,
            "achieved_rate": round(produced["achieved_rate"], 1),
            "inserted": len(ids),
            "handled": len(ids) - lost,
            "events_lost": lost,
            "duplicates": running.recorder.duplicates,
            "rotations": len(rotations),
            "channel_closes": running.channel_closes(),
            "channel_closes_by_reason": running.closes_by_reason(),
            "rejected_queue_full": running.rejected(),
            "during_rotation": summary_ms(during),
            "steady": summary_ms(steady),
            "window": "commit within [rotation - 0.25 s, rotation + 1.0 s]",
            "split": _split(produced["commits"], fanouts, running.recorder.started),
        }
        d99, s99 = result["during_rotation"]["p99_ms"], result["steady"]["p99_ms"]
        result["p99_ratio_rotation_vs_steady"] = round(d99 / s99, 2) if d99 and s99 else None
        result["series"] = [[round(t - t0, 4), round(v * 1000, 3)] for t, v in lat]
        result["rotation_times"] = [round(r - t0, 3) for r in rotations]
    return result


# -- footprint --------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _metric(client: httpx.AsyncClient, url: str, name: str) -> float | None:
    """The sum of ``name``'s success samples; None when /metrics does not answer in time
    (a saturated worker serves HTTP late: its listen loop starves other tasks)."""
    try:
        text = (await client.get(f"{url}/metrics", timeout=20)).text
    except httpx.HTTPError:
        return None
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and 'result="success"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


@contextlib.asynccontextmanager
async def worker_process(env: dict[str, str]) -> AsyncIterator[tuple[psutil.Process, str, float]]:
    """``python -m worker run``; yields (process, http url, seconds from spawn to /readyz 200)."""
    port = _free_port()
    full = os.environ | env | {"WORKER_HTTP_PORT": str(port)}
    url = f"http://127.0.0.1:{port}"
    started = time.perf_counter()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "worker",
        "run",
        env=full,
        cwd=ROOT,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        async with httpx.AsyncClient(timeout=2) as client:
            with anyio.fail_after(60):
                while True:
                    with contextlib.suppress(httpx.HTTPError):
                        if (await client.get(f"{url}/readyz")).status_code == 200:
                            break
                    if proc.returncode is not None:
                        raise RuntimeError(f"the worker exited with {proc.returncode}")
                    await anyio.sleep(0.01)
        ready = time.perf_counter() - started
        yield psutil.Process(proc.pid), url, ready
    finally:
        if proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 30)
            except TimeoutError:
                proc.kill()
                await proc.wait()


def _mb(value: float) -> float:
    return round(value / 1024 / 1024, 1)


async def _idle(process: psutil.Process, seconds: float) -> dict[str, float]:
    before = process.cpu_times()
    t0 = time.perf_counter()
    await anyio.sleep(seconds)
    after = process.cpu_times()
    wall = time.perf_counter() - t0
    cpu = (after.user + after.system) - (before.user + before.system)
    info = process.memory_full_info()
    return {
        "rss_mb": _mb(info.rss),
        "uss_mb": _mb(info.uss),
        "cpu_percent": round(cpu / wall * 100, 2),
    }


async def footprint_suite(
    host: StackHost, topic_counts: list[int], idle_s: float
) -> dict[str, Any]:
    """RSS, CPU and spawn-to-ready of an idle worker process per topic count (memory
    growth under load is ``throughput.growth``: the blast server makes 1,000,000 events
    affordable)."""
    out: dict[str, Any] = {"idle": {}}
    for n in topic_counts:
        org = await host.provision(f"footprint-{n}")
        topics = ",".join(["events", *(f"t{i}" for i in range(1, n))])
        env = worker_env(host.env, org, WORKER_TOPICS=topics, WORKER_HANDLERS="bench.handlers")
        async with worker_process(env) as (process, _url, ready):
            await anyio.sleep(1.0)  # let start-up garbage settle
            sample = await _idle(process, idle_s)
            out["idle"][str(n)] = sample | {"ready_seconds": round(ready, 3)}
    return out


# -- catch-up ---------------------------------------------------------------------------

GAP_SQL = """
insert into org_events (org_id, topic, event, payload)
select $1, 'events', 'task.created', jsonb_build_object('n', g, 'title', 'Send the invoice')
from generate_series(1, $2) g
returning id
"""


async def catchup_suite(host: StackHost, gap: int) -> dict[str, Any]:
    """``gap`` outbox rows committed with the broadcast trigger off (nothing was delivered
    live), then a fresh worker: events/s from its start until the last row is handled."""
    import asyncpg  # noqa: PLC0415 - a dev dependency, only needed here

    org = await host.provision("catchup")
    conn = await asyncpg.connect(host.env["DATABASE_URL"])
    try:
        async with conn.transaction():
            # Ordinary triggers (the realtime.send broadcast) do not fire for this session.
            await conn.execute("set local session_replication_role = replica")
            ids = {int(r["id"]) for r in await conn.fetch(GAP_SQL, org["org_id"], gap)}
    finally:
        await conn.close()
    started = time.time()
    async with in_process_worker(worker_env(host.env, org)) as running:
        joined = time.time()
        with anyio.move_on_after(max(60, gap / 100)):
            while len(ids - running.recorder.started.keys()) > 0:  # noqa: ASYNC110
                await anyio.sleep(0.05)
        handled = [running.recorder.started[i] for i in ids if i in running.recorder.started]
    first, last = (min(handled), max(handled)) if handled else (0.0, 0.0)
    return {
        "status": "measured",
        "gap_events": gap,
        "handled": len(handled),
        "events_lost": gap - len(handled),
        "events_per_s": round(len(handled) / (last - first), 1) if last > first else None,
        "seconds_from_start_to_last": round(last - started, 3) if handled else None,
        "seconds_to_ready": round(joined - started, 3),
        "page_size": 500,
    }
