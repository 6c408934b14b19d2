"""Unit tests of the heartbeat watchdog: the adapter against a fake Phoenix server that can
go silent, and the supervisor's reaction with a fake link."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest

from tests.worker.phoenix_fake import PhoenixFake, _Conn
from tests.worker.rt_fakes import FakeLink, FakeTokens, MetricsProbe
from worker.realtime import RealtimeAdapter
from worker.realtime.supervisor import Supervisor
from worker.testing import FakeClock, eventually

pytestmark = pytest.mark.anyio

ORG = "org_2abc"
SUB = f"org:{ORG}:events"
HEARTBEAT_S = 0.1


class SilentPhoenix(PhoenixFake):
    """A PhoenixFake whose sockets can stop answering while staying open."""

    def __init__(self) -> None:
        super().__init__()
        self.silent = False
        self.heartbeats = 0

    async def _on_frame(self, conn: _Conn, frame: dict[str, Any]) -> None:
        if frame.get("event") == "heartbeat":
            self.heartbeats += 1
        if not self.silent:
            await super()._on_frame(conn, frame)


@pytest.fixture
async def fake() -> AsyncIterator[SilentPhoenix]:
    async with SilentPhoenix() as server:
        yield server


def adapter_for(fake: PhoenixFake) -> RealtimeAdapter:
    return RealtimeAdapter(
        url=f"{fake.url}/realtime/v1",
        apikey="anon-key",
        join_timeout_s=2.0,
        heartbeat_s=HEARTBEAT_S,
        max_retries=2,
        initial_backoff_s=0.05,
    )


async def watch(adapter: RealtimeAdapter, seconds: float) -> list[float]:
    """Run the watchdog like the supervisor does (more often here), collecting verdicts."""
    stalls: list[float] = []
    with anyio.move_on_after(seconds):
        while not stalls:
            verdict = await adapter.check_heartbeat()
            if verdict is not None:
                stalls.append(verdict)
            await anyio.sleep(HEARTBEAT_S / 4)  # the watchdog's pace, not a wait for a result
    return stalls


async def test_answered_heartbeats_keep_the_socket_alive(fake: SilentPhoenix) -> None:
    adapter = adapter_for(fake)
    await adapter.connect(5.0)
    try:
        assert await watch(adapter, 12 * HEARTBEAT_S) == []
        assert adapter.heartbeats_sent >= 8  # not floored at 15 s like the client's own
        assert fake.heartbeats >= adapter.heartbeats_sent
        assert adapter.is_connected
    finally:
        await adapter.close()


async def test_a_silent_socket_is_declared_stalled_after_two_intervals_and_cut(
    fake: SilentPhoenix,
) -> None:
    adapter = adapter_for(fake)
    await adapter.connect(5.0)
    await adapter.subscribe("events", SUB, "jwt-1", lambda topic, message: None)
    try:
        fake.silent = True
        stalls = await watch(adapter, 20 * HEARTBEAT_S)
        assert len(stalls) == 1
        assert stalls[0] >= 2 * HEARTBEAT_S
        await eventually(lambda: not adapter.is_connected, timeout_s=2)
        # The abandoned client does not reconnect on its own (it would deliver twice).
        assert not adapter.is_reconnecting
        assert adapter.socket_losses == 0
        assert fake.connections == 1

        fake.silent = False
        await adapter.rebuild(timeout_s=1.0)
        await adapter.connect(5.0)
        assert fake.connections == 2
        assert await watch(adapter, 6 * HEARTBEAT_S) == []
    finally:
        await adapter.close()


async def test_a_closed_socket_is_not_a_stall(fake: SilentPhoenix) -> None:
    adapter = adapter_for(fake)
    assert await adapter.check_heartbeat() is None  # never connected
    assert adapter.heartbeats_sent == 0


async def test_the_supervisor_rebuilds_a_stalled_client_and_rejoins(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, "worker.realtime.supervisor")
    link, probe = FakeLink(), MetricsProbe()
    sup = Supervisor(
        link=link,
        org_id=ORG,
        topics=["events"],
        tokens=FakeTokens("jwt-1"),
        sink=lambda t, m: None,
        clock=FakeClock(autojump=True),
        metrics=probe.metrics,
    )
    await sup.tick()
    assert sup.ready
    link.stalled_for = 2.5
    await sup.tick()
    assert link.rebuilds == 1
    assert not sup.ready
    assert sup.statistics().channels[0].state == "closed"
    assert probe.value("realtime_reconnects_total", reason="heartbeat_timeout") == 1
    assert probe.value("realtime_reconnects_total", reason="closed") == 0
    assert probe.value("realtime_connected") == 0
    assert any("stalled" in r.getMessage() for r in caplog.records)
    link.stalled_for = None
    await sup.tick()  # connect the new client and join again
    assert sup.ready
    assert link.subscribes == ["jwt-1", "jwt-1"]
