"""deploy/broker: the token broker renders and validates; two replicas with a disruption
budget and the worker's security context; only worker pods reach it; the Clerk secret
comes from an uncommitted Secret; its orgs file maps the example org's ServiceAccount."""

from __future__ import annotations

import json

import pytest

from tests.deploy._k8s import Manifest, committed_overlays, only, render
from tests.deploy._tools import DEPLOY, import_or_fail
from tests.deploy.test_kustomize import K8S_VERSIONS
from worker.broker.orgs import parse_orgs


@pytest.fixture(scope="module")
def broker() -> list[Manifest]:
    return render(DEPLOY / "broker")


def _pod(manifests: list[Manifest]) -> Manifest:
    return only(manifests, "Deployment")["spec"]["template"]["spec"]


def test_renders_the_broker_objects_and_no_secret(broker) -> None:
    kinds = sorted(m["kind"] for m in broker)
    assert kinds == sorted(["ServiceAccount", "ConfigMap", "ConfigMap", "Service",
                            "Deployment", "PodDisruptionBudget", "NetworkPolicy"])  # fmt: skip
    assert "sk_live_" not in json.dumps(broker)
    assert "sk_test_" not in json.dumps(broker)


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_validates_against_the_kubernetes_schemas(broker, version) -> None:
    kv = import_or_fail("kubernetes_validate", "kubernetes-validate")
    for manifest in broker:
        kv.validate(manifest, version, strict=True)  # type: ignore[attr-defined]


def test_two_replicas_a_disruption_budget_and_the_workers_security_context(broker) -> None:
    deployment = only(broker, "Deployment")
    assert deployment["spec"]["replicas"] == 2
    pdb = only(broker, "PodDisruptionBudget")["spec"]
    assert pdb["minAvailable"] == 1
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert pdb["selector"]["matchLabels"].items() <= pod_labels.items()
    worker_pod = _pod(render(committed_overlays()[0]))
    assert _pod(broker)["securityContext"] == worker_pod["securityContext"]
    [container] = _pod(broker)["containers"]
    assert container["securityContext"] == worker_pod["containers"][0]["securityContext"]
    assert container["args"] == ["broker"]


def test_the_clerk_secret_key_comes_from_an_uncommitted_secret(broker) -> None:
    [container] = _pod(broker)["containers"]
    [env] = container["env"]
    assert env["name"] == "CLERK_SECRET_KEY"
    assert env["valueFrom"]["secretKeyRef"]["name"] == "realtime-worker-broker-clerk"


def test_only_worker_pods_reach_the_broker(broker) -> None:
    policy = only(broker, "NetworkPolicy")["spec"]
    assert set(policy["policyTypes"]) == {"Ingress", "Egress"}
    peers = [peer for rule in policy["ingress"] for peer in rule["from"]]
    workers = peers[0]["podSelector"]["matchExpressions"]
    assert {(e["key"], tuple(e["values"])) for e in workers} == {
        ("app.kubernetes.io/name", ("realtime-worker",)),
        ("app.kubernetes.io/component", ("worker",)),
    }
    assert all(rule["ports"] == [{"port": 8080, "protocol": "TCP"}] for rule in policy["ingress"])


def test_the_orgs_file_maps_the_example_orgs_service_account(broker) -> None:
    orgs_map = next(m for m in broker if "orgs.json" in m.get("data", {}))
    orgs = parse_orgs(json.loads(orgs_map["data"]["orgs.json"]))
    example = render(committed_overlays()[0])
    sa = only(example, "ServiceAccount")["metadata"]
    subject = f"system:serviceaccount:{sa['namespace']}:{sa['name']}"
    entry = orgs.for_service_account(subject)
    assert entry is not None
    assert entry.org_id == only(example, "Deployment")["metadata"]["labels"]["org"]
