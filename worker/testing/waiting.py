"""``eventually``: wait for a condition under a deadline instead of sleeping and hoping."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable

import anyio

__all__ = ["eventually"]

POLL_S = 0.01


async def eventually(
    predicate: Callable[[], object | Awaitable[object]],
    *,
    timeout_s: float = 10.0,
    message: str = "condition",
    poll_s: float = POLL_S,
) -> None:
    """Return as soon as ``predicate()`` is truthy, polling every ``poll_s`` (real time).

    ``predicate`` may be a plain or an async function. Raises ``AssertionError`` naming
    ``message`` when ``timeout_s`` passes first (the deadline is ``anyio.fail_after``'s, so
    a slow async predicate cannot outlast it). An error raised by ``predicate`` propagates.
    """
    scope = anyio.CancelScope()
    try:
        with anyio.fail_after(timeout_s) as scope:
            while not await _holds(predicate):  # noqa: ASYNC110 - polled state has no event
                await anyio.sleep(poll_s)
    except TimeoutError:
        if not scope.cancelled_caught:  # raised by the predicate itself: not our deadline
            raise
        raise AssertionError(f"timed out after {timeout_s:g} s waiting for {message}") from None


async def _holds(predicate: Callable[[], object | Awaitable[object]]) -> bool:
    value = predicate()
    if inspect.isawaitable(value):
        value = await value
    return bool(value)
