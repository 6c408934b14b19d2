"""deploy/new-org: writes a working overlay, validates its input, never overwrites."""

from __future__ import annotations

import json
import runpy
import subprocess
import sys
from pathlib import Path

import pytest

from tests.deploy._k8s import copy_deploy, only, render
from tests.deploy._tools import DEPLOY, run
from worker.broker import overlay


@pytest.fixture
def deploy(tmp_path) -> Path:
    return copy_deploy(tmp_path)


def new_org(deploy: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run([sys.executable, str(deploy / "new-org"), *args])


def test_is_an_executable_python_script() -> None:
    script = DEPLOY / "new-org"
    assert script.read_text().startswith("#!/usr/bin/env python3\n")
    assert script.stat().st_mode & 0o111


def test_writes_an_overlay_with_the_org_settings_and_prints_next_steps(deploy) -> None:
    result = new_org(deploy, "org_2abc", "--session-id", "sess_9xyz", "--topics", "events,tasks")
    assert result.returncode == 0, result.stderr
    overlay = deploy / "orgs" / "org_2abc"
    assert sorted(p.name for p in overlay.iterdir()) == ["kustomization.yaml", "org.env"]
    manifests = render(overlay)
    config = only(manifests, "ConfigMap")["data"]
    assert config["ORG_ID"] == "org_2abc"
    assert config["WORKER_TOPICS"] == "events,tasks"
    assert "CLERK_SECRET_KEY" not in json.dumps(manifests), "the worker holds no Clerk secret"
    assert only(manifests, "Deployment")["metadata"]["name"] == "realtime-worker-org-2abc"
    entry = "system:serviceaccount:realtime-worker:realtime-worker-org-2abc"
    assert entry in result.stdout
    assert only(manifests, "ServiceAccount")["metadata"]["name"] == entry.rsplit(":", 1)[1]
    assert '"session_id": "sess_9xyz"' in result.stdout
    assert "realtime-worker provision --org org_2abc" in result.stdout
    assert "kubectl apply -k deploy/orgs/org_2abc" in result.stdout


def test_namespace_option(deploy) -> None:
    result = new_org(deploy, "org_2abc", "--namespace", "workers")
    assert result.returncode == 0, result.stderr
    manifests = render(deploy / "orgs" / "org_2abc")
    assert {m["metadata"]["namespace"] for m in manifests} == {"workers"}
    assert "system:serviceaccount:workers:realtime-worker-org-2abc" in result.stdout


def test_writes_what_provision_overlay_writes() -> None:
    script = runpy.run_path(str(DEPLOY / "new-org"), run_name="new_org")
    for org in ("org_2abc", "org_2AbC"):
        assert script["render_kustomization"](org, "ns") == overlay.render_kustomization(org, "ns")
        assert script["render_env"](org, ["a", "b"]) == overlay.render_env(org, ["a", "b"])


def test_mixed_case_org_ids_get_distinct_lowercase_names(deploy) -> None:
    for org in ("org_2AbC", "org_2abc"):
        assert new_org(deploy, org, "--session-id", "sess_1").returncode == 0
    upper = only(render(deploy / "orgs" / "org_2AbC"), "Deployment")
    lower = only(render(deploy / "orgs" / "org_2abc"), "Deployment")
    assert upper["metadata"]["name"].startswith("realtime-worker-org-2abc-")
    assert upper["metadata"]["name"] != lower["metadata"]["name"]
    assert upper["metadata"]["labels"]["org"] == "org_2AbC"  # the exact id, for Prometheus


def test_refuses_to_overwrite_an_existing_org(deploy) -> None:
    overlay = deploy / "orgs" / "org_2example"
    before = {p.name: p.read_text() for p in overlay.iterdir()}
    result = new_org(deploy, "org_2example", "--session-id", "sess_other")
    assert result.returncode == 1
    assert "already exists" in result.stderr
    assert {p.name: p.read_text() for p in overlay.iterdir()} == before


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        (["org-2abc", "--session-id", "sess_1"], "ORG_ID"),
        (["org_", "--session-id", "sess_1"], "ORG_ID"),
        (["org_2a/b", "--session-id", "sess_1"], "ORG_ID"),
        (["org_2" + "a" * 60, "--session-id", "sess_1"], "ORG_ID"),
        (["org_2abc", "--session-id", "session"], "--session-id"),
        (["org_2abc", "--user-id", "alice"], "--user-id"),
        (["org_2abc", "--session-id", "sess_1", "--topics", "a b"], "topic"),
        (["org_2abc", "--session-id", "sess_1", "--topics", ","], "--topics"),
        (["org_2abc", "--session-id", "sess_1", "--topics", "a,a"], "twice"),
        (["org_2abc", "--namespace", "Bad_Name"], "--namespace"),
    ],
)
def test_rejects_bad_input_without_writing(deploy, args, complaint) -> None:
    result = new_org(deploy, *args)
    assert result.returncode == 2
    assert complaint in result.stderr
    assert sorted(p.name for p in (deploy / "orgs").iterdir()) == ["org_2example"]
