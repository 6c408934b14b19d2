"""Every org overlay renders, validates against the Kubernetes schemas, and is locked down."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.deploy._k8s import Manifest, committed_overlays, copy_deploy, only, render
from tests.deploy._tools import import_or_fail, run_ok

# The oldest and the newest Kubernetes minor versions the manifests must be valid for.
K8S_VERSIONS = ("1.29.0", "1.37.0")
EXPECTED_KINDS = {
    "ServiceAccount",
    "ConfigMap",
    "Service",
    "Deployment",
    "PodDisruptionBudget",
    "PodMonitor",
    "NetworkPolicy",
}
GENERATED_ORG = "org_2GeneratedForTest"


@pytest.fixture(scope="module")
def generated_overlay(tmp_path_factory) -> Path:
    """An overlay written by deploy/new-org into a copy of deploy/."""
    deploy = copy_deploy(tmp_path_factory.mktemp("generated"))
    run_ok([sys.executable, str(deploy / "new-org"), GENERATED_ORG,
            "--topics", "events,tasks,billing"])  # fmt: skip
    return deploy / "orgs" / GENERATED_ORG


@pytest.fixture(scope="module")
def rendered(generated_overlay) -> list[tuple[str, list[Manifest]]]:
    """(org, manifests) of every committed overlay and of the generated one."""
    overlays = [(p.name, p) for p in committed_overlays()] + [(GENERATED_ORG, generated_overlay)]
    return [(org, render(path)) for org, path in overlays]


def test_an_example_org_is_committed() -> None:
    assert [p.name for p in committed_overlays()] == ["org_2example"]


def test_every_overlay_renders_the_expected_objects(rendered) -> None:
    for org, manifests in rendered:
        assert {m["kind"] for m in manifests} == EXPECTED_KINDS, org
        assert not [m for m in manifests if m["kind"] == "Secret"], "a Secret is committed"


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_every_overlay_validates_against_the_kubernetes_schemas(rendered, version) -> None:
    kv = import_or_fail("kubernetes_validate", "kubernetes-validate")
    for org, manifests in rendered:
        for manifest in manifests:
            if manifest["kind"] == "PodMonitor":
                continue  # a CRD: not in the schemas, checked by hand below
            try:
                kv.validate(manifest, version, strict=True)  # type: ignore[attr-defined]
            except kv.ValidationError as exc:  # type: ignore[attr-defined]
                pytest.fail(f"{org} {manifest['kind']} invalid for k8s {version}: {exc.message}")


def test_schema_validation_would_catch_a_mistake() -> None:
    kv = import_or_fail("kubernetes_validate", "kubernetes-validate")
    deployment = only(render(committed_overlays()[0]), "Deployment")
    deployment["spec"]["replicas"] = "one"
    deployment["spec"]["template"]["spec"]["terminationGracePeriod"] = 45
    with pytest.raises(kv.ValidationError):  # type: ignore[attr-defined]
        kv.validate(deployment, K8S_VERSIONS[-1], strict=True)  # type: ignore[attr-defined]


def _check_podmonitor(podmonitor: Manifest, deployment: Manifest) -> None:
    assert podmonitor["apiVersion"] == "monitoring.coreos.com/v1"
    spec = podmonitor["spec"]
    assert set(spec) <= {"jobLabel", "podTargetLabels", "selector", "podMetricsEndpoints"}
    assert spec["jobLabel"] == "app.kubernetes.io/name"
    assert spec["podTargetLabels"] == ["org"]
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert spec["selector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]
    assert pod_labels["app.kubernetes.io/name"] == "realtime-worker"  # the job label's value
    [endpoint] = spec["podMetricsEndpoints"]
    assert endpoint["port"] == "metrics"
    assert endpoint["path"] == "/metrics"
    ports = deployment["spec"]["template"]["spec"]["containers"][0]["ports"]
    assert "metrics" in {p["name"] for p in ports}


def test_podmonitor_shape(rendered) -> None:
    for _, manifests in rendered:
        _check_podmonitor(only(manifests, "PodMonitor"), only(manifests, "Deployment"))


def test_selectors_include_the_org_so_orgs_never_select_each_other(rendered) -> None:
    selected = {}
    for org, manifests in rendered:
        deployment = only(manifests, "Deployment")
        assert deployment["spec"]["selector"]["matchLabels"]["org"] == org
        assert deployment["spec"]["template"]["metadata"]["labels"]["org"] == org
        assert only(manifests, "Service")["spec"]["selector"]["org"] == org
        assert only(manifests, "PodMonitor")["spec"]["selector"]["matchLabels"]["org"] == org
        selected[org] = {m["metadata"]["name"] for m in manifests}
    names = list(selected.values())
    assert not set.intersection(*names), "two orgs render objects with the same name"
