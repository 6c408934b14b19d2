"""deploy/prometheus/rules.yml: valid, unit-tested, every alert documented."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.deploy._tools import DEPLOY, ROOT, import_or_fail, run, run_ok, tool

RULES = DEPLOY / "prometheus" / "rules.yml"
TESTS = sorted((DEPLOY / "prometheus" / "tests").glob("*.yml"))
OPERATIONS = ROOT / "docs" / "operations.md"
REQUIRED_ALERTS = {
    "RealtimeWorkerTokenRefreshFailing",
    "RealtimeWorkerTokenAboutToExpire",
    "RealtimeWorkerClerkSessionEnded",
    "RealtimeWorkerClerkSessionRenewalsFailing",
    "RealtimeWorkerClerkSessionExpiringSoon",
    "RealtimeWorkerChannelNotJoined",
    "RealtimeWorkerJoinsUnauthorized",
    "RealtimeWorkerReconnectStorm",
    "RealtimeWorkerHandlerErrors",
    "RealtimeWorkerDeadLetters",
    "RealtimeWorkerDispatchQueueSaturated",
    "RealtimeWorkerOutboxLagGrowing",
    "RealtimeWorkerDown",
    "RealtimeWorkerNoEventsWhileOutboxAdvances",
    "RealtimeWorkerNoLeader",
    "RealtimeWorkerSeveralLeaders",
}


def load(path: Path) -> Any:
    yaml = import_or_fail("yaml", "pyyaml")
    return yaml.safe_load(path.read_text())  # type: ignore[attr-defined]


def alerts() -> list[dict[str, Any]]:
    return [rule for group in load(RULES)["groups"] for rule in group["rules"] if "alert" in rule]


def github_anchors(markdown: str) -> set[str]:
    """The anchors GitHub gives a document's headings."""
    anchors = set()
    for heading in re.findall(r"^#{1,6}\s+(.+?)\s*$", markdown, flags=re.MULTILINE):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        anchors.add(slug)
    return anchors


def test_promtool_check_rules() -> None:
    out = run_ok([tool("promtool"), "check", "rules", str(RULES)])
    assert f"SUCCESS: {len(alerts())} rules found" in out


def test_promtool_check_rules_rejects_a_broken_expression(tmp_path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text(RULES.read_text().replace("> 0.05", "> > 0.05", 1))
    assert run([tool("promtool"), "check", "rules", str(broken)]).returncode != 0


def test_promtool_unit_tests_pass() -> None:
    assert TESTS, "no rule unit tests in deploy/prometheus/tests"
    out = run_ok([tool("promtool"), "test", "rules", *map(str, TESTS)], timeout=120)
    assert out.count("SUCCESS") == len(TESTS), out


def test_promtool_unit_tests_can_fail(tmp_path) -> None:
    """The same tests against rules whose thresholds were loosened must fail."""
    (tmp_path / "tests").mkdir()
    loosened = RULES.read_text().replace("> 800", "> 400").replace("> 5\n", "> 1\n")
    assert loosened != RULES.read_text()
    (tmp_path / "rules.yml").write_text(loosened)
    for test in TESTS:
        (tmp_path / "tests" / test.name).write_text(test.read_text())
    copies = sorted(str(p) for p in (tmp_path / "tests").glob("*.yml"))
    result = run([tool("promtool"), "test", "rules", *copies])
    assert result.returncode != 0


def test_every_required_alert_exists_once() -> None:
    names = [rule["alert"] for rule in alerts()]
    assert len(names) == len(set(names))
    assert set(names) == REQUIRED_ALERTS


@pytest.mark.parametrize("rule", alerts(), ids=lambda r: r["alert"])
def test_alert_has_severity_and_annotations(rule) -> None:
    assert rule["labels"]["severity"] in {"warning", "critical"}
    annotations = rule["annotations"]
    assert set(annotations) == {"summary", "description", "runbook_url"}
    assert annotations["summary"].strip()
    assert annotations["description"].strip()


@pytest.mark.parametrize("rule", alerts(), ids=lambda r: r["alert"])
def test_runbook_url_points_at_a_section_of_operations_md(rule) -> None:
    assert OPERATIONS.is_file(), "docs/operations.md is missing"
    path, _, anchor = rule["annotations"]["runbook_url"].partition("#")
    assert path == "docs/operations.md"
    assert anchor == rule["alert"].lower()
    assert anchor in github_anchors(OPERATIONS.read_text()), f"no section {rule['alert']}"


def test_every_alert_is_unit_tested_firing_and_not_firing() -> None:
    fired: set[str] = set()
    silent: set[str] = set()
    for path in TESTS:
        doc = load(path)
        assert doc["rule_files"] == ["../rules.yml"], path.name
        for case in doc["tests"]:
            for check in case.get("alert_rule_test", []):
                (fired if check["exp_alerts"] else silent).add(check["alertname"])
    assert fired == REQUIRED_ALERTS, f"never seen firing: {REQUIRED_ALERTS - fired}"
    assert silent == REQUIRED_ALERTS, f"never seen silent: {REQUIRED_ALERTS - silent}"
