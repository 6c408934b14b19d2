"""Settings.from_env: defaults, derived values, every problem reported, secrets hidden."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from worker.errors import ConfigError
from worker.settings import SecretStr, Settings

SECRET = "sk_test_supersecretvalue"
ANON = "anon-key-very-secret"
BASE = {
    "SUPABASE_URL": "https://proj.supabase.co",
    "SUPABASE_ANON_KEY": ANON,
    "ORG_ID": "org_2abc",
    "CLERK_SECRET_KEY": SECRET,
    "CLERK_SESSION_ID": "sess_2abc",
    "CLERK_ISSUER": "https://acme.clerk.accounts.dev",
}


def problems_of(env: dict[str, str], env_file: Path | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        Settings.from_env(env, env_file)
    return info.value.problems


def test_minimal_environment_gives_documented_defaults() -> None:
    s = Settings.from_env(BASE)
    assert s.clerk_api_url == "https://api.clerk.com"
    assert s.clerk_jwks_url == "https://acme.clerk.accounts.dev/.well-known/jwks.json"
    assert s.topics == ("events",)
    assert s.handlers == ()
    assert (s.http_host, s.http_port) == ("0.0.0.0", 9464)  # noqa: S104 - the documented default
    assert s.token_refresh_margin_s == 15.0
    assert (s.concurrency, s.queue_size, s.handler_max_attempts) == (8, 1000, 5)
    assert (s.handler_timeout_s, s.shutdown_grace_s) == (30.0, 20.0)
    assert (s.consumer, s.log_level) == ("default", "INFO")
    assert (s.realtime_join_timeout_s, s.realtime_heartbeat_s) == (20.0, 10.0)
    assert s.clerk_token_expires_in_s is None
    assert s.token_file is None
    assert s.clerk_secret_key == SecretStr(SECRET)


def test_channel_topics_are_prefixed_with_the_org() -> None:
    s = Settings.from_env(BASE | {"WORKER_TOPICS": "events, jobs.high"})
    assert s.channel_topics == ["org:org_2abc:events", "org:org_2abc:jobs.high"]


def test_explicit_jwks_url_wins_over_the_issuer_default() -> None:
    s = Settings.from_env(BASE | {"CLERK_JWKS_URL": "https://keys.example/jwks.json"})
    assert s.clerk_jwks_url == "https://keys.example/jwks.json"


def test_every_problem_is_reported_at_once_naming_the_variable() -> None:
    env = {
        "SUPABASE_URL": "ftp://nope",
        "ORG_ID": "acme",
        "CLERK_SESSION_ID": "abc",
        "WORKER_TOPICS": "ok,bad topic",
        "WORKER_HTTP_PORT": "http",
        "WORKER_CONCURRENCY": "0",
        "WORKER_LOG_LEVEL": "LOUD",
    }
    problems = problems_of(env)
    for name in (
        "SUPABASE_URL",
        "SUPABASE_PUBLISHABLE_KEY",
        "ORG_ID",
        "CLERK_SECRET_KEY",
        "CLERK_SESSION_ID",
        "CLERK_ISSUER or CLERK_JWKS_URL",
        "WORKER_TOPICS",
        "WORKER_HTTP_PORT",
        "WORKER_CONCURRENCY",
        "WORKER_LOG_LEVEL",
    ):
        assert any(p.startswith(name) for p in problems), name
    assert len(problems) == 10


def test_expires_in_below_30_is_refused_for_the_real_clerk_api() -> None:
    problems = problems_of(BASE | {"CLERK_TOKEN_EXPIRES_IN_SECONDS": "10"})
    assert problems == [problems[0]]
    assert "CLERK_TOKEN_EXPIRES_IN_SECONDS" in problems[0]
    assert "30" in problems[0]


def test_expires_in_below_30_is_allowed_for_a_local_stand_in() -> None:
    env = BASE | {"CLERK_TOKEN_EXPIRES_IN_SECONDS": "5", "CLERK_API_URL": "http://127.0.0.1:8080"}
    assert Settings.from_env(env).clerk_token_expires_in_s == 5


def test_token_file_replaces_the_clerk_credentials() -> None:
    env = {k: v for k, v in BASE.items() if not k.startswith("CLERK_S")}
    s = Settings.from_env(env | {"WORKER_TOKEN_FILE": "/run/token"})
    assert s.uses_token_file
    assert s.token_file == Path("/run/token")
    assert s.clerk_secret_key is None
    assert s.clerk_session_id is None


def test_duplicate_topics_and_bad_handler_paths_are_problems() -> None:
    problems = problems_of(BASE | {"WORKER_TOPICS": "a,a", "WORKER_HANDLERS": "pkg.mod, 9bad"})
    assert len(problems) == 2


def test_env_file_is_read_and_the_environment_wins(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text(
        "# comment\n\nWORKER_TOPICS='from_file'\nexport WORKER_CONSUMER=\"filed\"\n"
        "WORKER_CONCURRENCY=3\n"
    )
    s = Settings.from_env(BASE | {"WORKER_CONCURRENCY": "4"}, env_file)
    assert (s.topics, s.consumer, s.concurrency) == (("from_file",), "filed", 4)


def test_bad_env_file_lines_and_missing_files_are_problems(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("NOT A PAIR\n")
    assert any("line 1" in p for p in problems_of(BASE, env_file))
    assert any("cannot be read" in p for p in problems_of(BASE, tmp_path / "missing"))


def test_no_secret_appears_in_repr_str_or_config_errors() -> None:
    s = Settings.from_env(BASE)
    for text in (repr(s), str(s)):
        assert SECRET not in text
        assert ANON not in text
        assert "[secure]" in text
    with pytest.raises(ConfigError) as info:
        Settings.from_env(BASE | {"WORKER_CONCURRENCY": "x", "ORG_ID": "bad"})
    assert SECRET not in str(info.value)
    assert ANON not in str(info.value)


def test_a_secret_pasted_into_the_wrong_variable_is_not_echoed() -> None:
    problems = problems_of(BASE | {"ORG_ID": SECRET, "SUPABASE_URL": SECRET})
    assert len(problems) == 2
    assert all(SECRET not in p and "hidden" in p for p in problems)


def test_secret_str_hides_its_value() -> None:
    secret = SecretStr("hunter2")
    assert repr(secret) == str(secret) == "[secure]"
    assert f"{secret}" == "[secure]"
    assert secret.get_secret_value() == "hunter2"


def test_settings_are_frozen() -> None:
    s = Settings.from_env(BASE)
    with pytest.raises(AttributeError):
        s.org_id = "org_other"  # type: ignore[misc]


# -- the project key ------------------------------------------------------------------------


def jwt_key(claims: dict[str, object]) -> str:
    def part(data: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    return f"{part({'alg': 'HS256', 'typ': 'JWT'})}.{part(claims)}.c2lnbmF0dXJlLXZhbHVl"


LEGACY_ANON = jwt_key({"iss": "supabase", "role": "anon", "exp": 1983812996})
SERVICE_ROLE = jwt_key({"iss": "supabase", "role": "service_role", "exp": 1983812996})
PUBLISHABLE = "sb_publishable_ACJWlzQHlZjBrEguHvfOxg_3BJgxAaH"
SECRET_KEY = "sb_secret_N7UND0UgjKTVK-Uodkm0Hg_xSvEMPvz"
WITHOUT_KEY = {k: v for k, v in BASE.items() if k != "SUPABASE_ANON_KEY"}


@pytest.mark.parametrize("key", [PUBLISHABLE, LEGACY_ANON, "anon-key-of-a-stand-in"])
def test_the_publishable_key_is_the_documented_setting(key: str) -> None:
    s = Settings.from_env(WITHOUT_KEY | {"SUPABASE_PUBLISHABLE_KEY": key})
    assert s.supabase_anon_key == SecretStr(key)


def test_the_legacy_anon_key_variable_is_still_read() -> None:
    assert Settings.from_env(BASE).supabase_anon_key == SecretStr(ANON)
    same = Settings.from_env(BASE | {"SUPABASE_PUBLISHABLE_KEY": ANON})
    assert same.supabase_anon_key == SecretStr(ANON)


def test_two_different_keys_are_a_problem_naming_both_variables() -> None:
    (problem,) = problems_of(BASE | {"SUPABASE_PUBLISHABLE_KEY": PUBLISHABLE})
    assert "SUPABASE_PUBLISHABLE_KEY and SUPABASE_ANON_KEY" in problem
    assert PUBLISHABLE not in problem
    assert ANON not in problem


@pytest.mark.parametrize(
    ("name", "key", "kind"),
    [
        ("SUPABASE_PUBLISHABLE_KEY", SECRET_KEY, "secret key"),
        ("SUPABASE_ANON_KEY", SECRET_KEY, "secret key"),
        ("SUPABASE_PUBLISHABLE_KEY", SERVICE_ROLE, "service_role"),
        ("SUPABASE_ANON_KEY", SERVICE_ROLE, "service_role"),
    ],
)
def test_a_key_that_bypasses_rls_is_refused_with_the_reason_and_the_fix(
    name: str, key: str, kind: str
) -> None:
    (problem,) = problems_of(WITHOUT_KEY | {name: key})
    assert problem.startswith(name)
    assert kind in problem
    assert "row level security" in problem
    assert "publishable key" in problem  # the fix
    assert key not in problem
    assert key.rsplit(".", maxsplit=1)[-1] not in problem


def test_a_key_that_only_looks_like_a_jwt_is_not_decoded_into_a_crash() -> None:
    for key in ("a.b.c", "eyJ.%%%.x", f"x.{base64.urlsafe_b64encode(b'[1]').decode()}.y"):
        assert Settings.from_env(WITHOUT_KEY | {"SUPABASE_PUBLISHABLE_KEY": key})


def test_the_token_role_defaults_to_authenticated_and_refuses_bypassing_roles() -> None:
    assert Settings.from_env(BASE).token_role == "authenticated"
    assert Settings.from_env(BASE | {"WORKER_TOKEN_ROLE": "worker"}).token_role == "worker"
    for role in ("service_role", "anon", "bad role"):
        (problem,) = problems_of(BASE | {"WORKER_TOKEN_ROLE": role})
        assert problem.startswith("WORKER_TOKEN_ROLE")


def test_the_lease_is_off_by_default_with_a_15s_lifetime_renewed_every_5s() -> None:
    s = Settings.from_env(BASE)
    assert (s.lease_enabled, s.lease_ttl_s, s.lease_renew_s) == (False, 15.0, 5.0)
    on = Settings.from_env(BASE | {"WORKER_LEASE_ENABLED": "true"})
    assert on.lease_enabled


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"WORKER_LEASE_ENABLED": "yes"}, "WORKER_LEASE_ENABLED"),
        ({"WORKER_LEASE_TTL_SECONDS": "6", "WORKER_LEASE_RENEW_SECONDS": "3"}, "third"),
        ({"WORKER_LEASE_TTL_SECONDS": "0.1"}, "WORKER_LEASE_TTL_SECONDS"),
        ({"WORKER_LEASE_TTL_SECONDS": "7200", "WORKER_LEASE_RENEW_SECONDS": "5"}, "3600"),
    ],
)
def test_lease_settings_are_validated_renewing_well_within_the_lifetime(
    env: dict[str, str], named: str
) -> None:
    problems = problems_of(BASE | env)
    assert any(named in p for p in problems), problems
