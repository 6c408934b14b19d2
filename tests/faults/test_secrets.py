"""No secret ever leaves the worker: a CLI worker is run through Clerk failures, refused
tokens, socket drops and a tenant reload at DEBUG level, then everything it wrote (logs,
exception traces, /status, /metrics, /readyz) is searched for the Clerk secret key, the
anon key and every session token Clerk minted for it, and for prefixes of them. The same
grep covers a token broker process and a worker that gets its tokens from it: their logs,
/status and /metrics hold no Clerk key, no static credential, no ServiceAccount token
(accepted or refused) and no minted token."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from devstack.stack import Stack
from tests.broker.support import (
    NAMESPACE,
    ask,
    broker_env,
    broker_worker_env,
    service_account,
    serving_kube,
    write_orgs,
)
from tests.e2e.conftest import insert_events, provision, worker_env
from tests.faults.support import WorkerProcess
from worker.testing import eventually

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(120)]

PREFIX = 9  # "a prefix longer than 8 characters"


def secret_fragments(secret: str) -> list[str]:
    """What must never appear: the secret, and the start of each of its parts.

    A JWT's header is the same for every token of a key and says nothing secret, so for a
    JWT the payload and signature parts count: 9 characters from the start, the middle and
    the end of each, so a copy cut off by a log formatter is caught too.
    """
    parts = secret.split(".")
    if len(parts) != 3:
        return [secret, secret[:PREFIX], secret[-PREFIX:]]
    fragments = [secret]
    for part in parts[1:]:
        middle = len(part) // 2
        fragments += [part[:PREFIX], part[middle : middle + PREFIX], part[-PREFIX:]]
    return fragments


async def test_a_fault_run_writes_no_secret_key_anon_key_or_token_anywhere(stack: Stack) -> None:
    org = provision(stack, "Acme")
    other = provision(stack, "Globex")
    minted: list[str] = []
    mint = stack.clerk.mint

    def recording_mint(*args: Any, **kwargs: Any) -> str:
        token = mint(*args, **kwargs)
        minted.append(token)
        return token

    stack.clerk.mint = recording_mint  # type: ignore[method-assign]
    control = stack.realtime.control
    env = worker_env(stack, org, WORKER_LOG_LEVEL="DEBUG", WORKER_HANDLERS="worker.handlers.log")
    worker = WorkerProcess(env)
    served: list[str] = []
    async with worker.run():
        await eventually(
            lambda: worker.http_port is not None, timeout_s=30, message="the worker started"
        )

        def logged(fragment: str) -> bool:
            return any(fragment in line for line in worker.stderr)

        stack.clerk.fail_next_tokens(2, 503)
        await eventually(
            lambda: logged("token refresh failed"), timeout_s=15, message="a 503 from Clerk"
        )
        stack.clerk.fail_next_tokens(1, 429, retry_after_s=1)
        stack.clerk.set_token_org(org.session_id, other.org_id)
        await eventually(
            lambda: logged("token is for organization"), timeout_s=15, message="a refused token"
        )
        stack.clerk.set_token_org(org.session_id, None)
        stack.clerk.clear_faults()
        control.drop_all()
        await control.disconnect_all(1012)
        inserted = await insert_events(stack.database_url, org.org_id, 3)
        await eventually(
            lambda: sum(line.count('"msg": "event handled"') for line in worker.stderr) >= 3,
            timeout_s=30,
            message="events handled after the faults",
        )
        for path in ("/status", "/metrics", "/readyz", "/healthz"):
            served.append((await worker.get(path)).text)
        worker.terminate()
    assert worker.returncode == 0
    assert inserted
    assert minted, "the stand-in minted tokens for the worker"
    written = worker.text() + "\n".join(served)
    assert '"level": "DEBUG"' in written  # the noisiest level was really on
    secrets = [stack.env["CLERK_SECRET_KEY"], stack.env["SUPABASE_ANON_KEY"], *minted]
    for secret in secrets:
        for fragment in secret_fragments(secret):
            assert fragment not in written, f"a fragment of a secret leaked: {fragment[:4]}..."


async def test_a_broker_and_its_workers_write_no_key_credential_or_token_anywhere(
    stack: Stack, tmp_path: Path
) -> None:
    a, b = provision(stack, "Acme"), provision(stack, "Globex")
    minted = _record_mints(stack)
    async with serving_kube() as kube:
        statics = write_orgs(tmp_path / "orgs.json", [a, b])
        sa_token = kube.mint(NAMESPACE, service_account(a))
        refused = [
            kube.mint(NAMESPACE, "unknown-sa"),
            kube.mint(NAMESPACE, service_account(a), audience="kubernetes"),
            kube.mint(NAMESPACE, service_account(a), expires_in_s=-60),
            "rwb_" + "x" * 43,
        ]
        env = broker_env(stack, kube, tmp_path / "orgs.json", WORKER_LOG_LEVEL="DEBUG")
        broker = WorkerProcess(env, command="broker")
        async with broker.run():
            await eventually(
                lambda: broker.http_port is not None, timeout_s=30, message="the broker started"
            )
            url = f"http://127.0.0.1:{broker.http_port}"
            (tmp_path / "a.token").write_text(sa_token)
            worker = WorkerProcess(
                broker_worker_env(stack, a, url, tmp_path / "a.token")
                | {"WORKER_LOG_LEVEL": "DEBUG", "WORKER_HANDLERS": "worker.handlers.log"}
            )
            async with worker.run():
                await eventually(
                    lambda: worker.http_port is not None, timeout_s=30, message="the worker started"
                )
                for credential in [statics[b.org_id], *refused]:
                    await ask(url, credential)
                stack.clerk.fail_next_tokens(2, 503)
                await eventually(
                    lambda: "mint failed" in broker.text(), timeout_s=20, message="a Clerk failure"
                )
                inserted = await insert_events(stack.database_url, a.org_id, 2)
                await eventually(
                    lambda: worker.text().count('"msg": "event handled"') >= 2,
                    timeout_s=30,
                    message="handled",
                )
                served = [(await worker.get(p)).text for p in ("/status", "/metrics")]
                worker.terminate()
            served += [(await broker.get(p)).text for p in ("/status", "/metrics", "/readyz")]
            broker.terminate()
    assert broker.returncode == 0
    assert worker.returncode == 0
    assert inserted
    assert minted
    assert '"level": "DEBUG"' in broker.text()
    written = broker.text() + worker.text() + "\n".join(served)
    for secret in [stack.env["CLERK_SECRET_KEY"], sa_token, *statics.values(), *refused, *minted]:
        for fragment in secret_fragments(secret):
            assert fragment not in written, f"a fragment of a secret leaked: {fragment[:4]}..."


def _record_mints(stack: Stack) -> list[str]:
    minted: list[str] = []
    mint = stack.clerk.mint

    def recording_mint(*args: Any, **kwargs: Any) -> str:
        token = mint(*args, **kwargs)
        minted.append(token)
        return token

    stack.clerk.mint = recording_mint  # type: ignore[method-assign]
    return minted
