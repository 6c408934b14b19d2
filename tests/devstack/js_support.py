"""Run ``tests/js/scenario.mjs`` (the official realtime-js client) or another scenario
script there (``storage_scenario.mjs``: storage-js; ``clerk_backend.mjs``: @clerk/backend)
from pytest.

``ensure_installed`` runs ``npm ci`` when ``tests/js/node_modules`` is missing or holds
another version of a pinned package, and fails with the fix when it cannot: a missing
Node toolchain is a failure, never a skip. ``run`` drives one scenario: it reads the
script's JSON lines, hands each ``{"step": ...}`` line to the test (which then acts on
the server side, e.g. inserts a row), acknowledges it with a line on the script's stdin
(scripts that wait for the driver read it; others ignore it) and returns the final
result line.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import pytest
from anyio.streams.buffered import BufferedByteReceiveStream

JS_DIR = Path(__file__).resolve().parents[1] / "js"
SCRIPT = JS_DIR / "scenario.mjs"
STORAGE_SCRIPT = JS_DIR / "storage_scenario.mjs"
CLERK_SCRIPT = JS_DIR / "clerk_backend.mjs"
MODULES = JS_DIR / "node_modules"
NPM_CI_TIMEOUT_S = 300
MAX_LINE_BYTES = 1 << 20

OnStep = Callable[[dict[str, Any]], Awaitable[None]]


def _pinned_versions() -> dict[str, str]:
    manifest = json.loads((JS_DIR / "package.json").read_text(encoding="utf-8"))
    return {name: str(version) for name, version in manifest["dependencies"].items()}


def _installed(name: str) -> str | None:
    package = MODULES / name / "package.json"
    if not package.exists():
        return None
    return str(json.loads(package.read_text(encoding="utf-8"))["version"])


def _installed_versions() -> dict[str, str | None]:
    return {name: _installed(name) for name in _pinned_versions()}


def ensure_installed() -> str:
    """The path of ``node``, after ``npm ci`` in tests/js if needed (fails, never skips)."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.fail("the realtime-js conformance tests need Node >= 20 and npm on PATH")
    if _installed_versions() == _pinned_versions():
        return node
    try:
        done = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"],
            cwd=JS_DIR,
            capture_output=True,
            text=True,
            timeout=NPM_CI_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(
            f"`npm ci --prefix tests/js` did not finish within {NPM_CI_TIMEOUT_S} s: "
            "check access to the npm registry, or run it by hand before the tests"
        )
    if done.returncode != 0 or _installed_versions() != _pinned_versions():
        pytest.fail(
            f"`npm ci --prefix tests/js` failed (exit {done.returncode}); run it by hand to "
            f"see why.\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
        )
    return node


async def _nothing(_line: dict[str, Any]) -> None:
    return None


async def run(
    node: str,
    scenario: str,
    config: dict[str, Any],
    *,
    on_step: OnStep = _nothing,
    timeout_s: float = 45.0,
    script: Path = SCRIPT,
) -> dict[str, Any]:
    """Run one scenario of ``script``; return its result line. A timeout kills Node."""
    env = {**os.environ, "SCENARIO_CONFIG": json.dumps(config)}  # tokens stay out of argv
    with tempfile.TemporaryFile() as stderr:
        async with await anyio.open_process(
            [node, str(script), scenario], cwd=JS_DIR, env=env, stderr=stderr
        ) as proc:
            assert proc.stdout is not None
            lines = BufferedByteReceiveStream(proc.stdout)
            try:
                with anyio.fail_after(timeout_s):
                    return await _follow(proc, lines, on_step)
            except (anyio.IncompleteRead, anyio.EndOfStream) as exc:
                stderr.seek(0)
                raise AssertionError(
                    f"scenario {scenario} ended without a result line; its stderr:\n"
                    f"{stderr.read().decode(errors='replace')[-4000:]}"
                ) from exc


async def _follow(
    proc: anyio.abc.Process, lines: BufferedByteReceiveStream, on_step: OnStep
) -> dict[str, Any]:
    while True:
        line = json.loads(await lines.receive_until(b"\n", MAX_LINE_BYTES))
        if "step" not in line:
            await proc.wait()
            return dict(line)
        await on_step(line)
        if proc.stdin is not None:
            with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
                await proc.stdin.send(b"\n")
