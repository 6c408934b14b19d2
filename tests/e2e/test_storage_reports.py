"""Storage from a handler, end to end: ``examples.storage_reports`` writes one report per
event under its own org's folder of ``org-files``, with the worker's short-lived Clerk
tokens, and the RLS policies of ``storage.objects`` keep each org's files to itself.

Readers use the official storage3 client with a Clerk token of an org member, as
supabase-py would; the session database is shared, so every org here is new.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

import anyio
import httpx
import pytest
from storage3 import AsyncStorageClient
from storage3.exceptions import StorageApiError

from devstack.stack import Stack
from tests.e2e.conftest import Org, insert_events, provision, worker_env
from worker.app import Worker, running
from worker.errors import StorageError
from worker.registry import load_handlers
from worker.settings import Settings
from worker.storage import OrgFiles, make_storage_client
from worker.testing import eventually

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(180)]

BUCKET = "org-files"
REFRESHES = 3  # token lifetimes the events are spread over (5 s tokens)


def member_token(stack: Stack, org_id: str, name: str) -> str:
    """A Clerk session token of a new ``org:member`` of ``org_id``."""
    clerk = stack.clerk
    user = clerk.create_user(first_name=name)
    clerk.add_membership(org_id, user["id"], "org:member")
    return clerk.mint(str(clerk.create_session(user["id"], org_id)["id"]))


@asynccontextmanager
async def storage_as(stack: Stack, token: str) -> AsyncIterator[AsyncStorageClient]:
    """storage3 as supabase-py builds it: the anon key as apikey, the user's token as bearer."""
    headers = {"apikey": stack.env["SUPABASE_ANON_KEY"], "Authorization": f"Bearer {token}"}
    url = f"{stack.env['SUPABASE_URL']}/storage/v1/"
    async with AsyncStorageClient(url, headers, http_client=httpx.AsyncClient()) as client:
        yield client


async def report_ids(client: AsyncStorageClient, org_id: str) -> set[int]:
    """The event ids of the reports this client can see under ``<org_id>/reports/``."""
    entries = await client.from_(BUCKET).list(f"{org_id}/reports", {"limit": 1000})
    return {int(e["name"].removesuffix(".json")) for e in entries}


def refreshes(worker: Worker) -> float:
    name = "realtime_worker_token_refresh_total"
    return worker.metrics_registry.get_sample_value(name, {"result": "success"}) or 0.0


async def test_each_event_becomes_one_report_in_its_own_orgs_folder_across_token_refreshes(
    stack: Stack,
) -> None:
    orgs = [provision(stack, "Reports A"), provision(stack, "Reports B")]
    inserted: dict[str, list[int]] = {org.org_id: [] for org in orgs}
    async with AsyncExitStack() as workers:
        running_workers = [
            await workers.enter_async_context(
                running(
                    Settings.from_env(worker_env(stack, org)),
                    registry=load_handlers(["examples.storage_reports"]),
                )
            )
            for org in orgs
        ]
        for _ in range(REFRESHES):  # a batch per token lifetime: each on a newer token
            before = [refreshes(w) for w in running_workers]
            for org in orgs:
                inserted[org.org_id] += await insert_events(stack.database_url, org.org_id, 2)
            await eventually(
                lambda b=before: all(
                    refreshes(w) > n for w, n in zip(running_workers, b, strict=True)
                ),
                timeout_s=20,
                message="every worker refreshed its token",
            )
        await _assert_each_org_sees_exactly_its_own_reports(stack, orgs, inserted)
    await _assert_org_b_cannot_read_org_a(stack, *orgs, inserted[orgs[0].org_id])


async def _assert_each_org_sees_exactly_its_own_reports(
    stack: Stack, orgs: list[Org], inserted: dict[str, list[int]]
) -> None:
    for org in orgs:
        wanted = set(inserted[org.org_id])
        async with storage_as(stack, member_token(stack, org.org_id, "reader")) as reader:
            with anyio.fail_after(30):
                while (seen := await report_ids(reader, org.org_id)) != wanted:
                    assert seen <= wanted, f"reports of other events: {seen - wanted}"
                    await anyio.sleep(0.1)  # polling Storage: there is no event to await
            first = min(wanted)
            body = await reader.from_(BUCKET).download(f"{org.org_id}/reports/{first}.json")
        assert (json.loads(body)["org_id"], json.loads(body)["event_id"]) == (org.org_id, first)


async def _assert_org_b_cannot_read_org_a(
    stack: Stack, org_a: Org, org_b: Org, ids: list[int]
) -> None:
    async with storage_as(stack, member_token(stack, org_b.org_id, "outsider")) as outsider:
        files = outsider.from_(BUCKET)
        listed = await files.list(f"{org_a.org_id}/reports", {"limit": 1000})
        with pytest.raises(StorageApiError) as download:
            await files.download(f"{org_a.org_id}/reports/{ids[0]}.json")
    assert listed == []
    assert (str(download.value.status), download.value.message) == ("404", "Object not found")


async def check(stack: Stack, org: Org, *args: str) -> tuple[int, list[str]]:
    """``python -m worker check <args>`` for ``org``'s service user: (code, output lines)."""
    env = {**os.environ, **worker_env(stack, org)}
    with anyio.fail_after(90):
        done = await anyio.run_process(
            [sys.executable, "-m", "worker", "check", *args], env=env, check=False
        )
    out = done.stdout.decode() + done.stderr.decode()
    assert "Traceback" not in out
    assert stack.env["CLERK_SECRET_KEY"] not in out
    assert "eyJ" not in out  # no token (every JWT starts with a base64 '{"')
    return done.returncode, out.splitlines()


def storage_line(lines: list[str]) -> str:
    [line] = [line for line in lines if "storage write+delete" in line]
    return line


async def test_check_storage_writes_and_deletes_a_probe_under_the_org(stack: Stack) -> None:
    org = provision(stack, "Probe Inc")
    code, lines = await check(stack, org, "--storage")
    assert code == 0, lines
    line = storage_line(lines)
    assert line.startswith("PASS")
    assert f"wrote and deleted {BUCKET}/{org.org_id}/realtime-worker-check/" in line
    async with storage_as(stack, member_token(stack, org.org_id, "auditor")) as reader:
        left = await reader.from_(BUCKET).list(f"{org.org_id}/realtime-worker-check")
    assert left == []


async def test_check_without_the_flag_leaves_storage_alone(stack: Stack) -> None:
    code, lines = await check(stack, provision(stack, "Quiet Inc"))
    assert code == 0, lines
    assert not [line for line in lines if "storage" in line]


async def test_check_storage_fails_for_a_member_and_says_which_role_can_write(
    stack: Stack,
) -> None:
    code, lines = await check(stack, provision(stack, "Members Only", "org:member"), "--storage")
    assert code == 1
    line = storage_line(lines)
    assert line.startswith("FAIL")
    assert "403 new row violates row-level security policy" in line
    assert "this token's org role is 'member'" in line
    assert "give the service user the role org:worker in ORG_ID" in line


@dataclass
class _Token:
    jwt: str


@dataclass
class _Fixed:
    current: _Token


async def test_org_files_with_a_worker_token_on_the_stack(stack: Stack) -> None:
    org = provision(stack, "Files Inc")
    tokens = _Fixed(_Token(stack.clerk.mint(org.session_id)))
    anon = stack.env["SUPABASE_ANON_KEY"]
    async with (
        make_storage_client(stack.env["SUPABASE_URL"], anon, tokens) as client,
        httpx.AsyncClient() as http,
    ):
        files = OrgFiles(client, org.org_id)
        key = await files.upload("out/a.txt", "hello", content_type="text/plain")
        with pytest.raises(StorageError) as again:
            await files.upload("out/a.txt", "twice")
        present = await files.exists("out/a.txt")
        names = await files.list("out")
        top = await files.list()
        body = await files.download("out/a.txt")
        signed = await http.get(await files.signed_url("out/a.txt", 60))
        with pytest.raises(StorageError) as billing:
            await files.upload("billing/b.txt", "x")
        removed = await files.remove("out/a.txt")
        gone = not await files.exists("out/a.txt")
    assert key == f"{org.org_id}/out/a.txt"
    assert again.value.status == 409
    assert (present, names, top, body) == (True, ["a.txt"], ["out"], b"hello")
    assert (signed.status_code, signed.content) == (200, b"hello")
    assert billing.value.status == 403
    assert removed == [key]
    assert gone
