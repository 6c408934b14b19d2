"""When a session is renewed, and the wait after a failed attempt: plain numbers."""

from __future__ import annotations

import pytest
from tenacity import RetryCallState

from worker.errors import TokenUnavailable
from worker.tokens.sessions import Obtained, SessionInfo
from worker.tokens.sessions.schedule import (
    MAX_RENEWAL_MARGIN_S,
    SessionWait,
    renew_at,
    renewal_margin,
)

WEEK = 7 * 24 * 3600.0


def session(lifetime_s: float, abandon_s: float | None = None) -> SessionInfo:
    return SessionInfo(
        id="sess_1",
        status="active",
        org_id="org_1",
        created_at=1000.0,
        expire_at=1000.0 + lifetime_s,
        abandon_at=1000.0 + (abandon_s if abandon_s is not None else 30 * 24 * 3600),
        obtained=Obtained.CREATED,
    )


def test_the_margin_is_a_fifth_of_the_lifetime_at_most_a_day() -> None:
    assert renewal_margin(20) == 4
    assert renewal_margin(WEEK) == MAX_RENEWAL_MARGIN_S == 24 * 3600
    assert renewal_margin(WEEK, 600) == 600


@pytest.mark.parametrize(("rand", "expected"), [(0.0, 1016.0), (1.0, 1014.0), (0.5, 1015.0)])
def test_renewal_is_the_margin_before_the_end_pulled_earlier_by_jitter(
    rand: float, expected: float
) -> None:
    assert renew_at(session(20), now=1001.0, rand=rand, margin_s=None) == pytest.approx(expected)


def test_a_week_long_session_renews_between_36_and_24_hours_before_its_end() -> None:
    end = 1000.0 + WEEK
    assert renew_at(session(WEEK), now=1000.0, rand=0.0, margin_s=None) == end - 24 * 3600
    assert renew_at(session(WEEK), now=1000.0, rand=1.0, margin_s=None) == end - 36 * 3600


def test_an_inactivity_timeout_ends_the_session_first() -> None:
    s = session(WEEK, abandon_s=3600)
    assert s.ends_at == 4600.0
    assert renew_at(s, now=1000.0, rand=0.0, margin_s=None) == 4600.0 - 720


def test_never_before_now() -> None:
    assert renew_at(session(20), now=1019.0, rand=0.0, margin_s=None) == 1019.0


def _state(attempt: int, exc: BaseException) -> RetryCallState:
    state = RetryCallState(retry_object=None, fn=None, args=(), kwargs={})  # type: ignore[arg-type]
    state.attempt_number = attempt
    state.set_exception((type(exc), exc, None))
    return state


def test_the_wait_is_never_under_a_second_and_honours_retry_after() -> None:
    wait = SessionWait(rand=lambda: 0.0, cap_s=30.0, time_left_s=lambda: 0.5)
    assert wait(_state(1, TokenUnavailable("down"))) == 1.0
    limited = TokenUnavailable("429", status=429, retry_after_s=7.0)
    assert wait(_state(1, limited)) == 7.0


def test_the_wait_grows_and_stays_within_a_third_of_the_time_left() -> None:
    wait = SessionWait(rand=lambda: 1.0, cap_s=30.0, time_left_s=lambda: None)
    assert [wait(_state(n, TokenUnavailable("x"))) for n in (1, 2, 3, 6, 9)] == [
        1.0,
        2.0,
        4.0,
        30.0,
        30.0,
    ]
    bounded = SessionWait(rand=lambda: 1.0, cap_s=30.0, time_left_s=lambda: 30.0)
    assert bounded(_state(6, TokenUnavailable("x"))) == 10.0
