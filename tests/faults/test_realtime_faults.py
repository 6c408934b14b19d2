"""Realtime faults on the local stack: rate-limit shutdowns and refusals, a tenant reload's
1012, revoked read permission (policy dropped, then a token refresh), join errors delayed
5 s like the real server, and Postgres connections cut under the stand-ins."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator

import asyncpg
import pytest

from devstack.stack import Stack
from tests.e2e.conftest import Recorder, insert_events, provision, run_worker
from tests.faults.support import channel, get, metric, org_subs, readyz
from worker.realtime.supervisor import SupervisorTiming
from worker.testing import eventually

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(90)]

READ_POLICY = "org members receive their org's channels"
CREATE_READ_POLICY = f"""
create policy "{READ_POLICY}" on realtime.messages
  for select to authenticated
  using (
    realtime.messages.extension in ('broadcast', 'presence')
    and (select private.topic_is_own_org(realtime.topic()))
  )
"""
RATE_LIMIT_FLOOR_S = 30.0  # SupervisorTiming.rate_limit_floor_s: the Worker builds its own


class ReadPolicy:
    """Drops and restores the SELECT policy on realtime.messages (as the superuser)."""

    def __init__(self, database_url: str) -> None:
        self.url = database_url
        self.dropped = False

    async def drop(self) -> None:
        await self._execute(f'drop policy "{READ_POLICY}" on realtime.messages')
        self.dropped = True

    async def restore(self) -> None:
        await self._execute(CREATE_READ_POLICY)
        self.dropped = False

    async def _execute(self, sql: str) -> None:
        conn = await asyncpg.connect(self.url)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()


@pytest.fixture
async def read_policy(stack: Stack) -> AsyncIterator[ReadPolicy]:
    policy = ReadPolicy(stack.database_url)
    yield policy
    if policy.dropped:
        await policy.restore()


def supervisor_errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "worker.realtime.supervisor" and r.levelno >= logging.ERROR
    ]


async def test_a_rate_limit_shutdown_is_counted_and_retried_no_sooner_than_the_floor(
    stack: Stack,
) -> None:
    org = provision(stack, "Acme")
    sub = f"org:{org.org_id}:events"
    async with run_worker(stack, org, Recorder().registry) as worker:
        assert stack.realtime.control.shutdown_topic(sub, "Too many messages per second") == 1
        closes = metric(worker, "channel_closes_total", topic="events", reason="rate_limited")
        await eventually(
            lambda: closes() == 1, timeout_s=10, message="the close is counted as rate_limited"
        )
        assert await readyz(worker) == 503
        status = (await get(worker, "/status")).json()
        (events,) = status["realtime"]["channels"]
        assert events["state"] == "closed"
        assert events["last_reason"] == "rate_limited"
        assert events["retry_in_s"] >= RATE_LIMIT_FLOOR_S - 5  # a few ticks may have passed
        assert org_subs(stack, org.org_id) == []  # it stays away; no hot rejoin loop


async def test_after_a_rate_limit_shutdown_the_channel_rejoins_once_the_floor_has_passed(
    stack: Stack,
) -> None:
    org = provision(stack, "Acme")
    recorder = Recorder()
    sub = f"org:{org.org_id}:events"
    timing = SupervisorTiming(rate_limit_floor_s=2.0, backoff_base_s=0.2, backoff_cap_s=2.0)
    async with run_worker(stack, org, recorder.registry, supervisor_timing=timing) as worker:
        assert stack.realtime.control.shutdown_topic(sub, "Too many messages per second") == 1
        await eventually(lambda: channel(worker).state != "joined", timeout_s=10, message="closed")
        await eventually(
            lambda: worker.checks.failures() == {}, timeout_s=20, message="rejoined after the floor"
        )
        inserted = await insert_events(stack.database_url, org.org_id, 3)
        await eventually(
            lambda: set(recorder.ids()) >= set(inserted), timeout_s=15, message="events handled"
        )


async def test_a_join_refused_with_channel_rate_limit_backs_off_for_the_floor(
    stack: Stack,
) -> None:
    org = provision(stack, "Acme")
    stack.realtime.control.update_settings(max_channels_per_client=0)
    async with run_worker(stack, org, Recorder().registry, ready_timeout_s=None) as worker:
        refused = metric(worker, "channel_joins_total", topic="events", result="error")
        await eventually(lambda: refused() >= 1, timeout_s=10, message="the refusal is counted")
        events = channel(worker)
        assert events.last_reason == "rate_limited"
        assert "ChannelRateLimitReached" in (events.last_error or "")
        assert events.retry_in_s >= RATE_LIMIT_FLOOR_S - 5
        assert await readyz(worker) == 503
        assert "channels.joined" in worker.checks.failures()
        assert refused() == 1  # once, not a loop
        assert metric(worker, "channel_joins_total", topic="events", result="ok")() == 0


async def test_server_requested_disconnect_with_1012_reconnects_and_keeps_delivering(
    stack: Stack,
) -> None:
    org = provision(stack, "Acme")
    recorder = Recorder()
    async with run_worker(stack, org, recorder.registry) as worker:
        losses = metric(worker, "realtime_reconnects_total", reason="closed")
        assert await stack.realtime.control.disconnect_all(1012) == 1
        await eventually(lambda: losses() >= 1, timeout_s=10, message="the reconnect is counted")
        await eventually(
            lambda: org_subs(stack, org.org_id) != [], timeout_s=20, message="rejoined"
        )
        await eventually(
            lambda: worker.checks.failures() == {}, timeout_s=20, message="ready again"
        )
        inserted = await insert_events(stack.database_url, org.org_id, 3)
        await eventually(
            recorder.handled(inserted), timeout_s=15, message="events after the reload handled"
        )


async def test_revoked_read_permission_closes_the_channel_then_restoring_it_recovers(
    stack: Stack, read_policy: ReadPolicy, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    org = provision(stack, "Acme")
    recorder = Recorder()
    async with run_worker(stack, org, recorder.registry) as worker:
        revoked = metric(
            worker, "channel_closes_total", topic="events", reason="permission_revoked"
        )
        await read_policy.drop()
        # The next token refresh (every ~3 s) makes the server re-check the policy.
        await eventually(
            lambda: revoked() == 1, timeout_s=15, message="closed for revoked permission"
        )
        assert "You no longer have permission" in (channel(worker).last_error or "")
        errors = supervisor_errors(caplog)
        assert any("SELECT policy on realtime.messages" in e for e in errors), errors
        assert await readyz(worker) == 503
        retry_in = channel(worker).retry_in_s
        assert retry_in is not None
        assert retry_in >= 3  # the long backoff (10 s base, equal jitter), minus a few ticks

        await read_policy.restore()
        await eventually(
            lambda: worker.checks.failures() == {}, timeout_s=30, message="ready again"
        )
        inserted = await insert_events(stack.database_url, org.org_id, 3)
        await eventually(
            recorder.handled(inserted), timeout_s=15, message="events after the restore handled"
        )


async def test_join_errors_delayed_5s_are_read_as_refusals_not_timeouts(
    stack: Stack, read_policy: ReadPolicy, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR)
    org = provision(stack, "Acme")
    stack.realtime.control.set_delays(join_s=5)
    await read_policy.drop()
    started = time.monotonic()
    async with run_worker(stack, org, Recorder().registry, ready_timeout_s=None) as worker:
        # run() reports started after the first join attempt: the delayed refusal.
        assert time.monotonic() - started >= 5
        joins = {
            result: metric(worker, "channel_joins_total", topic="events", result=result)()
            for result in ("unauthorized", "timeout", "ok")
        }
        assert joins == {"unauthorized": 1, "timeout": 0, "ok": 0}
        assert channel(worker).last_reason == "permission_revoked"
        assert any("SELECT policy" in e for e in supervisor_errors(caplog))
        assert await readyz(worker) == 503

        await read_policy.restore()  # successful joins are not delayed
        await eventually(
            lambda: worker.checks.failures() == {}, timeout_s=30, message="ready once allowed"
        )


async def test_postgres_connections_cut_under_the_stand_ins_are_survived(stack: Stack) -> None:
    org = provision(stack, "Acme")
    recorder = Recorder()
    async with run_worker(stack, org, recorder.registry) as worker:
        before = await insert_events(stack.database_url, org.org_id, 1)
        await eventually(recorder.handled(before), timeout_s=15, message="an event before the cut")
        conn = await asyncpg.connect(stack.database_url)
        try:
            # What a Postgres restart does to its clients: every session is killed.
            killed = await conn.fetchval(
                "select count(pg_terminate_backend(pid)) from pg_stat_activity "
                "where datname = current_database() and pid <> pg_backend_pid()"
            )
        finally:
            await conn.close()
        assert killed >= 1
        inserted = await insert_events(stack.database_url, org.org_id, 3)
        await eventually(
            recorder.handled(inserted), timeout_s=30, message="events after the cut handled"
        )
        await eventually(lambda: worker.checks.failures() == {}, timeout_s=20, message="ready")
