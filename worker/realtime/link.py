"""The Realtime part's vocabulary and seams: channel states and the reasons and results
its metrics carry (defined once, here), the adapter surface the supervisor drives, its
metrics, timings and statistics, and the mapping of server reasons to those labels."""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from worker.ports import Counter, Gauge
from worker.realtime.channel import MessageSink
from worker.retry import backoff_delay

__all__ = [
    "UNAUTHORIZED_HELP",
    "ChannelLike",
    "ChannelState",
    "ChannelStatistics",
    "CloseReason",
    "JoinResult",
    "RealtimeLink",
    "ReconnectReason",
    "SupervisorMetrics",
    "SupervisorStatistics",
    "SupervisorTiming",
    "TopicState",
    "close_reason",
    "publish",
    "retry_delay",
]


#: The ERROR line of a refused read: what to check, with the topic and the server's text.
UNAUTHORIZED_HELP = (
    "Realtime refused to let this worker read %s (%s). Check the SELECT policy on "
    "realtime.messages for the private topic 'org:<org_id>:%s' and that the token's org "
    "claim matches ORG_ID; retrying in %.0fs"
)


class ChannelState(StrEnum):
    """A channel's state, as the client names it (``channel_state{state}``)."""

    CLOSED = "closed"
    JOINING = "joining"
    JOINED = "joined"
    LEAVING = "leaving"
    ERRORED = "errored"


class CloseReason(StrEnum):
    """Why the server closed or refused a channel (``channel_closes_total{reason}``)."""

    TOKEN_EXPIRED = "token_expired"  # noqa: S105 - a label, not a password
    PERMISSION_REVOKED = "permission_revoked"
    RATE_LIMITED = "rate_limited"
    SERVER_DISCONNECT = "server_disconnect"
    OTHER = "other"
    TIMEOUT = "timeout"  # a join that got no answer: never a metric label, only status


class JoinResult(StrEnum):
    """The result of a join attempt (``channel_joins_total{result}``)."""

    OK = "ok"
    ERROR = "error"
    TIMEOUT = "timeout"
    UNAUTHORIZED = "unauthorized"


class ReconnectReason(StrEnum):
    """Why the socket was reconnected (``realtime_reconnects_total{reason}``)."""

    CLOSED = "closed"  # the socket was lost; the client reconnected
    ERROR = "error"  # the listener died or the client gave up; we reconnected
    HEARTBEAT_TIMEOUT = "heartbeat_timeout"  # a stalled socket, cut by the watchdog


#: The close reasons that are metric labels.
CLOSE_LABELS = tuple(r for r in CloseReason if r is not CloseReason.TIMEOUT)


class ChannelLike(Protocol):
    """What the supervisor reads from one joined channel (``_realtime.ChannelHandle``)."""

    @property
    def state(self) -> str: ...
    @property
    def last_error(self) -> str | None: ...
    @property
    def left_by_us(self) -> bool: ...

    async def leave(self, *, timeout_s: float) -> None: ...


class RealtimeLink(Protocol):
    """The adapter surface the supervisor drives (``_realtime.RealtimeAdapter``)."""

    @property
    def is_connected(self) -> bool: ...
    @property
    def is_reconnecting(self) -> bool: ...
    @property
    def listener_alive(self) -> bool: ...
    @property
    def socket_losses(self) -> int: ...

    def give_up_error(self) -> str | None: ...
    async def check_heartbeat(self) -> float | None: ...
    async def connect(self, timeout_s: float) -> None: ...
    async def subscribe(
        self, topic: str, channel_topic: str, jwt: str, sink: MessageSink
    ) -> ChannelLike: ...
    async def set_auth(self, jwt: str, *, timeout_s: float) -> bool: ...
    async def rebuild(self, *, timeout_s: float = 5.0) -> None: ...
    async def close(self, *, timeout_s: float = 5.0) -> None: ...


class SupervisorMetrics(Protocol):
    """The members of ``metrics.Metrics`` the supervisor updates."""

    @property
    def realtime_connected(self) -> Gauge: ...
    @property
    def realtime_reconnects_total(self) -> Counter: ...
    @property
    def channel_state(self) -> Gauge: ...
    @property
    def channels_joined(self) -> Gauge: ...
    @property
    def channel_joins_total(self) -> Counter: ...
    @property
    def channel_closes_total(self) -> Counter: ...


@dataclass(frozen=True, slots=True)
class SupervisorTiming:
    """Every interval the supervisor uses; tests shrink them."""

    tick_s: float = 1.0
    connect_timeout_s: float = 30.0
    set_auth_timeout_s: float = 5.0
    leave_timeout_s: float = 3.0
    backoff_base_s: float = 1.0
    backoff_cap_s: float = 30.0
    unauthorized_base_s: float = 10.0
    unauthorized_cap_s: float = 60.0
    rate_limit_floor_s: float = 30.0
    stuck_after_s: float = 60.0
    stable_after_s: float = 30.0


@dataclass(frozen=True, slots=True)
class ChannelStatistics:
    """One topic's channel, for ``/status``."""

    topic: str
    state: str
    failures: int
    last_error: str | None
    last_reason: str | None
    retry_in_s: float | None


@dataclass(frozen=True, slots=True)
class SupervisorStatistics:
    """Socket and channels, for ``/status`` and the readiness checks."""

    connected: bool
    reconnecting: bool
    ready: bool
    channels: tuple[ChannelStatistics, ...]
    ticks: int  # repair passes so far: a stuck supervisor shows a frozen count


def close_reason(text: str | None) -> CloseReason:
    """Map the server's reason/message to a ``channel_closes_total`` reason label."""
    t = (text or "").lower()
    if "ratelimit" in t or "too many" in t or "rate limit" in t:
        return CloseReason.RATE_LIMITED
    if "unauthorized" in t or "permission" in t:
        return CloseReason.PERMISSION_REVOKED
    if "token" in t or "jwt" in t:
        return CloseReason.TOKEN_EXPIRED
    if "disconnect" in t or "connectionclosed" in t or "restarting" in t:
        return CloseReason.SERVER_DISCONNECT
    return CloseReason.OTHER


@dataclass(slots=True)
class TopicState:
    """The supervisor's view of one wanted topic."""

    topic: str
    channel_topic: str
    handle: ChannelLike | None = None
    state: str = ChannelState.CLOSED
    failures: int = 0
    next_attempt_at: float = 0.0
    since: float = 0.0
    last_error: str | None = None
    last_reason: CloseReason | None = None

    def snapshot(self, now: float) -> ChannelStatistics:
        """This topic's ``ChannelStatistics`` at monotonic time ``now``."""
        waiting = self.handle is None
        return ChannelStatistics(
            topic=self.topic,
            state=self.state,
            failures=self.failures,
            last_error=self.last_error,
            last_reason=self.last_reason,
            retry_in_s=max(0.0, self.next_attempt_at - now) if waiting else None,
        )


def publish(metrics: SupervisorMetrics, *, connected: bool, topics: Iterable[TopicState]) -> None:
    """Set the connection and channel gauges from the supervisor's state."""
    topics = list(topics)
    metrics.realtime_connected.set(1 if connected else 0)
    metrics.channels_joined.set(sum(t.state == ChannelState.JOINED for t in topics))
    for t in topics:
        for state in ChannelState:
            metrics.channel_state.labels(topic=t.topic, state=state).set(int(state == t.state))


def retry_delay(
    reason: CloseReason | None,
    failures: int,
    timing: SupervisorTiming,
    rng: random.Random | None = None,
) -> float:
    """Seconds before the next connect/join after ``failures`` failures for ``reason``.

    A refused read (``permission_revoked``) needs an operator: long backoff. Rate limits are
    per 5 s buckets over a minute on the server: never come back sooner than the floor.
    (The supervisor schedules its own next attempt from its ticks, a state machine, not a
    loop that retries in place: so this is a schedule, not a ``retry.retrying`` loop.)
    """
    if reason is CloseReason.PERMISSION_REVOKED:
        base, cap = timing.unauthorized_base_s, timing.unauthorized_cap_s
    else:
        base, cap = timing.backoff_base_s, timing.backoff_cap_s
    floor = timing.rate_limit_floor_s if reason is CloseReason.RATE_LIMITED else 0.0
    return backoff_delay(failures, base_s=base, cap_s=cap, floor_s=floor, rng=rng)
