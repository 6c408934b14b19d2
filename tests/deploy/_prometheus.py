"""A real Prometheus server on loopback for one test, and its HTTP API.

``.tools/bin/prometheus`` (from Debian's package, put there by scripts/install-tools) runs
with a temporary config and data dir, scraping one target as ``job="realtime-worker"``
with an ``org`` target label, the way the PodMonitor labels a pod. It is always stopped:
SIGTERM, a bounded wait, then SIGKILL.
"""

from __future__ import annotations

import json
import signal
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
from anyio.abc import Process

from tests.deploy._tools import tool
from tests.deploy._worker import until

JOB = "realtime-worker"  # what the rules select (up{job="realtime-worker"})
START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 10.0


def tail(log: Path, chars: int = 4000) -> str:
    """The end of Prometheus's log, for failure messages."""
    return log.read_text(errors="replace")[-chars:]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Prometheus:
    """The HTTP API of a running server."""

    def __init__(self, url: str, http: httpx.AsyncClient, log: Path) -> None:
        self.url = url
        self.http = http
        self.log = log
        #: The exit status once stopped: 0 after a clean SIGTERM shutdown, -9 if killed.
        self.returncode: int | None = None

    async def _get(self, path: str, **params: str) -> Any:
        response = await self.http.get(f"{self.url}{path}", params=params)
        body = response.json()
        assert body.get("status") == "success", f"{path} {params}: {body}"
        return body["data"]

    async def query(self, promql: str) -> list[dict[str, Any]]:
        """The instant vector ``promql`` evaluates to now (``/api/v1/query``)."""
        data = await self._get("/api/v1/query", query=promql)
        assert data["resultType"] == "vector", data
        return list(data["result"])

    async def value(self, promql: str) -> float | None:
        """The value of a query that yields at most one series (None: no series)."""
        result = await self.query(promql)
        assert len(result) <= 1, f"{promql} gave {len(result)} series: {result}"
        return float(result[0]["value"][1]) if result else None

    async def alerts(self) -> list[dict[str, Any]]:
        """Pending and firing alerts (``/api/v1/alerts``)."""
        return list((await self._get("/api/v1/alerts"))["alerts"])

    async def rules(self) -> list[dict[str, Any]]:
        """Every loaded rule (``/api/v1/rules``), flattened over the groups."""
        groups = (await self._get("/api/v1/rules"))["groups"]
        return [rule for group in groups for rule in group["rules"]]

    async def label_values(self, label: str, match: str) -> list[str]:
        return list(await self._get(f"/api/v1/label/{label}/values", **{"match[]": match}))

    async def targets(self) -> list[dict[str, Any]]:
        return list((await self._get("/api/v1/targets"))["activeTargets"])


def write_config(folder: Path, *, target: str, org: str, rules: Path) -> Path:
    """A prometheus.yml (JSON is YAML) with 1 s scrapes and rule evaluation."""
    config = {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(rules)],
        "scrape_configs": [
            {
                "job_name": JOB,
                "metrics_path": "/metrics",
                "static_configs": [{"targets": [target], "labels": {"org": org}}],
            }
        ],
    }
    path = folder / "prometheus.yml"
    path.write_text(json.dumps(config, indent=2))
    return path


@asynccontextmanager
async def prometheus_server(
    folder: Path, *, target: str, org: str, rules: Path
) -> AsyncIterator[Prometheus]:
    """Run Prometheus scraping ``target`` until the block ends; its API once ready."""
    binary = tool("prometheus")  # fails naming scripts/install-tools when missing
    config = write_config(folder, target=target, org=org, rules=rules)
    port = _free_port()
    log = folder / "prometheus.log"
    args = [
        binary,
        f"--config.file={config}",
        f"--storage.tsdb.path={folder / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--log.level=info",
    ]
    url = f"http://127.0.0.1:{port}"
    server: Prometheus | None = None
    with log.open("wb") as log_file:
        process = await anyio.open_process(args, stdin=None, stdout=log_file, stderr=log_file)
        try:
            async with httpx.AsyncClient(timeout=5) as http:
                await _wait_ready(process, http, url, log)
                server = Prometheus(url, http, log)
                yield server
        finally:
            with anyio.CancelScope(shield=True):
                await _stop(process)
    if server is not None:
        server.returncode = process.returncode


async def _wait_ready(process: Process, http: httpx.AsyncClient, url: str, log: Path) -> None:
    async def ready() -> bool:
        if process.returncode is not None:
            raise AssertionError(f"prometheus exited {process.returncode} at start:\n{tail(log)}")
        try:
            return (await http.get(f"{url}/-/ready")).status_code == 200
        except httpx.TransportError:
            return False

    try:
        await until(ready, START_TIMEOUT_S, "prometheus /-/ready")
    except AssertionError as exc:
        raise AssertionError(f"{exc}\nprometheus log:\n{tail(log)}") from None


async def _stop(process: Process) -> None:
    """SIGTERM, wait up to STOP_TIMEOUT_S, then SIGKILL: never leave it running."""
    if process.returncode is None:
        process.send_signal(signal.SIGTERM)
        with anyio.move_on_after(STOP_TIMEOUT_S):
            await process.wait()
    if process.returncode is None:
        process.kill()
        await process.wait()
    await process.aclose()
