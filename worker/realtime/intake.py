"""The broadcast intake: what runs inside the Realtime client's callback.

It parses the frame (cheap), counts it, and ``offer()``s the event to the dispatcher. It is
sync and never raises: it runs inline on the client's listen task, where an exception
would end all delivery while heartbeats carry on.

With a ``gate`` (catch-up), an outbox event already dispatched is skipped and counted in
``events_deduplicated_total``; one dispatched is reported to the gate, which dedupes by its
id but lets only catch-up's reading of the outbox count it for the checkpoint (a frame's
outbox-shaped payload can be forged by anyone allowed to broadcast on the channel); one
the full queue refuses is counted in ``events_dropped_live_total``, not marked seen, and a
catch-up pass is requested: the listener never waits, and memory stays bounded by the
queue whatever the inbound rate.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Mapping
from typing import Any, Protocol

from worker.events import Event, Limits, RejectedEvent, parse_broadcast
from worker.ports import Clock, Counter, CounterChild, Gauge, GaugeChild

__all__ = ["Intake", "IntakeMetrics", "LiveGate"]

_log = logging.getLogger("worker.realtime")


class IntakeMetrics(Protocol):
    """The members of ``metrics.Metrics`` the intake updates."""

    @property
    def events_received_total(self) -> Counter: ...
    @property
    def events_rejected_total(self) -> Counter: ...
    @property
    def last_event_timestamp_seconds(self) -> Gauge: ...
    @property
    def events_deduplicated_total(self) -> CounterChild: ...  # unlabelled
    @property
    def events_dropped_live_total(self) -> CounterChild: ...  # unlabelled


class LiveGate(Protocol):
    """Dedupe and overload hooks for outbox events (``catchup.CatchUp``); sync, cheap."""

    def is_duplicate(self, event: Event) -> bool: ...
    def dispatched(self, event: Event) -> None: ...
    def dropped(self, event: Event) -> None: ...


class Intake:
    """The broadcast callback: parse, count, ``offer``. Sync, cheap, never raises."""

    def __init__(
        self,
        *,
        org_id: str,
        topics: Collection[str],
        offer: Callable[[Event], bool],
        clock: Clock,
        metrics: IntakeMetrics | None = None,
        limits: Limits | None = None,
        gate: LiveGate | None = None,
    ) -> None:
        self._org_id = org_id
        self._topics = frozenset(topics)
        self._offer = offer
        self._clock = clock
        self._metrics = metrics
        self._limits = limits or Limits()
        self._gate = gate
        self._series: dict[str, tuple[CounterChild, GaugeChild]] = {}

    def __call__(self, channel_topic: str, message: Mapping[str, Any]) -> None:
        # Runs on the client's listen task: an exception here would end all delivery.
        try:
            self._take(channel_topic, message)
        except Exception:
            _log.exception("broadcast callback failed; the event was dropped")

    def _take(self, channel_topic: str, message: Mapping[str, Any]) -> None:
        now = self._clock.time()
        try:
            event = parse_broadcast(
                self._org_id,
                channel_topic,
                message,
                topics=self._topics,
                received_at=now,
                limits=self._limits,
            )
        except RejectedEvent as exc:
            _log.warning("broadcast rejected: %s", exc.detail, extra={"reason": exc.reason})
            if self._metrics is not None:
                self._metrics.events_rejected_total.labels(reason=exc.reason).inc()
            return
        if self._metrics is not None:
            received, last = self._series_of(self._metrics, event.topic)
            received.inc()
            last.set(now)
        gate = self._gate
        if gate is None or event.event_id is None:
            self._offer(event)  # a full queue is counted by the dispatcher
        elif gate.is_duplicate(event):
            if self._metrics is not None:
                self._metrics.events_deduplicated_total.inc()
        elif self._offer(event):
            gate.dispatched(event)  # no await in between: it cannot finish before this
        else:
            if self._metrics is not None:
                self._metrics.events_dropped_live_total.inc()
            gate.dropped(event)

    def _series_of(self, metrics: IntakeMetrics, topic: str) -> tuple[CounterChild, GaugeChild]:
        # labels() costs a lock and a tuple key per call: look each topic's children up once.
        series = self._series.get(topic)
        if series is None:
            series = (
                metrics.events_received_total.labels(topic=topic),
                metrics.last_event_timestamp_seconds.labels(topic=topic),
            )
            self._series[topic] = series
        return series
