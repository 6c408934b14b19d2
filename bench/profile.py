"""Where the receive path spends its CPU: py-spy over one throughput round.

``python -m bench.profile [--mode worker] [--frames 40000] [--paced RATE]`` runs one
receiver (see ``bench.throughput``) under ``py-spy record --format raw`` (install it into
the venv with ``.venv/bin/pip install py-spy``), then prints self time grouped by
component and the top functions. Idle samples (the event loop waiting in ``select``) are
excluded.
"""

from __future__ import annotations

import argparse
import collections
import shutil
import sys
import tempfile
from pathlib import Path

from bench import throughput

# A sample belongs to the group of its leaf-most frame that matches any group.
GROUPS = (
    ("client: pydantic frame parsing", ("validate_json",)),
    ("client: debug f-string reprs", ("__repr", "Enum.__repr__")),
    (
        "worker: per-event log line",
        ("log_outcome", "logging/__init__", "worker/observe/logs.py", "json/"),
    ),
    ("worker: prometheus metrics", ("prometheus_client",)),
    (
        "worker: intake, event parsing, dedup ledger",
        ("worker/realtime/intake.py", "worker/events.py", "worker/delivery/"),
    ),
    ("worker: dispatch (anyio scopes, queue)", ("worker/dispatch/", "anyio/")),
    (
        "worker: realtime adapter wrappers",
        ("worker/realtime/adapter.py", "worker/realtime/frames.py", "worker/realtime/channel.py"),
    ),
    ("client: channel routing", ("realtime/_async",)),
    ("websockets + asyncio I/O", ("websockets/", "asyncio/", "selectors.py")),
    ("start-up (imports)", ("importlib", "<frozen")),
)


def _group(frames: list[str]) -> str:
    for frame in reversed(frames):
        for name, needles in GROUPS:
            if any(n in frame for n in needles):
                return name
    return "other"


def summarise(raw: Path, top: int = 15) -> str:
    groups: collections.Counter[str] = collections.Counter()
    leaves: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        if not frames or "select (selectors.py" in frames[-1]:
            continue
        n = int(count)
        total += n
        groups[_group(frames)] += n
        leaves[frames[-1]] += n
    lines = [f"{total} busy samples", "", "self time by component:"]
    lines += [f"  {n / total:6.1%}  {name}" for name, n in groups.most_common()]
    lines += ["", f"top {top} functions (self time):"]
    lines += [f"  {n / total:6.1%}  {name}" for name, n in leaves.most_common(top)]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__)
    parser.add_argument("--mode", choices=throughput.MODES, default="worker")
    parser.add_argument("--frames", type=int, default=40_000)
    parser.add_argument("--rate", type=int, default=250, help="py-spy samples per second")
    parser.add_argument(
        "--paced", type=float, default=0.0, help="frames per second from the server (0: unpaced)"
    )
    args = parser.parse_args()
    pyspy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    if pyspy is None:
        print("py-spy is not installed: .venv/bin/pip install py-spy", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp, throughput.blast_server() as handle:
        raw = Path(tmp) / "profile.txt"
        prefix = [pyspy, "record", "--format", "raw", "-o", str(raw), "--rate", str(args.rate)]
        result = throughput.run_round(
            handle, args.mode, args.frames, rate=args.paced, prefix=[*prefix, "--"]
        )
        print(f"{args.mode}: {result}")
        print(summarise(raw))
    return 0


if __name__ == "__main__":
    sys.exit(main())
