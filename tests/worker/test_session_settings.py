"""Settings for a worker that keeps its own Clerk session (CLERK_USER_ID)."""

from __future__ import annotations

from tests.worker.test_settings import BASE, problems_of
from worker.settings import Settings

NO_SESSION = {k: v for k, v in BASE.items() if k != "CLERK_SESSION_ID"}


def test_a_user_id_alone_makes_the_worker_keep_its_sessions() -> None:
    s = Settings.from_env(NO_SESSION | {"CLERK_USER_ID": "user_2abc"})
    assert s.clerk_user_id == "user_2abc"
    assert s.clerk_session_id is None
    assert s.clerk_session_renewal_margin_s is None


def test_both_may_be_set_the_session_is_used_first() -> None:
    s = Settings.from_env(BASE | {"CLERK_USER_ID": "user_2abc"})
    assert (s.clerk_session_id, s.clerk_user_id) == ("sess_2abc", "user_2abc")


def test_neither_is_one_problem_naming_both() -> None:
    problems = problems_of(NO_SESSION)
    assert len(problems) == 1
    assert problems[0].startswith("CLERK_USER_ID or CLERK_SESSION_ID is required")
    assert "user_..." in problems[0]
    assert "sess_..." in problems[0]


def test_a_malformed_user_id_is_refused() -> None:
    (problem,) = problems_of(NO_SESSION | {"CLERK_USER_ID": "alice"})
    assert problem.startswith("CLERK_USER_ID=")
    assert "user_2abc" in problem


def test_a_production_key_with_a_user_id_needs_the_frontend_api() -> None:
    env = {k: v for k, v in NO_SESSION.items() if k != "CLERK_ISSUER"}
    env |= {
        "CLERK_USER_ID": "user_2abc",
        "CLERK_SECRET_KEY": "sk_live_x",
        "CLERK_JWKS_URL": "https://keys.example/jwks.json",
    }
    (problem,) = problems_of(env)
    assert problem.startswith("CLERK_ISSUER is required with CLERK_USER_ID")


def test_the_renewal_margin_can_be_set() -> None:
    env = NO_SESSION | {"CLERK_USER_ID": "user_2abc", "CLERK_SESSION_RENEWAL_MARGIN_SECONDS": "60"}
    assert Settings.from_env(env).clerk_session_renewal_margin_s == 60.0
