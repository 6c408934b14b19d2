"""The lease: one holder per (org, consumer) at a time, with a fencing epoch.

Owns the lease RPCs (``store``), when a holder must have stopped and how often to ask
(``schedule``, pure), and ``Leadership`` (``leader``): it takes and renews the lease,
runs a term (built by the composition) while holding it, routes live frames to that term
only, and stands by otherwise. Never touches Realtime, dispatch, delivery, tokens or
observe: a term is a small Protocol, and metrics go through ``LeaseMetrics``.
"""

from worker.lease.leader import Leadership, LeadershipStatistics, LeaseMetrics, Term
from worker.lease.store import LeaseGrant, LeaseStore, RenewResult

__all__ = [
    "Leadership",
    "LeadershipStatistics",
    "LeaseGrant",
    "LeaseMetrics",
    "LeaseStore",
    "RenewResult",
    "Term",
]
