"""The supervisor against a fake Phoenix server, plus unit tests with a fake link."""

from __future__ import annotations

import itertools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import anyio
import pytest

from tests.worker.phoenix_fake import PhoenixFake
from tests.worker.rt_fakes import FakeLink, FakeToken, FakeTokens, MetricsProbe
from worker.clock import SystemClock
from worker.realtime import RealtimeAdapter
from worker.realtime.supervisor import Supervisor, SupervisorTiming, close_reason
from worker.testing import FakeClock, eventually

pytestmark = pytest.mark.anyio

ORG = "org_2abc"
SUB = f"org:{ORG}:events"
FAST = SupervisorTiming(
    tick_s=0.05,
    connect_timeout_s=2.0,
    set_auth_timeout_s=0.5,
    leave_timeout_s=1.0,
    backoff_base_s=0.05,
    backoff_cap_s=0.2,
    unauthorized_base_s=0.3,
    unauthorized_cap_s=0.6,
    rate_limit_floor_s=2.0,
    stuck_after_s=10.0,
    stable_after_s=1.0,
)


class Rig:
    def __init__(self, fake: PhoenixFake, tokens: FakeTokens, tg: anyio.abc.TaskGroup) -> None:
        self.fake, self.tokens, self.tg = fake, tokens, tg
        self.probe = MetricsProbe()
        self.adapter = RealtimeAdapter(
            url=f"{fake.url}/realtime/v1",
            apikey="anon-key",
            join_timeout_s=2.0,
            max_retries=2,
            initial_backoff_s=0.05,
        )
        self.sup = Supervisor(
            link=self.adapter,
            org_id=ORG,
            topics=["events"],
            tokens=tokens,
            sink=lambda topic, message: None,
            clock=SystemClock(),
            metrics=self.probe.metrics,
            timing=FAST,
        )

    async def start(self) -> Any:
        return await self.tg.start(self.sup.run)

    async def ticks(self, n: int) -> None:
        target = self.sup.statistics().ticks + n
        await eventually(lambda: self.sup.statistics().ticks >= target)


@pytest.fixture
async def rig() -> AsyncIterator[Callable[..., Awaitable[Rig]]]:
    async with PhoenixFake() as fake, anyio.create_task_group() as tg:
        made: list[Rig] = []

        async def make(tokens: FakeTokens | None = None, start: bool = True) -> Rig:
            r = Rig(fake, tokens or FakeTokens("jwt-1"), tg)
            made.append(r)
            if start:
                await r.start()
            return r

        yield make
        for r in made:
            await r.sup.close()


async def test_joins_with_the_token_and_reports_ready(rig: Callable[..., Awaitable[Rig]]) -> None:
    r = await rig(start=False)
    stats = await r.start()
    assert stats.ready
    (join,) = r.fake.joins_for(SUB)
    assert join.access_token == "jwt-1"  # never the anon key
    assert r.probe.value("channels_joined") == 1
    assert r.probe.value("realtime_connected") == 1
    assert r.probe.value("channel_state", topic="events", state="joined") == 1
    assert r.probe.value("channel_joins_total", topic="events", result="ok") == 1


async def test_server_close_recreates_the_channel_with_the_newest_token(
    rig: Callable[..., Awaitable[Rig]],
) -> None:
    r = await rig()
    r.tokens.rotate("jwt-2")
    await r.fake.shutdown_channel(SUB, "Token has expired 0 seconds ago")
    await eventually(lambda: len(r.fake.joins_for(SUB)) == 2)
    assert r.fake.joins_for(SUB)[-1].access_token == "jwt-2"
    await eventually(lambda: r.sup.ready)
    assert r.probe.value("channel_closes_total", topic="events", reason="token_expired") == 1


async def test_rate_limit_close_waits_at_least_the_floor(
    rig: Callable[..., Awaitable[Rig]],
) -> None:
    r = await rig()
    await r.fake.shutdown_channel(SUB, "Too many messages per second")
    await eventually(lambda: r.sup.statistics().channels[0].last_reason == "rate_limited")
    retry_in = r.sup.statistics().channels[0].retry_in_s
    assert retry_in is not None
    assert retry_in > FAST.rate_limit_floor_s - 0.5
    assert len(r.fake.joins_for(SUB)) == 1


async def test_refused_join_backs_off_without_a_hot_loop(
    rig: Callable[..., Awaitable[Rig]], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, "worker.realtime.supervisor")
    r = await rig(start=False)
    reason = f"Unauthorized: You do not have permissions to read from this Channel topic: {SUB}"
    r.fake.join_errors[SUB] = reason
    stats = await r.start()  # started after the first attempt, not ready
    assert not stats.ready
    await eventually(lambda: len(r.fake.joins_for(SUB)) >= 3)
    times = [j.at for j in r.fake.joins_for(SUB)]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert min(gaps) >= FAST.unauthorized_base_s * 0.5 * 0.9

    def refusals() -> float:
        return r.probe.value("channel_joins_total", topic="events", result="unauthorized")

    # The server records a join before its refusal reaches the client, which counts it.
    await eventually(lambda: refusals() >= 3, timeout_s=5, message="three refusals counted")
    errors = [
        rec.getMessage()
        for rec in caplog.records
        if rec.name == "worker.realtime.supervisor" and rec.levelno == logging.ERROR
    ]
    assert errors
    assert SUB in errors[0]
    assert "policy" in errors[0]
    assert r.sup.statistics().channels[0].last_reason == "permission_revoked"
    del r.fake.join_errors[SUB]
    await eventually(lambda: r.sup.ready)


async def test_dead_socket_after_client_gives_up_is_reconnected(
    rig: Callable[..., Awaitable[Rig]],
) -> None:
    r = await rig()
    r.fake.refuse_next = 4  # more failures than the client's max_retries (2)
    await r.fake.drop_connections()
    await eventually(lambda: r.fake.refused == 4)
    await eventually(lambda: r.sup.ready)
    assert r.fake.joined(SUB)
    assert r.probe.value("realtime_reconnects_total", reason="closed") >= 1
    assert r.probe.value("realtime_reconnects_total", reason="error") >= 1


async def test_stale_close_does_not_make_the_supervisor_recreate(
    rig: Callable[..., Awaitable[Rig]],
) -> None:
    r = await rig()
    await r.fake.system_error(SUB, "Subscribing to PostgreSQL failed")
    await eventually(lambda: len(r.fake.joins_for(SUB)) == 2)  # the client's own rejoin
    await eventually(lambda: r.sup.ready)
    await r.ticks(10)
    assert len(r.fake.joins_for(SUB)) == 2
    assert r.sup.ready
    closes = [
        r.probe.value("channel_closes_total", topic="events", reason=reason)
        for reason in ("token_expired", "permission_revoked", "rate_limited", "other")
    ]
    assert sum(closes) == 0


async def test_set_auth_on_a_dead_socket_does_not_block_the_token_listener(
    rig: Callable[..., Awaitable[Rig]],
) -> None:
    r = await rig()
    r.fake.refuse_next = 1000
    await r.fake.drop_connections()
    await eventually(lambda: not r.adapter.is_connected)
    with anyio.fail_after(FAST.set_auth_timeout_s + 1.0):
        await r.sup.on_token(r.tokens.rotate("jwt-3"))
    r.fake.refuse_next = 0
    await eventually(lambda: r.sup.ready)
    assert r.fake.joins_for(SUB)[-1].access_token == "jwt-3"


async def test_waits_for_a_token_before_joining(rig: Callable[..., Awaitable[Rig]]) -> None:
    r = await rig(tokens=FakeTokens(None))
    await r.ticks(3)
    assert r.fake.joins_for(SUB) == []
    assert r.sup.statistics().channels[0].last_error == "waiting for the first session token"
    r.tokens.rotate("jwt-1")
    await eventually(lambda: r.sup.ready)


async def test_close_leaves_channels_and_closes_the_socket(
    rig: Callable[..., Awaitable[Rig]],
) -> None:
    r = await rig()
    await r.sup.close()
    await eventually(lambda: r.fake.open_connections == 0)
    assert not r.fake.joined(SUB)
    assert r.probe.value("realtime_connected") == 0
    assert r.probe.value("channel_state", topic="events", state="closed") == 1
    assert not r.sup.ready


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("Token has expired 0 seconds ago", "token_expired"),
        ("InvalidJWTToken: Token has expired 3 seconds ago", "token_expired"),
        ("You no longer have permission to read from this Channel topic: x", "permission_revoked"),
        (
            "Unauthorized: You do not have permissions to read from this Channel topic: x",
            "permission_revoked",
        ),
        ("Too many messages per second", "rate_limited"),
        ("ChannelRateLimitReached: Too many channels", "rate_limited"),
        ("Server requested disconnect", "server_disconnect"),
        ("Replication connection was not established in time", "other"),
        (None, "other"),
    ],
)
def test_close_reasons(text: str | None, reason: str) -> None:
    assert close_reason(text) == reason


# -- unit tests with a fake link ------------------------------------------------------------


def unit(link: FakeLink, **timing: float) -> tuple[Supervisor, FakeClock]:
    clock = FakeClock(autojump=True)
    sup = Supervisor(
        link=link,
        org_id=ORG,
        topics=["events"],
        tokens=FakeTokens("jwt-1"),
        sink=lambda t, m: None,
        clock=clock,
        timing=SupervisorTiming(**timing),
    )
    return sup, clock


async def test_dead_listener_rebuilds_the_client_and_resubscribes() -> None:
    link = FakeLink()
    sup, _ = unit(link)
    await sup.tick()
    assert link.subscribes == ["jwt-1"]
    link.listener_alive = False
    await sup.tick()  # rebuild; the new client is not connected yet
    assert link.rebuilds == 1
    await sup.tick()  # connect and join again
    assert link.subscribes == ["jwt-1", "jwt-1"]
    assert sup.ready


async def test_errored_channel_refused_by_policy_is_taken_over() -> None:
    link = FakeLink()
    sup, clock = unit(link, unauthorized_base_s=10.0, unauthorized_cap_s=60.0)
    await sup.tick()
    channel = link.channels[0]
    channel.state, channel.last_error = "errored", "Unauthorized: You do not have permissions"
    await sup.tick()
    assert channel.left_by_us  # the client's own 10 s rejoin loop is stopped
    (stats,) = sup.statistics().channels
    assert stats.state == "closed"
    assert stats.retry_in_s is not None
    assert 5.0 <= stats.retry_in_s <= 10.0
    await sup.tick()
    assert len(link.subscribes) == 1  # still backing off
    clock.advance(10.0)
    await sup.tick()
    assert len(link.subscribes) == 2


async def test_channel_stuck_joining_is_recreated() -> None:
    link = FakeLink()
    sup, clock = unit(link, stuck_after_s=30.0)
    await sup.tick()
    link.channels[0].state = "joining"
    await sup.tick()
    clock.advance(31.0)
    await sup.tick()
    assert link.channels[0].left_by_us
    clock.advance(5.0)
    await sup.tick()
    assert len(link.subscribes) == 2


def metered(link: FakeLink, probe: MetricsProbe) -> Supervisor:
    """A supervisor of ``link`` whose metrics ``probe`` reads."""
    return Supervisor(
        link=link,
        org_id=ORG,
        topics=["events"],
        tokens=FakeTokens("jwt-1"),
        sink=lambda t, m: None,
        clock=FakeClock(autojump=True),
        metrics=probe.metrics,
    )


async def test_every_socket_loss_the_client_recovered_from_is_counted() -> None:
    link, probe = FakeLink(), MetricsProbe()
    sup = metered(link, probe)
    await sup.tick()
    assert probe.value("realtime_reconnects_total", reason="closed") == 0
    link.socket_losses = 3  # three drops healed by the client between two ticks
    await sup.tick()
    await sup.tick()
    assert probe.value("realtime_reconnects_total", reason="closed") == 3


async def test_a_socket_loss_is_counted_once_while_down_and_after_reconnecting() -> None:
    link, probe = FakeLink(), MetricsProbe()
    sup = metered(link, probe)
    await sup.tick()
    link.is_connected, link.is_reconnecting, link.socket_losses = False, True, 1
    await sup.tick()
    link.is_connected, link.is_reconnecting = True, False
    await sup.tick()
    assert probe.value("realtime_reconnects_total", reason="closed") == 1


async def test_a_channel_closed_for_an_expired_token_rejoins_on_the_tick_after_a_new_token() -> (
    None
):
    link, clock, tokens = FakeLink(), FakeClock(autojump=True), FakeTokens("jwt-1")
    sup = Supervisor(
        link=link, org_id=ORG, topics=["events"], tokens=tokens, sink=lambda t, m: None, clock=clock
    )
    await sup.tick()
    channel = link.channels[0]
    channel.state, channel.last_error = "closed", "Token has expired 0 seconds ago"
    await sup.tick()  # closed: a backoff is scheduled
    (stats,) = sup.statistics().channels
    assert stats.retry_in_s is not None
    assert stats.retry_in_s > 0
    tokens.current = FakeToken("jwt-2")
    await sup.on_token(tokens.current)
    await sup.tick()  # no clock advance: only the new token makes it rejoin now
    assert link.subscribes == ["jwt-1", "jwt-2"]
