"""Rendering the Kustomize overlays with `kubectl kustomize` (offline)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from tests.deploy._tools import DEPLOY, import_or_fail, run_ok, tool

Manifest = dict[str, Any]


def committed_overlays() -> list[Path]:
    return sorted(p for p in (DEPLOY / "orgs").iterdir() if (p / "kustomization.yaml").is_file())


def render(overlay: Path) -> list[Manifest]:
    """The manifests `kubectl kustomize <overlay>` prints."""
    yaml = import_or_fail("yaml", "pyyaml")
    out = run_ok([tool("kubectl"), "kustomize", str(overlay)], timeout=60)
    return [doc for doc in yaml.safe_load_all(out) if doc]  # type: ignore[attr-defined]


def only(manifests: list[Manifest], kind: str) -> Manifest:
    found = [m for m in manifests if m["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def copy_deploy(tmp_path: Path) -> Path:
    """A private copy of deploy/ (new-org writes next to itself)."""
    target = tmp_path / "deploy"
    shutil.copytree(DEPLOY, target)
    return target
