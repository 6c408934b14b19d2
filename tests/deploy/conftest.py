"""Deploy tests that need a worker on the local stack reuse tests/e2e's ``stack`` fixture."""

from __future__ import annotations

from tests.e2e.conftest import stack

__all__ = ["stack"]
