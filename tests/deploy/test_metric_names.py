"""The rules and the dashboard read only metrics the worker exports."""

from __future__ import annotations

import re

import pytest

from tests.deploy._metrics import EXPORTED, SCRAPE
from tests.deploy._promql import metric_names
from tests.deploy.test_grafana import dashboard, expressions
from tests.deploy.test_prometheus_rules import alerts


def test_rules_read_only_exported_metrics() -> None:
    for rule in alerts():
        unknown = metric_names(rule["expr"]) - EXPORTED - SCRAPE
        assert not unknown, f"{rule['alert']} reads unknown metrics {sorted(unknown)}"


def test_dashboard_reads_only_exported_metrics() -> None:
    for expr in expressions():
        unknown = metric_names(expr) - EXPORTED - SCRAPE
        assert not unknown, f"{expr} reads unknown metrics {sorted(unknown)}"
    for variable in dashboard()["templating"]["list"]:
        match = re.fullmatch(r"label_values\((\w+),\s*(\w+)\)", variable["definition"])
        assert match, variable["definition"]
        assert match.group(1) in EXPORTED


def test_no_query_hides_a_name_in_a_matcher() -> None:
    for expr in [*expressions(), *(rule["expr"] for rule in alerts())]:
        assert "__name__" not in expr


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ('sum by (org, le) (rate(a_bucket{org=~"$org", x="b(c)"}[5m]))', {"a_bucket"}),
        ("x - time() < 20 and on (org) group_left (v) y offset 5m", {"x", "y"}),
        ("histogram_quantile(0.95, z) > 1e3 unless w", {"z", "w"}),
        ("label_values(realtime_worker_org_info, org)", {"realtime_worker_org_info", "org"}),
    ],
)
def test_metric_name_extraction(expr, names) -> None:
    assert metric_names(expr) == names


def test_the_name_check_catches_a_typo() -> None:
    assert metric_names("rate(realtime_worker_event_recieved_total[5m])") - EXPORTED
