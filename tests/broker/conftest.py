"""Fixtures of the broker suite: the local stack (from tests/e2e) and the cluster's
ServiceAccount issuer stand-in."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from devstack.kube import KubeIssuer
from tests.broker.support import serving_kube
from tests.e2e.conftest import stack  # noqa: F401 - the same per-test stack fixture


@pytest.fixture
async def kube() -> AsyncIterator[KubeIssuer]:
    async with serving_kube() as issuer:
        yield issuer
