"""Testing: what a test of the worker, or of a handler, imports instead of writing its own.

* ``HandlerHarness``: the user's handlers on the real dispatcher (retries, backoff,
  timeouts, dead letters, the canonical log line) with time skipped; ``deliver()`` returns
  a ``Delivered`` (outcome, attempts, dead-letter reason, failed attempts);
* ``make_event``, ``make_context`` and ``Recorder`` (broadcasts, data API requests
  answered in memory, log records) for plain unit tests of one handler call;
* ``FakeClock`` (a ``worker.clock.Clock`` whose time moves only when the test, or
  autojump, says so) and ``eventually`` (wait for a condition under a deadline).

Never imports the local stack (``devstack``) or the ``realtime`` client, and nothing in
the running worker imports it: tests of a handler need no server.
"""

from worker.testing.factories import Broadcast, Recorder, make_context, make_event
from worker.testing.fakeclock import FakeClock
from worker.testing.harness import Delivered, HandlerHarness
from worker.testing.metrics import RecordingMetrics
from worker.testing.waiting import eventually

__all__ = [
    "Broadcast",
    "Delivered",
    "FakeClock",
    "HandlerHarness",
    "Recorder",
    "RecordingMetrics",
    "eventually",
    "make_context",
    "make_event",
]
