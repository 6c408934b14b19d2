"""Shared fixtures: one Postgres server per test session, one migrated database on it."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from devstack import postgres, schema
from tests import published_table


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    # The official realtime client is asyncio-only.
    return "asyncio"


@pytest.fixture(scope="session")
def pg_server() -> Iterator[postgres.Server]:
    """$DATABASE_URL's server (never its existing databases), or an embedded Postgres."""
    with postgres.server() as srv:
        yield srv


@pytest.fixture(scope="session")
def database_url(pg_server: postgres.Server) -> Iterator[str]:
    """A throw-away database with the platform bootstrap, migrations and seed applied, and
    the Postgres Changes tests' published table (tests/published_table.py)."""
    url = asyncio.run(postgres.create_database(pg_server))
    try:
        asyncio.run(schema.apply_all(url))
        asyncio.run(published_table.publish(url))
        yield url
    finally:
        asyncio.run(postgres.drop_database(pg_server, url))
