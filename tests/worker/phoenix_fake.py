"""A small, test-only Phoenix V1 websocket server in the shape of Supabase Realtime.

Just enough of the protocol for the adapter and supervisor tests: heartbeat replies,
``phx_join`` answered ok or ``{"reason": ...}``, duplicate joins (the old channel's
``phx_close`` with the old join ref sent *after* the new join's ok, as Phoenix does),
``phx_leave``, recorded ``access_token`` and ``broadcast`` pushes, and test hooks to push
broadcasts, ``system`` errors followed by ``phx_close``, drop sockets and refuse connects.
Replaced by the devstack stand-in once it exists.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web


@dataclass
class Join:
    topic: str  # the sub-topic, without "realtime:"
    ref: str
    access_token: str | None
    config: dict[str, Any]
    at: float = field(default_factory=time.monotonic)


@dataclass
class _Conn:
    ws: web.WebSocketResponse
    channels: dict[str, str] = field(default_factory=dict)  # sub-topic -> join ref


class PhoenixFake:
    """``async with PhoenixFake() as fake: fake.url`` is the Supabase-style base URL."""

    def __init__(self) -> None:
        self.joins: list[Join] = []
        self.access_tokens: list[tuple[str, str | None]] = []
        self.client_broadcasts: list[tuple[str, dict[str, Any]]] = []
        self.join_errors: dict[str, str] = {}  # sub-topic -> reason for refused joins
        self.refuse_next = 0  # refuse this many upcoming connects with 503
        self.refused = 0
        self.connections = 0
        self._conns: list[_Conn] = []
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def __aenter__(self) -> PhoenixFake:
        app = web.Application()
        app.router.add_get("/realtime/v1/websocket", self._websocket)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def __aexit__(self, *exc: object) -> None:
        # aiohttp's shutdown waits for open websockets: close them first (pitfall 7).
        await self.drop_connections(code=1001)
        assert self._runner is not None
        await self._runner.cleanup()

    # -- queries ----------------------------------------------------------------------------

    def joins_for(self, topic: str) -> list[Join]:
        return [j for j in self.joins if j.topic == topic]

    def joined(self, topic: str) -> bool:
        return any(topic in c.channels for c in self._conns)

    @property
    def open_connections(self) -> int:
        return len(self._conns)

    # -- server pushes ----------------------------------------------------------------------

    async def broadcast(
        self, topic: str, event: str, payload: dict[str, Any], meta: dict[str, Any] | None = None
    ) -> int:
        inner: dict[str, Any] = {"type": "broadcast", "event": event, "payload": payload}
        if meta is not None:
            inner["meta"] = meta
        sent = 0
        for conn in list(self._conns):
            if topic in conn.channels:
                await self._send(conn, f"realtime:{topic}", "broadcast", inner, None)
                sent += 1
        return sent

    async def system_error(self, topic: str, message: str) -> None:
        """A ``system`` error that does not end the server channel."""
        for conn in list(self._conns):
            if topic in conn.channels:
                await self._send(conn, f"realtime:{topic}", "system", _system(topic, message), None)

    async def shutdown_channel(self, topic: str, message: str) -> None:
        """``system`` error then ``phx_close`` (the server's channel shutdown pattern)."""
        for conn in list(self._conns):
            join_ref = conn.channels.pop(topic, None)
            if join_ref is not None:
                full = f"realtime:{topic}"
                await self._send(conn, full, "system", _system(topic, message), None)
                await self._send(conn, full, "phx_close", {}, join_ref)

    async def drop_connections(self, *, code: int = 1011) -> None:
        for conn in list(self._conns):
            await conn.ws.close(code=code, message=b"test drop")

    # -- protocol ---------------------------------------------------------------------------

    async def _websocket(self, request: web.Request) -> web.StreamResponse:
        if self.refuse_next > 0:
            self.refuse_next -= 1
            self.refused += 1
            return web.Response(status=503, text="refused by test")
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        conn = _Conn(ws)
        self._conns.append(conn)
        self.connections += 1
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    await self._on_frame(conn, json.loads(msg.data))
        finally:
            self._conns.remove(conn)
        return ws

    async def _on_frame(self, conn: _Conn, frame: dict[str, Any]) -> None:
        topic, event, ref = frame["topic"], frame["event"], frame.get("ref")
        payload = frame.get("payload") or {}
        sub = topic.removeprefix("realtime:")
        if event == "heartbeat":
            await self._reply(conn, topic, ref, "ok", {})
        elif event == "phx_join":
            await self._on_join(conn, sub, ref, frame.get("join_ref") or ref, payload)
        elif event == "phx_leave":
            await self._reply(conn, topic, ref, "ok", {})
            join_ref = conn.channels.pop(sub, None)
            if join_ref is not None:
                await self._send(conn, topic, "phx_close", {}, join_ref)
        elif event == "access_token":
            self.access_tokens.append((sub, payload.get("access_token")))
        elif event == "broadcast":
            self.client_broadcasts.append((sub, payload))

    async def _on_join(
        self, conn: _Conn, sub: str, ref: str, join_ref: str, payload: dict[str, Any]
    ) -> None:
        self.joins.append(Join(sub, ref, payload.get("access_token"), payload.get("config", {})))
        topic = f"realtime:{sub}"
        reason = self.join_errors.get(sub)
        if reason is not None:
            await self._reply(conn, topic, ref, "error", {"reason": reason})
            return
        old = conn.channels.get(sub)
        conn.channels[sub] = join_ref
        await self._reply(conn, topic, ref, "ok", {})
        if old is not None:
            # Phoenix kills the old channel and its close (old join ref) follows the new ok.
            await self._send(conn, topic, "phx_close", {}, old)

    async def _reply(
        self, conn: _Conn, topic: str, ref: str | None, status: str, response: dict[str, Any]
    ) -> None:
        await self._send(conn, topic, "phx_reply", {"status": status, "response": response}, ref)

    async def _send(
        self, conn: _Conn, topic: str, event: str, payload: dict[str, Any], ref: str | None
    ) -> None:
        frame = {"topic": topic, "event": event, "payload": payload, "ref": ref}
        if not conn.ws.closed:
            await conn.ws.send_str(json.dumps(frame))


def _system(topic: str, message: str) -> dict[str, Any]:
    return {"extension": "system", "status": "error", "message": message, "channel": topic}
