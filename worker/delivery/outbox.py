"""The outbox through the data API: ``OutboxStore``, and the operations it is counted by.

``OutboxStore`` calls the worker RPCs (``org_events_after``, ``outbox_position``,
``get_worker_checkpoint_state``, ``save_worker_checkpoint``; migration
``20261126000600_delivery.sql``) with the shared PostgREST client, so every call carries
the current token and RLS scopes it to the org. Every failure surfaces as
``DataApiError``; a save the database refuses for an older lease ``epoch`` as
``CheckpointFenced`` (``20261202020000_worker_leases.sql``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import Any

import httpx
from postgrest import AsyncPostgrestClient
from postgrest.exceptions import APIError

from worker.delivery.ledger import Checkpoint, Position, parse_db_time
from worker.errors import CheckpointFenced, DataApiError

__all__ = ["OutboxOperation", "OutboxStore"]


#: The SQLSTATE of a checkpoint save refused for an older lease epoch.
FENCED_SQLSTATE = "PT409"


class OutboxOperation(StrEnum):
    """The ``operation`` label of ``outbox_failures_total``."""

    LOAD = "load"  # reading the saved checkpoint (catch-up, at start)
    CATCHUP = "catchup"  # a catch-up pass
    SAVE = "save"  # saving the checkpoint (the checkpointer)


class OutboxStore:
    """``Outbox`` over PostgREST RPCs, for one consumer and the subscribed topics."""

    def __init__(
        self,
        client: AsyncPostgrestClient,
        *,
        consumer: str,
        topics: Sequence[str],
        epoch: int | None = None,
    ) -> None:
        self._client = client
        self._epoch = epoch  # saves carry it when set (the lease is on)
        self._consumer = consumer
        self._topics = list(topics)

    async def load(self) -> Checkpoint:
        """The saved checkpoint ((0, ()) when there is none yet)."""
        rows = await self._rows("get_worker_checkpoint_state", {"consumer": self._consumer})
        if not rows:
            return Checkpoint(0)
        row = rows[0]
        above = row.get("handled_above") or []
        return Checkpoint(int(row["last_event_id"]), tuple(int(i) for i in above))

    async def save(self, checkpoint: Checkpoint) -> None:
        """Save forward-only (the database keeps the higher mark)."""
        params = {
            "consumer": self._consumer,
            "last_event_id": checkpoint.last_event_id,
            "handled_above": list(checkpoint.handled_above),
        }
        if self._epoch is not None:
            params["epoch"] = self._epoch
        await self._call("save_worker_checkpoint", params)

    async def position(self) -> Position:
        """The head of the org's outbox (subscribed topics) and the database's clock."""
        rows = await self._rows("outbox_position", {"topics": self._topics})
        db_now = parse_db_time(rows[0].get("db_now")) if rows else None
        if db_now is None:
            raise DataApiError("outbox_position returned no database time")
        return Position(int(rows[0].get("head") or 0), db_now)

    async def page(self, after_id: int, limit: int) -> list[Mapping[str, Any]]:
        """Up to ``limit`` outbox rows with ids above ``after_id``, oldest first."""
        params = {"after_id": after_id, "max_rows": limit, "topics": self._topics}
        return await self._rows("org_events_after", params)

    async def _rows(self, function: str, params: Mapping[str, Any]) -> list[Mapping[str, Any]]:
        data = await self._call(function, params)
        if not isinstance(data, list) or not all(isinstance(r, Mapping) for r in data):
            raise DataApiError(f"{function} returned {type(data).__name__}, not rows")
        return data

    async def _call(self, function: str, params: Mapping[str, Any]) -> Any:
        try:
            response = await self._client.rpc(function, dict(params)).execute()
        except DataApiError:
            raise
        except APIError as exc:
            if exc.code == FENCED_SQLSTATE:
                raise CheckpointFenced(f"{function} refused: {exc.message}") from exc
            raise DataApiError(f"{function} failed: {exc.code} {exc.message}") from exc
        except (httpx.HTTPError, ValueError) as exc:  # ValueError: a body that is not JSON
            raise DataApiError(f"{function} failed: {type(exc).__name__}: {exc}") from exc
        return response.data
