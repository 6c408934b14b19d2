"""The Storage stand-in driven by the official Python client (storage3, as supabase-py ships it).

Org A's worker keeps files under ``org-files/<org A>/``; everything outside is refused with
the platform's errors: HTTP 400 carrying ``statusCode`` 403 "new row violates row-level
security policy" for writes and 404 "Object not found" for reads of what RLS hides. Every
test writes under its own folder: the session database is shared.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest
from storage3 import AsyncStorageClient
from storage3.exceptions import StorageApiError

from tests.devstack.storage_support import BUCKET, ORG_A, ORG_B, StorageEnv, served_storage

pytestmark = pytest.mark.anyio

RLS = "new row violates row-level security policy"


@pytest.fixture(scope="module")
async def env(database_url: str) -> AsyncIterator[StorageEnv]:
    async with served_storage(database_url) as running:
        yield running


@pytest.fixture
def folder() -> str:
    return f"t-{secrets.token_hex(4)}"


def refused(exc: pytest.ExceptionInfo[StorageApiError], status: str, message: str) -> bool:
    return (str(exc.value.status), exc.value.message) == (status, message)


async def test_a_worker_uploads_lists_downloads_signs_and_removes_its_orgs_files(
    env: StorageEnv, folder: str
) -> None:
    path = f"{ORG_A}/{folder}/report.csv"
    async with env.client("a_worker") as client:
        files = client.from_(BUCKET)
        uploaded = await files.upload(path, b"a,b\n1,2\n", {"content-type": "text/csv"})
        listed = await files.list(f"{ORG_A}/{folder}")
        downloaded = await files.download(path)
        signed = await files.create_signed_url(path, 60)
        info = await files.info(path)
        removed = await files.remove([path])
        gone = not await files.exists(path)
    assert uploaded.full_path == f"{BUCKET}/{path}"
    assert [entry["name"] for entry in listed] == ["report.csv"]
    assert listed[0]["metadata"]["mimetype"] == "text/csv"
    assert downloaded == b"a,b\n1,2\n"
    assert signed["signedURL"].startswith(f"{env.url}object/sign/{BUCKET}/{path}?token=")
    assert (info["size"], info["content_type"]) == (8, "text/csv")
    assert [row["name"] for row in removed] == [path]
    assert gone


@pytest.mark.parametrize("where", ["other org", "bucket root"])
async def test_a_worker_is_refused_outside_its_org(
    env: StorageEnv, folder: str, where: str
) -> None:
    seeded = where == "other org"
    path = f"{ORG_B}/{folder}/x.txt" if seeded else f"{folder}-x.txt"
    if seeded:
        async with env.client("b_admin") as owner:
            await owner.from_(BUCKET).upload(path, b"theirs")
    async with env.client("a_worker") as client:
        files = client.from_(BUCKET)
        with pytest.raises(StorageApiError) as upload:
            await files.upload(path, b"mine", {"upsert": "true"})
        with pytest.raises(StorageApiError) as download:
            await files.download(path)
        with pytest.raises(StorageApiError) as sign:
            await files.create_signed_url(path, 60)
        listed = await files.list(f"{ORG_B}/{folder}" if seeded else "")
        removed = await files.remove([path])
    assert refused(upload, "403", RLS)
    assert refused(download, "404", "Object not found")
    assert refused(sign, "404", "Object not found")
    assert [e["name"] for e in listed if e["name"].startswith(folder) or e["name"] == "x.txt"] == []
    assert removed == []  # remove skips what RLS hides: no error, nothing deleted
    if seeded:
        async with env.client("b_member") as owner:
            assert await owner.from_(BUCKET).download(path) == b"theirs"


async def test_another_orgs_member_can_neither_list_nor_download(
    env: StorageEnv, folder: str
) -> None:
    path = f"{ORG_A}/{folder}/plan.txt"
    async with env.client("a_worker") as worker:
        await worker.from_(BUCKET).upload(path, b"secret plan")
    async with env.client("b_member") as client:
        files = client.from_(BUCKET)
        listed = await files.list(f"{ORG_A}/{folder}")
        with pytest.raises(StorageApiError) as download:
            await files.download(path)
        exists = await files.exists(path)
    assert listed == []
    assert refused(download, "404", "Object not found")
    assert not exists


async def test_a_signed_url_opens_only_its_object_and_only_until_it_expires(
    env: StorageEnv, folder: str
) -> None:
    path, other = f"{ORG_A}/{folder}/a.txt", f"{ORG_A}/{folder}/b.txt"
    async with env.client("a_worker") as client:
        await client.from_(BUCKET).upload(path, b"signed bytes")
        await client.from_(BUCKET).upload(other, b"other bytes")
        url = (await client.from_(BUCKET).create_signed_url(path, 30))["signedURL"]
    token = url.split("token=", 1)[1]
    async with httpx.AsyncClient() as http:  # a browser: no apikey, no Authorization
        opened = await http.get(url)
        swapped = await http.get(f"{env.url}object/sign/{BUCKET}/{other}?token={token}")
        env.clock.advance(31)
        expired = await http.get(url)
    assert (opened.status_code, opened.content) == (200, b"signed bytes")
    assert (swapped.status_code, swapped.json()["code"]) == (400, "InvalidSignature")
    assert expired.status_code == 400
    assert expired.json() == {
        "statusCode": "400",
        "error": "InvalidJWT",
        "message": '"exp" claim timestamp check failed',
        "code": "InvalidJWT",
    }


async def test_upload_refuses_an_existing_name_unless_upserting(
    env: StorageEnv, folder: str
) -> None:
    path = f"{ORG_A}/{folder}/same.txt"
    async with env.client("a_admin") as client:
        files = client.from_(BUCKET)
        await files.upload(path, b"first")
        with pytest.raises(StorageApiError) as again:
            await files.upload(path, b"second")
        await files.upload(path, b"third", {"upsert": "true"})
        assert await files.download(path) == b"third"
    assert refused(again, "409", "The resource already exists")
    assert again.value.code == "Duplicate"


async def test_a_move_stays_inside_the_org(env: StorageEnv, folder: str) -> None:
    source, target = f"{ORG_A}/{folder}/draft.txt", f"{ORG_A}/{folder}/final.txt"
    async with env.client("a_worker") as client:
        files = client.from_(BUCKET)
        await files.upload(source, b"text")
        moved = await files.move(source, target)
        with pytest.raises(StorageApiError) as out:
            await files.move(target, f"{ORG_B}/{folder}/stolen.txt")
        assert await files.download(target) == b"text"
    assert moved["Key"] == target
    assert refused(out, "403", RLS)


async def test_billing_files_need_a_second_factor(env: StorageEnv, folder: str) -> None:
    path = f"{ORG_A}/billing/{folder}/invoice.pdf"
    async with env.client("a_admin_no_2fa") as unverified:
        with pytest.raises(StorageApiError) as refused_upload:
            await unverified.from_(BUCKET).upload(path, b"%PDF")
    async with env.client("a_admin") as verified:
        await verified.from_(BUCKET).upload(path, b"%PDF")
    async with env.client("a_admin_no_2fa") as unverified:
        with pytest.raises(StorageApiError) as refused_read:
            await unverified.from_(BUCKET).download(path)
    assert refused(refused_upload, "403", RLS)
    assert refused(refused_read, "404", "Object not found")


async def test_bucket_limits_and_unknown_bucket(env: StorageEnv, database_url: str) -> None:
    bucket = f"tiny-{secrets.token_hex(4)}"
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(
            "insert into storage.buckets (id, name, file_size_limit, allowed_mime_types) "
            "values ($1, $1, 8, '{text/*}')",
            bucket,
        )
    finally:
        await conn.close()
    key = env.service_key
    service_headers = {"apikey": key, "Authorization": f"Bearer {key}"}
    async with (
        env.client("a_admin") as client,
        AsyncStorageClient(env.url, service_headers) as service,
    ):
        await service.from_(bucket).upload("fits.txt", b"12345678")
        with pytest.raises(StorageApiError) as too_large:
            await service.from_(bucket).upload("big.txt", b"123456789")
        with pytest.raises(StorageApiError) as wrong_type:
            await service.from_(bucket).upload("x.png", b"png", {"content-type": "image/png"})
        with pytest.raises(StorageApiError) as missing:
            await client.from_("no-such-bucket").upload("x.txt", b"x")
    assert refused(too_large, "413", "The object exceeded the maximum allowed size")
    assert refused(wrong_type, "415", "mime type image/png is not supported")
    assert refused(missing, "404", "Bucket not found")


async def test_an_expired_token_is_refused_as_storage_refuses_it(env: StorageEnv) -> None:
    token = env.token("a_worker", ttl_s=10)
    env.clock.advance(11)
    headers = {"apikey": env.anon_key, "Authorization": f"Bearer {token}"}
    async with AsyncStorageClient(env.url, headers) as client:
        with pytest.raises(StorageApiError) as expired:
            await client.from_(BUCKET).list(ORG_A)
    assert refused(expired, "403", '"exp" claim timestamp check failed')


async def test_the_gateway_wants_an_apikey_but_a_signed_url_does_not(
    env: StorageEnv, folder: str
) -> None:
    path = f"{ORG_A}/{folder}/k.txt"
    async with env.client("a_worker") as client:
        await client.from_(BUCKET).upload(path, b"key")
        url = (await client.from_(BUCKET).create_signed_url(path, 60))["signedURL"]
    bearer = {"Authorization": f"Bearer {env.token('a_worker')}"}
    async with httpx.AsyncClient() as http:
        keyless = await http.get(f"{env.url}object/authenticated/{BUCKET}/{path}", headers=bearer)
        head = await http.head(
            f"{env.url}object/{BUCKET}/{path}", headers={**bearer, "apikey": env.anon_key}
        )
        signed = await http.get(url)
    assert keyless.status_code == 401
    assert keyless.json()["message"] == "No API key found in request"
    assert (head.status_code, head.headers["content-length"], head.content) == (200, "3", b"")
    assert signed.content == b"key"
