"""Two orgs, brokers in front of Clerk, one worker per org whose environment holds no
Clerk secret key: each handles all of its own events across many token lifetimes, while
broker processes are killed or restarted, and Clerk sees at most one mint per org per
worker refresh, however many brokers."""

from __future__ import annotations

import contextlib
import io
from contextlib import AsyncExitStack
from pathlib import Path

import httpx
import pytest

from devstack.kube import KubeIssuer
from devstack.stack import Stack
from tests.broker.support import (
    NAMESPACE,
    Balancer,
    broker_env,
    broker_settings,
    broker_worker,
    broker_worker_env,
    running_broker,
    service_account,
    subject,
    write_orgs,
)
from tests.e2e.conftest import Org, Recorder, insert_events, provision
from tests.faults.support import WorkerProcess, metric
from worker.app import Worker
from worker.errors import TokenRejected
from worker.preflight import mint_and_verify, run_checks
from worker.settings import Settings
from worker.testing import eventually

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(150)]
MINT = "POST /v1/sessions/{session_id}/tokens"
CLOSE_REASONS = (
    "token_expired",
    "permission_revoked",
    "rate_limited",
    "server_disconnect",
    "other",
)


def credentials(
    tmp_path: Path, kube: KubeIssuer, a: Org, b: Org, statics: dict[str, str]
) -> dict[str, Path]:
    """Org A's worker holds its ServiceAccount token, org B's its static credential."""
    files = {a.org_id: tmp_path / "a.token", b.org_id: tmp_path / "b.credential"}
    files[a.org_id].write_text(kube.mint(NAMESPACE, service_account(a)))
    files[b.org_id].write_text(statics[b.org_id])
    return files


def refreshes(worker: Worker) -> float:
    return metric(worker, "token_refresh_total", result="success")()


def closes(worker: Worker) -> float:
    return sum(
        metric(worker, "channel_closes_total", topic="events", reason=r)() for r in CLOSE_REASONS
    )


async def test_each_org_handles_its_events_across_token_lifetimes_with_no_clerk_key(
    stack: Stack, kube: KubeIssuer, tmp_path: Path
) -> None:
    a, b = provision(stack, "Acme"), provision(stack, "Globex")
    statics = write_orgs(tmp_path / "orgs.json", [a, b])
    files = credentials(tmp_path, kube, a, b, statics)
    recorders = {a.org_id: Recorder(), b.org_id: Recorder()}
    async with AsyncExitStack() as running:
        broker = await running.enter_async_context(
            running_broker(broker_settings(stack, kube, tmp_path / "orgs.json"))
        )
        workers = {}
        for org in (a, b):
            env = broker_worker_env(stack, org, broker.url, files[org.org_id])
            assert not any(name.startswith("CLERK_SECRET") for name in env)
            workers[org.org_id] = await running.enter_async_context(
                broker_worker(env, recorders[org.org_id])
            )
        inserted = {org.org_id: [] for org in (a, b)}
        for _ in range(4):  # four rounds, each after both workers refreshed again
            for org in (a, b):
                inserted[org.org_id] += await insert_events(stack.database_url, org.org_id, 3)
            marks = {k: refreshes(w) for k, w in workers.items()}
            await eventually(
                lambda m=marks: all(refreshes(w) > m[k] for k, w in workers.items()),
                timeout_s=20,
                message="refresh",
            )
        for org in (a, b):
            recorder = recorders[org.org_id]
            await eventually(
                recorder.handled(inserted[org.org_id]), timeout_s=20, message="every event handled"
            )
            assert {e.org_id for e in recorder.events} == {org.org_id}
            assert closes(workers[org.org_id]) == 0
            assert workers[org.org_id].tokens.current.org_id == org.org_id


async def test_org_as_credential_with_org_bs_org_id_is_refused_and_gets_nothing_of_b(
    stack: Stack, kube: KubeIssuer, tmp_path: Path
) -> None:
    a, b = provision(stack, "Acme"), provision(stack, "Globex")
    statics = write_orgs(tmp_path / "orgs.json", [a, b])
    files = credentials(tmp_path, kube, a, b, statics)
    (tmp_path / "static-a").write_text(statics[a.org_id])
    async with running_broker(broker_settings(stack, kube, tmp_path / "orgs.json")) as broker:
        for credential_of_a in (files[a.org_id], tmp_path / "static-a"):
            env = broker_worker_env(stack, b, broker.url, credential_of_a)  # ORG_ID = org B
            async with httpx.AsyncClient(timeout=10) as http:
                with pytest.raises(TokenRejected, match=a.org_id):
                    await mint_and_verify(Settings.from_env(env), http)
    assert stack.clerk.requests[MINT] == 1, "only org A's token was ever minted"


async def started_broker(running: AsyncExitStack, env: dict[str, str]) -> WorkerProcess:
    """``realtime-worker broker`` as a process of its own, serving."""
    broker = await running.enter_async_context(WorkerProcess(env, command="broker").run())
    running.callback(_stop, broker)  # before its exit is awaited
    await eventually(
        lambda: broker.http_port is not None, timeout_s=30, message="the broker started"
    )
    return broker


def _stop(broker: WorkerProcess) -> None:
    with contextlib.suppress(ProcessLookupError):  # killed or stopped already
        broker.terminate()


def url(broker: WorkerProcess) -> str:
    return f"http://127.0.0.1:{broker.http_port}"


async def test_a_broker_killed_and_one_restarted_close_no_channel_and_lose_no_event(
    stack: Stack, kube: KubeIssuer, tmp_path: Path
) -> None:
    a, b = provision(stack, "Acme"), provision(stack, "Globex")
    statics = write_orgs(tmp_path / "orgs.json", [a, b])
    files = credentials(tmp_path, kube, a, b, statics)
    recorders = {a.org_id: Recorder(), b.org_id: Recorder()}
    env = broker_env(stack, kube, tmp_path / "orgs.json")
    async with AsyncExitStack() as running:
        first, second = [await started_broker(running, env) for _ in range(2)]
        service = await running.enter_async_context(Balancer([url(first), url(second)]))
        stack.clerk.requests.clear()
        workers = {}
        for org in (a, b):
            worker_env = broker_worker_env(stack, org, service.url, files[org.org_id])
            workers[org.org_id] = await running.enter_async_context(
                broker_worker(worker_env, recorders[org.org_id])
            )
        inserted: dict[str, list[int]] = {org.org_id: [] for org in (a, b)}

        async def round_of_events() -> None:
            for org in (a, b):
                inserted[org.org_id] += await insert_events(stack.database_url, org.org_id, 2)
            marks = {k: refreshes(w) for k, w in workers.items()}
            await eventually(
                lambda: all(refreshes(w) > marks[k] for k, w in workers.items()),
                timeout_s=20,
                message="refresh",
            )

        await round_of_events()
        assert first.process is not None
        first.process.kill()  # one of two replicas dies (SIGKILL)
        await round_of_events()
        await round_of_events()
        restarted = await started_broker(running, env)
        service.targets[:] = [url(restarted), url(second)]
        second.terminate()  # the other one restarts: only the new process serves now
        await round_of_events()
        await round_of_events()
        for org in (a, b):
            await eventually(
                recorders[org.org_id].handled(inserted[org.org_id]), timeout_s=20, message="handled"
            )
            assert closes(workers[org.org_id]) == 0
        total_refreshes = sum(refreshes(w) for w in workers.values())
        # At most one mint per worker refresh (a refresh that finds a cached token on its
        # broker costs none), plus one per broker process that served a first request.
        assert stack.clerk.requests[MINT] <= total_refreshes + 2 * 3


async def test_check_passes_through_the_broker_and_names_the_source_and_identity(
    stack: Stack, kube: KubeIssuer, tmp_path: Path
) -> None:
    a, b = provision(stack, "Acme"), provision(stack, "Globex")
    statics = write_orgs(tmp_path / "orgs.json", [a, b])
    files = credentials(tmp_path, kube, a, b, statics)
    async with running_broker(broker_settings(stack, kube, tmp_path / "orgs.json")) as broker:
        out = io.StringIO()
        env = broker_worker_env(stack, a, broker.url, files[a.org_id])
        assert await run_checks(Settings.from_env(env), out) == 0, out.getvalue()
    text = out.getvalue()
    assert f"broker {broker.url} as ServiceAccount token of {subject(a)}" in text
    assert "all checks passed" in text
    assert files[a.org_id].read_text()[-20:] not in text
