"""Dispatch: a bounded queue between the event sources and the user's handlers.

Owns the queue (``offer`` never waits, ``put`` waits for room), the consumers, per-call
timeouts, retries with backoff, dead letters, the canonical per-event log line and the
``on_done`` hook (``dispatcher``, ``accounting``, ``outcomes``). Never touches Realtime,
the outbox or tokens: events arrive through ``offer``/``put``, handlers get a ``Context``
from the factory they are given.
"""

from worker.dispatch.dispatcher import ContextMaker, Dispatcher, OnDone
from worker.dispatch.outcomes import DispatchMetrics, DispatchStatistics, HandledResult, Outcome

__all__ = [
    "ContextMaker",
    "DispatchMetrics",
    "DispatchStatistics",
    "Dispatcher",
    "HandledResult",
    "OnDone",
    "Outcome",
]
