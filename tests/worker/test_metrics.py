"""Metrics: exact names, zero-initialised series, no `_created`, bounded labels."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from worker.dispatch import HandledResult as HANDLED_RESULTS
from worker.observe.metrics import Metrics
from worker.realtime import JoinResult as JOIN_RESULTS
from worker.realtime.link import CLOSE_LABELS as CLOSE_REASONS
from worker.tokens import RefreshResult as TOKEN_RESULTS
from worker.tokens.sessions import RenewalResult as RENEWAL_RESULTS

EXPECTED = {
    "build_info",
    "org_info",
    "token_refresh_total",
    "token_refresh_duration_seconds",
    "token_expiry_timestamp_seconds",
    "token_last_refresh_success_timestamp_seconds",
    "token_session_ended",
    "clerk_session_expiry_timestamp_seconds",
    "clerk_session_renewals_total",
    "realtime_connected",
    "realtime_reconnects_total",
    "channel_state",
    "channels_joined",
    "channel_joins_total",
    "channel_closes_total",
    "events_received_total",
    "events_handled_total",
    "event_handler_duration_seconds",
    "events_rejected_total",
    "dispatch_queue_depth",
    "last_event_timestamp_seconds",
    "events_caught_up_total",
    "events_deduplicated_total",
    "events_dropped_live_total",
    "checkpoint_event_id",
    "catchup_duration_seconds",
    "outbox_lag_events",
}


def exposition(registry: CollectorRegistry) -> str:
    return generate_latest(registry).decode()


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value("realtime_worker_" + name, labels)


def test_every_metric_exists_under_its_exact_name_and_attribute() -> None:
    registry = CollectorRegistry()
    metrics = Metrics(registry)
    text = exposition(registry)
    for attribute in EXPECTED:
        assert hasattr(metrics, attribute), attribute
        assert f"realtime_worker_{attribute}" in text, attribute


def test_build_and_org_info_carry_their_labels_with_value_one() -> None:
    registry = CollectorRegistry()
    Metrics(registry, org_id="org_2abc", version="1.2.3")
    assert sample(registry, "build_info", version="1.2.3") == 1
    assert sample(registry, "org_info", org="org_2abc") == 1


def test_token_results_are_zero_initialised() -> None:
    registry = CollectorRegistry()
    Metrics(registry)
    for result in TOKEN_RESULTS:
        assert sample(registry, "token_refresh_total", result=result) == 0


def test_session_renewal_results_are_zero_initialised() -> None:
    registry = CollectorRegistry()
    Metrics(registry)
    for result in RENEWAL_RESULTS:
        assert sample(registry, "clerk_session_renewals_total", result=result) == 0


def test_init_topics_zero_initialises_every_topic_series() -> None:
    registry = CollectorRegistry()
    Metrics(registry).init_topics(["events", "jobs"])
    for topic in ("events", "jobs"):
        assert sample(registry, "events_received_total", topic=topic) == 0
        for result in HANDLED_RESULTS:
            assert sample(registry, "events_handled_total", topic=topic, result=result) == 0
        for result in JOIN_RESULTS:
            assert sample(registry, "channel_joins_total", topic=topic, result=result) == 0
        for reason in CLOSE_REASONS:
            assert sample(registry, "channel_closes_total", topic=topic, reason=reason) == 0
        assert sample(registry, "channel_state", topic=topic, state="closed") == 1
        assert sample(registry, "channel_state", topic=topic, state="joined") == 0


def test_channel_state_marks_only_the_current_state() -> None:
    registry = CollectorRegistry()
    metrics = Metrics(registry)
    metrics.set_channel_state("events", "joining")
    metrics.set_channel_state("events", "joined")
    assert sample(registry, "channel_state", topic="events", state="joined") == 1
    assert sample(registry, "channel_state", topic="events", state="joining") == 0
    with pytest.raises(ValueError, match="unknown channel state"):
        metrics.set_channel_state("events", "dancing")


def test_no_created_series_are_exported() -> None:
    registry = CollectorRegistry()
    Metrics(registry).init_topics(["events"])
    assert "_created" not in exposition(registry)


def test_two_registries_do_not_share_metrics() -> None:
    first, second = CollectorRegistry(), CollectorRegistry()
    Metrics(first).token_refresh_total.labels(result="success").inc()
    Metrics(second)
    assert sample(first, "token_refresh_total", result="success") == 1
    assert sample(second, "token_refresh_total", result="success") == 0
