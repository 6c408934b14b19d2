"""The narrow adapter over ``realtime.AsyncRealtimeClient`` (pinned: realtime==2.34.1).

The official client owns background tasks nobody supervises, calls callbacks inline on its
listen task (sync only; a raising callback silently ends delivery), routes frames by topic
only, and reconnects from inside ``send()``. This module keeps all of that in one place:

* callbacks only parse and ``offer()``, inside try/except (``Intake``);
* every channel gets a stale-close guard: a ``phx_close``/``phx_error`` whose ``ref`` is not
  the channel's current join ref belongs to an older join and is dropped;
* ``set_auth`` is bounded by a timeout and never waits for a reply (Realtime sends none);
* a join that fails is torn down, so the client's own rejoin timer does not retry it
  behind the supervisor's back (the supervisor owns the backoff);
* a heartbeat watchdog (``check_heartbeat``): the client sends Phoenix heartbeats at most
  every 15 s (``max(hb_interval, 15)``) and ignores their replies, so a stalled network
  (TCP open, nothing arriving) is only noticed by websockets' keepalive after 20 s + 20 s.
  The adapter sends its own heartbeat every ``heartbeat_s`` and notes the time of every
  frame received; a heartbeat left unanswered while nothing arrived for two intervals
  means the socket is dead: it is aborted and the supervisor rebuilds the client.

* every frame is read once: the adapter's ``recv`` validates it with the client's own
  ``ServerMessageAdapter``; a broadcast goes straight to its channel's broadcast callbacks,
  one the client cannot read goes to the intake, anything else on to the client.

Private members of the client used here (pinned: realtime==2.34.1): ``_listen_task`` (it
runs the reconnect loop and ends when the client gives up), ``channel._handle_message``
(wrapped), ``_reconnect`` (counted), ``_on_connect`` (wrapped to observe each new socket's
``recv``) and ``_ws_connection`` (the watchdog's heartbeats and abort); and, as the client's
``_handle_message`` uses them for a broadcast, ``client.channels`` and
``channel.broadcast_callbacks``. Re-check them all when upgrading ``realtime``.
"""

from __future__ import annotations

import json
import logging
import math
import re
import time
from collections.abc import Callable, Mapping
from contextlib import suppress
from typing import Any, cast

import anyio
from realtime import AsyncRealtimeChannel, AsyncRealtimeClient, RealtimeSubscribeStates
from realtime.message import (
    BroadcastMessage,
    ChannelCloseMessage,
    ChannelErrorMessage,
    Message,
    ServerMessage,
    ServerMessageAdapter,
)
from realtime.types import ChannelEvents, RealtimeChannelOptions
from websockets.asyncio.client import ClientConnection

from worker._intake import Intake, IntakeMetrics
from worker.errors import JoinRefused, RealtimeError

__all__ = ["ChannelHandle", "Intake", "IntakeMetrics", "MessageSink", "RealtimeAdapter"]

_log = logging.getLogger("worker.realtime")

ClientFactory = Callable[[], AsyncRealtimeClient]
MessageSink = Callable[[str, Mapping[str, Any]], None]


class ChannelHandle:
    """One generation of one channel: its client object and what the server said."""

    def __init__(self, topic: str, channel: AsyncRealtimeChannel, sink: MessageSink) -> None:
        self.topic = topic
        self.channel = channel
        self.status: str | None = None
        self.last_error: str | None = None
        self.left_by_us = False
        self.stale_dropped = 0
        self._sink = sink

    @property
    def state(self) -> str:
        """The client's channel state: closed, joining, joined, errored or leaving."""
        return str(self.channel.state.value)

    def on_status(self, status: RealtimeSubscribeStates, error: Exception | None) -> None:
        """Subscribe callback: record the status and the server's reason; never raises."""
        try:
            self.status = str(status.value)
            if error is not None:
                self.last_error = _reason_text(error)
        except Exception:
            _log.exception("channel status callback failed")

    async def leave(self, *, timeout_s: float) -> None:
        """Leave the channel (``phx_leave``), bounded; the reply is not awaited."""
        self.left_by_us = True
        if self.channel.is_leaving or self.channel.is_closed:
            return
        with anyio.move_on_after(timeout_s), suppress(Exception):
            await self.channel.unsubscribe()

    def on_broadcast(self, message: Mapping[str, Any]) -> None:
        """Broadcast callback: hand the frame to the intake; never raises."""
        try:
            self._sink(self.channel.topic, message)
        except Exception:
            _log.exception("broadcast sink failed")


def _reason_text(error: Exception) -> str:
    """The server's reason/message out of the client's ``Exception(json.dumps(payload))``."""
    text = str(error) or type(error).__name__
    with suppress(ValueError):
        payload = json.loads(text)
        if isinstance(payload, dict):
            return str(payload.get("reason") or payload.get("message") or text)
    return text


def _install_stale_close_guard(handle: ChannelHandle) -> None:
    """Drop close/error frames from an older join of the same topic (client routes by topic).

    Private API (realtime==2.34.1): ``_handle_message`` is what the client's listen task
    calls for every frame of this topic; ``join_push.ref`` is the current join's ref.
    """
    channel = handle.channel
    original = channel._handle_message

    def guarded(message: ServerMessage) -> None:
        if isinstance(message, ChannelCloseMessage | ChannelErrorMessage):
            current = channel.join_push.ref
            if message.ref is not None and message.ref != current:
                handle.stale_dropped += 1
                _log.info(
                    "ignored a stale %s for %s (ref %s, current join ref %s)",
                    message.event,
                    channel.topic,
                    message.ref,
                    current,
                )
                return
        try:
            original(message)
        except Exception:
            # The client would let this end its listen task and stop all delivery.
            _log.exception("the realtime client failed on a frame for %s", channel.topic)

    channel._handle_message = guarded  # type: ignore[method-assign]


def _channel_options() -> RealtimeChannelOptions:
    # self=False: our own broadcasts must not come back to us as events.
    return {
        "config": {
            "broadcast": {"ack": False, "self": False},
            "presence": {"key": "", "enabled": False},
            "private": True,
        }
    }


class RealtimeAdapter:
    """The worker's only door to the Realtime client. Use one per process."""

    def __init__(
        self,
        *,
        url: str,
        apikey: str,
        join_timeout_s: float = 20.0,
        heartbeat_s: float = 10.0,
        max_retries: int = 1_000_000,
        initial_backoff_s: float = 1.0,
        client_factory: ClientFactory | None = None,
    ) -> None:
        """``url`` is ``<supabase_url>/realtime/v1``; ``apikey`` the anon key (never a JWT:
        it is reused in the URL of every reconnect). ``heartbeat_s`` paces the watchdog's
        heartbeats (not floored); the client's own stay at ``max(ceil(heartbeat_s), 15)``."""
        self.join_timeout_s = join_timeout_s
        self.heartbeat_s = heartbeat_s
        self.heartbeats_sent = 0  # by the watchdog
        self._last_frame_at = time.monotonic()  # or the time the current socket opened
        self._last_probe_at = 0.0
        self._probe_pending_since: float | None = None  # oldest heartbeat no frame followed
        self._sink: MessageSink | None = None  # the intake, for broadcasts the client drops

        def default_factory() -> AsyncRealtimeClient:
            return AsyncRealtimeClient(
                url,
                token=apikey,
                hb_interval=math.ceil(heartbeat_s),
                max_retries=max_retries,
                initial_backoff=initial_backoff_s,
                timeout=math.ceil(join_timeout_s),
            )

        self._factory = client_factory or default_factory
        self.socket_losses = 0  # every loss the client reconnects from, even between ticks
        self._client = self._instrumented(self._factory())
        self.generation = 0

    def _instrumented(self, client: AsyncRealtimeClient) -> AsyncRealtimeClient:
        # The client recovers from every socket loss through ``_reconnect`` (private API,
        # pinned to realtime==2.34.1), often within milliseconds: counting there is the only
        # way a supervisor polling once a second sees each loss.
        original = getattr(client, "_reconnect", None)
        if original is None:
            return client

        async def counted(error: Exception) -> None:
            self.socket_losses += 1
            await original(error)

        client._reconnect = counted  # type: ignore[method-assign]
        on_connect = getattr(client, "_on_connect", None)
        if on_connect is None:
            return client

        async def observed_connect() -> None:
            # Called by connect() with the new socket in place, before its listen task runs.
            ws = client._ws_connection
            if ws is not None:
                self._observe(client, ws)
            await on_connect()

        client._on_connect = observed_connect  # type: ignore[method-assign]
        return client

    def _observe(self, client: AsyncRealtimeClient, ws: ClientConnection) -> None:
        """Note the time of every frame the client's listen task receives on ``ws``, and
        deliver broadcasts before the client sees them (``_delivered``)."""
        self._frame_seen(client)  # a new socket starts the silence clock afresh
        # websockets closes the socket (1009) on a message above 1 MiB, losing everything in
        # flight: let the server's largest broadcasts in; the parser rejects them as too_large.
        ws.protocol.max_size = MAX_FRAME_BYTES
        recv = ws.recv

        async def observed(*args: Any, **kwargs: Any) -> Any:
            while True:
                data = await recv(*args, **kwargs)
                self._frame_seen(client)
                try:
                    delivered = self._delivered(client, data)
                except Exception:  # raising here would end the client's listen task
                    _log.exception("reading a Realtime frame failed; passing it on")
                    delivered = False
                if not delivered:
                    return data

        ws.recv = observed  # type: ignore[method-assign]

    def _delivered(self, client: AsyncRealtimeClient, data: str | bytes) -> bool:
        """True when the adapter delivered ``data`` itself; False to pass it on to the client.

        A valid broadcast goes to its channel's broadcast callbacks, as the client's
        ``_handle_message`` would send it, but without a second pydantic validation of the
        same frame and the client's eager debug reprs of it: together most of the client's
        cost per event (docs/performance.md). Other valid frames go on to the client.
        """
        try:
            message = ServerMessageAdapter.validate_json(data)
        except ValueError:  # pydantic's ValidationError
            return self._screened(data)
        if not isinstance(message, BroadcastMessage):
            return False
        channel = client.channels.get(message.topic)
        if channel is None:
            return True  # left or never joined: the client would drop it too
        try:
            for callback in channel.broadcast_callbacks:
                callback(message.payload)
        except Exception:  # never hand it on: the client would deliver it a second time
            _log.exception("a broadcast callback failed for %s", message.topic)
        return True

    def _screened(self, data: str | bytes) -> bool:
        """True when ``data`` is a broadcast the client cannot read, handed to the intake.

        The client drops a frame that fails validation with an ERROR line holding the
        whole frame: payloads that are not objects, lone surrogates, JSON nested deeper than
        pydantic parses. Such broadcasts go to the intake instead, whose parser rejects (and
        counts) or accepts them like any other; other frames pass on.
        """
        sink = self._sink
        frame = _loads(data)
        if isinstance(frame, dict):
            topic, message = frame.get("topic"), frame.get("payload")
            if frame.get("event") != "broadcast" or not isinstance(topic, str):
                return False  # not an event: the client logs and drops it
        else:
            topic, message = _topic_in(data), data  # not even JSON: rejected as malformed
            if topic is None:
                _log.warning("dropped an undecodable Realtime frame of %d bytes", len(data))
                return True
        if sink is not None:
            sink(topic, cast(Mapping[str, Any], message))  # the parser takes any object
        return True

    def _frame_seen(self, client: AsyncRealtimeClient) -> None:
        if client is self._client:
            self._last_frame_at = time.monotonic()
            self._probe_pending_since = None

    async def check_heartbeat(self, *, timeout_s: float = 1.0) -> float | None:
        """The stall watchdog; the supervisor calls it about once a second.

        Sends a Phoenix heartbeat when one is due (straight on the socket: ``client.send``
        would reconnect inline on a dead socket). Returns None while the socket is alive or
        down anyway; returns the seconds of silence when a heartbeat has gone unanswered for
        ``heartbeat_s`` and nothing at all arrived for two intervals. The stalled socket is
        then aborted (and its client will not reconnect): the caller must ``rebuild()``.
        """
        client = self._client
        ws = client._ws_connection
        if ws is None:
            self._probe_pending_since = None
            return None
        now = time.monotonic()
        silence = now - self._last_frame_at
        pending = self._probe_pending_since
        interval = self.heartbeat_s
        if pending is not None and now - pending >= interval and silence >= 2 * interval:
            _abandon(client)
            return silence
        if now - self._last_probe_at >= interval:
            self._last_probe_at = now
            if self._probe_pending_since is None:
                self._probe_pending_since = now
            await _send_heartbeat(ws, timeout_s)
            self.heartbeats_sent += 1
        return None

    @property
    def is_connected(self) -> bool:
        """Whether the socket is open now."""
        return self._client.is_connected

    @property
    def is_reconnecting(self) -> bool:
        """Whether the client's own reconnect loop is still running (not given up)."""
        # The listen task runs the reconnect loop and ends when it gives up. (The heartbeat
        # task may sleep on for 15 s after a loss, so it says nothing about reconnecting.)
        task = self._client._listen_task
        return not self.is_connected and task is not None and not task.done()

    @property
    def listener_alive(self) -> bool:
        """False when the socket is up but the listen task has ended (nothing delivered)."""
        task = self._client._listen_task
        return task is not None and not task.done()

    def give_up_error(self) -> str | None:
        """Why the client's own reconnect gave up (and marks the task's error retrieved)."""
        task = self._client._listen_task
        if task is None or not task.done() or task.cancelled():
            return None
        error = task.exception()
        return None if error is None else repr(error)

    async def connect(self, timeout_s: float) -> None:
        """Open the socket (errored channels rejoin); ``RealtimeError`` on failure."""
        try:
            with anyio.fail_after(timeout_s):
                await self._client.connect()
        except TimeoutError as exc:
            raise RealtimeError(f"connecting to Realtime timed out after {timeout_s}s") from exc
        except Exception as exc:  # websockets/OS errors, translated at this boundary
            raise RealtimeError(f"connecting to Realtime failed: {exc!r}") from exc

    async def subscribe(
        self, topic: str, channel_topic: str, jwt: str, sink: MessageSink
    ) -> ChannelHandle:
        """Join ``channel_topic`` as a private channel with ``jwt``; return once joined.

        Raises ``JoinRefused`` (server's reason) or ``RealtimeError`` (timeout); the failed
        channel is left so the client does not keep rejoining it on its own.
        """
        await self._discard(channel_topic)
        self._sink = sink
        self._client.access_token = jwt  # read by the join payload
        handle = ChannelHandle(topic, self._client.channel(channel_topic, _channel_options()), sink)
        handle.channel.on_broadcast("*", handle.on_broadcast)
        _install_stale_close_guard(handle)
        with anyio.move_on_after(self.join_timeout_s + 5):
            await handle.channel.subscribe(handle.on_status)
        if handle.channel.is_joined:
            return handle
        await handle.leave(timeout_s=2.0)
        if handle.status == RealtimeSubscribeStates.CHANNEL_ERROR.value and handle.last_error:
            raise JoinRefused(channel_topic, handle.last_error)
        raise RealtimeError(f"joining {channel_topic} timed out ({handle.status or 'no reply'})")

    async def _discard(self, channel_topic: str) -> None:
        # client.channel() would hand back a live old object for the topic; leave it first.
        old = self._client.channels.get(f"realtime:{channel_topic}")
        if old is not None and not old.is_leaving:
            with anyio.move_on_after(2.0), suppress(Exception):
                await old.unsubscribe()

    async def set_auth(self, jwt: str, *, timeout_s: float) -> bool:
        """Push ``jwt`` to every joined channel and into every stored join payload.

        Re-implements ``client.set_auth`` over a snapshot of the channels: the client's
        version iterates the live dict across awaits (RuntimeError when a channel closes
        meanwhile). Payloads are patched first, so even when the pushes are cut off by
        ``timeout_s`` (a dying socket reconnects inside ``send``) every rejoin uses ``jwt``.
        Returns False when cut off.
        """
        client = self._client
        client.access_token = jwt
        channels = list(client.channels.values())
        for channel in channels:
            channel.join_push.update_payload({"access_token": jwt})
        with anyio.move_on_after(timeout_s) as scope:
            for channel in channels:
                if channel.is_joined and client.is_connected:
                    await channel.push(ChannelEvents.access_token, {"access_token": jwt})
        return not scope.cancelled_caught

    async def broadcast(
        self, channel_topic: str, event: str, payload: Mapping[str, Any], *, timeout_s: float = 5.0
    ) -> None:
        """Send a broadcast on a joined channel; ``RealtimeError`` if not joined or stuck."""
        channel = self._client.channels.get(f"realtime:{channel_topic}")
        if channel is None or not channel.is_joined:
            raise RealtimeError(f"cannot broadcast on {channel_topic}: the channel is not joined")
        try:
            with anyio.fail_after(timeout_s):
                await channel.send_broadcast(event, dict(payload))
        except TimeoutError as exc:
            raise RealtimeError(f"broadcast on {channel_topic} timed out") from exc

    async def rebuild(self, *, timeout_s: float = 5.0) -> None:
        """Replace the client with a new one (old channels are gone; resubscribe)."""
        old = self._client
        # Its tasks may outlive a close cut short by the timeout: never let them reconnect.
        old.auto_reconnect = False
        self._client = self._instrumented(self._factory())
        self.generation += 1
        self._last_frame_at = time.monotonic()
        self._probe_pending_since = None
        await _close_client(old, timeout_s)

    async def close(self, *, timeout_s: float = 5.0) -> None:
        """Leave every channel and close the socket, each step bounded."""
        await _close_client(self._client, timeout_s)


#: Realtime accepts payloads up to 3000 KB (+ 500 B) on its largest plans.
MAX_FRAME_BYTES = 4 * 1024 * 1024
_TOPIC_RE = re.compile(r'"topic"\s*:\s*"(realtime:[^"\\]{1,300})"')


def _loads(data: str | bytes) -> object:
    """The JSON value of ``data``, or None when it is not JSON (or nests too deep)."""
    try:
        return json.loads(data)
    except (ValueError, RecursionError):
        return None


def _topic_in(data: str | bytes) -> str | None:
    """The channel topic of a frame that is not JSON, if one can be seen near its start."""
    head = data[:2000] if isinstance(data, str) else data[:2000].decode("utf-8", "replace")
    found = _TOPIC_RE.search(head)
    return found.group(1) if found else None


_HEARTBEAT = Message(topic="phoenix", event="heartbeat", payload={}, ref=None).model_dump_json()


async def _send_heartbeat(ws: ClientConnection, timeout_s: float) -> None:
    """One Phoenix heartbeat on ``ws``, bounded; a failure is the listen task's to report."""
    with anyio.move_on_after(timeout_s), suppress(Exception):
        await ws.send(_HEARTBEAT)


def _abandon(client: AsyncRealtimeClient) -> None:
    """Cut a stalled client's socket at once, and keep the client from reconnecting.

    A close handshake would wait for a peer that answers nothing, and the socket must not
    come back to life when the network does (its channels would deliver every event twice).
    """
    client.auto_reconnect = False
    ws = client._ws_connection
    if ws is not None:
        ws.transport.abort()


async def _close_client(client: AsyncRealtimeClient, timeout_s: float) -> None:
    with anyio.move_on_after(timeout_s, shield=True):
        for channel in list(client.channels.values()):
            with suppress(Exception):
                await channel.unsubscribe()
    with anyio.move_on_after(timeout_s, shield=True), suppress(Exception):
        await client.close()
