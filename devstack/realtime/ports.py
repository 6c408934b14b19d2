"""The seam to the Postgres Changes extension (``devstack/realtime/postgres_changes.py``).

Written against a Protocol so this package does not depend on that module's internals;
``Realtime`` accepts any object of this shape. Mirrors the split in
``supabase/realtime: lib/extensions/postgres_cdc_rls/``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol

Deliver = Callable[[dict[str, Any]], Awaitable[None]]


class PostgresChangesLike(Protocol):
    """What a channel needs from the Postgres Changes extension."""

    def binding_ids(self, bindings: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Echo each binding with an integer ``id`` (pure)."""
        ...

    async def subscribe(
        self,
        *,
        key: str,
        bindings: list[dict[str, Any]],
        claims: dict[str, Any],
        deliver: Deliver,
    ) -> Any:
        """Subscribe; raises ``SubscriptionError(text)`` with the server's text."""
        ...

    async def update_claims(self, key: str, claims: dict[str, Any]) -> None:
        """Re-subscribe with refreshed claims."""
        ...

    async def unsubscribe(self, key: str) -> None:
        """Drop the channel's subscription rows."""
        ...


def subscription_error_text(exc: BaseException) -> str | None:
    """The user-facing text of a ``SubscriptionError`` (matched by name), else None.

    Matching by name keeps this package importable before the extension exists.
    """
    for cls in type(exc).__mro__:
        if cls.__name__ == "SubscriptionError":
            text = getattr(exc, "text", None)
            return text if isinstance(text, str) else str(exc)
    return None
