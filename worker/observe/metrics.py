"""Every Prometheus metric of the worker, registered on an injected registry.

Names follow ``realtime_worker_<noun>_<unit>``; attributes drop the prefix
(``metrics.token_refresh_total``). Labels only take values from the label enums each part
defines next to the code that produces them (zero-initialised here), or from the
configured short topic names; never tokens, user ids or full topics.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics

from worker.delivery.outbox import OutboxOperation
from worker.dispatch.outcomes import HandledResult
from worker.events import RejectReason
from worker.lease.store import RenewResult
from worker.realtime.link import CLOSE_LABELS, ChannelState, JoinResult, ReconnectReason
from worker.tokens.sessions.model import RenewalResult
from worker.tokens.states import RefreshResult

__all__ = ["Metrics"]

P = "realtime_worker_"

_FAST_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_SLOW_BUCKETS = (0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)


class Metrics:
    """All the worker's metrics; ``init_topics`` zero-initialises the topic series."""

    def __init__(
        self, registry: CollectorRegistry, *, org_id: str | None = None, version: str | None = None
    ) -> None:
        # `_created` series double the series count for no use; the switch is process-wide
        # in prometheus_client, and one process serves one org, so setting it here is safe.
        disable_created_metrics()  # type: ignore[no-untyped-call]  # untyped upstream
        r = registry
        self.build_info = Gauge(
            P + "build_info", "Build of the worker (1)", ["version"], registry=r
        )
        self.org_info = Gauge(
            P + "org_info", "Organization this worker serves (1)", ["org"], registry=r
        )
        self._init_token(r)
        self._init_realtime(r)
        self._init_events(r)
        self._init_delivery(r)
        self._init_lease(r)
        for refresh in RefreshResult:
            self.token_refresh_total.labels(result=refresh)
        for renewal in RenewalResult:
            self.clerk_session_renewals_total.labels(result=renewal)
        for reconnect in ReconnectReason:
            self.realtime_reconnects_total.labels(reason=reconnect)
        for reject in RejectReason:
            self.events_rejected_total.labels(reason=reject)
        if version is not None:
            self.build_info.labels(version=version).set(1)
        if org_id is not None:
            self.org_info.labels(org=org_id).set(1)

    def _init_token(self, r: CollectorRegistry) -> None:
        self.token_refresh_total = Counter(
            P + "token_refresh", "Token refresh attempts by result", ["result"], registry=r
        )
        self.token_refresh_duration_seconds = Histogram(
            P + "token_refresh_duration_seconds",
            "Time to mint and verify a token",
            buckets=_FAST_BUCKETS,
            registry=r,
        )
        self.token_expiry_timestamp_seconds = Gauge(
            P + "token_expiry_timestamp_seconds", "exp of the current token", registry=r
        )
        self.token_last_refresh_success_timestamp_seconds = Gauge(
            P + "token_last_refresh_success_timestamp_seconds",
            "When the last token refresh succeeded",
            registry=r,
        )
        self.token_session_ended = Gauge(
            P + "token_session_ended", "1 when the Clerk session has ended", registry=r
        )
        self.clerk_session_expiry_timestamp_seconds = Gauge(
            P + "clerk_session_expiry_timestamp_seconds",
            "When Clerk ends the current session (expire_at or abandon_at)",
            registry=r,
        )
        self.clerk_session_renewals_total = Counter(
            P + "clerk_session_renewals",
            "Clerk sessions renewed or replaced by the worker, by result",
            ["result"],
            registry=r,
        )

    def _init_realtime(self, r: CollectorRegistry) -> None:
        self.realtime_connected = Gauge(
            P + "realtime_connected", "1 while the Realtime socket is connected", registry=r
        )
        self.realtime_reconnects_total = Counter(
            P + "realtime_reconnects", "Realtime reconnects by reason", ["reason"], registry=r
        )
        self.channel_state = Gauge(
            P + "channel_state",
            "1 for each channel's current state",
            ["topic", "state"],
            registry=r,
        )
        self.channels_joined = Gauge(P + "channels_joined", "Channels joined now", registry=r)
        self.channel_joins_total = Counter(
            P + "channel_joins", "Channel join attempts by result", ["topic", "result"], registry=r
        )
        self.channel_closes_total = Counter(
            P + "channel_closes", "Channel closes by reason", ["topic", "reason"], registry=r
        )

    def _init_events(self, r: CollectorRegistry) -> None:
        self.events_received_total = Counter(
            P + "events_received", "Broadcast events received", ["topic"], registry=r
        )
        self.events_handled_total = Counter(
            P + "events_handled", "Events handled by result", ["topic", "result"], registry=r
        )
        self.event_handler_duration_seconds = Histogram(
            P + "event_handler_duration_seconds",
            "Time spent in one handler call",
            buckets=_FAST_BUCKETS,
            registry=r,
        )
        self.events_rejected_total = Counter(
            P + "events_rejected", "Frames rejected before dispatch", ["reason"], registry=r
        )
        self.dispatch_queue_depth = Gauge(
            P + "dispatch_queue_depth", "Events waiting for a handler", registry=r
        )
        self.last_event_timestamp_seconds = Gauge(
            P + "last_event_timestamp_seconds", "When the last event arrived", ["topic"], registry=r
        )

    def _init_delivery(self, r: CollectorRegistry) -> None:
        self.events_caught_up_total = Counter(
            P + "events_caught_up", "Events delivered by catch-up from the outbox", registry=r
        )
        self.events_deduplicated_total = Counter(
            P + "events_deduplicated", "Events skipped as already handled", registry=r
        )
        self.events_dropped_live_total = Counter(
            P + "events_dropped_live", "Live events dropped (catch-up delivers them)", registry=r
        )
        self.checkpoint_event_id = Gauge(
            P + "checkpoint_event_id", "Id of the last event checkpointed", registry=r
        )
        self.catchup_duration_seconds = Histogram(
            P + "catchup_duration_seconds",
            "Time to catch up from the outbox",
            buckets=_SLOW_BUCKETS,
            registry=r,
        )
        self.outbox_lag_events = Gauge(
            P + "outbox_lag_events", "Outbox events not yet checkpointed", registry=r
        )
        self.outbox_failures_total = Counter(
            P + "outbox_failures",
            "Failed data API calls of catch-up and checkpoints, by operation",
            ["operation"],
            registry=r,
        )
        for operation in OutboxOperation:
            self.outbox_failures_total.labels(operation=operation)

    def _init_lease(self, r: CollectorRegistry) -> None:
        self.leader = Gauge(
            P + "leader", "1 while this worker holds its org's lease and leads, else 0", registry=r
        )
        self.lease_epoch = Gauge(
            P + "lease_epoch",
            "Lease epoch this worker leads under (0: never led)",
            registry=r,
        )
        self.lease_renewals_total = Counter(
            P + "lease_renewals", "Lease renewals by the leader, by result", ["result"], registry=r
        )
        for result in RenewResult:
            self.lease_renewals_total.labels(result=result)
        self.leader_changes_total = Counter(
            P + "leader_changes", "Times this worker started or stopped leading", registry=r
        )

    def init_topics(self, topics: Iterable[str]) -> None:
        """Create every topic series at zero, so dashboards and alerts see them from start."""
        for topic in topics:
            self.events_received_total.labels(topic=topic)
            self.last_event_timestamp_seconds.labels(topic=topic)
            for result in HandledResult:
                self.events_handled_total.labels(topic=topic, result=result)
            for join in JoinResult:
                self.channel_joins_total.labels(topic=topic, result=join)
            for reason in CLOSE_LABELS:
                self.channel_closes_total.labels(topic=topic, reason=reason)
            self.set_channel_state(topic, ChannelState.CLOSED)

    def set_channel_state(self, topic: str, state: ChannelState) -> None:
        """Mark ``state`` as the channel's current state (1) and every other state 0."""
        if state not in set(ChannelState):
            raise ValueError(f"unknown channel state {state!r}")
        for known in ChannelState:
            self.channel_state.labels(topic=topic, state=known).set(1 if known == state else 0)
