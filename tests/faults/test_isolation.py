"""Isolation between organizations: two workers on one stack, misconfigured topic names,
v1 and v2 tokens alike, and a token for another org arriving mid-run."""

from __future__ import annotations

import time
from typing import Any

import pytest

from devstack.stack import Stack
from tests.e2e.conftest import Recorder, insert_events, provision, run_worker
from tests.faults.support import metric, org_subs
from worker.testing import eventually

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(90)]


def server_channels(stack: Stack, sub: str) -> list[Any]:
    """The stand-in's live channel objects for ``sub`` (with the claims they hold)."""
    return stack.realtime.control._channels(sub)


async def test_two_orgs_workers_never_cross_even_with_the_other_orgs_topic_names(
    stack: Stack,
) -> None:
    a, b = provision(stack, "Acme"), provision(stack, "Globex")
    stack.clerk.set_token_format(a.session_id, 1)  # v1 and v2 tokens side by side
    stack.clerk.set_token_format(b.session_id, 2)
    # A names B's topics, and even B's org id, as its own short topic names.
    a_topics = ("events", "billing", b.org_id)
    recorder_a, recorder_b = Recorder(a_topics), Recorder(("events", "billing"))
    async with (
        run_worker(stack, a, recorder_a.registry, WORKER_TOPICS=",".join(a_topics)) as worker_a,
        run_worker(stack, b, recorder_b.registry, WORKER_TOPICS="events,billing") as worker_b,
    ):
        assert worker_a.tokens is not None
        assert worker_b.tokens is not None
        token_a, token_b = worker_a.tokens.current, worker_b.tokens.current
        assert token_a is not None
        assert token_b is not None
        assert "org_id" in token_a.claims  # v1: a flat org_id
        assert "o" not in token_a.claims
        assert token_b.claims["o"]["id"] == b.org_id  # v2

        # Channel topics are always built from ORG_ID: A joined only org:<A>:*.
        assert sorted(org_subs(stack, a.org_id)) == sorted(f"org:{a.org_id}:{t}" for t in a_topics)
        assert sorted(org_subs(stack, b.org_id)) == sorted(
            [f"org:{b.org_id}:events", f"org:{b.org_id}:billing", f"org:{a.org_id}:{b.org_id}"]
        )  # the last is A's own channel whose short name happens to be B's id
        for sub in org_subs(stack, a.org_id):
            for ch in server_channels(stack, sub):
                assert ch.claims["org_id"] == a.org_id  # joined with A's v1 token

        b_ids = await insert_events(stack.database_url, b.org_id, 3)
        b_ids += await insert_events(stack.database_url, b.org_id, 3, topic="billing")
        a_ids = await insert_events(stack.database_url, a.org_id, 3)
        a_ids += await insert_events(stack.database_url, a.org_id, 3, topic="billing")
        await eventually(recorder_a.handled(a_ids), timeout_s=15, message="A's events handled by A")
        await eventually(recorder_b.handled(b_ids), timeout_s=15, message="B's events handled by B")
        assert sorted(recorder_a.ids()) == sorted(a_ids)
        assert sorted(recorder_b.ids()) == sorted(b_ids)
        assert {e.org_id for e in recorder_a.events} == {a.org_id}
        assert {e.org_id for e in recorder_b.events} == {b.org_id}
        # A never even received B's events (none were rejected as another org's).
        for worker in (worker_a, worker_b):
            assert metric(worker, "events_rejected_total", reason="wrong_org")() == 0


async def test_a_token_for_another_org_mid_run_is_never_pushed_and_the_worker_goes_unready(
    stack: Stack,
) -> None:
    a, b = provision(stack, "Acme"), provision(stack, "Globex")
    async with run_worker(stack, a, Recorder().registry) as worker:
        tokens = worker.tokens
        assert tokens is not None
        invalid = metric(worker, "token_refresh_total", result="invalid_claims")
        sub = f"org:{a.org_id}:events"

        stack.clerk.set_token_org(a.session_id, b.org_id)
        await eventually(
            lambda: invalid() >= 1, timeout_s=10, message="the foreign token is refused"
        )
        held = tokens.current
        assert held is not None
        assert held.org_id == a.org_id  # the old valid token is kept
        assert f"token is for organization {b.org_id}" in (tokens.statistics()["last_error"] or "")
        for ch in server_channels(stack, sub):
            assert ch.claims["o"]["id"] == a.org_id  # the foreign token never reached Realtime

        await eventually(
            lambda: tokens.state == "expired", timeout_s=15, message="the kept token expires"
        )
        assert time.time() >= held.expires_at
        assert "token.fresh" in worker.checks.failures()
        assert tokens.current is held  # still never replaced by the foreign one
        for ch in server_channels(stack, sub):
            assert ch.claims["o"]["id"] == a.org_id
        assert not [s for s in org_subs(stack, b.org_id) if s.startswith(f"org:{b.org_id}")]
