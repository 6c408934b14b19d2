"""deploy/grafana/realtime-worker.json: importable, and every query parses."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.deploy._metrics import EXPORTED
from tests.deploy._tools import DEPLOY, import_or_fail, run, tool

DASHBOARD = DEPLOY / "grafana" / "realtime-worker.json"
# Grafana's variables, replaced by what they expand to, so that promtool can parse.
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h", "$org": ".+"}


def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


def panels() -> list[dict[str, Any]]:
    return [p for p in dashboard()["panels"] if p["type"] != "row"]


def expressions() -> list[str]:
    return [target["expr"] for panel in panels() for target in panel["targets"]]


def as_promql(expr: str) -> str:
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    assert "$" not in expr, f"unknown Grafana variable in {expr}"
    return expr


def check_as_rules(tmp_path, exprs: list[str]) -> Any:
    """promtool check rules on a rules file holding one recording rule per expression."""
    yaml = import_or_fail("yaml", "pyyaml")
    rules = [{"record": f"dashboard:expr_{i}", "expr": as_promql(e)} for i, e in enumerate(exprs)]
    path = tmp_path / "dashboard-rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))  # type: ignore[attr-defined]
    return run([tool("promtool"), "check", "rules", str(path)])


def test_every_query_parses(tmp_path) -> None:
    result = check_as_rules(tmp_path, expressions())
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(expressions())} rules found" in result.stdout


def test_the_parse_check_can_fail(tmp_path) -> None:
    assert check_as_rules(tmp_path, ["sum by (org (up)"]).returncode != 0


def test_importable_dashboard_with_a_datasource_input() -> None:
    dash = dashboard()
    assert 36 <= dash["schemaVersion"] <= 41
    assert dash["uid"] == "realtime-worker"
    assert dash["id"] is None
    [ds_input] = dash["__inputs"]
    assert (ds_input["type"], ds_input["pluginId"]) == ("datasource", "prometheus")
    uid = "${" + ds_input["name"] + "}"
    for panel in panels():
        assert panel["datasource"]["uid"] == uid, panel["title"]
        assert all(t["datasource"]["uid"] == uid for t in panel["targets"]), panel["title"]


def test_org_variable_comes_from_org_info() -> None:
    [org] = dashboard()["templating"]["list"]
    assert org["name"] == "org"
    assert org["definition"] == "label_values(realtime_worker_org_info, org)"
    assert org["query"]["query"] == org["definition"]
    for expr in expressions():
        assert 'org=~"$org"' in expr, f"query ignores the org variable: {expr}"


def test_panel_ids_unique_and_layout_in_bounds() -> None:
    all_panels = dashboard()["panels"]
    ids = [p["id"] for p in all_panels]
    assert len(ids) == len(set(ids))
    for panel in all_panels:
        pos = panel["gridPos"]
        assert pos["x"] + pos["w"] <= 24, panel["title"]
    for panel in panels():
        ref_ids = [t["refId"] for t in panel["targets"]]
        assert ref_ids, panel["title"]
        assert len(ref_ids) == len(set(ref_ids)), panel["title"]


@pytest.mark.parametrize(
    ("topic", "needle"),
    [
        ("token expiry", "realtime_worker_token_expiry_timestamp_seconds"),
        ("refresh outcomes", "realtime_worker_token_refresh_total"),
        ("channel states", "realtime_worker_channel_state"),
        ("channel joins", "realtime_worker_channel_joins_total"),
        ("events received", "realtime_worker_events_received_total"),
        ("events handled", "realtime_worker_events_handled_total"),
        ("events rejected", "realtime_worker_events_rejected_total"),
        ("handler latency", "histogram_quantile(0.95, sum by (org, le) "
                            "(rate(realtime_worker_event_handler_duration_seconds_bucket"),
        ("catch-up", "realtime_worker_events_caught_up_total"),
        ("outbox lag", "realtime_worker_outbox_lag_events"),
        ("reconnects", "realtime_worker_realtime_reconnects_total"),
        ("leader", "realtime_worker_leader{"),
        ("lease renewals", "realtime_worker_lease_renewals_total"),
    ],
)  # fmt: skip
def test_dashboard_shows(topic, needle) -> None:
    assert any(needle in expr for expr in expressions()), f"no panel for {topic}"


def test_every_exported_metric_family_is_on_the_dashboard() -> None:
    shown = " ".join(expressions())
    families = {n.removesuffix("_bucket") for n in EXPORTED if not n.endswith(("_sum", "_count"))}
    missing = sorted(family for family in families if family not in shown)
    # org_info feeds the variable, not a panel.
    assert missing == ["realtime_worker_org_info"], missing
