"""The refresh and backoff schedules, as numbers."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from worker.retry import bounded_delay as backoff_delay
from worker.tokens.schedule import refresh_at

T0 = 1_800_000_000.0


def test_a_60s_token_is_refreshed_margin_seconds_before_expiry_without_jitter() -> None:
    when = refresh_at(issued_at=T0, expires_at=T0 + 60, now=T0, margin_s=15, rand=0.0)
    assert when == T0 + 45


def test_jitter_only_pulls_the_refresh_earlier_by_at_most_10_percent_of_lifetime() -> None:
    when = refresh_at(issued_at=T0, expires_at=T0 + 20, now=T0, margin_s=2, rand=1.0)
    # 80% cap (16 s) minus at most 10% of 20 s
    assert when == T0 + 16 - 2


def test_long_tokens_are_refreshed_by_80_percent_of_their_lifetime() -> None:
    when = refresh_at(issued_at=T0, expires_at=T0 + 3600, now=T0, margin_s=15, rand=0.0)
    assert when == T0 + 2880


def test_a_token_already_past_its_refresh_time_is_refreshed_now() -> None:
    when = refresh_at(issued_at=T0, expires_at=T0 + 60, now=T0 + 59, margin_s=15, rand=0.5)
    assert when == T0 + 59


@given(
    lifetime=st.floats(1, 100_000),
    margin=st.floats(0, 100_000),
    rand=st.floats(0, 1),
    elapsed=st.floats(0, 200_000),
)
def test_refresh_is_never_in_the_past_nor_after_80_percent_of_lifetime(
    lifetime: float, margin: float, rand: float, elapsed: float
) -> None:
    now = T0 + elapsed
    when = refresh_at(issued_at=T0, expires_at=T0 + lifetime, now=now, margin_s=margin, rand=rand)
    assert when >= now
    assert when <= max(now, T0 + 0.8 * lifetime) + 1e-6  # float rounding of exp - iat


def test_backoff_grows_exponentially_up_to_the_cap() -> None:
    delays = [backoff_delay(n, rand=1.0, base_s=1, cap_s=8) for n in range(1, 7)]
    assert delays == [1, 2, 4, 8, 8, 8]


def test_backoff_jitter_keeps_at_least_half_the_step() -> None:
    assert backoff_delay(4, rand=0.0, base_s=1, cap_s=100) == 4


def test_backoff_is_bounded_by_a_third_of_the_time_left() -> None:
    assert backoff_delay(10, rand=1.0, cap_s=30, time_left_s=9) == 3


def test_retry_after_is_honoured_even_past_the_time_left() -> None:
    assert backoff_delay(1, rand=0.0, time_left_s=3, retry_after_s=7) == 7


def test_once_expired_the_plain_backoff_applies() -> None:
    assert backoff_delay(5, rand=1.0, base_s=1, cap_s=30, time_left_s=-4) == 16


@given(
    attempt=st.integers(1, 1000),
    rand=st.floats(0, 1),
    left=st.none() | st.floats(-1000, 1000),
)
def test_backoff_is_positive_and_capped(attempt: int, rand: float, left: float | None) -> None:
    delay = backoff_delay(attempt, rand=rand, cap_s=30, time_left_s=left)
    assert 0.1 <= delay <= 30
