"""A real worker's /metrics against the deploy files' contract.

tests/deploy/_metrics.py lists the metric names the rules and the dashboard may read
(test_metric_names.py checks them against it). Here a worker on the local stack, after
handling events, is scraped: it must export exactly that set, with the declared types,
and every label and label value that a rule or a dashboard query matches on.
"""

from __future__ import annotations

import re
from collections import defaultdict

import pytest
from prometheus_client.parser import text_string_to_metric_families

from devstack.stack import Stack
from tests.deploy._metrics import COUNTERS, EXPORTED, GAUGES, HISTOGRAMS, PREFIX, SCRAPE
from tests.deploy._promql import metric_names
from tests.deploy._worker import scrape
from tests.deploy.test_grafana import expressions
from tests.deploy.test_prometheus_rules import alerts
from tests.e2e.conftest import insert_events, provision, run_worker
from worker.testing import eventually

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(120)]

# Labels Prometheus attaches to the target (PodMonitor / scrape config), not the worker.
TARGET_LABELS = frozenset({"org", "job", "instance"})
_SELECTOR = re.compile(r"([A-Za-z_:][\w:]*)\s*\{([^{}]*)\}")
_MATCHER = re.compile(r'(\w+)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"')

Labels = dict[str, set[str]]


def queries() -> list[str]:
    return [rule["expr"] for rule in alerts()] + expressions()


def exposition_index(text: str) -> tuple[dict[str, str], dict[str, Labels]]:
    """(family name -> type, sample name -> label -> values) of an exposition."""
    types: dict[str, str] = {}
    labels: dict[str, Labels] = defaultdict(lambda: defaultdict(set))
    for family in text_string_to_metric_families(text):
        types[family.name] = family.type
        for sample in family.samples:
            entry = labels[sample.name]
            for label, value in sample.labels.items():
                entry[label].add(value)
    return types, {name: dict(values) for name, values in labels.items()}


def matcher_problems(exprs: list[str], exported: dict[str, Labels]) -> list[str]:
    """Selectors in ``exprs`` that match on a label or a label value never exported."""
    problems = []
    for expr in exprs:
        for name, body in _SELECTOR.findall(expr):
            if name in SCRAPE:
                continue
            for label, op, value in _MATCHER.findall(body):
                if label in TARGET_LABELS:
                    continue
                known = exported.get(name, {}).get(label)
                if known is None:
                    problems.append(f"{name} has no label {label!r} (in {expr!r})")
                    continue
                # A regex of plain alternatives ("error|timeout"): each must exist.
                wanted = value.split("|") if op in {"=~", "!~"} else [value]
                if op in {"=~", "!~"} and not all(re.fullmatch(r"\w+", w) for w in wanted):
                    continue
                problems += [
                    f"{name}{{{label}{op}{value!r}}}: {w!r} is never exported "
                    f"(known: {sorted(known)})"
                    for w in wanted
                    if w not in known
                ]
    return problems


async def test_a_real_worker_exports_exactly_what_the_deploy_files_read(stack: Stack) -> None:
    org = provision(stack, "Exported")
    async with run_worker(stack, org, WORKER_HANDLERS="worker.handlers.log") as worker:
        await insert_events(stack.database_url, org.org_id, 3)

        def handled() -> float:
            labels = {"topic": "events", "result": "success"}
            sample = "realtime_worker_events_handled_total"
            return worker.metrics_registry.get_sample_value(sample, labels) or 0.0

        await eventually(lambda: handled() >= 3, timeout_s=20, message="three events handled")
        text = await scrape(worker)
    types, exported = exposition_index(text)

    names = set(exported)
    assert names == EXPORTED, (
        f"the worker exports, beyond tests/deploy/_metrics.py: {sorted(names - EXPORTED)}; "
        f"listed there but not exported: {sorted(EXPORTED - names)}"
    )
    declared = (
        {PREFIX + n.removesuffix("_total"): "counter" for n in COUNTERS}
        | {PREFIX + n: "gauge" for n in GAUGES}
        | {PREFIX + n: "histogram" for n in HISTOGRAMS}
    )
    assert types == declared

    read = set().union(*(metric_names(q) for q in queries())) - SCRAPE
    assert read <= names, f"read by rules or dashboard, not exported: {sorted(read - names)}"
    problems = matcher_problems(queries(), exported)
    assert not problems, "\n".join(problems)


def test_the_matcher_check_catches_a_misspelt_value() -> None:
    exported: dict[str, Labels] = {
        "realtime_worker_channel_joins_total": {"result": {"ok", "unauthorized"}, "topic": {"e"}}
    }
    good = 'increase(realtime_worker_channel_joins_total{result="unauthorized"}[5m])'
    bad = 'increase(realtime_worker_channel_joins_total{result="unauthorised", kind="x"}[5m])'
    assert matcher_problems([good], exported) == []
    found = matcher_problems([bad], exported)
    assert len(found) == 2, found
    assert any("unauthorised" in p for p in found)
    assert any("no label 'kind'" in p for p in found)
