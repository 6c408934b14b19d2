"""The narrow adapter over ``realtime.AsyncRealtimeClient``: the worker's only door to it.

The official client owns background tasks nobody supervises, calls callbacks inline on its
listen task (sync only; a raising callback silently ends delivery), routes frames by topic
only, and reconnects from inside ``send()``. This part keeps all of that in one place:

* callbacks only parse and ``offer()``, inside try/except (``Intake``);
* every channel gets a stale-close guard (``channel.py``): a ``phx_close``/``phx_error``
  whose ``ref`` is not the channel's current join ref belongs to an older join;
* ``set_auth`` is bounded by a timeout and never waits for a reply (Realtime sends none);
* a join that fails is torn down, so the client's own rejoin timer does not retry it
  behind the supervisor's back (the supervisor owns the backoff);
* a heartbeat watchdog (``watchdog.py``, ``check_heartbeat``): a stalled socket is aborted
  and the supervisor rebuilds the client;
* every frame is read once (``frames.py``): a broadcast goes straight to its channel's
  callbacks, one the client cannot read to the intake, anything else on to the client.

The client is pinned exactly (``realtime==2.34.1`` in pyproject.toml) because these
private members of it are used, here and in ``channel.py``/``frames.py``; the canary test
``tests/worker/test_realtime_canary.py`` fails, naming the member, when one is missing or
changed. Client: ``_listen_task`` (runs the reconnect loop, ends when the client gives
up), ``_reconnect`` (wrapped: counted), ``_on_connect`` (wrapped: observes each new
socket's ``recv``), ``_ws_connection`` (the watchdog's heartbeats and abort),
``channels``; channel: ``_handle_message`` (wrapped), ``join_push`` (``ref``,
``update_payload``), ``broadcast_callbacks``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping
from contextlib import suppress
from typing import Any

import anyio
from realtime import AsyncRealtimeClient, RealtimeSubscribeStates
from realtime.types import ChannelEvents
from websockets.asyncio.client import ClientConnection

from worker.clock import Clock, SystemClock
from worker.errors import JoinRefused, RealtimeError
from worker.realtime.channel import (
    ChannelHandle,
    MessageSink,
    channel_options,
    close_client,
    install_stale_close_guard,
)
from worker.realtime.frames import MAX_FRAME_BYTES, deliver
from worker.realtime.watchdog import Watchdog, abandon

__all__ = ["ChannelHandle", "MessageSink", "RealtimeAdapter"]

_log = logging.getLogger("worker.realtime")

ClientFactory = Callable[[], AsyncRealtimeClient]


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
        clock: Clock | None = None,
    ) -> None:
        """``url`` is ``<supabase_url>/realtime/v1``; ``apikey`` the anon key (never a JWT:
        it is reused in the URL of every reconnect). ``heartbeat_s`` paces the watchdog's
        heartbeats (not floored); the client's own stay at ``max(ceil(heartbeat_s), 15)``."""
        self.join_timeout_s = join_timeout_s
        self.heartbeat_s = heartbeat_s
        self._watchdog = Watchdog(clock or SystemClock(), heartbeat_s)
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
        # Let the server's largest broadcasts in; the parser rejects them as too_large.
        ws.protocol.max_size = MAX_FRAME_BYTES
        recv = ws.recv

        async def observed(*args: Any, **kwargs: Any) -> Any:
            while True:
                data = await recv(*args, **kwargs)
                self._frame_seen(client)
                try:
                    delivered = deliver(client, data, self._sink)
                except Exception:  # raising here would end the client's listen task
                    _log.exception("reading a Realtime frame failed; passing it on")
                    delivered = False
                if not delivered:
                    return data

        ws.recv = observed  # type: ignore[method-assign]

    def _frame_seen(self, client: AsyncRealtimeClient) -> None:
        if client is self._client:
            self._watchdog.frame_seen()

    @property
    def heartbeats_sent(self) -> int:
        """Heartbeats the watchdog has sent."""
        return self._watchdog.heartbeats_sent

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
            self._watchdog.no_socket()
            return None
        silence = await self._watchdog.probe(ws, timeout_s=timeout_s)
        if silence is not None:
            abandon(client)
        return silence

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
        handle = ChannelHandle(topic, self._client.channel(channel_topic, channel_options()), sink)
        handle.channel.on_broadcast("*", handle.on_broadcast)
        install_stale_close_guard(handle)
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
        self._watchdog.frame_seen()  # the new socket starts the silence clock afresh
        await close_client(old, timeout_s)

    async def close(self, *, timeout_s: float = 5.0) -> None:
        """Leave every channel and close the socket, each step bounded."""
        await close_client(self._client, timeout_s)
