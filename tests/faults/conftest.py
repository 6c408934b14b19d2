"""Fixtures of the fault suite: the local stack (from tests/e2e) and a TCP proxy in front of it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import pytest

from devstack.stack import Stack
from tests.e2e.conftest import stack  # noqa: F401 - the same per-test stack fixture
from tests.faults.proxy import TcpProxy


@pytest.fixture
async def proxy(stack: Stack) -> AsyncIterator[TcpProxy]:  # noqa: F811 - the fixture above
    """A proxy in front of the Supabase gateway (websocket and data API): point
    SUPABASE_URL at ``proxy.url``."""
    target = urlsplit(stack.supabase_url)
    assert target.hostname is not None
    assert target.port is not None
    async with TcpProxy(target.hostname, target.port) as running:
        yield running
