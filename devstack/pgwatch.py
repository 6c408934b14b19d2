"""The embedded Postgres' watchdog: the server dies with the process that started it.

``Watchdog(root)`` (used by ``devstack.postgres.EmbeddedPostgres``) runs this very file as
a small process of its own (standard library only: it starts fast and needs no import
path), passing the read end of a pipe whose write end only the owner holds, and the
server's private directory. The process blocks on that pipe. ``release()``, called when
the owner stops the server itself, writes one byte first: the process just exits. End of
file means the owner is gone without stopping it (SIGKILL, a crash): the process asks the
postmaster (read from ``data/postmaster.pid``) for a fast shutdown, escalating to an
immediate one and then SIGKILL, waits until it has exited, and removes the directory (data
and binaries), so nothing is left running, or locked, for the next run.

A pipe rather than ``PR_SET_PDEATHSIG``: that signal fires when the *thread* that started
the child ends, and the stack starts Postgres from a worker thread.
"""

from __future__ import annotations

import contextlib
import os
import select
import shutil
import signal
import subprocess
import sys
from pathlib import Path

RELEASE_TIMEOUT_S = 10.0

# Fast shutdown (disconnect clients, remove the pid file), then immediate, then kill.
ESCALATION = ((signal.SIGINT, 10.0), (signal.SIGQUIT, 5.0), (signal.SIGKILL, 5.0))


class Watchdog:
    """The owner's side: watches ``root``'s server from now until ``release()``.

    Needs pidfds (Linux); elsewhere it does nothing and only the owner stops the server.
    """

    def __init__(self, root: Path) -> None:
        self._proc: subprocess.Popen[bytes] | None = None
        self._write = -1
        if not hasattr(os, "pidfd_open"):
            return
        read, self._write = os.pipe()  # both ends non-inheritable: no other child holds them
        try:
            self._proc = subprocess.Popen(  # noqa: S603 - our own interpreter and file
                [sys.executable, "-I", __file__, str(read), str(root)],
                pass_fds=(read,),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                start_new_session=True,  # a Ctrl-C to the terminal's group is the owner's
            )
        finally:
            os.close(read)

    def release(self) -> None:
        """The owner has stopped the server: let the watchdog exit, and reap it. Idempotent."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        with contextlib.suppress(OSError):  # it may be gone already
            os.write(self._write, b"x")
        os.close(self._write)
        try:
            proc.wait(RELEASE_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main(argv: list[str]) -> int:
    """The watchdog process: ``pgwatch.py <read fd> <root>``."""
    fd, root = int(argv[1]), Path(argv[2])
    if os.read(fd, 1):  # the owner stopped the server itself
        return 0
    pid = _postmaster(root)
    if pid is not None:
        _stop(pid)
    shutil.rmtree(root, ignore_errors=True)
    return 0


def _postmaster(root: Path) -> int | None:
    try:  # the postmaster removes this file when it exits: a pid read here is still its own
        return int((root / "data" / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _stop(pid: int) -> None:
    try:
        pidfd = os.pidfd_open(pid)  # waitable although not our child, and immune to pid reuse
    except ProcessLookupError:
        return
    try:
        for sig, wait_s in ESCALATION:
            try:
                signal.pidfd_send_signal(pidfd, sig)
            except ProcessLookupError:
                return
            if select.select([pidfd], [], [], wait_s)[0]:  # readable once it has exited
                return
    finally:
        os.close(pidfd)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
