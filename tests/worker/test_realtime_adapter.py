"""The realtime adapter against a fake Phoenix V1 server (and one fake client at the seam)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest

from tests.worker.phoenix_fake import PhoenixFake
from tests.worker.rt_fakes import MetricsProbe
from worker.clock import SystemClock
from worker.errors import JoinRefused, RealtimeError
from worker.events import Event
from worker.realtime import ChannelHandle, Intake, RealtimeAdapter
from worker.testing import eventually

pytestmark = pytest.mark.anyio

ORG = "org_2abc"
SUB = f"org:{ORG}:events"


def outbox_payload(n: int, org: str = ORG) -> dict[str, Any]:
    return {"id": n, "org_id": org, "topic": "events", "event": "e", "payload": {"n": n}}


@pytest.fixture
async def fake() -> AsyncIterator[PhoenixFake]:
    async with PhoenixFake() as server:
        yield server


def make_adapter(fake: PhoenixFake, **kw: Any) -> RealtimeAdapter:
    options: dict[str, Any] = {"join_timeout_s": 2.0, "max_retries": 2, "initial_backoff_s": 0.05}
    options.update(kw)
    return RealtimeAdapter(url=f"{fake.url}/realtime/v1", apikey="anon-key", **options)


class Sink:
    """The dispatcher's ``offer`` as seen by the intake."""

    def __init__(self, accept: bool = True) -> None:
        self.events: list[Event] = []
        self.accept = accept

    def offer(self, event: Event) -> bool:
        self.events.append(event)
        return self.accept


async def joined(adapter: RealtimeAdapter, intake: Intake, jwt: str = "jwt-1") -> ChannelHandle:
    await adapter.connect(5.0)
    return await adapter.subscribe("events", SUB, jwt, intake)


async def test_callbacks_parse_count_and_enqueue(fake: PhoenixFake) -> None:
    sink, probe = Sink(), MetricsProbe()
    intake = Intake(
        org_id=ORG, topics=["events"], offer=sink.offer, clock=SystemClock(), metrics=probe.metrics
    )
    adapter = make_adapter(fake)
    handle = await joined(adapter, intake)
    (join,) = fake.joins_for(SUB)
    assert join.access_token == "jwt-1"
    assert join.config["private"] is True
    assert join.config["broadcast"] == {"ack": False, "self": False}

    await fake.broadcast(SUB, "e", outbox_payload(1), meta={"id": "m1"})
    await fake.broadcast(SUB, "e", outbox_payload(2, org="org_2evil"))
    await fake.broadcast(SUB, "e", outbox_payload(3))
    await eventually(lambda: len(sink.events) == 2)
    assert [e.event_id for e in sink.events] == [1, 3]
    assert sink.events[0].message_id == "m1"
    assert probe.value("events_rejected_total", reason="wrong_org") == 1
    assert probe.value("events_received_total", topic="events") == 2
    assert handle.state == "joined"
    await adapter.close()


async def test_a_raising_sink_does_not_stop_delivery(fake: PhoenixFake) -> None:
    received: list[int] = []

    def explosive(channel_topic: str, message: Any) -> None:
        received.append(message["payload"]["id"])
        raise RuntimeError("handler bug inside the callback")

    adapter = make_adapter(fake)
    await adapter.connect(5.0)
    await adapter.subscribe("events", SUB, "jwt-1", explosive)
    for n in (1, 2, 3):
        await fake.broadcast(SUB, "e", outbox_payload(n))
    await eventually(lambda: received == [1, 2, 3])
    assert adapter.listener_alive
    await adapter.close()


async def test_stale_phx_close_does_not_close_the_new_join(fake: PhoenixFake) -> None:
    sink = Sink()
    intake = Intake(org_id=ORG, topics=["events"], offer=sink.offer, clock=SystemClock())
    adapter = make_adapter(fake)
    handle = await joined(adapter, intake)
    # A system error that leaves the server channel open: the client rejoins the live
    # topic, and Phoenix answers ok, then closes the *old* channel with the old join ref.
    await fake.system_error(SUB, "Subscribing to PostgreSQL failed")
    await eventually(lambda: len(fake.joins_for(SUB)) == 2)
    await eventually(lambda: handle.stale_dropped == 1)
    assert handle.state == "joined"
    await fake.broadcast(SUB, "e", outbox_payload(5))
    await eventually(lambda: [e.event_id for e in sink.events] == [5])
    await adapter.close()


async def test_refused_join_raises_with_the_server_reason(fake: PhoenixFake) -> None:
    reason = f"Unauthorized: You do not have permissions to read from this Channel topic: {SUB}"
    fake.join_errors[SUB] = reason
    adapter = make_adapter(fake)
    await adapter.connect(5.0)
    with pytest.raises(JoinRefused) as info:
        await adapter.subscribe("events", SUB, "jwt-1", lambda t, m: None)
    assert info.value.reason == reason
    assert info.value.topic == SUB
    await adapter.close()


async def test_broadcast_goes_out_on_a_joined_channel_only(fake: PhoenixFake) -> None:
    adapter = make_adapter(fake)
    await adapter.connect(5.0)
    await adapter.subscribe("events", SUB, "jwt-1", lambda t, m: None)
    await adapter.broadcast(SUB, "report.ready", {"ok": True})
    await eventually(lambda: len(fake.client_broadcasts) == 1)
    topic, payload = fake.client_broadcasts[0]
    assert (topic, payload["event"], payload["payload"]) == (SUB, "report.ready", {"ok": True})
    with pytest.raises(RealtimeError, match="not joined"):
        await adapter.broadcast(f"org:{ORG}:other", "x", {})
    await adapter.close()


async def test_set_auth_pushes_to_joined_channels(fake: PhoenixFake) -> None:
    adapter = make_adapter(fake)
    handle = await joined(
        adapter, Intake(org_id=ORG, topics=["events"], offer=Sink().offer, clock=SystemClock())
    )
    assert await adapter.set_auth("jwt-2", timeout_s=2.0)
    await eventually(lambda: fake.access_tokens == [(SUB, "jwt-2")])
    assert handle.channel.join_push.payload["access_token"] == "jwt-2"
    await adapter.close()
    await eventually(lambda: fake.open_connections == 0)
    assert not fake.joined(SUB)


async def test_client_give_up_is_visible(fake: PhoenixFake) -> None:
    adapter = make_adapter(fake)
    await adapter.connect(5.0)
    await adapter.subscribe("events", SUB, "jwt-1", lambda t, m: None)
    fake.refuse_next = 100
    await fake.drop_connections()
    await eventually(lambda: not adapter.is_connected and not adapter.is_reconnecting)
    assert fake.refused >= 2
    assert "503" in (adapter.give_up_error() or "")
    with pytest.raises(RealtimeError, match="connecting to Realtime"):
        await adapter.connect(0.5)
    fake.refuse_next = 0
    await adapter.connect(5.0)
    await eventually(lambda: fake.joined(SUB))
    await adapter.close()


class HangingChannel:
    """A joined channel whose pushes never return (a socket reconnecting inside send)."""

    def __init__(self) -> None:
        self.is_joined = True
        self.join_push = self
        self.payload: dict[str, Any] = {}

    def update_payload(self, payload: dict[str, Any]) -> None:
        self.payload.update(payload)

    async def push(self, event: str, payload: dict[str, Any]) -> None:
        await anyio.sleep_forever()


class HangingClient:
    is_connected = True

    def __init__(self) -> None:
        self.access_token: str | None = None
        self.channels = {"realtime:a": HangingChannel(), "realtime:b": HangingChannel()}


async def test_set_auth_is_bounded_and_still_updates_every_join_payload() -> None:
    client = HangingClient()
    adapter = RealtimeAdapter(url="http://unused", apikey="anon", client_factory=lambda: client)  # type: ignore[arg-type,return-value]
    with anyio.fail_after(2):
        assert not await adapter.set_auth("jwt-9", timeout_s=0.1)
    assert client.access_token == "jwt-9"
    assert all(ch.payload == {"access_token": "jwt-9"} for ch in client.channels.values())
