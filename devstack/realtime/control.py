"""Test control surface: Python methods and HTTP routes under ``/__devstack/realtime/``.

Each operation reproduces something the real server does on its own (a tenant reload's
1012, a rate-limit shutdown, a channel crash, a dead network) so tests can provoke it.
Nothing here exists on the real server.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from devstack.control_route import json_route
from devstack.realtime import db_broadcast
from devstack.realtime.settings import RealtimeSettings

if TYPE_CHECKING:
    from devstack.realtime.channel import Channel
    from devstack.realtime.tenant import Tenant

PREFIX = "/__devstack/realtime"
SERVER_DISCONNECT = {
    "extension": "system",
    "status": "ok",
    "message": "Server requested disconnect",
}


class Control:
    """Operations on the live server; every method is safe to call at any time."""

    def __init__(self, tenant: Tenant) -> None:
        self._tenant = tenant

    def _channels(self, sub: str | None = None, private: bool | None = None) -> list[Channel]:
        return [
            ch
            for conn in list(self._tenant.connections)
            for ch in list(conn.channels.values())
            if (sub is None or ch.sub == sub) and (private is None or ch.private == private)
        ]

    async def disconnect_all(self, code: int = 1012) -> int:
        """``Server requested disconnect`` (no ``channel`` key) to joined channels, then close."""
        conns = list(self._tenant.connections)
        for conn in conns:
            for channel in list(conn.channels.values()):
                channel.push("system", dict(SERVER_DISCONNECT))
            await conn.close(code)
        return len(conns)

    def shutdown_topic(self, sub: str, message: str, private: bool | None = None) -> int:
        """Shut matching channels down: ``system`` error with ``message``, then ``phx_close``."""
        channels = self._channels(sub, private)
        for channel in channels:
            channel.shutdown(message)
        return len(channels)

    def error_topic(self, sub: str, private: bool | None = None) -> int:
        """``phx_error`` on matching channels (a crash); clients rejoin."""
        channels = self._channels(sub, private)
        for channel in channels:
            channel.crash()
        return len(channels)

    def drop_all(self) -> int:
        """Cut every socket without a close frame."""
        conns = list(self._tenant.connections)
        for conn in conns:
            conn.abort()
        return len(conns)

    def freeze_all(self, frozen: bool = True) -> int:
        """Stop reading and writing (pings unanswered) without closing; ``False`` thaws."""
        for conn in self._tenant.connections:
            conn.frozen = frozen
        return len(self._tenant.connections)

    def update_settings(self, **fields: Any) -> RealtimeSettings:
        """Replace settings (delays, limits, timeouts); unknown names raise TypeError."""
        self._tenant.settings = dataclasses.replace(self._tenant.settings, **fields)
        return self._tenant.settings

    def set_delays(self, *, join_s: float | None = None, connect_s: float | None = None) -> None:
        changes = {"join_error_delay_s": join_s, "connect_error_delay_s": connect_s}
        self.update_settings(**{k: v for k, v in changes.items() if v is not None})

    def trip(self, counter: str, seconds: float = 1.0) -> None:
        """Force ``events`` or ``joins`` per second into the tripped state."""
        limits = self._tenant.limits
        {"events": limits.events, "joins": limits.joins}[counter].trip(seconds)

    def broadcast(self, sub: str, event: str, payload: Any, private: bool = True) -> str:
        """Inject a database broadcast (as ``realtime.send``); returns its ``meta.id``."""
        return db_broadcast.publish(self._tenant, sub, event, payload, private=private)

    def stats(self) -> dict[str, Any]:
        """Sockets, and channels by sub-topic with join refs and token ``exp``."""
        channels: dict[str, list[dict[str, Any]]] = {}
        for ch in self._channels():
            channels.setdefault(ch.sub, []).append(
                {
                    "topic": ch.topic,
                    "join_ref": ch.join_ref,
                    "private": ch.private,
                    "exp": ch.claims.get("exp"),
                    "vsn": ch.conn.vsn,
                }
            )
        return {"sockets": len(self._tenant.connections), "channels": channels}

    # -- HTTP -----------------------------------------------------------------------

    def add_routes(self, app: web.Application) -> None:
        routes: dict[str, Callable[[dict[str, Any]], Awaitable[Any]]] = {
            "disconnect": self._http_disconnect,
            "shutdown": self._http_shutdown,
            "error": self._http_error,
            "drop": self._http_drop,
            "freeze": self._http_freeze,
            "settings": self._http_settings,
            "trip": self._http_trip,
            "broadcast": self._http_broadcast,
        }
        for name, op in routes.items():
            app.router.add_post(f"{PREFIX}/{name}", json_route(op))
        app.router.add_get(f"{PREFIX}/stats", json_route(self._http_stats))

    async def _http_stats(self, _body: dict[str, Any]) -> Any:
        return self.stats()

    async def _http_disconnect(self, body: dict[str, Any]) -> Any:
        return {"sockets": await self.disconnect_all(int(body.get("code", 1012)))}

    async def _http_shutdown(self, body: dict[str, Any]) -> Any:
        count = self.shutdown_topic(body["topic"], body["message"], body.get("private"))
        return {"channels": count}

    async def _http_error(self, body: dict[str, Any]) -> Any:
        return {"channels": self.error_topic(body["topic"], body.get("private"))}

    async def _http_drop(self, _body: dict[str, Any]) -> Any:
        return {"sockets": self.drop_all()}

    async def _http_freeze(self, body: dict[str, Any]) -> Any:
        return {"sockets": self.freeze_all(bool(body.get("frozen", True)))}

    async def _http_settings(self, body: dict[str, Any]) -> Any:
        return dataclasses.asdict(self.update_settings(**body))

    async def _http_trip(self, body: dict[str, Any]) -> Any:
        self.trip(body["counter"], float(body.get("seconds", 1.0)))
        return {"tripped": body["counter"]}

    async def _http_broadcast(self, body: dict[str, Any]) -> Any:
        private = bool(body.get("private", True))
        return {"id": self.broadcast(body["topic"], body["event"], body["payload"], private)}
