"""The rendered Deployment of every org: a leader and a standby, rolled with no gap,
spread, probed, locked down; and the single-replica component."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.deploy._k8s import Manifest, committed_overlays, copy_deploy, only, render
from tests.deploy._tools import ROOT, import_or_fail

DRAIN_DEFAULT_S = 20.0  # WORKER_SHUTDOWN_GRACE_SECONDS when unset


@pytest.fixture(scope="module", params=committed_overlays(), ids=lambda p: p.name)
def rendered(request) -> list[Manifest]:
    return render(request.param)


def _pod(manifests: list[Manifest]) -> Manifest:
    return only(manifests, "Deployment")["spec"]["template"]["spec"]


def _container(manifests: list[Manifest]) -> Manifest:
    [container] = _pod(manifests)["containers"]
    return container


def _config(manifests: list[Manifest]) -> dict[str, str]:
    return only(manifests, "ConfigMap")["data"]


def test_two_replicas_rolled_without_ever_having_fewer_than_two(rendered) -> None:
    spec = only(rendered, "Deployment")["spec"]
    assert spec["replicas"] == 2
    assert spec["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
    }
    assert _config(rendered)["WORKER_LEASE_ENABLED"] == "true"  # one leader among them


def test_a_disruption_budget_keeps_one_of_the_orgs_workers(rendered) -> None:
    pdb = only(rendered, "PodDisruptionBudget")
    deployment = only(rendered, "Deployment")
    assert pdb["spec"]["minAvailable"] == 1
    assert pdb["spec"]["selector"] == deployment["spec"]["selector"]


def test_the_orgs_pods_spread_over_nodes_and_zones(rendered) -> None:
    deployment = only(rendered, "Deployment")
    spread = {c["topologyKey"]: c for c in _pod(rendered)["topologySpreadConstraints"]}
    assert set(spread) == {"kubernetes.io/hostname", "topology.kubernetes.io/zone"}
    assert spread["kubernetes.io/hostname"]["whenUnsatisfiable"] == "DoNotSchedule"
    for constraint in spread.values():
        assert constraint["labelSelector"] == deployment["spec"]["selector"]  # this org only
        assert constraint["matchLabelKeys"] == ["pod-template-hash"]  # per revision


def test_the_single_replica_component_recreates_one_pod_without_a_budget(tmp_path: Path) -> None:
    deploy = copy_deploy(tmp_path)
    overlay = deploy / "orgs" / "org_2example" / "kustomization.yaml"
    overlay.write_text(overlay.read_text() + "\ncomponents:\n  - ../../components/single-replica\n")
    manifests = render(overlay.parent)
    spec = only(manifests, "Deployment")["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"] == {"type": "Recreate"}
    assert not [m for m in manifests if m["kind"] == "PodDisruptionBudget"]
    kv = import_or_fail("kubernetes_validate", "kubernetes-validate")
    kv.validate(only(manifests, "Deployment"), "1.29.0", strict=True)  # type: ignore[attr-defined]


def test_probes_hit_healthz_and_readyz_on_the_metrics_port(rendered) -> None:
    container = _container(rendered)
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
    assert container["startupProbe"]["httpGet"]["path"] == "/healthz"


def test_runs_non_root_read_only_without_capabilities(rendered) -> None:
    pod, container = _pod(rendered), _container(rendered)
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] > 0
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    security = container["securityContext"]
    assert security["runAsNonRoot"] is True
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert pod["automountServiceAccountToken"] is False
    assert only(rendered, "ServiceAccount")["automountServiceAccountToken"] is False


def test_tmp_is_the_only_writable_mount(rendered) -> None:
    pod, container = _pod(rendered), _container(rendered)
    [mount] = [m for m in container["volumeMounts"] if not m.get("readOnly")]
    assert mount["mountPath"] == "/tmp"  # noqa: S108 - the pod's private emptyDir
    [volume] = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    assert "emptyDir" in volume
    others = [v for v in pod["volumes"] if v is not volume]
    assert [list(v) for v in others] == [["name", "projected"]], "only the broker token, read-only"


def test_grace_period_outlasts_the_drain_deadline(rendered) -> None:
    drain_s = float(_config(rendered).get("WORKER_SHUTDOWN_GRACE_SECONDS", DRAIN_DEFAULT_S))
    grace_s = _pod(rendered)["terminationGracePeriodSeconds"]
    # Room after the drain for leaving channels, closing the socket and stopping HTTP.
    assert grace_s >= drain_s + 10, (grace_s, drain_s)


def test_small_resources_with_a_memory_limit(rendered) -> None:
    resources = _container(rendered)["resources"]
    assert set(resources["requests"]) == {"cpu", "memory"}
    assert "memory" in resources["limits"]


def test_metrics_port_agrees_everywhere(rendered) -> None:
    port = int(_config(rendered)["WORKER_HTTP_PORT"])
    [container_port] = _container(rendered)["ports"]
    assert (container_port["name"], container_port["containerPort"]) == ("metrics", port)
    annotations = only(rendered, "Deployment")["spec"]["template"]["metadata"]["annotations"]
    assert annotations == {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": str(port),
        "prometheus.io/path": "/metrics",
    }
    [service_port] = only(rendered, "Service")["spec"]["ports"]
    assert (service_port["name"], service_port["targetPort"]) == ("metrics", "metrics")


def test_config_names_the_org_and_the_worker_holds_no_clerk_secret(rendered) -> None:
    deployment = only(rendered, "Deployment")
    org = deployment["metadata"]["labels"]["org"]
    assert _config(rendered)["ORG_ID"] == org
    container = _container(rendered)
    [config_ref] = container["envFrom"]
    assert config_ref["configMapRef"]["name"] == only(rendered, "ConfigMap")["metadata"]["name"]
    assert "env" not in container, "no Secret reaches the worker"
    assert "CLERK_SECRET_KEY" not in _config(rendered)
    assert "CLERK_SESSION_ID" not in _config(rendered)


def test_the_worker_proves_its_identity_with_a_broker_audience_token(rendered) -> None:
    pod = _pod(rendered)
    assert pod["automountServiceAccountToken"] is False
    assert pod["serviceAccountName"] == only(rendered, "ServiceAccount")["metadata"]["name"]
    [volume] = [v for v in pod["volumes"] if "projected" in v]
    [source] = volume["projected"]["sources"]
    projected = source["serviceAccountToken"]
    assert projected["audience"] == "realtime-worker-broker"
    assert projected["expirationSeconds"] <= 3600
    [mount] = [m for m in _container(rendered)["volumeMounts"] if m["name"] == volume["name"]]
    path = f"{mount['mountPath']}/{projected['path']}"
    assert _config(rendered)["WORKER_TOKEN_BROKER_CREDENTIAL_FILE"] == path
    assert _config(rendered)["WORKER_TOKEN_BROKER_URL"] == "http://realtime-worker-broker:8080"


def test_the_worker_may_reach_only_the_broker_supabase_and_dns(rendered) -> None:
    policy = only(rendered, "NetworkPolicy")
    pod_labels = only(rendered, "Deployment")["spec"]["template"]["metadata"]["labels"]
    selector = policy["spec"]["podSelector"]["matchLabels"]
    assert selector.items() <= pod_labels.items()
    assert selector["org"] == pod_labels["org"], "one org's policy"
    assert policy["spec"]["policyTypes"] == ["Egress"]
    ports = sorted((r["ports"][0]["port"], str(r["to"])) for r in policy["spec"]["egress"])
    assert [p for p, _ in ports] == [53, 443, 8080]
    assert "realtime-worker-broker" in dict(ports)[8080]


def test_pod_user_is_the_image_user(rendered) -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert f"ARG UID={_pod(rendered)['securityContext']['runAsUser']}\n" in dockerfile
