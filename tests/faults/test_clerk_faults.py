"""Clerk faults end to end: rate limits, hanging token calls, signing-key rotation."""

from __future__ import annotations

import time

import pytest

from devstack.stack import Stack
from tests.e2e.conftest import Recorder, insert_events, provision, run_worker
from tests.faults.support import metric, readyz
from worker.testing import eventually

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(120)]

CLOSE_REASONS = (
    "token_expired",
    "permission_revoked",
    "rate_limited",
    "server_disconnect",
    "other",
)


async def test_a_rate_limited_token_request_waits_for_retry_after_then_recovers(
    stack: Stack,
) -> None:
    org = provision(stack, "Acme")
    async with run_worker(
        stack,
        org,
        Recorder().registry,
        CLERK_TOKEN_EXPIRES_IN_SECONDS="30",
        WORKER_TOKEN_REFRESH_MARGIN_SECONDS="20",
    ) as worker:
        requests = lambda: stack.clerk.token_requests  # noqa: E731 - a condition for eventually
        limited = metric(worker, "token_refresh_total", result="rate_limited")
        before = requests()
        stack.clerk.fail_next_tokens(1, 429, retry_after_s=2)
        await eventually(
            lambda: limited() == 1, timeout_s=15, message="the 429 is counted as rate_limited"
        )
        at_429, seen_at = requests(), time.monotonic()
        assert at_429 == before + 1
        await eventually(
            lambda: requests() > at_429, timeout_s=10, message="the retry after Retry-After"
        )
        # Seen up to one poll after the 429 itself: a retry that ignored Retry-After (2 s)
        # would come well inside 1.5 s (the token still has over 10 s to live).
        assert time.monotonic() - seen_at >= 1.5
        success = metric(worker, "token_refresh_total", result="success")
        done = success()
        await eventually(lambda: success() > done, timeout_s=10, message="a token again")
        assert await readyz(worker) == 200


async def test_a_hanging_token_request_is_abandoned_and_retried_without_losing_channels(
    stack: Stack,
) -> None:
    org = provision(stack, "Acme")
    recorder = Recorder()
    async with run_worker(
        stack,
        org,
        recorder.registry,
        CLERK_TOKEN_EXPIRES_IN_SECONDS="30",
        WORKER_TOKEN_REFRESH_MARGIN_SECONDS="20",
    ) as worker:
        stack.clerk.hang_next_tokens(1, 60.0, then="drop")
        timeouts = metric(worker, "token_refresh_total", result="timeout")
        await eventually(lambda: timeouts() >= 1, timeout_s=40, message="the hung call times out")
        success = metric(worker, "token_refresh_total", result="success")
        done = success()
        await eventually(lambda: success() > done, timeout_s=30, message="the retry gets a token")
        inserted = await insert_events(stack.database_url, org.org_id, 3)
        await eventually(recorder.handled(inserted), timeout_s=15, message="events flow")
        closes = sum(
            metric(worker, "channel_closes_total", topic="events", reason=r)()
            for r in CLOSE_REASONS
        )
        assert closes == 0


async def test_a_rotated_signing_key_is_fetched_and_channels_stay_joined(stack: Stack) -> None:
    org = provision(stack, "Acme")
    recorder = Recorder()
    # Clerk keeps publishing the old key for a while after a rotation (and Supabase caches
    # JWKS for up to 30 min), so the token in use stays valid until its successor verifies.
    env = {"CLERK_TOKEN_EXPIRES_IN_SECONDS": "30", "WORKER_TOKEN_REFRESH_MARGIN_SECONDS": "20"}
    async with run_worker(stack, org, recorder.registry, **env) as worker:
        assert worker.tokens is not None
        tokens = worker.tokens
        old_kid = tokens.current.kid if tokens.current else None
        new_kid = stack.clerk.rotate_key()
        await eventually(
            lambda: tokens.current is not None and tokens.current.kid == new_kid,
            timeout_s=30,
            message="a token signed by the new key is in use",
        )
        assert new_kid != old_kid

        def channel_has_new_token() -> bool:
            channels = stack.realtime.control.stats()["channels"].get(f"org:{org.org_id}:events")
            current = tokens.current
            return (
                bool(channels)
                and current is not None
                and all(c["exp"] == int(current.expires_at) for c in channels)
            )

        await eventually(
            channel_has_new_token, timeout_s=15, message="the new token reached the channel"
        )
        stack.clerk.drop_retired_keys()
        inserted = await insert_events(stack.database_url, org.org_id, 3)
        await eventually(recorder.handled(inserted), timeout_s=15, message="events flow")
        closes = {
            r: metric(worker, "channel_closes_total", topic="events", reason=r)()
            for r in CLOSE_REASONS
        }
        assert sum(closes.values()) == 0, closes
        assert await readyz(worker) == 200
