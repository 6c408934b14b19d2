"""A raw Phoenix client for exact frames: V1 JSON objects or V2 arrays plus kind-4 binary."""

from __future__ import annotations

import itertools
import json
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import anyio

V1, V2 = "1.0.0", "2.0.0"


@dataclass
class Msg:
    """A received frame, normalised; ``raw`` is the exact text or bytes."""

    topic: str
    event: str
    payload: Any
    ref: Any = None
    join_ref: Any = None
    raw: Any = None
    binary: bool = False


def decode_kind4(data: bytes) -> Msg:
    """Decode a V2 kind-4 user broadcast into a broadcast-shaped message."""
    assert data[0] == 4, data[:1]
    topic_len, event_len, meta_len, encoding = struct.unpack("4B", data[1:5])
    offset = 5
    topic = data[offset : offset + topic_len].decode()
    offset += topic_len
    event = data[offset : offset + event_len].decode()
    offset += event_len
    meta = data[offset : offset + meta_len].decode()
    offset += meta_len
    body = data[offset:]
    payload: dict[str, Any] = {
        "event": event,
        "payload": json.loads(body) if encoding == 1 else body,
        "type": "broadcast",
        "encoding": encoding,
    }
    if meta:
        payload["meta"] = json.loads(meta)
    return Msg(topic, "broadcast", payload, raw=data, binary=True)


def encode_kind3(
    join_ref: str, ref: str, topic: str, event: str, payload: bytes, *, encoding: int = 1
) -> bytes:
    """A V2 kind-3 user-broadcast push as realtime-js builds it."""
    parts = [join_ref.encode(), ref.encode(), topic.encode(), event.encode(), b""]
    header = bytes([3, *(len(p) for p in parts), encoding])
    return header + b"".join(parts) + payload


@dataclass
class RawClient:
    ws: aiohttp.ClientWebSocketResponse
    vsn: str = V1
    _refs: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    seen: list[Msg] = field(default_factory=list)

    def next_ref(self) -> str:
        return str(next(self._refs))

    async def send_raw(self, data: str | bytes) -> None:
        if isinstance(data, bytes):
            await self.ws.send_bytes(data)
        else:
            await self.ws.send_str(data)

    async def push(
        self, topic: str, event: str, payload: Any, *, ref: Any = "auto", join_ref: Any = None
    ) -> Any:
        """Send a message; returns its ref."""
        ref = self.next_ref() if ref == "auto" else ref
        if self.vsn == V2:
            await self.ws.send_str(json.dumps([join_ref, ref, topic, event, payload]))
        else:
            msg = {"topic": topic, "event": event, "payload": payload, "ref": ref}
            if join_ref is not None:
                msg["join_ref"] = join_ref
            await self.ws.send_str(json.dumps(msg))
        return ref

    async def recv(self) -> Msg:
        """The next frame (raises if the socket closes)."""
        wsmsg = await self.ws.receive()
        if wsmsg.type == aiohttp.WSMsgType.BINARY:
            msg = decode_kind4(wsmsg.data)
        elif wsmsg.type == aiohttp.WSMsgType.TEXT:
            data = json.loads(wsmsg.data)
            if self.vsn == V2:
                join_ref, ref, topic, event, payload = data
                msg = Msg(topic, event, payload, ref, join_ref, raw=data)
            else:
                msg = Msg(data["topic"], data["event"], data["payload"], data["ref"], raw=data)
        else:
            raise ConnectionError(f"socket ended: {wsmsg.type.name} {self.ws.close_code}")
        self.seen.append(msg)
        return msg

    async def expect(self, pred: Callable[[Msg], bool], within: float = 10.0) -> Msg:
        """Read until a frame matches ``pred``; the skipped ones stay in ``seen``."""
        with anyio.fail_after(within):
            while True:
                msg = await self.recv()
                if pred(msg):
                    return msg

    async def next(self, within: float = 10.0) -> Msg:
        with anyio.fail_after(within):
            return await self.recv()

    async def reply_to(self, ref: Any, within: float = 10.0) -> Msg:
        return await self.expect(lambda m: m.event == "phx_reply" and m.ref == ref, within)

    async def join(
        self, sub: str, config: dict[str, Any] | None = None, token: str | None = None
    ) -> tuple[str, Msg]:
        """Join ``realtime:<sub>``; returns (join_ref, reply)."""
        payload: dict[str, Any] = {"config": config if config is not None else {}}
        if token is not None:
            payload["access_token"] = token
        ref = self.next_ref()
        await self.push(f"realtime:{sub}", "phx_join", payload, ref=ref, join_ref=ref)
        return ref, await self.reply_to(ref)

    async def heartbeat(self) -> Msg:
        """A heartbeat round trip: everything sent before it has been received after it."""
        ref = await self.push("phoenix", "heartbeat", {})
        return await self.reply_to(ref)

    async def closed(self, within: float = 10.0) -> int | None:
        """Wait for the server to close the socket; returns the close code."""
        with anyio.fail_after(within):
            while True:
                wsmsg = await self.ws.receive()
                if wsmsg.type in (
                    aiohttp.WSMsgType.CLOSE,
                    aiohttp.WSMsgType.CLOSED,
                    aiohttp.WSMsgType.CLOSING,
                    aiohttp.WSMsgType.ERROR,
                ):
                    return self.ws.close_code
