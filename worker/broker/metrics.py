"""The broker's metrics, on an injected registry (per-org labels are fine: no tokens)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

from worker.broker.identity import DenyReason

__all__ = ["BrokerMetrics"]


class BrokerMetrics:
    """``realtime_worker_broker_*``: requests, refusals, Clerk mints, token expiry."""

    def __init__(self, registry: CollectorRegistry, orgs: list[str]) -> None:
        self.requests = Counter(
            "realtime_worker_broker_requests_total",
            "Token requests answered, by org (of the caller) and HTTP status",
            ["org", "status"],
            registry=registry,
        )
        self.denied = Counter(
            "realtime_worker_broker_denied_total",
            "Callers refused, by reason",
            ["reason"],
            registry=registry,
        )
        self.mints = Counter(
            "realtime_worker_broker_mints_total",
            "Tokens minted from Clerk, by org and result",
            ["org", "result"],
            registry=registry,
        )
        self.expires_at = Gauge(
            "realtime_worker_broker_token_expires_at_seconds",
            "exp of each org's cached token (epoch seconds)",
            ["org"],
            registry=registry,
        )
        for reason in DenyReason:
            self.denied.labels(reason=reason.value)
        for org in orgs:
            for result in ("success", "error"):
                self.mints.labels(org=org, result=result)

    def on_mint(self, org: str, result: str) -> None:
        self.mints.labels(org=org, result=result).inc()
