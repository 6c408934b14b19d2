"""Realtime stand-in: how channels drive the Postgres Changes extension (a fake at the seam)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from devstack.realtime.ports import Deliver
from tests.devstack.conftest import TEST_SETTINGS, Keys, running
from tests.devstack.rawclient import Msg

pytestmark = pytest.mark.anyio

BINDING = {"event": "INSERT", "schema": "public", "table": "cdc_tasks"}


class SubscriptionError(Exception):
    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


@dataclass
class FakeChanges:
    fail_with: str | None = None
    delivers: dict[str, Deliver] = field(default_factory=dict)
    calls: list[tuple[str, str]] = field(default_factory=list)

    def binding_ids(self, bindings: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{**b, "id": 1000 + i} for i, b in enumerate(bindings)]

    async def subscribe(
        self, *, key: str, bindings: list[dict[str, Any]], claims: dict[str, Any], deliver: Deliver
    ) -> None:
        self.calls.append(("subscribe", key))
        if self.fail_with:
            raise SubscriptionError(self.fail_with)
        self.delivers[key] = deliver

    async def update_claims(self, key: str, claims: dict[str, Any]) -> None:
        self.calls.append(("update_claims", key))

    async def unsubscribe(self, key: str) -> None:
        self.calls.append(("unsubscribe", key))


def is_system(m: Msg) -> bool:
    return m.event == "system"


async def test_join_reply_echoes_ids_then_subscribed_and_deliveries(
    database_url: str, keys: Keys
) -> None:
    fake = FakeChanges()
    async with (
        running(database_url, keys, TEST_SETTINGS, postgres_changes=fake) as env,
        env.raw() as c,
    ):
        _, reply = await c.join("room-1", {"postgres_changes": [BINDING]})
        system = await c.expect(is_system)
        (deliver,) = fake.delivers.values()
        await deliver({"ids": [1000], "data": {"type": "INSERT"}})
        change = await c.expect(lambda m: m.event == "postgres_changes")
    assert reply.payload["response"] == {"postgres_changes": [{**BINDING, "id": 1000}]}
    assert system.payload == {
        "extension": "postgres_changes",
        "status": "ok",
        "message": "Subscribed to PostgreSQL",
        "channel": "room-1",
    }
    assert change.raw == {
        "topic": "realtime:room-1",
        "event": "postgres_changes",
        "payload": {"ids": [1000], "data": {"type": "INSERT"}},
        "ref": None,
    }


async def test_subscription_error_is_a_system_error_and_the_channel_stays(
    database_url: str, keys: Keys
) -> None:
    fake = FakeChanges(fail_with="Unable to subscribe to changes with given parameters.")
    async with (
        running(database_url, keys, TEST_SETTINGS, postgres_changes=fake) as env,
        env.raw() as c,
    ):
        await c.join("room-1", {"postgres_changes": [BINDING]})
        system = await c.expect(is_system)
        await c.heartbeat()
        channels = env.realtime.control.stats()["channels"]
    assert system.payload["status"] == "error"
    assert system.payload["message"] == "Unable to subscribe to changes with given parameters."
    assert "room-1" in channels


async def test_refresh_updates_claims_and_leave_unsubscribes(
    database_url: str, keys: Keys, org: str
) -> None:
    fake = FakeChanges()
    async with (
        running(database_url, keys, TEST_SETTINGS, postgres_changes=fake) as env,
        env.raw() as c,
    ):
        join_ref, _ = await c.join("room-1", {"postgres_changes": [BINDING]})
        await c.expect(is_system)
        token = {"access_token": env.mint(org)}
        await c.push("realtime:room-1", "access_token", token, join_ref=join_ref)
        ref = await c.push("realtime:room-1", "phx_leave", {}, join_ref=join_ref)
        await c.reply_to(ref)
        await c.expect(lambda m: m.event == "phx_close")
    assert [name for name, _ in fake.calls] == ["subscribe", "update_claims", "unsubscribe"]
