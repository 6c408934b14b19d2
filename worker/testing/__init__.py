"""Testing: what a test of the worker, or of a handler, needs to control time and wait.

Owns the fakes and helpers that tests import instead of writing their own: ``FakeClock``
(a ``worker.clock.Clock`` whose time moves only when the test says so) and ``eventually``
(wait for a condition under a deadline, never a bare sleep). It is the home of the handler
test harness to come. Never imports the local stack (``devstack``) or the ``realtime``
client, and nothing in the running worker imports it: tests of a handler need no server.
"""

from worker.testing.fakeclock import FakeClock
from worker.testing.waiting import eventually

__all__ = ["FakeClock", "eventually"]
