"""Types shared by the supervisor and its tests: the adapter surface it drives, its
metrics, timings and statistics, and the mapping of server reasons to metric labels."""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from worker._backoff import backoff_delay
from worker._ports import Counter, Gauge
from worker._realtime import MessageSink

__all__ = [
    "ChannelLike",
    "ChannelStatistics",
    "RealtimeLink",
    "SupervisorMetrics",
    "SupervisorStatistics",
    "SupervisorTiming",
    "TopicState",
    "close_reason",
    "publish",
    "retry_delay",
]

_STATES = ("closed", "joining", "joined", "leaving", "errored")


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


def close_reason(text: str | None) -> str:
    """Map the server's reason/message to a ``channel_closes_total`` reason label."""
    t = (text or "").lower()
    if "ratelimit" in t or "too many" in t or "rate limit" in t:
        return "rate_limited"
    if "unauthorized" in t or "permission" in t:
        return "permission_revoked"
    if "token" in t or "jwt" in t:
        return "token_expired"
    if "disconnect" in t or "connectionclosed" in t or "restarting" in t:
        return "server_disconnect"
    return "other"


@dataclass(slots=True)
class TopicState:
    """The supervisor's view of one wanted topic."""

    topic: str
    channel_topic: str
    handle: ChannelLike | None = None
    state: str = "closed"
    failures: int = 0
    next_attempt_at: float = 0.0
    since: float = 0.0
    last_error: str | None = None
    last_reason: str | None = None

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
    metrics.channels_joined.set(sum(t.state == "joined" for t in topics))
    for t in topics:
        for state in _STATES:
            metrics.channel_state.labels(topic=t.topic, state=state).set(int(state == t.state))


def retry_delay(
    reason: str, failures: int, timing: SupervisorTiming, rng: random.Random | None = None
) -> float:
    """Seconds before the next connect/join after ``failures`` failures for ``reason``.

    A refused read (``permission_revoked``) needs an operator: long backoff. Rate limits are
    per 5 s buckets over a minute on the server: never come back sooner than the floor.
    """
    if reason == "permission_revoked":
        base, cap = timing.unauthorized_base_s, timing.unauthorized_cap_s
    else:
        base, cap = timing.backoff_base_s, timing.backoff_cap_s
    floor = timing.rate_limit_floor_s if reason == "rate_limited" else 0.0
    return backoff_delay(failures, base_s=base, cap_s=cap, floor_s=floor, rng=rng)
