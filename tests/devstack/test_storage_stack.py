"""Storage in the whole stack: ``SUPABASE_URL/storage/v1`` behind the gateway, a Clerk token.

This is how a worker reaches it: supabase-py built with the project's anon key and the
org's Clerk session token as ``Authorization``; ``client.storage`` is storage3.
"""

from __future__ import annotations

import httpx
import pytest
from storage3.exceptions import StorageApiError

from devstack.postgres import Server
from devstack.stack import Stack, StackConfig
from supabase import AsyncClientOptions, acreate_client

pytestmark = pytest.mark.anyio


async def test_a_clerk_worker_token_writes_its_orgs_files_through_the_gateway(
    pg_server: Server,
) -> None:
    async with Stack(StackConfig(database_url=pg_server.admin_url)) as stack:
        clerk = stack.clerk
        org = clerk.create_organization("Storage Inc", slug="storage-inc")["id"]
        user = clerk.create_user(email_addresses=["worker@storage.test"])["id"]
        clerk.add_membership(org, user, "org:worker")
        token = clerk.mint(str(clerk.create_session(user, org)["id"]))
        async with httpx.AsyncClient() as session:
            # An httpx client of our own: supabase-py 2.34.1 otherwise hands storage3 the
            # `timeout` argument that storage3 itself deprecates.
            options = AsyncClientOptions(
                headers={"Authorization": f"Bearer {token}"}, httpx_client=session
            )
            client = await acreate_client(
                stack.env["SUPABASE_URL"], stack.env["SUPABASE_ANON_KEY"], options=options
            )
            files = client.storage.from_("org-files")
            await files.upload(f"{org}/out/hello.txt", b"hello", {"content-type": "text/plain"})
            downloaded = await files.download(f"{org}/out/hello.txt")
            with pytest.raises(StorageApiError) as root:
                await files.upload("hello.txt", b"hello")
    assert downloaded == b"hello"
    assert (root.value.status, root.value.message) == (
        "403",
        "new row violates row-level security policy",
    )
