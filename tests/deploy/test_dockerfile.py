"""The container image definition: hadolint-clean and shaped for a locked-down pod."""

from __future__ import annotations

import json
import re

from tests.deploy._tools import ROOT, run, tool

DOCKERFILE = ROOT / "Dockerfile"


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    pairs = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            word, _, rest = stripped.partition(" ")
            pairs.append((word.upper(), rest.strip()))
    return pairs


def _final_stage() -> list[tuple[str, str]]:
    instructions = _instructions()
    last_from = max(i for i, (word, _) in enumerate(instructions) if word == "FROM")
    return instructions[last_from:]


def test_hadolint_passes() -> None:
    result = run([tool("hadolint"), "--no-color", str(DOCKERFILE)])
    assert result.returncode == 0, f"hadolint findings:\n{result.stdout}{result.stderr}"


def test_hadolint_would_catch_a_bad_dockerfile(tmp_path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get install curl\nCMD realtime-worker run\n")
    result = run([tool("hadolint"), "--no-color", str(bad)])
    assert result.returncode != 0
    assert "DL3007" in result.stdout  # :latest


def test_two_stages_on_slim_python_311() -> None:
    froms = [args for word, args in _instructions() if word == "FROM"]
    assert len(froms) == 2
    assert all(re.match(r"python:3\.11-slim(-\w+)?\b", f) for f in froms), froms


def test_final_stage_installs_only_the_built_wheels() -> None:
    final = _final_stage()
    assert not any(word in {"COPY", "ADD"} for word, _ in final), "final stage copies sources"
    runs = " ".join(args for word, args in final if word == "RUN")
    assert "from=build" in runs
    assert "--no-index" in runs
    assert "realtime_worker-" in runs
    assert ".[dev]" not in runs
    assert "devstack" not in runs


def test_final_stage_runs_as_a_numeric_non_root_user() -> None:
    final = _final_stage()
    users = [args for word, args in final if word == "USER"]
    assert users, "no USER in the final stage"
    args = {a.split("=")[0]: a.split("=")[1] for w, a in final if w == "ARG" and "=" in a}
    uid = users[-1].split(":")[0]
    uid = args.get(uid.strip("${}"), uid)
    assert uid.isdigit(), f"USER {users[-1]} is not numeric"
    assert int(uid) > 0


def test_read_only_root_friendly_environment() -> None:
    env = " ".join(args for word, args in _final_stage() if word == "ENV")
    assert "PYTHONDONTWRITEBYTECODE=1" in env
    assert "HOME=/tmp" in env
    assert "TMPDIR=/tmp" in env


def test_exposes_the_metrics_port_with_a_healthcheck_and_exec_form_entrypoint() -> None:
    final = dict(_final_stage())
    assert final["EXPOSE"] == "9464"
    health = final["HEALTHCHECK"]
    assert "/healthz" in health
    assert "urllib.request" in health
    assert "curl" not in health
    cmd_json = health[health.index("CMD") + 3 :].strip()
    assert json.loads(cmd_json)[0] == "python"
    assert json.loads(final["ENTRYPOINT"]) == ["realtime-worker"]
    assert json.loads(final["CMD"]) == ["run"]


def test_dockerignore_allows_only_what_the_wheel_needs() -> None:
    lines = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[0] == "*", "the context must start from nothing (allow-list)"
    allowed = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    assert allowed == {"pyproject.toml", "README.md", "worker"}
