"""Scripted outages of the data API, and their control routes under ``/__devstack/rest/``.

Each request under ``/rest/v1/`` first plays the oldest scripted fault that applies to it
(``target`` None: every request; otherwise the path under ``/rest/v1/``, such as
``rpc/save_worker_checkpoint``), before authentication, as a gateway or a PostgREST without
its database would: an error ``status``, or a hang that then answers normally or drops the
connection without an answer. Hangs also end on ``clear()`` (and when the API closes), so
stopping the server never waits for them. Nothing here exists on the real service.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

from aiohttp import web

from devstack.control_route import json_route
from devstack.rest.errors import ApiError, GatewayError

__all__ = ["CONTROL_PREFIX", "DataApiFaults", "HangEnd"]

CONTROL_PREFIX = "/__devstack/rest"
HangEnd = Literal["answer", "drop"]

# What answers these statuses in front of Supabase's data API: PostgREST itself when it
# has lost its database (503), the gateway otherwise (Kong's texts).
_GATEWAY_MESSAGES = {
    429: "API rate limit exceeded",
    502: "An invalid response was received from the upstream server",
    504: "The upstream server is timing out",
}


@dataclass
class _Fault:
    count: int
    status: int | None  # None: a hang
    hang_s: float = 0.0
    then: HangEnd = "answer"
    target: str | None = None

    def applies(self, path: str) -> bool:
        return self.target is None or self.target == path

    def describe(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "status": self.status,
            "hang_seconds": self.hang_s,
            "then": self.then,
            "target": self.target,
        }


def _error(status: int) -> ApiError:
    if status == 503:
        return ApiError(503, "PGRST001", "Database client error. Retrying the connection.")
    return GatewayError(status, "", _GATEWAY_MESSAGES.get(status, "devstack: injected fault"))


def _target(value: str | None) -> str | None:
    return None if value is None else value.strip("/")


class DataApiFaults:
    """The script of faults, played one request at a time (see the module docstring)."""

    def __init__(self) -> None:
        self._faults: list[_Fault] = []
        self._release = asyncio.Event()
        self.played = 0  # faults played so far, for tests

    def fail_next(self, count: int, status: int = 503, *, target: str | None = None) -> None:
        """Answer the next ``count`` (matching) requests with ``status`` (an error status)."""
        if not 400 <= status <= 599:
            raise ValueError(f"status must be an HTTP error status, got {status}")
        if count > 0:
            self._faults.append(_Fault(count, status, target=_target(target)))

    def hang_next(
        self,
        count: int,
        seconds: float,
        *,
        then: HangEnd = "answer",
        target: str | None = None,
    ) -> None:
        """Hold the next ``count`` (matching) requests for ``seconds``, then answer or drop."""
        if then not in ("answer", "drop"):
            raise ValueError("then must be 'answer' or 'drop'")
        if seconds < 0:
            raise ValueError("seconds must be >= 0")
        if count > 0:
            self._faults.append(_Fault(count, None, seconds, then, _target(target)))

    def clear(self) -> None:
        """Forget scripted faults and end running hangs now (they answer normally)."""
        self._faults.clear()
        self._release.set()
        self._release = asyncio.Event()

    def pending(self) -> list[dict[str, Any]]:
        """The faults still scripted, oldest first."""
        return [fault.describe() for fault in self._faults]

    def _take(self, path: str) -> _Fault | None:
        for fault in self._faults:
            if fault.applies(path):
                fault.count -= 1
                if fault.count <= 0:
                    self._faults.remove(fault)
                self.played += 1
                return fault
        return None

    async def before(self, request: web.Request, path: str) -> bool:
        """Play the fault for ``path`` (under /rest/v1/), if any; raises an ``ApiError``.

        False when the connection was dropped (nothing more to answer), True otherwise.
        """
        fault = self._take(path.strip("/"))
        if fault is None:
            return True
        if fault.status is not None:
            raise _error(fault.status)
        release = self._release
        with contextlib.suppress(TimeoutError):  # the timer ran out: the usual end
            await asyncio.wait_for(release.wait(), timeout=fault.hang_s)
        if fault.then == "drop" and not release.is_set():
            if request.transport is not None:
                request.transport.close()  # no HTTP answer: the client sees the close
            return False
        return True

    # -- HTTP -------------------------------------------------------------------------------

    def add_routes(self, app: web.Application) -> None:
        """``POST faults/fail``, ``faults/hang``, ``faults/clear``; ``GET faults``."""
        ops: dict[str, Callable[[dict[str, Any]], Awaitable[Any]]] = {
            "faults/fail": self._http_fail,
            "faults/hang": self._http_hang,
            "faults/clear": self._http_clear,
        }
        for name, op in ops.items():
            app.router.add_post(f"{CONTROL_PREFIX}/{name}", json_route(op))
        app.router.add_get(f"{CONTROL_PREFIX}/faults", json_route(self._http_state))

    async def _http_fail(self, body: dict[str, Any]) -> Any:
        self.fail_next(
            int(body.get("count", 1)), int(body.get("status", 503)), target=body.get("target")
        )
        return await self._http_state(body)

    async def _http_hang(self, body: dict[str, Any]) -> Any:
        self.hang_next(
            int(body.get("count", 1)),
            float(body["seconds"]),
            then=body.get("then", "answer"),
            target=body.get("target"),
        )
        return await self._http_state(body)

    async def _http_clear(self, body: dict[str, Any]) -> Any:
        self.clear()
        return await self._http_state(body)

    async def _http_state(self, _body: dict[str, Any]) -> Any:
        return {"pending": self.pending(), "played": self.played}
