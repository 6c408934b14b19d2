"""Hostile and malformed broadcasts on the org's own channel: each is logged, counted in
``events_rejected_total{reason}`` and dropped; the listener keeps delivering. Properties of
the intake, the adapter's screening of frames the client cannot read, and the claims check."""

from __future__ import annotations

import functools
import json
import logging
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devstack.stack import Stack
from tests.e2e.conftest import Recorder, insert_events, provision, run_worker
from tests.faults.support import metric
from tests.worker.rt_fakes import MetricsProbe
from worker.errors import TokenRejected
from worker.events import RejectReason
from worker.realtime import RealtimeAdapter
from worker.realtime.frames import deliver
from worker.realtime.intake import Intake
from worker.testing import FakeClock, eventually
from worker.tokens.verify import check_claims

pytestmark = [pytest.mark.anyio]

ORG = "org_2abc"
OTHER = "org_2other"


def nested(depth: int) -> dict[str, Any]:
    return functools.reduce(lambda inner, _: {"a": inner}, range(depth - 1), {})


def outbox_row(org_id: str, **overrides: Any) -> dict[str, Any]:
    row = {"id": 10**12, "org_id": org_id, "topic": "events", "event": "e", "payload": {}}
    return row | overrides


def hostile_cases(org_id: str) -> list[tuple[str, str, Any, str]]:
    """(name, broadcast event, payload, expected rejection reason)."""
    return [
        ("payload is a list", "e", [1, 2], "malformed"),
        ("payload is a string", "e", "hello", "malformed"),
        ("payload is a number", "e", 42, "malformed"),
        ("payload is null", "e", None, "malformed"),
        ("event name too long", "e" * 201, {"n": 1}, "malformed"),
        ("outbox row without its payload", "e", outbox_row(org_id, payload=None), "malformed"),
        ("outbox topic not a string", "e", outbox_row(org_id, topic=7), "malformed"),
        ("outbox created_at not a string", "e", outbox_row(org_id, created_at=5), "malformed"),
        ("outbox event differs", "e", outbox_row(org_id, event="other"), "malformed"),
        ("outbox row of another org", "e", outbox_row(OTHER), "wrong_org"),
        ("payload naming another org", "e", {"org_id": OTHER}, "wrong_org"),
        ("changed row of another org", "e", {"record": {"organization_id": OTHER}}, "wrong_org"),
        ("1.5 MB payload", "e", {"blob": "x" * 1_500_000}, "too_large"),
        ("nested 40 deep", "e", nested(40), "too_large"),
        ("nested 300 deep (the client cannot parse it)", "e", nested(300), "too_large"),
        ("invalid UTF-8 (a lone surrogate)", "e", {"text": "\ud800"}, "malformed"),
        ("invalid UTF-8 in a key", "e", {"\udfff": 1}, "malformed"),
    ]


def rejected(worker: Any) -> dict[str, float]:
    return {r: metric(worker, "events_rejected_total", reason=r)() for r in RejectReason}


@pytest.mark.timeout(90)
async def test_each_hostile_broadcast_is_logged_counted_and_the_listener_keeps_going(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    org = provision(stack, "Acme")
    sub = f"org:{org.org_id}:events"
    recorder = Recorder()
    async with run_worker(stack, org, recorder.registry) as worker:
        losses = metric(worker, "realtime_reconnects_total", reason="closed")
        for name, event, payload, reason in hostile_cases(org.org_id):
            before = rejected(worker)
            logged = len(caplog.records)
            stack.realtime.control.broadcast(sub, event, payload)
            marker = await insert_events(stack.database_url, org.org_id, 1)
            await eventually(
                recorder.handled(marker), timeout_s=15, message=f"an event after: {name}"
            )
            delta = {r: n - before[r] for r, n in rejected(worker).items() if n != before[r]}
            assert delta == {reason: 1}, name
            lines = [
                r
                for r in caplog.records[logged:]
                if r.getMessage().startswith("broadcast rejected")
                and getattr(r, "reason", None) == reason
            ]
            assert len(lines) == 1, name
            assert len(lines[0].getMessage()) < 300, name  # says why, never dumps the payload
        # Nothing hostile reached a handler, and no frame cost the socket.
        assert all(e.event == "task.created" for e in recorder.events)
        assert losses() == 0
        assert worker.checks.failures() == {}


@pytest.mark.timeout(60)
async def test_broadcasts_on_topics_not_subscribed_never_reach_the_worker(stack: Stack) -> None:
    org = provision(stack, "Acme")
    recorder = Recorder()
    async with run_worker(stack, org, recorder.registry) as worker:
        for sub in (f"org:{org.org_id}:other", f"org:{org.org_id}", "events", "realtime:x"):
            stack.realtime.control.broadcast(sub, "e", {"n": 1})
        marker = await insert_events(stack.database_url, org.org_id, 1)
        await eventually(
            recorder.handled(marker), timeout_s=15, message="the next event is handled"
        )
        assert [e.event_id for e in recorder.events] == marker
        assert metric(worker, "events_received_total", topic="events")() == 1


# -- properties ------------------------------------------------------------------------------

json_leaves = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8)
json_values = st.recursive(
    json_leaves,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=12,
)
anything = json_values | st.binary(max_size=4) | st.sets(st.integers(), max_size=2)
channels = st.sampled_from(
    [f"org:{ORG}:events", f"realtime:org:{ORG}:events", f"org:{OTHER}:events", "x", ""]
)


@given(channel=channels, message=anything | st.dictionaries(st.text(max_size=8), anything))
@settings(max_examples=300, deadline=None)
def test_the_intake_never_raises_and_counts_every_frame_exactly_once(
    channel: str, message: object
) -> None:
    probe = MetricsProbe()
    offered: list[object] = []
    intake = Intake(
        org_id=ORG,
        topics=["events"],
        offer=lambda e: offered.append(e) is None,
        clock=FakeClock(autojump=True),
        metrics=probe.metrics,
    )
    intake(channel, message)  # type: ignore[arg-type]  # hostile on purpose
    received = probe.value("events_received_total", topic="events")
    refused = sum(probe.value("events_rejected_total", reason=r) for r in RejectReason)
    assert (received, refused) in ((1, 0), (0, 1))
    assert len(offered) == received


frames = st.fixed_dictionaries(
    {"event": st.sampled_from(["broadcast", "system", "phx_reply", "presence_diff"]) | anything},
    optional={
        "topic": st.sampled_from([f"realtime:org:{ORG}:events", "phoenix"]) | anything,
        "payload": anything,
        "ref": st.none() | st.text(max_size=3),
    },
)


@given(frame=frames | anything, raw=st.booleans(), cut=st.integers(0, 40))
@settings(max_examples=300, deadline=None)
def test_reading_frames_the_client_cannot_read_never_raises(
    frame: object, raw: bool, cut: int
) -> None:
    client = RealtimeAdapter(url="http://127.0.0.1:1/realtime/v1", apikey="anon")._client
    sunk: list[tuple[str, object]] = []
    text = json.dumps(frame, default=repr)
    data = text[:cut] if raw else text  # truncated text is not JSON at all
    delivered = deliver(client, data, lambda topic, message: sunk.append((topic, message)))
    assert len(sunk) <= 1
    if not delivered:
        assert sunk == []  # handed back to the client, which reads it as usual
    if sunk:
        topic, _ = sunk[0]
        assert isinstance(topic, str)


claims_maps = st.dictionaries(
    st.sampled_from(["exp", "iat", "nbf", "role", "sts", "o", "org_id", "sub", "sid"])
    | st.text(max_size=4),
    anything | st.fixed_dictionaries({}, optional={"id": st.sampled_from([ORG, OTHER]) | anything}),
    max_size=9,
)


@given(claims=claims_maps)
@settings(max_examples=300, deadline=None)
def test_check_claims_over_arbitrary_claims_accepts_only_this_orgs_valid_tokens(
    claims: dict[str, Any],
) -> None:
    now = 1_800_000_000.0
    reasons = {
        "malformed",
        "expired",
        "not_yet_valid",
        "missing_role",
        "pending_session",
        "no_org",
        "wrong_org",
    }
    try:
        org = check_claims(claims, org_id=ORG, now=now, leeway_s=5)
    except TokenRejected as exc:
        reason = exc.reason
    else:
        reason = None
    if reason is not None:
        assert reason in reasons
        return
    assert org == ORG
    nested_org = claims.get("o", {}).get("id") if isinstance(claims.get("o"), dict) else None
    assert ORG in (nested_org, claims.get("org_id"))
    assert isinstance(claims["role"], str)
    assert claims["role"]
    assert claims.get("sts") != "pending"
    assert now <= claims["exp"] + 5
