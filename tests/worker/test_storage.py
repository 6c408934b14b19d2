"""``worker.storage``: the Storage client carries the current token, ``OrgFiles`` keeps every
path inside the org's folder, and failures arrive as ``StorageError`` without a token.

Storage itself is an ``httpx.MockTransport`` here; tests/e2e/test_storage_reports.py runs
the same calls against the stand-in and its RLS policies.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest

from tests.worker.rt_fakes import FakeTokens
from tests.worker.test_handlers import FakeBroadcaster, make_event
from worker.context import ContextFactory, make_data_client
from worker.errors import StorageError
from worker.storage import ORG_FILES_BUCKET, OrgFiles, make_storage_client

pytestmark = pytest.mark.anyio

ORG = "org_2abc"
BASE = "http://sb.test"
Seen = list[tuple[str, str, str | None, str | None]]


def recording(
    seen: Seen, respond: Callable[[httpx.Request], httpx.Response] | None = None
) -> httpx.MockTransport:
    """A Storage that records (method, path, Authorization, apikey) and answers ``respond``."""

    def handle(request: httpx.Request) -> httpx.Response:
        auth, apikey = request.headers.get("authorization"), request.headers.get("apikey")
        seen.append((request.method, request.url.path, auth, apikey))
        if respond is not None:
            return respond(request)
        return httpx.Response(200, json={"Key": f"{ORG_FILES_BUCKET}/{ORG}/x", "Id": "1"})

    return httpx.MockTransport(handle)


def refusal(status: int, code: str, message: str) -> Callable[[httpx.Request], httpx.Response]:
    body = {"statusCode": str(code), "error": "Unauthorized", "message": message}
    return lambda _request: httpx.Response(status, json=body)


async def test_each_request_carries_the_token_current_at_that_moment() -> None:
    seen: Seen = []
    tokens = FakeTokens("jwt-1")
    async with make_storage_client(BASE, "anon", tokens, transport=recording(seen)) as client:
        files = OrgFiles(client, ORG)
        await files.upload("a.txt", "one")
        tokens.rotate("jwt-2")
        await files.upload("b.txt", b"two")
    path = f"/storage/v1/object/{ORG_FILES_BUCKET}/{ORG}"
    assert seen == [
        ("POST", f"{path}/a.txt", "Bearer jwt-1", "anon"),
        ("POST", f"{path}/b.txt", "Bearer jwt-2", "anon"),
    ]


async def test_without_a_verified_token_nothing_is_sent() -> None:
    seen: Seen = []
    async with make_storage_client(BASE, "anon", FakeTokens(None), transport=recording(seen)) as c:
        with pytest.raises(StorageError, match="no verified session token"):
            await OrgFiles(c, ORG).download("a.txt")
    assert seen == []


@pytest.mark.parametrize(
    "path", ["", "/etc/passwd", "../org_other/x", "a//b", "a/./b", "%2e%2e/org_other/x", "a/"]
)
async def test_a_path_that_could_leave_the_orgs_folder_is_refused_before_sending(
    path: str,
) -> None:
    seen: Seen = []
    async with make_storage_client(BASE, "anon", FakeTokens(), transport=recording(seen)) as c:
        with pytest.raises(ValueError, match="relative path"):
            await OrgFiles(c, ORG).upload(path, b"x")
    assert seen == []


async def test_keys_list_and_remove_stay_under_the_org_folder() -> None:
    seen: Seen = []
    listed = [{"name": "1.json", "id": "i"}, {"name": "old", "id": None}]

    def respond(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/list/org-files"):
            assert json.loads(request.content)["prefix"] == f"{ORG}/reports"
            return httpx.Response(200, json=listed)
        assert json.loads(request.content) == {"prefixes": [f"{ORG}/reports/1.json"]}
        return httpx.Response(200, json=[{"name": f"{ORG}/reports/1.json"}])

    transport = recording(seen, respond)
    async with make_storage_client(BASE, "anon", FakeTokens(), transport=transport) as client:
        files = OrgFiles(client, ORG)
        assert files.key("reports/1.json") == f"{ORG}/reports/1.json"
        assert await files.list("reports") == ["1.json", "old"]
        assert await files.remove("reports/1.json") == [f"{ORG}/reports/1.json"]


async def test_an_rls_refusal_is_a_storage_error_with_the_platforms_status_and_no_token() -> None:
    rls = refusal(400, "403", "new row violates row-level security policy")
    transport = recording([], rls)
    async with make_storage_client(
        BASE, "anon", FakeTokens("jwt-secret"), transport=transport
    ) as c:
        with pytest.raises(StorageError) as refused:
            await OrgFiles(c, ORG).upload("a.txt", b"x")
    assert refused.value.status == 403
    assert str(refused.value) == (
        f"Storage upload org-files/{ORG}/a.txt: 403 new row violates row-level security policy"
    )
    assert "jwt-secret" not in str(refused.value)


async def test_an_unreachable_storage_is_a_storage_error_without_a_status() -> None:
    def unreachable(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    async with make_storage_client(
        BASE, "anon", FakeTokens(), transport=recording([], unreachable)
    ) as c:
        with pytest.raises(StorageError, match="cannot reach Storage") as failed:
            await OrgFiles(c, ORG).download("a.txt")
    assert failed.value.status is None


async def test_exists_is_false_for_an_absent_object_and_a_signed_url_is_absolute() -> None:
    def respond(request: httpx.Request) -> httpx.Response:
        if "/info/" in request.url.path:
            body = {"statusCode": "404", "error": "not_found", "message": "Object not found"}
            return httpx.Response(400, json=body)
        return httpx.Response(200, json={"signedURL": f"/object/sign/org-files/{ORG}/a?token=t"})

    async with make_storage_client(
        BASE, "anon", FakeTokens(), transport=recording([], respond)
    ) as c:
        files = OrgFiles(c, ORG)
        assert not await files.exists("a")
        url = await files.signed_url("a", 60)
    assert url == f"{BASE}/storage/v1/object/sign/org-files/{ORG}/a?token=t"


async def test_the_context_offers_the_client_and_the_orgs_folder() -> None:
    data = make_data_client(BASE, "anon", FakeTokens())
    async with data, make_storage_client(BASE, "anon", FakeTokens()) as client:
        with_storage = ContextFactory(
            org_id=ORG, data=data, broadcaster=FakeBroadcaster(), storage=client
        )
        without = ContextFactory(org_id=ORG, data=data, broadcaster=FakeBroadcaster())
        ctx = with_storage(make_event(), 1)
        assert ctx.storage is client
        assert (ctx.files.org_id, ctx.files.bucket) == (ORG, ORG_FILES_BUCKET)
        assert repr(ctx.files) == f"OrgFiles(bucket='org-files', folder='{ORG}/')"
        with pytest.raises(StorageError, match="no Storage client"):
            _ = without(make_event(), 1).storage
