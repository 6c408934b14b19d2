"""Helpers of the broker suite: the Kubernetes issuer stand-in served, orgs files,
in-process brokers, a round-robin balancer (a Service in front of broker replicas), and
workers of an org that get their tokens through a broker."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import httpx
from aiohttp import web

from devstack.kube import KubeIssuer
from devstack.stack import Stack
from tests.e2e.conftest import Org, Recorder, worker_env
from tests.faults.proxy import TcpProxy, _Pair
from worker.app import Worker
from worker.broker import Broker, BrokerSettings, hash_credential, new_credential
from worker.settings import Settings
from worker.testing import eventually

NAMESPACE = "realtime-worker"
TOKEN_LIFETIME_S = 6
WORKER_MARGIN_S = 2
BROKER_MARGIN_S = 3


def service_account(org: Org) -> str:
    return f"rw-{org.org_id.lower().replace('_', '-')}"


def subject(org: Org) -> str:
    return f"system:serviceaccount:{NAMESPACE}:{service_account(org)}"


def write_orgs(path: Path, orgs: list[Org]) -> dict[str, str]:
    """An orgs file serving ``orgs`` by ServiceAccount and by a new static credential each;
    returns the static credentials by org id."""
    credentials = {org.org_id: new_credential() for org in orgs}
    entries = [
        {
            "org_id": org.org_id,
            "user_id": org.user_id,
            "session_id": org.session_id,
            "service_accounts": [subject(org)],
            "credential_sha256": hash_credential(credentials[org.org_id]),
        }
        for org in orgs
    ]
    path.write_text(json.dumps({"orgs": entries}))
    return credentials


def broker_settings(stack: Stack, kube: KubeIssuer, orgs_file: Path, **env: str) -> BrokerSettings:
    return BrokerSettings.from_env(broker_env(stack, kube, orgs_file, **env))


def broker_env(stack: Stack, kube: KubeIssuer, orgs_file: Path, **env: str) -> dict[str, str]:
    """A broker's environment on this stack: the only place the Clerk secret key goes."""
    return {
        "BROKER_ORGS_FILE": str(orgs_file),
        "CLERK_SECRET_KEY": stack.env["CLERK_SECRET_KEY"],
        "CLERK_API_URL": stack.env["CLERK_API_URL"],
        "CLERK_TOKEN_EXPIRES_IN_SECONDS": str(TOKEN_LIFETIME_S),
        "BROKER_OIDC_ISSUER": kube.issuer,
        "BROKER_REMINT_MARGIN_SECONDS": str(BROKER_MARGIN_S),
        "BROKER_HTTP_HOST": "127.0.0.1",
        "BROKER_HTTP_PORT": "0",
        "BROKER_REQUEST_TIMEOUT_SECONDS": "5",
    } | env


@asynccontextmanager
async def serving_kube() -> AsyncIterator[KubeIssuer]:
    kube = KubeIssuer()
    runner = web.AppRunner(kube.app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    kube.bind(f"http://127.0.0.1:{runner.addresses[0][1]}")
    try:
        yield kube
    finally:
        await runner.cleanup()


class BrokerHandle:
    """A broker running in this process until ``stop()``."""

    def __init__(self, broker: Broker, stop: anyio.Event) -> None:
        self.broker, self._stop = broker, stop

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.broker.port}"

    def stop(self) -> None:
        self._stop.set()


@asynccontextmanager
async def running_broker(settings: BrokerSettings) -> AsyncIterator[BrokerHandle]:
    broker, stop = Broker(settings), anyio.Event()
    async with anyio.create_task_group() as tg:
        await tg.start(broker.run, stop)
        yield BrokerHandle(broker, stop)
        stop.set()


async def ask(url: str, credential: str | None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {credential}"} if credential is not None else {}
    async with httpx.AsyncClient(timeout=10) as http:
        return await http.post(f"{url}/v1/token", headers=headers)


class Balancer(TcpProxy):
    """A Service in front of broker replicas: each connection to the next live target."""

    def __init__(self, targets: list[str]) -> None:
        super().__init__("127.0.0.1", 0)
        self.targets = targets
        self._turn = itertools.count()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        upstream = await self._connect()
        if upstream is None:
            writer.transport.abort()
            return
        pair = _Pair(writer, upstream[1])
        self._pairs.add(pair)
        pair.tasks = [
            asyncio.current_task(),  # type: ignore[list-item]
            asyncio.create_task(self._pump(upstream[0], writer)),
        ]
        try:
            await self._pump(reader, upstream[1])
            await pair.tasks[1]
        finally:
            self._pairs.discard(pair)

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        for _ in range(len(self.targets)):
            url = self.targets[next(self._turn) % len(self.targets)]
            host, _, port = url.removeprefix("http://").partition(":")
            try:
                return await asyncio.open_connection(host, int(port))
            except OSError:
                continue
        return None


def broker_worker_env(stack: Stack, org: Org, url: str, credential_file: Path) -> dict[str, str]:
    """A worker of ``org`` on this stack whose tokens come from the broker: no Clerk secret
    key, no session id in its environment."""
    env = worker_env(
        stack,
        org,
        WORKER_TOKEN_BROKER_URL=url,
        WORKER_TOKEN_BROKER_CREDENTIAL_FILE=str(credential_file),
        WORKER_TOKEN_REFRESH_MARGIN_SECONDS=str(WORKER_MARGIN_S),
    )
    for name in ("CLERK_SECRET_KEY", "CLERK_SESSION_ID", "CLERK_TOKEN_EXPIRES_IN_SECONDS"):
        env.pop(name)
    return env


@asynccontextmanager
async def broker_worker(env: dict[str, str], recorder: Recorder) -> AsyncIterator[Worker]:
    worker = Worker(Settings.from_env(env), registry=recorder.registry)
    stop = anyio.Event()
    async with anyio.create_task_group() as tg:
        await tg.start(worker.run, stop)
        await eventually(
            lambda: worker.checks.failures() == {}, timeout_s=20, message="ready at start"
        )
        yield worker
        stop.set()
