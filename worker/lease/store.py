"""The lease through the data API: ``LeaseStore``, and what a renewal can end as.

``LeaseStore`` calls ``acquire_worker_lease``, ``renew_worker_lease`` and
``release_worker_lease`` (migration ``20261202020000_worker_leases.sql``) with the shared
PostgREST client, so every call carries the current token and the database scopes it to
the token's org and refuses members. Every failure surfaces as ``DataApiError``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import httpx
from postgrest import AsyncPostgrestClient
from postgrest.exceptions import APIError

from worker.errors import DataApiError

__all__ = ["LeaseGrant", "LeaseStore", "RenewResult"]


class RenewResult(StrEnum):
    """The ``result`` label of ``lease_renewals_total``."""

    RENEWED = "renewed"  # the lease was extended
    LOST = "lost"  # the database says another holder or epoch has it (or it expired)
    FAILED = "failed"  # the data API did not answer in time or answered an error


@dataclass(frozen=True, slots=True)
class LeaseGrant:
    """The lease as the database saw it: whether the caller holds it, at which epoch."""

    acquired: bool
    epoch: int
    holder: str


class LeaseStore:
    """The lease RPCs for one (org, consumer) as ``holder``, with a lifetime of ``ttl_s``."""

    def __init__(
        self, client: AsyncPostgrestClient, *, consumer: str, holder: str, ttl_s: float
    ) -> None:
        self._client = client
        self._consumer = consumer
        self.holder = holder
        self._ttl_s = ttl_s

    async def acquire(self) -> LeaseGrant:
        """Take the lease if it is free, expired or ours (a new epoch each take)."""
        params = {"holder": self.holder, "ttl_seconds": self._ttl_s}
        return await self._grant("acquire_worker_lease", params)

    async def renew(self, epoch: int) -> LeaseGrant:
        """Extend our lease at ``epoch``; ``acquired`` is False when it is lost."""
        params = {"holder": self.holder, "epoch": epoch, "ttl_seconds": self._ttl_s}
        return await self._grant("renew_worker_lease", params)

    async def release(self, epoch: int) -> bool:
        """Let our lease at ``epoch`` go now; False when we no longer held it."""
        params = {"consumer": self._consumer, "holder": self.holder, "epoch": epoch}
        return bool(await self._call("release_worker_lease", params))

    async def _grant(self, function: str, params: Mapping[str, Any]) -> LeaseGrant:
        data = await self._call(function, {"consumer": self._consumer, **params})
        if not isinstance(data, list) or not data or not isinstance(data[0], Mapping):
            raise DataApiError(f"{function} returned {type(data).__name__}, not one row")
        row = data[0]
        try:
            return LeaseGrant(
                bool(row["acquired"]), int(row["lease_epoch"]), str(row["lease_holder"])
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise DataApiError(f"{function} returned an unexpected row: {exc}") from exc

    async def _call(self, function: str, params: Mapping[str, Any]) -> Any:
        try:
            response = await self._client.rpc(function, dict(params)).execute()
        except APIError as exc:
            raise DataApiError(f"{function} failed: {exc.code} {exc.message}") from exc
        except (httpx.HTTPError, ValueError) as exc:  # ValueError: a body that is not JSON
            raise DataApiError(f"{function} failed: {type(exc).__name__}: {exc}") from exc
        return response.data
