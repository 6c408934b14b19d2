"""Pooled Postgres connections for the stand-ins, and what counts as the database being
unreachable (rather than a query failing).

The Realtime stand-in answers an outage with its own error, the data API with PostgREST's
503 PGRST001; both take connections through ``acquired``.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable

import asyncpg

__all__ = ["CONNECTION_LOST", "acquired"]

# The connection, not a policy or a query, failed (e.g. Postgres restarting).
CONNECTION_LOST: tuple[type[BaseException], ...] = (
    OSError,
    asyncpg.InterfaceError,
    asyncpg.PostgresConnectionError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.CannotConnectNowError,
    asyncpg.InternalClientError,  # e.g. a reset racing the server's goodbye on release
)


@contextlib.asynccontextmanager
async def acquired(
    pool: asyncpg.Pool,
    *,
    timeout_s: float,
    unreachable: Callable[[BaseException], Exception],
    reachable: Callable[[], None],
) -> AsyncIterator[asyncpg.Connection]:
    """A connection from ``pool``; a lost connection raises ``unreachable(exc)``.

    ``reachable()`` is called once a connection is had. The pool replaces dead connections
    on acquire, so after a Postgres restart the next use reconnects by itself.
    """
    try:
        conn = await pool.acquire(timeout=timeout_s)
    except (*CONNECTION_LOST, asyncpg.PostgresError, TimeoutError) as exc:
        raise unreachable(exc) from exc
    reachable()
    try:
        yield conn
    except CONNECTION_LOST as exc:
        raise unreachable(exc) from exc
    finally:
        # A connection the server dropped is discarded by the pool, not an error here.
        with contextlib.suppress(*CONNECTION_LOST, asyncpg.PostgresError, TimeoutError):
            await pool.release(conn)
