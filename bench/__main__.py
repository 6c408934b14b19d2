"""``python -m bench [--quick | --smoke] [--only NAME ...]``: run, print a table, write JSON.

Sizes: the default is the full run recorded in docs/performance.md (about 11 minutes on
2 cores); ``--quick`` is a couple of minutes; ``--smoke`` only proves every benchmark
runs (``tests/bench``). Benchmarks never fail on slow numbers: a figure is a figure.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import importlib.util
import json
import os
import platform
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import psutil

from bench import stackbench, throughput
from bench.plot import rotation_svg

BENCHES = ("throughput", "latency", "rotation", "footprint", "catchup")
RESULTS = Path(__file__).resolve().parent / "results"

SIZES: dict[str, dict[str, Any]] = {
    "full": {
        "frames": 40_000,
        "rounds": 3,
        "paced_frames": 20_000,
        "latency_rates": [100, 1000],
        "latency_s": 15,
        "max_rates": [1500, 2000, 3000, 4000],
        "max_s": 8,
        "rotation_s": 60,
        "rotation_rate": 1000,
        "topics": [1, 10, 50],
        "idle_s": 10,
        "growth_events": 1_000_000,
        "growth_rate": 5000,
        "gap": 100_000,
    },
    "quick": {
        "frames": 15_000,
        "rounds": 2,
        "paced_frames": 5_000,
        "latency_rates": [100, 1000],
        "latency_s": 5,
        "max_rates": [1500, 2000],
        "max_s": 4,
        "rotation_s": 15,
        "rotation_rate": 1000,
        "topics": [1, 10, 50],
        "idle_s": 3,
        "growth_events": 100_000,
        "growth_rate": 5000,
        "gap": 10_000,
    },
    "smoke": {
        "frames": 2_000,
        "rounds": 1,
        "paced_frames": 1_000,
        "latency_rates": [100, 1000],
        "latency_s": 1,
        "max_rates": [1500],
        "max_s": 1,
        "rotation_s": 3,
        "rotation_rate": 1000,
        "topics": [1, 10],
        "idle_s": 0.5,
        "growth_events": 2_000,
        "growth_rate": 2000,
        "gap": 500,
    },
}


def machine() -> dict[str, Any]:
    cpu_model = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu_model": cpu_model,
        "cores_logical": psutil.cpu_count(logical=True),
        "cores_physical": psutil.cpu_count(logical=False),
        "memory_gb": round(psutil.virtual_memory().total / 1024**3, 1),
        "python": platform.python_version(),
        "os": f"{platform.system()} {platform.release()}",
        "platform": platform.platform(),
        "loadavg_at_start": [round(v, 2) for v in os.getloadavg()],
    }


def _catchup_missing() -> dict[str, Any] | None:
    if importlib.util.find_spec("worker.delivery.catchup") is not None:
        return None
    return {"status": "not available yet", "events_per_s": None}


def _failed(name: str, exc: BaseException) -> dict[str, Any]:
    """A benchmark that broke is reported, not raised: the other figures still count."""
    traceback.print_exception(exc)
    print(f"bench {name} failed: {exc!r}", file=sys.stderr)
    return {"error": repr(exc)}


async def _stack_benches(size: dict[str, Any], only: set[str], db: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    async with stackbench.StackHost(db) as host:
        for name in ("latency", "rotation", "footprint", "catchup"):
            if name in only:
                try:
                    out |= await _stack_bench(name, host, size)
                except Exception as exc:
                    out[name] = _failed(name, exc)
    return out


async def _stack_bench(
    name: str, host: stackbench.StackHost, size: dict[str, Any]
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if name == "latency":
        lat = await stackbench.latency_suite(
            host, size["latency_rates"], size["latency_s"], size["max_rates"], size["max_s"]
        )
        at_1000 = lat["runs"].get("1000", {})
        best = lat.get("max_sustainable") or {}
        out["latency"] = {
            "p50_ms_at_1000": at_1000.get("p50_ms"),
            "p99_ms_at_1000": at_1000.get("p99_ms"),
            "max_ms_at_1000": at_1000.get("max_ms"),
            "max_sustainable_rate": best.get("target_rate"),
            **lat,
        }
    if name == "rotation":
        out["rotation"] = await stackbench.rotation_suite(
            host, size["rotation_rate"], size["rotation_s"]
        )
    if name == "footprint":
        fp = await stackbench.footprint_suite(host, size["topics"], size["idle_s"])
        idle = fp["idle"]
        out["footprint"] = {
            "idle_rss_mb_10_topics": idle.get("10", {}).get("rss_mb"),
            "ready_seconds": idle.get("1", {}).get("ready_seconds"),
            **fp,
        }
    if name == "catchup":
        out["catchup"] = _catchup_missing() or await stackbench.catchup_suite(host, size["gap"])
    return out


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.3g}" if abs(value) < 100 else f"{value:,.0f}"
    return str(value)


def _growth_rows(growth: dict[str, Any] | None, label: str) -> list[tuple[str, str, str]]:
    if not growth or "error" in growth:
        return []
    first, second = growth["heap_blocks_first_half"], growth["heap_blocks_second_half"]
    return [
        (
            "footprint",
            f"RSS over {growth['events']:,} events at {growth['rate']:,.0f}/s ({label}), MB",
            f"{growth['rss_mb_at_20pct']} at 20% -> {growth['rss_mb_end']} "
            f"(max {growth['rss_mb_max']}, handled {growth['events_handled']:,})",
        ),
        (
            "footprint",
            "  heap blocks (min-max), 1st | 2nd half",
            f"{first[0]:,}-{first[1]:,} | {second[0]:,}-{second[1]:,}",
        ),
    ]


def table(all_results: dict[str, Any]) -> str:
    rows: list[tuple[str, str, str]] = []
    results = {}
    for key, value in all_results.items():
        if isinstance(value, dict) and "error" in value:
            rows.append((key, "FAILED", str(value["error"])[:120]))
        else:
            results[key] = value
    tp = results.get("throughput")
    if tp:
        rows += [
            ("throughput", "bare realtime client, events/s", _fmt(tp["bare_events_per_s"])),
            ("throughput", "worker (INFO logs), events/s", _fmt(tp["worker_events_per_s"])),
            ("throughput", "  lost (queue full) per round", _fmt(tp["worker_lost_median"])),
            ("throughput", "ratio worker/bare (target >= 0.85)", _fmt(tp["ratio"])),
            ("throughput", "ratio, WARNING logs", _fmt(tp["ratio_log_warning"])),
            (
                "throughput",
                "CPU us/event bare | worker",
                f"{_fmt(tp['bare_cpu_us_per_event'])} | {_fmt(tp['worker_cpu_us_per_event'])}",
            ),
            (
                "throughput",
                f"paced {tp['paced']['rate']:,.0f}/s: CPU us/event bare | worker",
                f"{_fmt(tp['paced']['bare_cpu_us_per_event'])} | "
                f"{_fmt(tp['paced']['worker_cpu_us_per_event'])}",
            ),
        ]
    lat = results.get("latency")
    if lat:
        for rate, run in lat["runs"].items():
            split = run["split"]
            rows.append(
                (
                    "latency",
                    f"{rate}/s p50 | p99 | max ms",
                    f"{_fmt(run['p50_ms'])} | {_fmt(run['p99_ms'])} | {_fmt(run['max_ms'])}",
                )
            )
            rows.append(
                (
                    "latency",
                    f"  {rate}/s p50 stack | worker part ms",
                    f"{_fmt(split['commit_to_fanout']['p50_ms'])} | "
                    f"{_fmt(split['fanout_to_handler']['p50_ms'])}",
                )
            )
        rows.append(("latency", "max sustainable events/s", _fmt(lat["max_sustainable_rate"])))
    rot = results.get("rotation")
    if rot:
        rows += [
            ("rotation", "events inserted | lost", f"{rot['inserted']} | {rot['events_lost']}"),
            (
                "rotation",
                "rotations | channel closes",
                f"{rot['rotations']} | {rot['channel_closes']}",
            ),
            (
                "rotation",
                "p99 ms during rotation | steady",
                f"{_fmt(rot['during_rotation']['p99_ms'])} | {_fmt(rot['steady']['p99_ms'])}",
            ),
        ]
    fp = results.get("footprint")
    if fp:
        for n, sample in fp["idle"].items():
            rows.append(
                (
                    "footprint",
                    f"idle, {n} topics: RSS MB | CPU % | ready s",
                    f"{sample['rss_mb']} | {sample['cpu_percent']} | {sample['ready_seconds']}",
                )
            )
        for key, label in (("growth", "image malloc"), ("growth_default_malloc", "glibc default")):
            rows += _growth_rows(fp.get(key), label)
    cu = results.get("catchup")
    if cu:
        gap = cu.get("gap_events")
        value = _fmt(cu["events_per_s"]) if cu["events_per_s"] else cu["status"]
        rows.append(("catchup", f"events/s replayed after a {gap or '-'}-event gap", value))
    width = max(len(r[1]) for r in rows) if rows else 10
    lines = [f"{'bench':<11} {'measure':<{width}}  value", "-" * (width + 30)]
    lines += [f"{a:<11} {b:<{width}}  {c}" for a, b, c in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--quick", action="store_true", help="a short run (minutes)")
    group.add_argument("--smoke", action="store_true", help="tiny sizes (tests/bench)")
    parser.add_argument("--only", nargs="+", choices=BENCHES, help="run only these")
    parser.add_argument("--rotation-seconds", type=float, help="token-rotation run length")
    parser.add_argument("--rotation-rate", type=float, help="events/s during the rotation run")
    parser.add_argument("--growth-events", type=int, help="events for the RSS growth run")
    parser.add_argument("--growth-rate", type=float, help="events/s during the growth run")
    parser.add_argument("--database-url", help="a Postgres server to use (default: embedded)")
    parser.add_argument("--out-dir", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    profile = "smoke" if args.smoke else "quick" if args.quick else "full"
    size = dict(SIZES[profile])
    if args.rotation_seconds:
        size["rotation_s"] = args.rotation_seconds
    if args.rotation_rate:
        size["rotation_rate"] = args.rotation_rate
    if args.growth_events:
        size["growth_events"] = args.growth_events
    if args.growth_rate:
        size["growth_rate"] = args.growth_rate
    only = set(args.only or BENCHES)
    started = time.time()
    results: dict[str, Any] = {
        "profile": profile,
        "started_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": " ".join(["python -m bench", *(argv if argv is not None else sys.argv[1:])]),
        "machine": machine(),
        "sizes": size,
    }
    if "throughput" in only:
        try:
            results["throughput"] = throughput.measure(
                size["frames"], size["rounds"], paced_frames=size["paced_frames"]
            )
        except Exception as exc:
            results["throughput"] = _failed("throughput", exc)
    if only & {"latency", "rotation", "footprint", "catchup"}:
        results |= asyncio.run(_stack_benches(size, only, args.database_url))
    if "footprint" in only and "error" not in results.get("footprint", {}):
        # As the container image runs (its malloc setting), then with glibc's defaults.
        for key, env in (("growth", throughput.IMAGE_ENV), ("growth_default_malloc", None)):
            try:
                growth = throughput.growth(size["growth_events"], size["growth_rate"], env)
            except Exception as exc:
                growth = _failed(key, exc)
            results["footprint"][key] = growth
    results["machine"]["loadavg_at_end"] = [round(v, 2) for v in os.getloadavg()]
    results["duration_s"] = round(time.time() - started, 1)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    rot = results.get("rotation")
    if rot and "series" in rot:
        svg = rotation_svg(
            rot["series"],
            rot["rotation_times"],
            f"{rot['target_rate']:.0f} events/s, {rot['token_seconds']} s tokens "
            f"({rot['rotations']} rotations)",
        )
        (args.out_dir / "rotation_latency.svg").write_text(svg)
        rot["plot"] = "rotation_latency.svg"
        rot.pop("series")  # the plot shows it; the raw points would be megabytes
    (args.out_dir / "latest.json").write_text(json.dumps(results, indent=2) + "\n")
    print(table(results))
    print(f"\nwrote {args.out_dir / 'latest.json'} ({results['duration_s']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
