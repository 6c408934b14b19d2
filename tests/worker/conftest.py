"""Fixtures for the worker unit tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from tests.worker.fakes import FakeClerk
from worker.testing import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def clerk(clock: FakeClock) -> FakeClerk:
    return FakeClerk(clock)


@pytest.fixture
async def http(clerk: FakeClerk) -> AsyncIterator[httpx.AsyncClient]:
    async with clerk.client() as client:
        yield client
