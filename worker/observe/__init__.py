"""Observe: what operators see. Metrics, the HTTP endpoints and the JSON logs.

Owns every Prometheus metric (``metrics``, zero-initialised from the label enums each
part defines), ``/metrics``, ``/healthz``, ``/readyz`` and ``/status`` with named health
checks (``http``), and the redacting JSON log formatter (``logs``). Never changes what the
worker does: parts update metrics through their own small Protocols and are never
imported for anything but their label vocabulary.
"""

from worker.observe.http import HealthChecks, HttpServer
from worker.observe.logs import JsonFormatter, configure_logging, redact
from worker.observe.metrics import Metrics

__all__ = ["HealthChecks", "HttpServer", "JsonFormatter", "Metrics", "configure_logging", "redact"]
