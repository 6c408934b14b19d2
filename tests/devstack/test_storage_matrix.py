"""The storage policy matrix again, through the stand-in with the official ``storage3`` client.

The same personas and expectations as the SQL-level matrix (``tests/db``): each persona
downloads, uploads, updates (PUT) and removes an object in its own org's folder, the other
org's, the bucket root and its own billing folder. Seeds are written with the service role
key; every path lies under a folder of this run, so the shared database does not leak in.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Callable

import pytest
from storage3 import AsyncStorageClient
from storage3.exceptions import StorageApiError

from tests.db.test_storage_policies import ALLOWED, OPERATIONS, PLACES
from tests.devstack.storage_support import BUCKET, ORG_A, ORG_B, StorageEnv, served_storage

pytestmark = pytest.mark.anyio

RUN = f"run-{secrets.token_hex(4)}"


@pytest.fixture(scope="module")
async def env(database_url: str) -> AsyncIterator[StorageEnv]:
    async with served_storage(database_url) as running:
        yield running


def place_path(persona: str, place: str, file: str) -> str:
    org = ORG_B if persona.startswith("b_") else ORG_A
    other = ORG_A if org == ORG_B else ORG_B
    return {
        "own": f"{org}/{RUN}/{file}",
        "other": f"{other}/{RUN}/{file}",
        "root": f"{RUN}-{file}",
        "billing": f"{org}/billing/{RUN}/{file}",
    }[place]


Clients = Callable[[str], AsyncStorageClient]


@pytest.fixture(scope="module")
async def clients(env: StorageEnv) -> AsyncIterator[Clients]:
    """One official client per persona (and "service" for the service role key)."""
    made: dict[str, AsyncStorageClient] = {}

    def client(persona: str) -> AsyncStorageClient:
        if persona not in made:
            key = env.service_key
            service = {"apikey": key, "Authorization": f"Bearer {key}"}
            made[persona] = (
                AsyncStorageClient(env.url, service)
                if persona == "service"
                else env.client(persona)
            )
        return made[persona]

    yield client
    for made_client in made.values():
        await made_client.session.aclose()


async def seed(clients: Clients, path: str) -> None:
    await clients("service").from_(BUCKET).upload(path, b"seeded", {"upsert": "true"})


REFUSALS = {("403", "Unauthorized"), ("404", "not_found")}  # RLS said no, or hid the row


async def attempt(client: AsyncStorageClient, operation: str, path: str) -> bool:
    """Whether ``operation`` on ``path`` succeeded; a refusal must be one of Storage's."""
    try:
        return await run(client, operation, path)
    except StorageApiError as exc:
        refusal = (str(exc.status), exc.code)
    assert refusal in REFUSALS
    return False


async def run(client: AsyncStorageClient, operation: str, path: str) -> bool:
    bucket = client.from_(BUCKET)
    if operation == "read":
        return await bucket.download(path) == b"seeded"
    if operation == "write":
        await bucket.upload(path, b"new", {"content-type": "text/plain"})
    elif operation == "update":
        await bucket.update(path, b"updated", {"content-type": "text/plain"})
    else:
        return len(await bucket.remove([path])) == 1
    return True


@pytest.mark.parametrize(
    ("persona", "operation", "place"),
    [(p, op, place) for p in ALLOWED for op in OPERATIONS for place in PLACES],
)
async def test_persona_touches_only_the_files_its_token_allows(
    clients: Clients, persona: str, operation: str, place: str
) -> None:
    file = f"{operation}-{persona}.txt"
    if operation != "write":
        await seed(clients, place_path(persona, place, file))
    ok = await attempt(clients(persona), operation, place_path(persona, place, file))
    assert ok == (place in ALLOWED[persona][operation])
