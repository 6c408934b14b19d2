"""Conformance with the official JavaScript client, ``@supabase/realtime-js``.

Each scenario of ``tests/js/scenario.mjs`` runs against the stand-in (behind the gateway)
once per protocol version, ``1.0.0`` (JSON objects) and ``2.0.0`` (arrays plus binary user
broadcasts, the client's default), and once per kind of API key: the legacy anon JWT and
the publishable key. The client is pinned in ``tests/js/package-lock.json``; the error
texts it surfaces differ between its releases (pitfall 8).
"""

from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import asyncpg
import pytest

from devstack.realtime.postgres_changes import PostgresChanges
from tests.devstack import js_support
from tests.devstack.conftest import KEY_KINDS, Keys, RealtimeEnv, new_org, running

pytestmark = pytest.mark.anyio

VSNS = ["1.0.0", "2.0.0"]


@pytest.fixture(scope="session")
def node() -> str:
    return js_support.ensure_installed()


@pytest.fixture(params=VSNS)
def vsn(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(params=KEY_KINDS)
async def stand_in(
    database_url: str, keys: Keys, request: pytest.FixtureRequest
) -> AsyncIterator[RealtimeEnv]:
    """The Realtime stand-in with Postgres Changes, on a free loopback port; the client
    uses each kind of API key in turn."""
    changes = PostgresChanges(database_url=database_url)
    await changes.start()
    try:
        async with running(
            database_url,
            keys,
            postgres_changes=changes,
            key_kind=str(request.param),
            behind_gateway=True,
        ) as env:
            yield env
    finally:
        await changes.close()


@pytest.fixture
def org() -> str:
    return new_org()


def client_config(env: RealtimeEnv, vsn: str, **fields: Any) -> dict[str, Any]:
    ws_base = env.base.replace("http://", "ws://", 1) + "/realtime/v1"
    return {"url": ws_base, "apikey": env.anon_key, "vsn": vsn, **fields}


async def test_private_join_is_allowed_for_an_org_member(
    node: str, stand_in: RealtimeEnv, vsn: str, org: str
) -> None:
    config = client_config(stand_in, vsn, token=stand_in.mint(org), topic=f"org:{org}:events")

    line = await js_support.run(node, "private_join_allowed", config)

    assert line["ok"], line
    assert line["result"] == {"status": "SUBSCRIBED", "error": None}


async def test_private_join_is_denied_with_the_unauthorized_text(
    node: str, stand_in: RealtimeEnv, vsn: str, org: str
) -> None:
    topic = f"org:{org}:events"
    config = client_config(stand_in, vsn, token=stand_in.mint(new_org()), topic=topic)

    line = await js_support.run(node, "private_join_denied", config)

    assert line["ok"], line
    assert line["result"] == {
        "status": "CHANNEL_ERROR",
        "error": f"Unauthorized: You do not have permissions to read from this Channel topic: "
        f"{topic}",
    }


async def test_database_broadcast_carries_the_outbox_id_and_meta_id(
    node: str, stand_in: RealtimeEnv, vsn: str, org: str
) -> None:
    config = client_config(stand_in, vsn, token=stand_in.mint(org), topic=f"org:{org}:events")
    outbox_ids: list[int] = []

    async def insert(_step: dict[str, Any]) -> None:
        outbox_ids.append(await stand_in.insert_event(org, "events", "task.created", {"a": 1}))

    line = await js_support.run(node, "db_broadcast", config, on_step=insert)

    assert line["ok"], line
    message = line["result"]["message"]
    assert set(message) == {"type", "event", "payload", "meta"}
    assert (message["type"], message["event"]) == ("broadcast", "task.created")
    assert message["payload"]["id"] == outbox_ids[0]
    assert message["payload"]["payload"] == {"a": 1}
    assert uuid.UUID(message["meta"]["id"])


async def test_token_expiry_closes_only_that_channel(
    node: str, stand_in: RealtimeEnv, vsn: str, org: str
) -> None:
    expiring = f"org:{org}:expiring"
    config = client_config(
        stand_in,
        vsn,
        short_token=stand_in.mint(org, ttl=3),
        long_token=stand_in.mint(org),
        expiring_topic=expiring,
        topic=f"org:{org}:events",
    )

    async def broadcast_after_close(_step: dict[str, Any]) -> None:
        await stand_in.insert_event(org, "events", "after.close")

    line = await js_support.run(node, "token_expiry", config, on_step=broadcast_after_close)

    assert line["ok"], line
    result = line["result"]
    [system] = result["expiring_system"]
    assert system == {
        "extension": "system",
        "status": "error",
        "message": system["message"],
        "channel": expiring,
    }
    assert system["message"] in {f"Token has expired {n} seconds ago" for n in (0, 1)}
    assert result["expiring_statuses"] == ["SUBSCRIBED", "CLOSED"]
    assert result["alive_statuses"] == ["SUBSCRIBED"]
    assert result["alive_socket"] is True
    assert result["alive_message"]["event"] == "after.close"


async def test_set_auth_before_expiry_keeps_the_channel_alive(
    node: str, stand_in: RealtimeEnv, vsn: str, org: str
) -> None:
    # Each token outlives the previous by 3 s; the client swaps 1.5 s before each exp.
    tokens = [stand_in.mint(org, ttl=4 + 3 * k) for k in range(4)]
    config = client_config(
        stand_in, vsn, tokens=tokens, topic=f"org:{org}:events", timeout_ms=30000
    )

    async def tick(step: dict[str, Any]) -> None:
        await stand_in.insert_event(org, "events", f"tick.{step['k']}")

    line = await js_support.run(node, "set_auth_refresh", config, on_step=tick, timeout_s=60)

    assert line["ok"], line
    result = line["result"]
    assert result["expiries_survived"] == 3
    assert (result["state"], result["statuses"], result["system"]) == ("joined", ["SUBSCRIBED"], [])
    assert [m["event"] for m in result["received"]] == ["tick.0", "tick.1", "tick.2"]


async def test_broadcast_with_ack_is_acknowledged(
    node: str, stand_in: RealtimeEnv, vsn: str, org: str
) -> None:
    token = stand_in.mint(org, "admin")  # only admins and workers may broadcast
    config = client_config(stand_in, vsn, token=token, topic=f"org:{org}:events")

    line = await js_support.run(node, "broadcast_ack", config)

    assert line["ok"], line
    assert line["result"]["send"] == "ok"
    echo = line["result"]["echo"]
    assert (echo["type"], echo["event"]) == ("broadcast", "ping")
    assert echo["payload"] == {"n": 1, "text": "ack me"}


async def test_public_channel_does_not_see_private_broadcasts(
    node: str, stand_in: RealtimeEnv, vsn: str, org: str
) -> None:
    topic = f"org:{org}:events"
    config = client_config(
        stand_in,
        vsn,
        token=stand_in.mint(org),
        topic=topic,
        private_event="secret",
        public_event="open",
    )

    async def send_both(_step: dict[str, Any]) -> None:
        await stand_in.insert_event(org, "events", "secret")  # realtime.send, private
        await stand_in.send(topic, "open", {"x": 1}, private=False)

    line = await js_support.run(node, "public_private_isolation", config, on_step=send_both)

    assert line["ok"], line
    assert line["result"] == {"public_events": ["open"], "private_events": ["secret"]}


async def test_presence_state_and_diffs_reach_the_other_member(
    node: str, stand_in: RealtimeEnv, vsn: str, org: str
) -> None:
    tokens = [stand_in.mint(org, sub="user_one"), stand_in.mint(org, sub="user_two")]
    config = client_config(stand_in, vsn, tokens=tokens, topic=f"org:{org}:room")

    line = await js_support.run(node, "presence", config)

    assert line["ok"], line
    result = line["result"]
    assert result["track"] == "ok"
    assert result["keys_after_join"] == ["one", "two"]
    assert result["metas_of_two"] == [{"name": "two"}]
    assert result["keys_after_leave"] == ["one"]
    assert {"event": "join", "key": "two"} in result["events"]
    assert {"event": "leave", "key": "two"} in result["events"]


async def test_postgres_changes_apply_the_filter_and_rls(
    node: str, stand_in: RealtimeEnv, vsn: str, org: str
) -> None:
    other_org, tag = new_org(), f"js-{secrets.token_hex(4)}"
    topic = f"org:{org}:db"
    config = client_config(
        stand_in,
        vsn,
        token=stand_in.mint(org),
        topic=topic,
        table="cdc_tasks",
        filter=f"title=in.({tag}-b,{tag}-a)",
    )

    async def insert_rows(_step: dict[str, Any]) -> None:
        conn = await asyncpg.connect(stand_in.database_url)
        try:
            for owner, title in ((other_org, f"{tag}-b"), (org, f"{tag}-x"), (org, f"{tag}-a")):
                await conn.execute(
                    "insert into public.cdc_tasks (organization_id, title) values ($1, $2)",
                    owner,
                    title,
                )
        finally:
            await conn.close()

    line = await js_support.run(node, "postgres_changes", config, on_step=insert_rows)

    assert line["ok"], line
    result = line["result"]
    assert result["system"] == {
        "extension": "postgres_changes",
        "status": "ok",
        "message": "Subscribed to PostgreSQL",
        "channel": topic,
    }
    change = result["change"]
    assert (change["schema"], change["table"], change["eventType"]) == (
        "public",
        "cdc_tasks",
        "INSERT",
    )
    assert change["errors"] is None
    assert change["new"]["title"] == f"{tag}-a"  # org B's row matched the filter; RLS hid it
    assert change["new"]["organization_id"] == org
    assert time.time() - 60 < _epoch(change["commit_timestamp"]) <= time.time() + 1


def _epoch(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()
