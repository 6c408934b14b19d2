"""A small HTTP/1.1 server for ``/metrics``, ``/healthz``, ``/readyz`` and ``/status``.

Built on asyncio streams to avoid a web framework in the worker: GET only, one request
per connection (``Connection: close``), request head bounded in size and in time.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Mapping
from typing import Any

import anyio
from anyio.abc import TaskStatus
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

__all__ = ["HealthCheck", "HealthChecks", "HttpServer"]

log = logging.getLogger("worker.observe.http")

#: A readiness check: None when healthy, else a short reason.
HealthCheck = Callable[[], str | None]

_MAX_HEAD_BYTES = 8192
_READ_TIMEOUT_S = 5.0
_REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


class HealthChecks:
    """Named readiness checks, e.g. ``token.fresh`` or ``channels.joined``."""

    def __init__(self) -> None:
        self._checks: dict[str, HealthCheck] = {}

    def add(self, name: str, check: HealthCheck) -> None:
        """Register ``check`` under ``name``; names are unique."""
        if name in self._checks:
            raise ValueError(f"health check {name!r} is already registered")
        self._checks[name] = check

    @property
    def names(self) -> list[str]:
        """The registered check names, in registration order."""
        return list(self._checks)

    def failures(self) -> dict[str, str]:
        """Run every check; map each failing one to its reason (empty when all pass)."""
        failed: dict[str, str] = {}
        for name, check in self._checks.items():
            try:
                reason = check()
            except Exception as exc:  # a broken check means "not ready", not a crash
                reason = f"check raised {type(exc).__name__}"
            if reason is not None:
                failed[name] = reason
        return failed


class HttpServer:
    """Serves the observability endpoints from the injected registry, checks and status."""

    def __init__(
        self,
        registry: CollectorRegistry,
        checks: HealthChecks,
        status: Callable[[], Mapping[str, Any]],
        *,
        host: str = "0.0.0.0",  # noqa: S104 - scraped from outside the pod
        port: int = 9464,
    ) -> None:
        self._registry = registry
        self._checks = checks
        self._status = status
        self._host = host
        self._port = port

    async def serve(self, *, task_status: TaskStatus[int] = anyio.TASK_STATUS_IGNORED) -> None:
        """Listen, report the bound port (useful with port 0), serve until cancelled."""
        server = await asyncio.start_server(
            self._handle, self._host, self._port, limit=_MAX_HEAD_BYTES
        )
        async with server:
            port = int(server.sockets[0].getsockname()[1])
            log.info("http server listening", extra={"host": self._host, "port": port})
            task_status.started(port)
            await server.serve_forever()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            status, ctype, body = await self._respond(reader)
            head = (
                f"HTTP/1.1 {status} {_REASONS.get(status, 'Unknown')}\r\n"
                f"Content-Type: {ctype}\r\nContent-Length: {len(body)}\r\n"
                "Connection: close\r\n"
            )
            if status == 405:
                head += "Allow: GET\r\n"
            writer.write(head.encode("ascii") + b"\r\n" + body)
            await writer.drain()
        except (ConnectionError, TimeoutError):
            pass  # the client went away or stalled: nothing to answer
        finally:
            writer.close()

    async def _respond(self, reader: asyncio.StreamReader) -> tuple[int, str, bytes]:
        try:
            with anyio.fail_after(_READ_TIMEOUT_S):
                head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.LimitOverrunError:
            return _json(431, {"error": "request head too large"})
        except asyncio.IncompleteReadError:
            return _json(400, {"error": "incomplete request"})
        parts = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            return _json(400, {"error": "malformed request line"})
        method, target = parts[0], parts[1].split("?", 1)[0]
        if method != "GET":
            return _json(405, {"error": "only GET is supported"})
        return self._route(target)

    def _route(self, path: str) -> tuple[int, str, bytes]:
        routes = {
            "/metrics": self._metrics,
            "/healthz": lambda: _json(200, {"alive": True}),
            "/readyz": self._ready,
            "/status": self._status_json,
        }
        route = routes.get(path)
        return route() if route else _json(404, {"error": "not found"})

    def _metrics(self) -> tuple[int, str, bytes]:
        return 200, CONTENT_TYPE_LATEST, generate_latest(self._registry)

    def _ready(self) -> tuple[int, str, bytes]:
        failed = self._checks.failures()
        if failed:
            return _json(503, {"ready": False, "failed": failed})
        return _json(200, {"ready": True, "checks": self._checks.names})

    def _status_json(self) -> tuple[int, str, bytes]:
        try:
            return _json(200, dict(self._status()))
        except Exception:
            log.exception("status snapshot failed")
            return _json(500, {"error": "status unavailable"})


def _json(status: int, payload: Mapping[str, Any]) -> tuple[int, str, bytes]:
    body = json.dumps(payload, default=str, sort_keys=True).encode()
    return status, "application/json", body
