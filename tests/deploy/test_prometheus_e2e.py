"""A real Prometheus scrapes a real worker on the local stack; the token alert fires.

Prometheus (``.tools/bin/prometheus``, Debian's package via scripts/install-tools) runs on
loopback with 1 s scrapes and rule evaluation, the committed ``deploy/prometheus/rules.yml``
loaded, and the worker as its one ``job="realtime-worker"`` target with an ``org`` target
label. Everything is asserted through Prometheus's HTTP API.

Only in this test, and only for RealtimeWorkerTokenAboutToExpire, the rules file is a copy
whose ``for:`` is shortened from the production hold (1m) to ``TEST_FOR``, so that the
alert fires within seconds; its expression and every other rule are the committed ones.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from devstack.stack import Stack
from tests.deploy._metrics import EXPORTED, PREFIX
from tests.deploy._prometheus import JOB, Prometheus, prometheus_server, tail
from tests.deploy._tools import DEPLOY, import_or_fail, tool
from tests.deploy._worker import until
from tests.deploy.test_grafana import expressions
from tests.e2e.conftest import Org, provision, run_worker
from worker import __version__

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(120)]

RULES = DEPLOY / "prometheus" / "rules.yml"
ALERT = "RealtimeWorkerTokenAboutToExpire"
TEST_FOR = "5s"
# 30 s tokens refreshed 24 s (plus up to 3 s of jitter) before exp: a healthy worker's
# time to expiry stays above ~23 s, clear of the alert's 20 s threshold, so even the
# shortened hold never goes pending while refreshes succeed. (Production's 60 s tokens
# with a 15 s margin dip below 20 s for a few seconds each cycle; `for: 1m` absorbs that.)
TOKEN_ENV = {"CLERK_TOKEN_EXPIRES_IN_SECONDS": "30", "WORKER_TOKEN_REFRESH_MARGIN_SECONDS": "24"}
# What Grafana would put in for its variables, sized for 1 s scrapes.
RATE_INTERVAL = "10s"


def rules_for_test(folder: Path) -> Path:
    """A copy of rules.yml with ALERT's ``for:`` shortened to TEST_FOR (test only)."""
    yaml = import_or_fail("yaml", "pyyaml")
    doc = yaml.safe_load(RULES.read_text())  # type: ignore[attr-defined]
    [rule] = [r for g in doc["groups"] for r in g["rules"] if r.get("alert") == ALERT]
    assert "for" in rule, f"{ALERT} has no for: in rules.yml"
    rule["for"] = TEST_FOR
    path = folder / "rules.yml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))  # type: ignore[attr-defined]
    return path


async def test_prometheus_scrapes_the_worker_and_fires_the_token_alert(
    stack: Stack, tmp_path: Path
) -> None:
    tool("prometheus")  # a missing binary fails here, naming scripts/install-tools
    org = provision(stack, "Observed")
    rules = rules_for_test(tmp_path)
    # CLERK_USER_ID: the worker keeps its session (the given one), so the session series
    # the dashboard reads have data too.
    env = TOKEN_ENV | {"CLERK_USER_ID": org.user_id}
    async with run_worker(stack, org, WORKER_HANDLERS="worker.handlers.log", **env) as worker:
        target = f"127.0.0.1:{worker.http_port}"
        async with prometheus_server(tmp_path, target=target, org=org.org_id, rules=rules) as prom:
            try:
                await _series_arrive(prom, org)
                await _dashboard_queries_return_data(prom, org)
                await _healthy_worker_raises_no_alert(prom, org)
                stack.clerk.fail_next_tokens(1000, 503)
                await _token_alert_fires(prom, org)
            finally:
                stack.clerk.clear_faults()
    assert prom.returncode == 0, f"prometheus did not stop on SIGTERM:\n{tail(prom.log)}"


def _sel(org: Org, **labels: str) -> str:
    pairs = {"job": JOB, "org": org.org_id, **labels}
    return "{" + ", ".join(f'{k}="{v}"' for k, v in pairs.items()) + "}"


async def _series_arrive(prom: Prometheus, org: Org) -> None:
    sel = _sel(org)

    async def up() -> bool:
        return await prom.value(f"up{sel}") == 1

    await until(up, 15, f"up{sel} == 1")
    [target] = await prom.targets()
    assert target["labels"]["org"] == org.org_id
    assert target["health"] == "up", target

    expiry = await prom.value(f"realtime_worker_token_expiry_timestamp_seconds{sel}")
    assert expiry is not None
    assert 0 < expiry - time.time() <= 31, expiry - time.time()
    assert await prom.value(f"realtime_worker_channels_joined{sel}") == 1
    assert await prom.value(f"realtime_worker_realtime_connected{sel}") == 1
    joined = _sel(org, topic="events", state="joined")
    assert await prom.value(f"realtime_worker_channel_state{joined}") == 1
    success = _sel(org, result="success")
    assert (await prom.value(f"realtime_worker_token_refresh_total{success}") or 0) >= 1
    build = _sel(org, version=__version__)
    assert await prom.value(f"realtime_worker_build_info{build}") == 1
    # The worker's own org label yields to the target label, kept as exported_org.
    own = _sel(org, exported_org=org.org_id)
    assert await prom.value(f"realtime_worker_org_info{own}") == 1
    # The dashboard's org variable: label_values(realtime_worker_org_info, org).
    assert await prom.label_values("org", "realtime_worker_org_info") == [org.org_id]
    # Every name the worker exports arrived, and no other.
    names = await prom.label_values("__name__", f'{{job="{JOB}"}}')
    assert {n for n in names if n.startswith(PREFIX)} == EXPORTED


async def _dashboard_queries_return_data(prom: Prometheus, org: Org) -> None:
    """Every dashboard query, with Grafana's variables filled in, returns series."""
    queries = [
        expr.replace("$org", re.escape(org.org_id)).replace("$__rate_interval", RATE_INTERVAL)
        for expr in expressions()
    ]
    assert all("$" not in q for q in queries), queries

    async def empty() -> list[str] | None:
        missing = [q for q in queries if not await prom.query(q)]
        return missing or None

    async def all_answer() -> bool:
        return await empty() is None

    try:
        await until(all_answer, 20, "every dashboard query to return data")
    except AssertionError:
        pytest.fail(f"dashboard queries without data: {await empty()}")


async def _healthy_worker_raises_no_alert(prom: Prometheus, org: Org) -> None:
    loaded = {rule["name"]: rule for rule in await prom.rules() if rule["type"] == "alerting"}
    assert loaded[ALERT]["duration"] == 5, loaded[ALERT]  # the test copy is in force
    expiry = f"realtime_worker_token_expiry_timestamp_seconds{_sel(org)}"

    async def refreshed() -> bool:
        return (await prom.value(f"changes({expiry}[1m])") or 0) >= 1

    # At least one refresh cycle seen by Prometheus, rules evaluated all along.
    await until(refreshed, 20, "a token refresh seen by prometheus")
    assert await prom.alerts() == []
    assert await prom.query("count_over_time(ALERTS[5m])") == [], "an alert went pending"


async def _token_alert_fires(prom: Prometheus, org: Org) -> None:
    failed = _sel(org, result="http_error")

    async def failing() -> bool:
        return (await prom.value(f"realtime_worker_token_refresh_total{failed}") or 0) > 0

    await until(failing, 15, "a failed refresh (503 from Clerk) seen by prometheus")

    async def firing() -> list[dict[str, object]]:
        return [
            a
            for a in await prom.alerts()
            if a["labels"]["alertname"] == ALERT and a["state"] == "firing"
        ]

    [alert] = await until(firing, 40, f"{ALERT} firing")
    labels = alert["labels"]
    assert isinstance(labels, dict)
    assert (labels["org"], labels["job"], labels["severity"]) == (org.org_id, JOB, "critical")
    assert float(str(alert["value"])) < 20  # seconds left on the unrenewed token
    annotations = alert["annotations"]
    assert isinstance(annotations, dict)
    assert org.org_id in annotations["summary"]
    assert annotations["runbook_url"] == "docs/operations.md#realtimeworkertokenabouttoexpire"
