"""Finding the external tools the deploy tests need, and running them.

A missing tool fails the test loudly (never a skip): `scripts/install-tools` installs
every one of them.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
INSTALL_HINT = "run scripts/install-tools (it installs promtool, hadolint and checks kubectl)"
# Where scripts/install-tools puts tools, searched before PATH.
_TOOL_DIRS = (ROOT / ".tools" / "bin", Path(sys.executable).parent)


def tool(name: str) -> str:
    """The path of the executable ``name``, or a failed test that says how to get it."""
    for folder in _TOOL_DIRS:
        candidate = folder / name
        if candidate.is_file():
            return str(candidate)
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed: {INSTALL_HINT}", pytrace=False)
    return found


def run(
    args: list[str], *, timeout: float = 60, cwd: Path = ROOT
) -> subprocess.CompletedProcess[str]:
    """Run a command and return its result whatever its exit status (callers assert)."""
    try:
        return subprocess.run(
            args, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"{args[0]} did not finish within {timeout} s", pytrace=False)
        raise AssertionError from exc  # unreachable: pytest.fail raises


def run_ok(args: list[str], *, timeout: float = 60, cwd: Path = ROOT) -> str:
    """Run a command that must succeed; its stdout."""
    result = run(args, timeout=timeout, cwd=cwd)
    assert result.returncode == 0, (
        f"{' '.join(args)} exited {result.returncode}\n"
        f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    )
    return result.stdout


def import_or_fail(module: str, package: str) -> object:
    """Import a test-only Python dependency, or fail naming the install step."""
    try:
        return __import__(module)
    except ImportError:
        pytest.fail(f"the Python package {package} is missing: {INSTALL_HINT}", pytrace=False)
