"""The Realtime supervisor: keeps the socket connected and every wanted channel joined.

Once per ``tick_s`` (injected clock) it repairs what the official client will not:

* the socket, through ``SocketKeeper`` (``socket.py``): reconnect when the client gave up,
  rebuild the client when its listener died or the socket stalled;
* channel closed by the server (``system`` error + ``phx_close``: token expired, permission
  revoked, too many messages...; a close is final in the client): join a new channel with
  the newest token, after a backoff that depends on the reason;
* join refused ``Unauthorized``: an ERROR naming the topic and the policy to check, and a
  long backoff (the client itself would retry every 10 s forever); rate limits >= 30 s;
* channel stuck errored/joining longer than ``stuck_after_s``: leave it and rejoin.

``run()`` reports started after the first connect-and-join attempt on every topic, whatever
its outcome (so ``/readyz`` can tell the truth); ``ready`` is True only while the socket is
up and every channel is joined.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Sequence

import anyio
from anyio.abc import TaskStatus

from worker.errors import JoinRefused, RealtimeError
from worker.events import channel_topic
from worker.ports import Clock, TokenLike, TokenProvider
from worker.realtime.adapter import MessageSink
from worker.realtime.link import (
    UNAUTHORIZED_HELP,
    ChannelLike,
    ChannelState,
    CloseReason,
    JoinResult,
    RealtimeLink,
    ReconnectReason,
    SupervisorMetrics,
    SupervisorStatistics,
    SupervisorTiming,
    TopicState,
    close_reason,
    publish,
    retry_delay,
)
from worker.realtime.socket import SocketKeeper

__all__ = ["Supervisor", "SupervisorStatistics", "SupervisorTiming", "close_reason"]

_log = logging.getLogger("worker.realtime.supervisor")


class Supervisor:
    """Owns the Realtime connection's health; see the module docstring."""

    def __init__(
        self,
        *,
        link: RealtimeLink,
        org_id: str,
        topics: Sequence[str],
        tokens: TokenProvider,
        sink: MessageSink,
        clock: Clock,
        metrics: SupervisorMetrics | None = None,
        timing: SupervisorTiming | None = None,
        rng: random.Random | None = None,
        on_joined: Callable[[str], None] | None = None,
    ) -> None:
        self._link = link
        self._tokens = tokens
        self._sink = sink
        self._clock = clock
        self._metrics = metrics
        self._t = timing or SupervisorTiming()
        self._rng = rng
        self._topics = [TopicState(t, channel_topic(org_id, t)) for t in topics]
        self._socket = SocketKeeper(
            link,
            self._t,
            reconnected=self._reconnected,
            rebuilt=self._all_closed,
            went_down=self._all_errored,
            lost=self._all_rejoined,
            rng=rng,
        )
        self._closed = False
        self._ticks = 0
        # on_joined(topic): a channel is joined again after being down, closed or new (what
        # was broadcast meanwhile is lost). Topics the client rejoins by itself after a
        # socket loss are announced when next seen joined.
        self._joined_hook = on_joined
        self._rejoined: set[str] = set()

    async def run(
        self, *, task_status: TaskStatus[SupervisorStatistics] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Connect, push the token, join every topic once, report started, then supervise."""
        token = self._tokens.current
        if token is not None:  # before any subscribe: joins must never carry the anon key
            await self._link.set_auth(token.jwt, timeout_s=self._t.set_auth_timeout_s)
        await self.tick()
        task_status.started(self.statistics())
        while not self._closed:
            await self._clock.sleep(self._t.tick_s)
            await self.tick()

    async def on_token(self, token: TokenLike) -> None:
        """Token listener: push ``token`` to Realtime, bounded; never raises or stalls."""
        try:
            pushed = await self._link.set_auth(token.jwt, timeout_s=self._t.set_auth_timeout_s)
        except Exception:
            _log.exception("pushing the new token to Realtime failed; rejoins will use it")
            return
        if not pushed:
            _log.warning("pushing the new token to Realtime timed out; rejoins will use it")
        # A channel closed because its token expired can rejoin as soon as a new token exists:
        # waiting out its backoff would only prolong an outage that is already over.
        for t in self._topics:
            if t.handle is None and t.last_reason is CloseReason.TOKEN_EXPIRED:
                t.next_attempt_at = 0.0

    async def close(self) -> None:
        """Stop supervising, leave every channel and close the socket (bounded)."""
        self._closed = True
        await self._link.close(timeout_s=self._t.leave_timeout_s)
        self._all_closed()
        self._publish()

    @property
    def ready(self) -> bool:
        """Socket up and every wanted channel joined."""
        return self._link.is_connected and all(t.state == ChannelState.JOINED for t in self._topics)

    def statistics(self) -> SupervisorStatistics:
        """A snapshot of the socket and of every channel."""
        now = self._clock.monotonic()
        channels = tuple(t.snapshot(now) for t in self._topics)
        return SupervisorStatistics(
            self._link.is_connected, self._link.is_reconnecting, self.ready, channels, self._ticks
        )

    async def tick(self) -> None:
        """Detect and repair once: the socket, then each channel."""
        if self._closed:
            return
        self._ticks += 1
        if await self._socket.repair(self._clock.monotonic()):
            for topic in self._topics:
                await self._repair_topic(topic, self._clock.monotonic())
        self._publish()

    def _all_closed(self) -> None:
        now = self._clock.monotonic()
        for topic in self._topics:
            topic.handle = None
            self._set_state(topic, ChannelState.CLOSED, now)

    def _all_errored(self) -> None:
        now = self._clock.monotonic()
        for topic in self._topics:
            if topic.handle is not None:
                self._set_state(topic, ChannelState.ERRORED, now)

    def _all_rejoined(self) -> None:
        self._rejoined.update(t.topic for t in self._topics)

    async def _repair_topic(self, t: TopicState, now: float) -> None:
        handle = t.handle
        if handle is not None:
            state = handle.state
            if state == ChannelState.JOINED:
                self._on_joined(t, now)
                return
            if state in (ChannelState.CLOSED, ChannelState.LEAVING):
                self._on_closed(t, handle, now)
            elif state in (ChannelState.ERRORED, ChannelState.JOINING):
                await self._on_troubled(t, handle, state, now)
                return
        if t.handle is None and now >= t.next_attempt_at:
            await self._join(t, now)

    def _on_joined(self, t: TopicState, now: float) -> None:
        if t.state != ChannelState.JOINED or t.topic in self._rejoined:
            self._announce_joined(t)
        if t.state != ChannelState.JOINED:
            self._set_state(t, ChannelState.JOINED, now)
        elif t.failures and now - t.since >= self._t.stable_after_s:
            t.failures = 0  # stable again: the next failure starts the backoff afresh

    def _on_closed(self, t: TopicState, handle: ChannelLike, now: float) -> None:
        t.handle = None
        if handle.left_by_us:
            return
        reason = close_reason(handle.last_error)
        t.last_error, t.last_reason = handle.last_error, reason
        if self._metrics is not None:
            self._metrics.channel_closes_total.labels(topic=t.topic, reason=reason).inc()
        _log.warning(
            "the server closed %s (%s: %s); joining a new channel with the newest token",
            t.channel_topic,
            reason,
            handle.last_error or "no reason given",
        )
        delay = self._schedule(t, reason, now)
        if (
            reason is CloseReason.PERMISSION_REVOKED
        ):  # a policy or membership changed: say what to check
            _log.error(UNAUTHORIZED_HELP, t.channel_topic, handle.last_error, t.topic, delay)

    async def _on_troubled(
        self, t: TopicState, handle: ChannelLike, state: str, now: float
    ) -> None:
        if t.state in (ChannelState.ERRORED, ChannelState.JOINING):
            t.state = state  # the client's rejoin attempts flip these: keep the phase start
        else:
            self._set_state(t, state, now)
        reason = close_reason(handle.last_error)
        # The client rejoins these every 10 s forever; take the backoff over ourselves.
        hopeless = reason in (CloseReason.PERMISSION_REVOKED, CloseReason.RATE_LIMITED)
        if hopeless or now - t.since >= self._t.stuck_after_s:
            await handle.leave(timeout_s=self._t.leave_timeout_s)
            t.handle = None
            t.last_error = handle.last_error
            self._refused(t, handle.last_error or f"stuck {state}", now)

    async def _join(self, t: TopicState, now: float) -> None:
        token = self._tokens.current
        if token is None:
            t.last_error = "waiting for the first session token"
            return
        self._set_state(t, ChannelState.JOINING, now)
        try:
            t.handle = await self._link.subscribe(t.topic, t.channel_topic, token.jwt, self._sink)
        except JoinRefused as exc:
            self._refused(t, exc.reason, self._clock.monotonic())
        except RealtimeError as exc:
            self._join_counted(t, JoinResult.TIMEOUT)
            t.last_error, t.last_reason = str(exc), CloseReason.TIMEOUT
            self._schedule(t, CloseReason.OTHER, self._clock.monotonic())
            _log.warning("joining %s failed: %s", t.channel_topic, exc)
        else:
            self._join_counted(t, JoinResult.OK)
            self._set_state(t, ChannelState.JOINED, self._clock.monotonic())
            _log.info("joined %s", t.channel_topic)
            self._announce_joined(t)

    def _announce_joined(self, t: TopicState) -> None:
        self._rejoined.discard(t.topic)
        if self._joined_hook is None:
            return
        try:
            self._joined_hook(t.topic)
        except Exception:  # a listener's bug must not stop supervision
            _log.exception("the on_joined hook failed for %s", t.channel_topic)

    def _refused(self, t: TopicState, reason_text: str, now: float) -> None:
        reason = close_reason(reason_text)
        t.last_error, t.last_reason = reason_text, reason
        unauthorized = reason is CloseReason.PERMISSION_REVOKED
        self._join_counted(t, JoinResult.UNAUTHORIZED if unauthorized else JoinResult.ERROR)
        delay = self._schedule(t, reason, now)
        if unauthorized:
            _log.error(UNAUTHORIZED_HELP, t.channel_topic, reason_text, t.topic, delay)
        else:
            _log.warning(
                "joining %s was refused (%s); retrying in %.1fs",
                t.channel_topic,
                reason_text,
                delay,
            )

    def _schedule(self, t: TopicState, reason: CloseReason, now: float) -> float:
        t.failures += 1
        self._set_state(t, ChannelState.CLOSED if t.handle is None else t.state, now)
        delay = retry_delay(reason, t.failures, self._t, self._rng)
        t.next_attempt_at = now + delay
        return delay

    def _set_state(self, t: TopicState, state: str, now: float) -> None:
        if t.state != state:
            t.state, t.since = state, now

    def _reconnected(self, reason: ReconnectReason) -> None:
        if self._metrics is not None:
            self._metrics.realtime_reconnects_total.labels(reason=reason).inc()

    def _join_counted(self, t: TopicState, result: JoinResult) -> None:
        if self._metrics is not None:
            self._metrics.channel_joins_total.labels(topic=t.topic, result=result).inc()

    def _publish(self) -> None:
        if self._metrics is not None:
            publish(self._metrics, connected=self._link.is_connected, topics=self._topics)
