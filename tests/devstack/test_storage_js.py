"""Conformance with the official JavaScript client, ``@supabase/storage-js``.

The scenarios of ``tests/js/storage_scenario.mjs`` run against the Storage stand-in with
org A's worker token: its own files round-trip; another org's folder and the bucket root
are refused with Storage's errors; a signed URL opens only its object and only until the
test's clock passes its expiry. The client is pinned in ``tests/js/package-lock.json``,
on the same release line as the pinned realtime-js.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.devstack import js_support
from tests.devstack.storage_support import BUCKET, ORG_A, ORG_B, StorageEnv, served_storage

pytestmark = pytest.mark.anyio

RLS = "new row violates row-level security policy"


@pytest.fixture(scope="session")
def node() -> str:
    return js_support.ensure_installed()


@pytest.fixture(scope="module")
async def env(database_url: str) -> AsyncIterator[StorageEnv]:
    async with served_storage(database_url) as running:
        yield running


def config(env: StorageEnv, persona: str = "a_worker", **fields: Any) -> dict[str, Any]:
    return {
        "url": env.url.rstrip("/"),
        "apikey": env.anon_key,
        "token": env.token(persona),
        "bucket": BUCKET,
        "org": ORG_A,
        "other_org": ORG_B,
        "folder": f"js-{secrets.token_hex(4)}",
        **fields,
    }


async def scenario(node: str, name: str, cfg: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    line = await js_support.run(node, name, cfg, script=js_support.STORAGE_SCRIPT, **kwargs)
    assert line["ok"], line
    return dict(line["result"])


def storage_error(status: str, message: str, code: str) -> dict[str, Any]:
    """How storage-js surfaces Storage's error: HTTP 400, the body's statusCode and code."""
    return {"status": 400, "statusCode": status, "code": code, "message": message}


async def test_a_worker_round_trips_its_orgs_files(node: str, env: StorageEnv) -> None:
    cfg = config(env)
    result = await scenario(node, "own_org", cfg)
    path = f"{ORG_A}/{cfg['folder']}/report.txt"
    assert result["upload"]["fullPath"] == f"{BUCKET}/{path}"
    assert result["listed"] == ["report.txt"]
    assert result["downloaded"] == "hello from js"
    assert result["opened"] == {"status": 200, "body": "hello from js"}
    assert result["exists"] is True
    assert result["removed"] == [path]
    assert result["exists_after"] is False


async def test_another_orgs_folder_and_the_root_are_refused(node: str, env: StorageEnv) -> None:
    cfg = config(env)
    async with env.client("b_admin") as owner:  # org B's file, which org A must not reach
        await owner.from_(BUCKET).upload(f"{ORG_B}/{cfg['folder']}/theirs.txt", b"theirs")
    result = await scenario(node, "refused", cfg)
    assert result["upload_other"] == storage_error("403", RLS, "AccessDenied")
    assert result["upload_root"] == storage_error("403", RLS, "AccessDenied")
    assert result["download_other"] == storage_error("404", "Object not found", "NoSuchKey")
    assert result["sign_other"] == storage_error("404", "Object not found", "NoSuchKey")
    assert result["list_other"] == {"data": []}
    assert result["remove_other"] == {"data": []}


async def test_another_orgs_member_can_neither_list_nor_download(
    node: str, env: StorageEnv
) -> None:
    # The "refused" scenario as org B's member, against org A's folder.
    cfg = config(env, "b_member", org=ORG_B, other_org=ORG_A)
    async with env.client("a_worker") as owner:
        await owner.from_(BUCKET).upload(f"{ORG_A}/{cfg['folder']}/theirs.txt", b"org A's")
    result = await scenario(node, "refused", cfg)
    assert result["list_other"] == {"data": []}
    assert result["download_other"] == storage_error("404", "Object not found", "NoSuchKey")
    assert result["upload_other"] == storage_error("403", RLS, "AccessDenied")


async def test_a_signed_url_opens_only_its_object_until_it_expires(
    node: str, env: StorageEnv
) -> None:
    async def expire(line: dict[str, Any]) -> None:
        env.clock.advance(line["seconds"] + 1)

    result = await scenario(node, "signed_url", config(env), on_step=expire)
    assert result["before"] == {"status": 200, "body": "signed bytes"}
    assert result["elsewhere"]["status"] == 400
    assert result["elsewhere"]["body"]["code"] == "InvalidSignature"
    assert result["after"] == {
        "status": 400,
        "body": {
            "statusCode": "400",
            "error": "InvalidJWT",
            "message": '"exp" claim timestamp check failed',
            "code": "InvalidJWT",
        },
    }
