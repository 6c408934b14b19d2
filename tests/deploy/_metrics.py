"""The metric names the worker exports: what the rules and the dashboard may read.

The deploy files are checked against this list (test_metric_names.py), and the list
against a real worker's /metrics (test_exported_metrics.py, and through a real Prometheus
in test_prometheus_e2e.py): a metric added to or removed from worker/observe/metrics.py must be
added or removed here too.
"""

from __future__ import annotations

PREFIX = "realtime_worker_"

COUNTERS = (
    "token_refresh_total",
    "clerk_session_renewals_total",
    "realtime_reconnects_total",
    "channel_joins_total",
    "channel_closes_total",
    "events_received_total",
    "events_handled_total",
    "events_rejected_total",
    "events_caught_up_total",
    "events_deduplicated_total",
    "events_dropped_live_total",
    "outbox_failures_total",
    "lease_renewals_total",
    "leader_changes_total",
)
GAUGES = (
    "build_info",
    "org_info",
    "token_expiry_timestamp_seconds",
    "token_last_refresh_success_timestamp_seconds",
    "token_session_ended",
    "clerk_session_expiry_timestamp_seconds",
    "realtime_connected",
    "channel_state",
    "channels_joined",
    "dispatch_queue_depth",
    "last_event_timestamp_seconds",
    "checkpoint_event_id",
    "outbox_lag_events",
    "leader",
    "lease_epoch",
)
HISTOGRAMS = (
    "token_refresh_duration_seconds",
    "event_handler_duration_seconds",
    "catchup_duration_seconds",
)

#: Every series name the worker exports (histograms as their three series).
EXPORTED = frozenset(
    [PREFIX + name for name in COUNTERS + GAUGES]
    + [PREFIX + name + part for name in HISTOGRAMS for part in ("_bucket", "_sum", "_count")]
)
#: Names Prometheus itself adds to every target.
SCRAPE = frozenset({"up"})
