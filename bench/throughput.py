"""Throughput: events/s into the bare ``realtime`` client vs the whole worker, same stream.

The parent (``measure``) starts ``bench.blast_server`` in its own process, then runs each
receiver in a fresh process of its own (``python -m bench.throughput --mode ...``),
alternating bare / worker rounds so that drift on the machine hits both alike. A round
counts events from the 10% mark to the last frame (warm-up excluded) and the receiver's
CPU time over the same window.

* ``bare``: ``AsyncRealtimeClient``, one private channel, a no-op ``on_broadcast``.
* ``worker``: ``worker.app.Worker`` (token manager with a local RS256 source verified
  against the server's JWKS, supervisor, intake, dispatcher, catch-up and checkpoints
  against the server's outbox RPCs, HTTP server), a no-op handler, logging configured as
  ``realtime-worker run`` does (JSON lines at INFO, here into /dev/null).
  ``worker-warning`` is the same at ``WORKER_LOG_LEVEL=WARNING``.

``growth`` is one ``worker`` round paced at a sustainable rate (1,000,000 events in the
full run) whose receiver notes its own RSS every 5% of the events: memory must plateau.
It runs with the container image's malloc setting (``IMAGE_ENV``, from the Dockerfile)
and again without it, for comparison.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import httpx
import psutil
from realtime import AsyncRealtimeClient

from bench import _keys
from worker import Context, Event, HandlerRegistry
from worker.app import Worker
from worker.dispatch import Dispatcher
from worker.observe.logs import configure_logging
from worker.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
ORG_ID = "org_2benchthroughput"
TOPIC = "events"
MODES = ("bare", "worker", "worker-warning")
#: What the Dockerfile sets that changes memory behaviour (see its comment).
IMAGE_ENV = {"MALLOC_MMAP_THRESHOLD_": "131072"}


# -- receivers (run in their own process) ---------------------------------------------


class _Counter:
    """Counts handled (``hit``) and dropped (``miss``) events; the window is 10%..100%."""

    def __init__(self, frames: int, samples: int = 0) -> None:
        self.frames = frames
        self.warm = max(1, frames // 10)
        # With ``samples``, RSS and the number of memory blocks Python has allocated (its
        # heap, without the allocator's retained pages) are noted every frames/samples events.
        self.sample_every = frames // samples if samples else 0
        self.memory: list[list[float]] = []
        self._process = psutil.Process()
        self.count = 0
        self.lost = 0
        self.count_warm = 0
        self.t_warm = self.t_end = 0.0
        self.cpu_warm = self.cpu_end = 0.0
        self.done = asyncio.Event()

    def hit(self) -> None:
        self.count += 1
        if self.sample_every and self.count % self.sample_every == 0:
            rss_mb = round(self._process.memory_info().rss / 1e6, 1)
            self.memory.append([self.count, rss_mb, sys.getallocatedblocks()])
        self._tick()

    def miss(self) -> None:
        self.lost += 1
        self._tick()

    def _tick(self) -> None:
        processed = self.count + self.lost
        if processed == self.warm:
            self.t_warm, self.cpu_warm = time.perf_counter(), time.process_time()
            self.count_warm = self.count
        if processed == self.frames:
            self.t_end, self.cpu_end = time.perf_counter(), time.process_time()
            self.done.set()

    def result(self) -> dict[str, Any]:
        handled = self.count - self.count_warm
        processed = self.frames - self.warm
        wall = self.t_end - self.t_warm
        cpu = self.cpu_end - self.cpu_warm
        complete = self.done.is_set() and wall > 0
        return {
            "handled": self.count,
            "lost": self.lost,
            "memory": self.memory,
            "events_per_s": handled / wall if complete else None,
            "cpu_us_per_event": cpu / processed * 1e6 if complete else None,
            "cpu_utilisation": cpu / wall if complete else None,
        }


async def _bare(url: str, frames: int, deadline_s: float) -> dict[str, Any]:
    counter = _Counter(frames)
    client = AsyncRealtimeClient(f"{url}/realtime/v1", token="anon", hb_interval=25)
    await client.connect()
    channel = client.channel(
        f"org:{ORG_ID}:{TOPIC}",
        {
            "config": {
                "broadcast": {"ack": False, "self": False},
                "presence": {"key": "", "enabled": False},
                "private": True,
            }
        },
    )
    channel.on_broadcast("*", lambda _message: counter.hit())
    await channel.subscribe()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(counter.done.wait(), deadline_s)
    with contextlib.suppress(Exception):
        await asyncio.wait_for(client.close(), 5)
    return counter.result()


async def _worker(
    url: str, frames: int, deadline_s: float, log_level: str, samples: int = 0
) -> dict[str, Any]:
    """The whole ``Worker``; an event the dispatcher refuses (queue full) counts as lost."""
    counter = _Counter(frames, samples)
    offer = Dispatcher.offer

    def counting_offer(self: Dispatcher, event: Event) -> bool:
        accepted = offer(self, event)
        if not accepted:
            counter.miss()
        return accepted

    Dispatcher.offer = counting_offer  # type: ignore[method-assign]

    async def noop(_event: Event, _ctx: Context) -> None:
        counter.hit()

    registry = HandlerRegistry()
    registry.add(TOPIC, "*", noop)
    settings = Settings.from_env(
        {
            "SUPABASE_URL": url,
            "SUPABASE_ANON_KEY": "anon",
            "ORG_ID": ORG_ID,
            "CLERK_SECRET_KEY": "sk_test_bench",
            "CLERK_SESSION_ID": "sess_bench",
            "CLERK_ISSUER": _keys.ISSUER,
            "CLERK_JWKS_URL": f"{url}/jwks.json",
            "WORKER_TOPICS": TOPIC,
            "WORKER_HTTP_HOST": "127.0.0.1",
            "WORKER_HTTP_PORT": "0",
            "WORKER_LOG_LEVEL": log_level,
        }
    )
    devnull = open(os.devnull, "w")  # noqa: SIM115, ASYNC230 - once, lives with the process
    configure_logging(settings.log_level, settings.org_id, stream=devnull)
    pem = Path(os.environ["BENCH_KEY_FILE"]).read_text()  # noqa: ASYNC240 - once, at start
    source = _keys.StaticTokenSource(pem, ORG_ID)
    worker = Worker(settings, registry=registry, token_source=source)
    stop = anyio.Event()
    async with anyio.create_task_group() as tg:
        await tg.start(worker.run, stop)
        with anyio.move_on_after(deadline_s):
            await counter.done.wait()
        stop.set()
    return counter.result()


def _receiver_main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", choices=MODES, required=True)
    parser.add_argument("--url", required=True)
    parser.add_argument("--frames", type=int, required=True)
    parser.add_argument("--deadline", type=float, default=120.0)
    parser.add_argument("--rss-samples", type=int, default=0, help="RSS notes over the run")
    args = parser.parse_args()
    if args.mode == "bare":
        result = asyncio.run(_bare(args.url, args.frames, args.deadline))
    else:
        level = "WARNING" if args.mode == "worker-warning" else "INFO"
        result = asyncio.run(_worker(args.url, args.frames, args.deadline, level, args.rss_samples))
    print("RESULT " + json.dumps(result), flush=True)


# -- the parent -------------------------------------------------------------------------


@dataclass
class BlastHandle:
    url: str
    key_file: str


@contextlib.contextmanager
def blast_server() -> Iterator[BlastHandle]:
    """Start ``bench.blast_server`` in its own process; yield its URL and the key file."""
    pem = _keys.new_private_pem()
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        key_file = Path(tmp) / "key.pem"
        key_file.write_text(pem)
        proc = subprocess.Popen(
            [sys.executable, "-m", "bench.blast_server", "--jwks", json.dumps(_keys.jwks_of(pem))],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            if not line.startswith("PORT "):
                raise RuntimeError(f"blast server did not start: {line!r}")
            yield BlastHandle(f"http://127.0.0.1:{int(line.split()[1])}", str(key_file))
        finally:
            if proc.stdin is not None:
                proc.stdin.close()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def receiver_command(mode: str, url: str, frames: int, *extra: str) -> list[str]:
    """The command line of one receiver round (also what the profiler records)."""
    return [
        sys.executable,
        "-m",
        "bench.throughput",
        "--mode",
        mode,
        "--url",
        url,
        "--frames",
        str(frames),
        *extra,
    ]


def run_round(
    handle: BlastHandle,
    mode: str,
    frames: int,
    *,
    rate: float = 0.0,
    prefix: list[str] | None = None,
    extra: tuple[str, ...] = (),
    env: dict[str, str] | None = None,
) -> dict[str, Any]:
    """One receiver process against the blast server; ``rate`` 0 sends unpaced."""
    body = {"frames": frames, "rate": rate}
    httpx.post(f"{handle.url}/__bench/frames", json=body, timeout=10).raise_for_status()
    env = os.environ | (env or {}) | {"BENCH_KEY_FILE": handle.key_file}
    # Paced rounds last frames/rate seconds; the receiver gives up 120 s after that.
    deadline = (frames / rate if rate > 0 else 0) + 120
    out = subprocess.run(
        [
            *(prefix or []),
            *receiver_command(mode, handle.url, frames, "--deadline", str(deadline), *extra),
        ],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=deadline + 120,
        check=False,
    )
    for line in out.stdout.splitlines():
        if line.startswith("RESULT "):
            return dict(json.loads(line[len("RESULT ") :]))
    raise RuntimeError(f"{mode} round failed (exit {out.returncode}): {out.stderr[-2000:]}")


def _median(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def measure(
    frames: int, rounds: int, paced_rate: float = 1000, paced_frames: int = 20_000
) -> dict[str, Any]:
    """Alternate bare / worker / worker-warning rounds; medians and the ratios. Then one
    round per mode paced at ``paced_rate``: CPU per event at a steady rate, where each
    socket read carries a frame or two instead of dozens (what a deployment pays for)."""
    runs: dict[str, list[dict[str, Any]]] = {mode: [] for mode in MODES}
    with blast_server() as handle:
        for _ in range(rounds):
            for mode in MODES:
                runs[mode].append(run_round(handle, mode, frames))
        paced = {
            mode.replace("-", "_"): run_round(handle, mode, paced_frames, rate=paced_rate)
            for mode in MODES
        }
    out: dict[str, Any] = {"frames_per_round": frames, "rounds": rounds}
    out["paced"] = {
        "rate": paced_rate,
        "frames": paced_frames,
        **{f"{mode}_cpu_us_per_event": run["cpu_us_per_event"] for mode, run in paced.items()},
        **{f"{mode}_lost": run["lost"] for mode, run in paced.items()},
    }
    for mode in MODES:
        key = mode.replace("-", "_")
        out[f"{key}_events_per_s"] = _median([r["events_per_s"] for r in runs[mode]])
        out[f"{key}_cpu_us_per_event"] = _median([r["cpu_us_per_event"] for r in runs[mode]])
        out[f"{key}_runs"] = runs[mode]
    out["worker_lost_median"] = _median([r["lost"] for r in runs["worker"]])
    bare = out["bare_events_per_s"]
    for mode, name in (
        ("worker", "ratio"),
        ("worker_warning", "ratio_log_warning"),
    ):
        value = out[f"{mode}_events_per_s"]
        out[name] = value / bare if value and bare else None
    return out


def growth(events: int, rate: float, env: dict[str, str] | None = None) -> dict[str, Any]:
    """One ``worker`` round of ``events`` paced at ``rate``/s, memory noted every 5%.

    ``samples`` are ``[events handled, RSS MB, Python heap blocks]``; ``env`` is added to
    the receiver's environment (``IMAGE_ENV`` to run as the container does).
    """
    with blast_server() as handle:
        extra = ("--rss-samples", "20")
        run = run_round(handle, "worker", events, rate=rate, extra=extra, env=env)
    samples = run["memory"]
    warm = [mb for n, mb, _ in samples if n >= events // 5]  # after the first 20%
    half = len(samples) // 2
    blocks = [[b for _, _, b in part] for part in (samples[:half], samples[half:])]
    return {
        "events": events,
        "rate": rate,
        "env": env or {},
        "events_handled": run["handled"],
        "lost": run["lost"],
        "cpu_utilisation": run["cpu_utilisation"],
        "cpu_us_per_event": run["cpu_us_per_event"],
        "rss_mb_at_20pct": warm[0] if warm else None,
        "rss_mb_end": samples[-1][1] if samples else None,
        "rss_mb_max": max((mb for _, mb, _ in samples), default=None),
        # The heap's range in each half of the run: a leak moves it up, a plateau does not.
        "heap_blocks_first_half": [min(blocks[0]), max(blocks[0])] if blocks[0] else None,
        "heap_blocks_second_half": [min(blocks[1]), max(blocks[1])] if blocks[1] else None,
        "growth_mb_after_20pct": round(warm[-1] - warm[0], 1) if warm else None,
        "samples": samples,
    }


if __name__ == "__main__":
    _receiver_main()
