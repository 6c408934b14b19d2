"""A network stall (TCP open, nothing arriving) and a cut link, through a proxy in front of
the stack: the heartbeat watchdog notices within two heartbeat intervals, long before
websockets' 40 s keepalive, and the worker recovers by itself."""

from __future__ import annotations

import time

import pytest

from devstack.stack import Stack
from tests.e2e.conftest import Recorder, insert_events, provision, run_worker
from tests.faults.proxy import TcpProxy
from tests.faults.support import channel, metric, readyz
from worker.testing import eventually

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(90)]

HEARTBEAT_S = 0.5


async def test_a_stalled_network_is_detected_by_heartbeat_and_recovered_after_it_thaws(
    stack: Stack, proxy: TcpProxy
) -> None:
    org = provision(stack, "Acme")
    recorder = Recorder()
    async with run_worker(
        stack,
        org,
        recorder.registry,
        SUPABASE_URL=proxy.url,
        REALTIME_HEARTBEAT_SECONDS=str(HEARTBEAT_S),
        REALTIME_JOIN_TIMEOUT_SECONDS="2",
    ) as worker:
        stalls = metric(worker, "realtime_reconnects_total", reason="heartbeat_timeout")
        connected = metric(worker, "realtime_connected")
        await eventually(
            lambda: proxy.open_connections >= 1,
            timeout_s=5,
            message="the socket goes via the proxy",
        )
        assert stalls() == 0  # heartbeats are answered while the network works

        proxy.freeze()
        frozen_at = time.monotonic()
        await eventually(lambda: stalls() >= 1, timeout_s=15, message="the stall is detected")
        detected_after = time.monotonic() - frozen_at
        assert detected_after < 10, detected_after  # websockets' keepalive would take 40 s
        await eventually(
            lambda: connected() == 0, timeout_s=5, message="the socket is reported down"
        )
        assert await readyz(worker) == 503
        assert "realtime.connected" in worker.checks.failures()

        proxy.thaw()
        await eventually(
            lambda: worker.checks.failures() == {}, timeout_s=30, message="ready again"
        )
        assert channel(worker).state == "joined"
        assert await readyz(worker) == 200
        inserted = await insert_events(stack.database_url, org.org_id, 3)
        await eventually(
            recorder.handled(inserted), timeout_s=15, message="events after recovery handled"
        )
        # The abandoned socket never came back to deliver the same events twice.
        assert sorted(recorder.ids()) == sorted(inserted)


async def test_a_cut_link_reconnects_through_the_proxy(stack: Stack, proxy: TcpProxy) -> None:
    org = provision(stack, "Acme")
    recorder = Recorder()
    async with run_worker(
        stack,
        org,
        recorder.registry,
        SUPABASE_URL=proxy.url,
        REALTIME_HEARTBEAT_SECONDS=str(HEARTBEAT_S),
    ) as worker:
        losses = metric(worker, "realtime_reconnects_total", reason="closed")
        accepted = proxy.accepted
        assert proxy.cut() >= 1
        await eventually(lambda: losses() >= 1, timeout_s=10, message="the loss is counted")
        await eventually(
            lambda: proxy.accepted > accepted, timeout_s=10, message="a new connection"
        )
        await eventually(
            lambda: worker.checks.failures() == {}, timeout_s=30, message="ready again"
        )
        inserted = await insert_events(stack.database_url, org.org_id, 3)
        await eventually(
            recorder.handled(inserted), timeout_s=15, message="events after recovery handled"
        )
        assert metric(worker, "realtime_reconnects_total", reason="heartbeat_timeout")() == 0
