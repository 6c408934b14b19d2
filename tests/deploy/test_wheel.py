"""The image's install, without Docker: the wheel in a fresh virtual environment.

No Docker engine runs here, so this does what the Dockerfile's two stages do, with the same
pip commands: build the project wheel from the build context that .dockerignore allows
(stage 1, `pip wheel --no-deps`), turn its runtime dependencies into wheels (`pip wheel`,
from the package index through pip's cache), then install only those wheels offline into a
fresh venv (stage 2, `pip install --no-index --find-links --compile`). The installed
`realtime-worker` console script then runs as the container would: outside the source
tree, with only the image's environment, against the local stack.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tomllib
import zipfile
from dataclasses import dataclass
from pathlib import Path

import anyio
import httpx
import pytest

from devstack.stack import Stack
from tests.deploy._tools import ROOT, run_ok
from tests.e2e.conftest import provision, worker_env
from tests.worker.test_readme_testing import readme_example

pytestmark = pytest.mark.timeout(300)  # the first test also builds the wheels (~30 s warm)

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
VERSION = PYPROJECT["project"]["version"]
# The Dockerfile's commands, which the fixture below runs with local paths.
DOCKERFILE_PIP = (
    "pip wheel --no-deps --wheel-dir /wheels .",
    "pip wheel --wheel-dir /wheels /wheels/realtime_worker-*.whl",
    "pip install --no-index --find-links=/wheels --compile /wheels/realtime_worker-*.whl",
)


@dataclass(frozen=True)
class Installed:
    wheel: Path
    venv: Path
    home: Path  # a folder outside the source tree: the container's /tmp

    @property
    def bin(self) -> Path:
        return self.venv / "bin"

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """``realtime-worker ARGS`` from the image's working directory and environment."""
        return subprocess.run(
            [str(self.bin / "realtime-worker"), *args],
            cwd=self.home,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def env(self, **settings: str) -> dict[str, str]:
        """The image's environment (Dockerfile ENV) plus ``settings``; nothing inherited."""
        return {
            "PATH": f"{self.bin}{os.pathsep}/usr/local/bin:/usr/bin:/bin",
            "HOME": str(self.home),
            "TMPDIR": str(self.home),
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONUNBUFFERED": "1",
            "MALLOC_MMAP_THRESHOLD_": "131072",
            "PROMETHEUS_DISABLE_CREATED_SERIES": "True",
            "WORKER_HTTP_PORT": "9464",
            **settings,
        }


def _docker_context(target: Path) -> Path:
    """A copy of what .dockerignore lets into the image's build context."""
    target.mkdir(parents=True)
    allowed = [
        line.strip()[1:].rstrip("/")
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip().startswith("!")
    ]
    for name in allowed:
        source = ROOT / name
        if source.is_dir():
            ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
            shutil.copytree(source, target / name, ignore=ignore)
        else:
            shutil.copy2(source, target / name)
    return target


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    base = tmp_path_factory.mktemp("image")
    context = _docker_context(base / "src")
    wheels = base / "wheels"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    # Stage 1: the project wheel, then every runtime dependency as a wheel.
    run_ok([*pip, "wheel", "--no-deps", "--wheel-dir", str(wheels), "."], cwd=context, timeout=180)
    [wheel] = wheels.glob("realtime_worker-*.whl")
    run_ok([*pip, "wheel", "--wheel-dir", str(wheels), str(wheel)], cwd=base, timeout=240)
    # Stage 2: a fresh environment that gets only those wheels, offline.
    venv = base / "venv"
    run_ok([sys.executable, "-m", "venv", str(venv)], cwd=base, timeout=120)
    install = ["install", "--no-index", f"--find-links={wheels}", "--compile", str(wheel)]
    run_ok([str(venv / "bin" / "python"), "-m", "pip", *install], cwd=base, timeout=180)
    home = base / "home"
    home.mkdir()
    return Installed(wheel=wheel, venv=venv, home=home)


def test_the_fixture_runs_the_dockerfiles_pip_commands() -> None:
    dockerfile = re.sub(r"\s*\\\n\s*", " ", (ROOT / "Dockerfile").read_text())
    for command in DOCKERFILE_PIP:
        assert command in dockerfile, f"the Dockerfile no longer runs {command!r}: update this test"


def test_wheel_holds_the_worker_package_only(installed: Installed) -> None:
    names = zipfile.ZipFile(installed.wheel).namelist()
    top = {name.split("/")[0] for name in names}
    assert top == {"worker", f"realtime_worker-{VERSION}.dist-info"}, sorted(top)
    assert "worker/cli.py" in names
    for absent in ("devstack", "tests", "supabase", "deploy"):
        assert not any(name.startswith(f"{absent}/") for name in names), absent
    assert not any("__pycache__" in name or name.endswith(".pyc") for name in names)


def test_wheel_declares_the_console_script(installed: Installed) -> None:
    with zipfile.ZipFile(installed.wheel) as wheel:
        entry_points = wheel.read(f"realtime_worker-{VERSION}.dist-info/entry_points.txt")
    assert "realtime-worker = worker.cli:main" in entry_points.decode()


def test_fresh_venv_has_the_runtime_dependencies_and_no_dev_ones(installed: Installed) -> None:
    python = str(installed.bin / "python")
    run_ok([python, "-m", "pip", "check"], cwd=installed.home)
    listed = run_ok([python, "-m", "pip", "list", "--format=json"], cwd=installed.home)
    present = {_normalise(p["name"]) for p in json.loads(listed)}
    runtime = {_requirement_name(r) for r in PYPROJECT["project"]["dependencies"]}
    dev = {_requirement_name(r) for r in PYPROJECT["project"]["optional-dependencies"]["dev"]}
    assert runtime <= present, runtime - present
    assert not dev & present, f"dev dependencies in the image: {sorted(dev & present)}"


def test_installed_worker_is_the_wheels_not_the_source_tree(installed: Installed) -> None:
    probe = (
        "import importlib.util, worker\n"
        "print(worker.__file__)\n"
        "print(importlib.util.find_spec('devstack'))\n"
    )
    out = run_ok([str(installed.bin / "python"), "-c", probe], cwd=installed.home)
    location, devstack = out.splitlines()
    assert Path(location).is_relative_to(installed.venv), location
    assert devstack == "None"


def test_console_script_version(installed: Installed) -> None:
    result = installed.cli("--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"realtime-worker {VERSION}"


def test_console_script_reports_missing_settings_with_exit_2(installed: Installed) -> None:
    result = installed.cli("check")
    assert result.returncode == 2, result.stdout + result.stderr
    for variable in ("SUPABASE_URL", "ORG_ID"):
        assert variable in result.stderr


def test_a_handler_test_with_worker_testing_passes_in_the_fresh_venv(
    installed: Installed, tmp_path: Path
) -> None:
    """The README's handler and its pytest file, against the installed wheel only: no
    stack, no source tree. pytest is the user's, so it goes beside the venv, not in it."""
    libs = tmp_path / "user-site"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "install", "--quiet"]
    run_ok([*pip, "--target", str(libs), "pytest"], cwd=tmp_path, timeout=180)
    project = installed.home / "my-handlers"
    project.mkdir()
    for name, body in readme_example().items():
        (project / name).write_text(body)
    done = subprocess.run(
        [str(installed.bin / "python"), "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=project,
        env=installed.env(PYTHONPATH=str(libs)),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 passed" in done.stdout


@pytest.mark.anyio
async def test_console_script_check_passes_against_the_stack(
    installed: Installed, stack: Stack
) -> None:
    org = provision(stack, "Packaged")
    env = installed.env(**worker_env(stack, org))
    with anyio.fail_after(90):
        done = await anyio.run_process(
            [str(installed.bin / "realtime-worker"), "check"],
            cwd=installed.home,
            env=env,
            check=False,
        )
    out = done.stdout.decode() + done.stderr.decode()
    assert done.returncode == 0, out
    assert "all checks passed" in out
    assert stack.env["CLERK_SECRET_KEY"] not in out


@pytest.mark.anyio
async def test_console_script_runs_passes_the_healthcheck_and_stops_on_sigterm(
    installed: Installed, stack: Stack
) -> None:
    org = provision(stack, "Contained")
    port = _free_port()
    env = installed.env(**worker_env(stack, org, WORKER_HTTP_PORT=str(port)))
    command = [str(installed.bin / "realtime-worker"), "run"]  # ENTRYPOINT + CMD
    async with await anyio.open_process(command, cwd=installed.home, env=env) as process:
        try:
            with anyio.fail_after(30):
                while not await _ready(port):
                    assert process.returncode is None, "realtime-worker run exited at start"
                    await anyio.sleep(0.2)  # polling the worker's HTTP port
            healthcheck = _healthcheck_command(installed)
            probe = await anyio.run_process(healthcheck, env=env, cwd=installed.home, check=False)
            assert probe.returncode == 0, probe.stderr.decode()
            process.send_signal(signal.SIGTERM)
            with anyio.fail_after(20):  # WORKER_SHUTDOWN_GRACE_SECONDS=5 plus closing
                code = await process.wait()
        finally:
            if process.returncode is None:
                process.kill()
                with anyio.CancelScope(shield=True):
                    await process.wait()
    assert code == 0


def _healthcheck_command(installed: Installed) -> list[str]:
    """The Dockerfile's HEALTHCHECK CMD, with the venv's python as the image's python."""
    text = re.sub(r"\s*\\\n\s*", " ", (ROOT / "Dockerfile").read_text())
    [line] = [x for x in text.splitlines() if x.startswith("HEALTHCHECK ")]
    command = json.loads(line[line.index(" CMD ") + len(" CMD ") :])
    assert command[0] == "python", command
    return [str(installed.bin / "python"), *command[1:]]


async def _ready(port: int) -> bool:
    try:
        async with httpx.AsyncClient(timeout=2) as http:
            return (await http.get(f"http://127.0.0.1:{port}/readyz")).status_code == 200
    except httpx.TransportError:
        return False


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement_name(requirement: str) -> str:
    match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement)
    assert match, requirement
    return _normalise(match.group())
