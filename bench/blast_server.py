"""A loopback Phoenix V1 server that answers join/heartbeat, then blasts broadcasts.

Run as its own process (``python -m bench.blast_server``; it prints ``PORT <n>``) so that
the client under test has a core of its own. Each joined channel receives ``frames``
pre-shaped database broadcasts (an ``org_events`` outbox row, as the devstack and
Supabase send them) as fast as the client reads: every send awaits the transport's
drain, so the socket buffer, not this server, sets the pace. It also serves a JWKS
(``/jwks.json``) for the worker's token verifier and ``POST /__bench/frames`` to set
how many frames the next join gets, and at what rate (0: as fast as the client reads).

The worker's delivery layer also needs the outbox RPCs of the data API; this server
answers them over the frames of the latest blast (ids 1..frames sent), so that the
worker runs anchored, with catch-up and checkpoints, as against a real project.

Frames are written to the transport as pre-framed WebSocket bytes, many per write, so the
server spends well under a microsecond of Python per frame.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from aiohttp import WSMsgType, web

JOIN_OK = {"status": "ok", "response": {"postgres_changes": []}}
BATCH = 64  # frames per transport write when unpaced


def ws_text_frame(text: str) -> bytes:
    """One unmasked, final WebSocket text frame (server to client, RFC 6455 5.2)."""
    data = text.encode()
    size = len(data)
    if size < 126:
        header = bytes([0x81, size])
    elif size < 65536:
        header = bytes([0x81, 126]) + size.to_bytes(2, "big")
    else:
        header = bytes([0x81, 127]) + size.to_bytes(8, "big")
    return header + data


def outbox_row(event_id: int, org_id: str, short_topic: str, created_at: str) -> dict[str, Any]:
    """One ``org_events`` row, as the database broadcast and the data API carry it."""
    return {
        "id": event_id,
        "org_id": org_id,
        "topic": short_topic,
        "event": "task.created",
        "payload": {"task_id": "tsk_2f9c1", "title": "Send the invoice", "priority": 2},
        "created_at": created_at,
    }


def _now_iso() -> str:
    return datetime.now(UTC).isoformat()


def frame_template(
    topic: str, org_id: str, short_topic: str, created_at: str
) -> tuple[str, str, str]:
    """Three string pieces: ``a + <event id> + b + <message uuid> + c`` is one V1 frame."""
    marker_id, marker_uuid = 987654321987, "00000000-0000-4000-8000-00000000beef"
    row = outbox_row(marker_id, org_id, short_topic, created_at)
    payload = {
        "event": "task.created",
        "payload": row,
        "type": "broadcast",
        "meta": {"id": marker_uuid},
    }
    text = json.dumps({"topic": topic, "event": "broadcast", "payload": payload, "ref": None})
    a, rest = text.split(str(marker_id), 1)
    b, c = rest.split(marker_uuid, 1)
    return a, b, c


class BlastServer:
    def __init__(self) -> None:
        self.frames = 10_000
        self.rate = 0.0
        self.sent: list[dict[str, Any]] = []
        # The outbox of the latest blast: (org_id, short topic, created_at) and its head.
        self.outbox: tuple[str, str, str] = ("", "", "")
        self.head = 0

    async def websocket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(compress=False, max_msg_size=0)  # Phoenix: no deflate
        await ws.prepare(request)
        tasks: set[asyncio.Task[None]] = set()
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                continue
            data = json.loads(msg.data)
            topic, event, ref = data.get("topic"), data.get("event"), data.get("ref")
            if event in ("phx_join", "heartbeat", "phx_leave"):
                reply = {"topic": topic, "event": "phx_reply", "payload": JOIN_OK, "ref": ref}
                await ws.send_str(json.dumps(reply))
            if event == "phx_join":
                task = asyncio.create_task(self._blast(request, topic, self.frames, self.rate))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
        for task in tasks:
            task.cancel()
        return ws

    async def _blast(self, request: web.Request, topic: str, count: int, rate: float) -> None:
        sub = topic.removeprefix("realtime:")
        _, org_id, short = sub.split(":", 2)
        self.outbox, self.head = (org_id, short, _now_iso()), 0
        a, b, c = frame_template(topic, org_id, short, self.outbox[2])
        prefix = uuid.uuid4().hex[:8]
        transport, protocol = request.transport, request.protocol
        assert transport is not None
        started = time.perf_counter()
        i = 0
        try:
            while i < count:
                if rate > 0:
                    due = min(count, int((time.perf_counter() - started) * rate) + 1)
                    if due <= i:
                        await asyncio.sleep(0.001)
                        continue
                else:
                    due = min(count, i + BATCH)
                chunk = []
                while i < due:
                    i += 1
                    # Unique outbox id and message id per frame (dedup must never kick in).
                    chunk.append(ws_text_frame(f"{a}{i}{b}{prefix}-0000-4000-8000-{i:012d}{c}"))
                if transport.is_closing():
                    return
                transport.write(b"".join(chunk))
                self.head = i
                await protocol._drain_helper()  # waits while the transport is paused
        except (ConnectionError, RuntimeError):
            return
        elapsed = time.perf_counter() - started
        self.sent.append({"topic": topic, "frames": count, "seconds": elapsed})

    async def rpc(self, request: web.Request) -> web.Response:
        """The outbox RPCs the worker's delivery layer calls (supabase/migrations 000600)."""
        function = request.match_info["function"]
        try:
            body = await request.json()
        except ConnectionResetError:  # the worker left mid-request (the end of a round)
            return web.Response(status=499)
        org_id, short, created_at = self.outbox
        if function == "outbox_position":
            return web.json_response([{"head": self.head, "db_now": _now_iso()}])
        if function == "org_events_after":
            first = int(body["after_id"]) + 1
            last = min(self.head, first + int(body["max_rows"]) - 1)
            rows = [outbox_row(i, org_id, short, created_at) for i in range(first, last + 1)]
            return web.json_response(rows)
        if function == "get_worker_checkpoint_state":
            return web.json_response([])
        if function == "save_worker_checkpoint":
            return web.json_response(None)
        return web.json_response({"message": f"no function {function}"}, status=404)

    async def set_frames(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.frames = int(body["frames"])
        self.rate = float(body.get("rate", 0))
        return web.json_response({"frames": self.frames, "rate": self.rate})


def app(jwks: dict[str, Any]) -> web.Application:
    server = BlastServer()
    application = web.Application()
    application.router.add_get("/realtime/v1/websocket", server.websocket)
    application.router.add_post("/__bench/frames", server.set_frames)
    application.router.add_post("/rest/v1/rpc/{function}", server.rpc)

    async def keys(_request: web.Request) -> web.Response:
        return web.json_response(jwks)

    application.router.add_get("/jwks.json", keys)
    return application


async def serve(jwks: dict[str, Any]) -> None:
    runner = web.AppRunner(app(jwks), access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    print(f"PORT {port}", flush=True)
    # Serve until stdin closes (the parent ends or closes it).
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)
    await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jwks", required=True, help="the JWKS to serve, as JSON")
    args = parser.parse_args()
    asyncio.run(serve(json.loads(args.jwks)))


if __name__ == "__main__":
    main()
