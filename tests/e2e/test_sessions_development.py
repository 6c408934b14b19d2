"""Issue 14 on a development Clerk instance: the worker creates its sessions with
``POST /v1/sessions``, renews them before Clerk ends them (20 s here), and revokes the
old ones, while every event is handled."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from devstack.postgres import Server
from devstack.stack import Stack
from tests.e2e.sessions_support import run_through_lifetimes, session_stack

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(240)]
LIFETIME_S = 20


@pytest.fixture
async def stack(pg_server: Server) -> AsyncIterator[Stack]:
    async with session_stack(pg_server, "development", LIFETIME_S) as running:
        yield running


async def test_a_worker_with_only_a_user_id_runs_through_five_session_lifetimes(
    stack: Stack,
) -> None:
    await run_through_lifetimes(stack, lifetimes=5, lifetime_s=LIFETIME_S)
    requests = stack.clerk.requests
    assert requests["POST /v1/sessions"] >= 6
    assert requests["POST /v1/client/sign_ins"] == 0
