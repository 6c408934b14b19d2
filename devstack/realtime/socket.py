"""The websocket endpoint: upgrade checks, framing, heartbeat, idle close, routing.

Mirrors ``supabase/realtime: lib/realtime_web/channels/user_socket.ex`` (connect checks,
statuses and ``{"error": text}`` bodies after ``CONNECT_ERROR_BACKOFF_MS``) and
``phoenix@v1.8.11: lib/phoenix/socket.ex`` (heartbeat on ``phoenix``, ``unmatched topic``,
duplicate joins, lenient join refs except on ``phx_leave``). Malformed frames are
logged and dropped; the socket stays open. A socket that receives nothing for the idle
timeout is closed (cowboy counts any received data, pings included).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web

from devstack.realtime import join, serializer
from devstack.realtime.handshake import check_upgrade
from devstack.realtime.serializer import Frame

if TYPE_CHECKING:
    from devstack.realtime.channel import Channel
    from devstack.realtime.tenant import Tenant

log = logging.getLogger(__name__)

_CLOSED = (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR)
UNMATCHED = {"reason": "unmatched topic"}


class Connection:
    """One websocket: its channels by topic and an ordered outbound queue."""

    def __init__(
        self,
        tenant: Tenant,
        request: web.Request,
        ws: web.WebSocketResponse,
        vsn: str,
        socket_token: str,
    ) -> None:
        self.tenant = tenant
        self.request = request
        self.ws = ws
        self.vsn = vsn
        self.socket_token = socket_token
        # x-* headers reach RLS as request.headers (§1).
        self.rls_headers = {
            k.lower(): v for k, v in request.headers.items() if k.lower().startswith("x-")
        }
        self.channels: dict[str, Channel] = {}
        self.frozen = False
        self.finished = asyncio.Event()
        self._out: asyncio.Queue[str | bytes | int] = asyncio.Queue()
        self._closing = False

    # -- outbound -------------------------------------------------------------------

    def send_raw(self, data: str | bytes) -> None:
        """Queue a frame; the writer sends them in order. Dropped while frozen or closing."""
        if not self._closing and not self.frozen:
            self._out.put_nowait(data)

    def send_frame(self, frame: Frame) -> None:
        self.send_raw(serializer.encode(self.vsn, frame))

    def reply(self, frame: Frame, status: str, response: Any) -> None:
        """A ``phx_reply`` echoing the message's refs."""
        payload = {"status": status, "response": response}
        self.send_frame(Frame(frame.join_ref, frame.ref, frame.topic, "phx_reply", payload))

    async def close(self, code: int) -> None:
        """Close after everything queued so far has been sent."""
        if not self._closing:
            self._out.put_nowait(code)
            self._closing = True

    def abort(self) -> None:
        """Drop the TCP connection without a close frame (a crash or a network cut)."""
        self._closing = True
        transport = self.request.transport
        if transport is not None:
            transport.abort()

    async def _writer(self) -> None:
        try:
            while True:
                item = await self._out.get()
                if isinstance(item, int):
                    await self.ws.close(code=item)
                    return
                if isinstance(item, bytes):
                    await self.ws.send_bytes(item)
                else:
                    await self.ws.send_str(item)
        except (ConnectionError, RuntimeError) as exc:  # the peer went away mid-send
            log.info("realtime: socket write failed: %r", exc)

    # -- inbound --------------------------------------------------------------------

    async def run(self) -> None:
        """Read until the socket closes; the writer runs alongside."""
        writer = asyncio.get_running_loop().create_task(self._writer(), name="realtime-writer")
        try:
            await self._reader()
        finally:
            for channel in list(self.channels.values()):
                channel.stop()
            if not writer.done():
                # A close sentinel behind whatever is queued (also after an abort).
                self._closing = True
                self._out.put_nowait(1000)
                with contextlib.suppress(asyncio.TimeoutError, ConnectionError, RuntimeError):
                    await asyncio.wait_for(writer, timeout=2.0)
            writer.cancel()

    async def _reader(self) -> None:
        while not self.ws.closed:
            try:
                msg = await self.ws.receive(timeout=self.tenant.settings.idle_timeout_s)
            except TimeoutError:
                log.info("socket idle for %ss: closing", self.tenant.settings.idle_timeout_s)
                await self.close(1000)
                return
            if msg.type in _CLOSED:
                return
            if self.frozen:
                continue
            if msg.type == WSMsgType.PING:
                await self.ws.pong(msg.data)
                continue
            frame = self._decode(msg.type, msg.data)
            if frame is None:
                continue
            try:
                await self.dispatch(frame)
            except Exception:  # one bad message must never take the socket down
                log.exception("realtime: handling %s on %s failed", frame.event, frame.topic)

    def _decode(self, kind: WSMsgType, data: Any) -> Frame | None:
        frame: Frame | None = None
        if kind == WSMsgType.TEXT:
            frame = serializer.decode_text(self.vsn, data)
        elif kind == WSMsgType.BINARY and self.vsn == serializer.V2:
            frame = serializer.decode_binary(data)
        elif kind == WSMsgType.PONG:
            return None
        if frame is None:
            log.info("MalformedWebSocketMessage dropped (%s)", kind.name)
        return frame

    async def dispatch(self, frame: Frame) -> None:
        """Route one decoded message."""
        if frame.topic == "phoenix" and frame.event == "heartbeat":
            self.reply(frame, "ok", {})
        elif frame.event == "phx_join":
            if frame.topic.startswith("realtime:"):
                await join.handle(self, frame)
            else:
                self.reply(frame, "error", UNMATCHED)
        elif frame.event == "phx_leave":
            self._leave(frame)
        elif (channel := self.channels.get(frame.topic)) is not None:
            await channel.handle_in(frame)
        else:
            self.reply(frame, "error", UNMATCHED)

    def _leave(self, frame: Frame) -> None:
        """ok then phx_close; ok for an unjoined topic; ignored for a stale join ref."""
        channel = self.channels.get(frame.topic)
        if channel is None:
            self.reply(frame, "ok", {})
        elif frame.join_ref is None or frame.join_ref == channel.join_ref:
            channel.reply(frame.ref, "ok", {})
            channel.close()


async def websocket_handler(tenant: Tenant, request: web.Request) -> web.StreamResponse:
    """``GET /socket/websocket`` and ``/realtime/v1/websocket``."""
    checked = await check_upgrade(tenant, request)
    if isinstance(checked, web.Response):
        return checked
    vsn, token = checked
    ws = web.WebSocketResponse(
        max_msg_size=tenant.settings.max_frame_bytes, autoping=False, heartbeat=None
    )
    await ws.prepare(request)
    conn = Connection(tenant, request, ws, vsn, token)
    tenant.connections.add(conn)
    try:
        await conn.run()
    finally:
        tenant.connections.discard(conn)
        conn.finished.set()
    return ws
