"""``python -m bench --smoke``: every benchmark runs end to end with tiny sizes.

Only shape and sanity are asserted, never timing targets: benchmarks must not fail on a
slow or busy machine.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.plot import rotation_svg
from bench.stats import percentile, summary_ms
from bench.throughput import IMAGE_ENV
from devstack.postgres import Server

ROOT = Path(__file__).resolve().parents[2]


def test_the_growth_run_uses_the_container_images_malloc_setting() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    for name, value in IMAGE_ENV.items():
        assert f"{name}={value}" in dockerfile


def test_percentiles_are_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50
    assert percentile(values, 99) == 99
    assert percentile([], 50) is None
    assert summary_ms([0.001, 0.002, 0.003]) == {
        "count": 3,
        "p50_ms": 2.0,
        "p99_ms": 3.0,
        "max_ms": 3.0,
    }


def test_the_rotation_plot_is_an_svg_with_a_line_per_rotation() -> None:
    svg = rotation_svg([[0.0, 2.0], [0.5, 3.0], [1.2, 9.0]], [0.4, 1.0], "title <&>")
    assert svg.startswith("<svg")
    assert svg.rstrip().endswith("</svg>")
    assert svg.count('stroke-dasharray="4,3"') == 2
    assert "title &lt;&amp;&gt;" in svg


@pytest.mark.timeout(300)
def test_every_benchmark_runs_and_writes_the_json_keys(pg_server: Server, tmp_path: Path) -> None:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "--smoke",
            "--database-url",
            pg_server.admin_url,
            "--out-dir",
            str(tmp_path),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "throughput" in out.stdout
    results = json.loads((tmp_path / "latest.json").read_text())
    machine = results["machine"]
    assert machine["cores_logical"] >= 1
    assert machine["memory_gb"] > 0
    assert machine["python"].startswith("3.")
    assert machine["cpu_model"] is not None
    assert machine["os"]

    tp = results["throughput"]
    assert tp["bare_events_per_s"] > 0
    assert tp["ratio"] is not None
    assert tp["ratio"] > 0  # the worker completes the run: nothing is lost on the way
    assert tp["paced"]["bare_cpu_us_per_event"] > 0
    assert tp["paced"]["worker_cpu_us_per_event"] > 0

    lat = results["latency"]
    for key in ("p50_ms_at_1000", "p99_ms_at_1000"):
        assert lat[key] is not None
        assert lat[key] >= 0
    assert lat["p50_ms_at_1000"] <= lat["p99_ms_at_1000"] <= lat["max_ms_at_1000"]
    assert lat["runs"]["100"]["inserted"] == 100
    # the stack host times fan-outs through a private devstack function: keep it working
    assert lat["runs"]["100"]["split"]["fanout_to_handler"]["count"] > 0

    rot = results["rotation"]
    assert rot["inserted"] > 0
    assert 0 <= rot["events_lost"] <= rot["inserted"]
    assert rot["channel_closes"] >= 0
    assert (tmp_path / "rotation_latency.svg").read_text().startswith("<svg")

    fp = results["footprint"]
    assert 10 < fp["idle_rss_mb_10_topics"] < 1000
    assert 0 < fp["ready_seconds"] < 60
    for key, env in (("growth", IMAGE_ENV), ("growth_default_malloc", {})):
        growth = fp[key]
        assert growth["env"] == env
        assert growth["events"] == results["sizes"]["growth_events"]
        assert growth["events_handled"] + growth["lost"] == growth["events"]
        assert len(growth["samples"]) == 20  # RSS noted every 5% of the events
        assert all(10 < mb < 1000 and blocks > 0 for _, mb, blocks in growth["samples"])

    cu = results["catchup"]
    assert cu["status"] in ("measured", "not available yet")
    if cu["status"] == "measured":
        assert cu["handled"] + cu["events_lost"] == cu["gap_events"]
