"""``realtime-worker provision`` / ``deprovision`` against the Clerk stand-in: the service
user and its membership made once, a second run changes nothing, ``--dry-run`` changes
nothing, the orgs-file entry serves the org's ServiceAccount, and the overlay it writes
renders with the real kustomize."""

from __future__ import annotations

import json
from pathlib import Path

import anyio
import httpx
import pytest

from devstack.stack import Stack
from tests.deploy._k8s import copy_deploy, render
from worker.broker import load_orgs
from worker.broker.overlay import service_account
from worker.broker.provision import ROLE_FIX, Clerk, ProvisionError, external_id
from worker.cli import main
from worker.settings import SecretStr

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(90)]
CREATES = ("POST /v1/users", "POST /v1/organizations/{org_id}/memberships")


async def cli(*argv: str) -> int:
    return await anyio.to_thread.run_sync(main, list(argv))


@pytest.fixture
def clerk_env(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLERK_SECRET_KEY", stack.env["CLERK_SECRET_KEY"])
    monkeypatch.setenv("CLERK_API_URL", stack.env["CLERK_API_URL"])


@pytest.mark.usefixtures("clerk_env")
async def test_provision_creates_user_and_membership_once_and_is_idempotent(
    stack: Stack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    org = stack.clerk.create_organization("Acme")["id"]
    orgs_file = tmp_path / "orgs.json"
    assert await cli("provision", "--org", org, "--orgs-file", str(orgs_file), "--dry-run") == 0
    assert "would create the service user" in capsys.readouterr().out
    assert not orgs_file.exists()
    assert all(stack.clerk.requests[c] == 0 for c in CREATES)

    assert await cli("provision", "--org", org, "--orgs-file", str(orgs_file)) == 0
    entry = load_orgs(orgs_file).for_org(org)
    assert entry is not None
    assert entry.service_accounts == (service_account(org, "realtime-worker"),)
    assert entry.session_id is not None, "a session with the org active (development instance)"
    assert [u.external_id for u in stack.clerk.store.users.values()] == [external_id(org)]
    first = orgs_file.read_text()
    capsys.readouterr()

    assert await cli("provision", "--org", org, "--orgs-file", str(orgs_file)) == 0
    out = capsys.readouterr().out
    assert "exists" in out
    assert "already a member" in out
    assert "unchanged" in out
    assert orgs_file.read_text() == first
    assert stack.clerk.requests["POST /v1/users"] == 1
    assert [key for key in stack.clerk.store.memberships if key[0] == org] == [(org, entry.user_id)]


@pytest.mark.usefixtures("clerk_env")
async def test_deprovision_removes_the_membership_and_the_entry(
    stack: Stack, tmp_path: Path
) -> None:
    org = stack.clerk.create_organization("Acme")["id"]
    orgs_file = tmp_path / "orgs.json"
    assert await cli("provision", "--org", org, "--orgs-file", str(orgs_file)) == 0
    assert await cli("deprovision", "--org", org, "--orgs-file", str(orgs_file)) == 0
    assert load_orgs(orgs_file).for_org(org) is None
    assert json.loads(orgs_file.read_text()) == {"orgs": []}
    assert await cli("deprovision", "--org", org, "--orgs-file", str(orgs_file)) == 0


@pytest.mark.usefixtures("clerk_env")
async def test_the_overlay_it_writes_renders_without_any_clerk_secret(
    stack: Stack, tmp_path: Path
) -> None:
    org = stack.clerk.create_organization("Acme")["id"]
    deploy = copy_deploy(tmp_path / "copy")
    overlay = deploy / "orgs" / org
    assert await cli("provision", "--org", org, "--overlay", str(overlay), "--topics", "a,b") == 0
    manifests = await anyio.to_thread.run_sync(render, overlay)
    text = json.dumps(manifests)
    assert "CLERK_SECRET_KEY" not in text
    assert "CLERK_SESSION_ID" not in text
    [sa] = [m for m in manifests if m["kind"] == "ServiceAccount"]
    assert sa["metadata"]["name"].startswith("realtime-worker-org-")


async def test_a_missing_org_worker_role_is_a_clear_error_with_the_fix() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        error = {"code": "form_param_value_invalid", "message": "role is invalid",
                 "meta": {"param_name": "role"}}  # fmt: skip
        return httpx.Response(422, json={"errors": [error]})

    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as http:
        clerk = Clerk("https://api.clerk.test", SecretStr("sk_test_x"), http)
        with pytest.raises(ProvisionError, match="Roles & Permissions") as info:
            await clerk.add_member("org_2abc", "user_2abc")
    assert str(info.value) == ROLE_FIX
