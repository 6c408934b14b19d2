"""``Settings``: one frozen, typed object built from an explicit mapping.

``Settings.from_env(os.environ)`` validates everything at once and raises
``ConfigError`` listing every problem, each naming the variable and the fix. Secrets are
wrapped in ``SecretStr`` so they never show in a repr, a log line or an error.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from worker.errors import ConfigError
from worker.events import channel_topic
from worker.settings.keys import read_project_key
from worker.settings.reader import Reader, SecretStr, read_env_file

__all__ = ["CLERK_MIN_EXPIRES_IN_S", "SecretStr", "Settings"]  # SecretStr: re-exported

#: Clerk refuses ``expires_in_seconds`` below 30; only local stand-ins accept less.
CLERK_MIN_EXPIRES_IN_S = 30
_CLERK_REAL_HOST = "api.clerk.com"
_ORG_RE = re.compile(r"^org_[A-Za-z0-9]+$")
_SESSION_RE = re.compile(r"^sess_[A-Za-z0-9]+$")
_USER_RE = re.compile(r"^user_[A-Za-z0-9]+$")
_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]+$")
_IMPORT_PATH_RE = re.compile(r"^[A-Za-z_][\w.]*(:[A-Za-z_]\w*)?$")
_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


@dataclass(frozen=True)
class Settings:
    """Everything the worker reads from its environment, validated."""

    supabase_url: str
    supabase_anon_key: SecretStr
    org_id: str
    clerk_jwks_url: str
    clerk_issuer: str | None = None
    clerk_api_url: str = "https://api.clerk.com"
    clerk_secret_key: SecretStr | None = None
    clerk_session_id: str | None = None
    clerk_user_id: str | None = None  # set: the worker gets and renews its own sessions
    clerk_session_renewal_margin_s: float | None = None  # None: a fifth of the lifetime
    clerk_token_template: str | None = None
    clerk_token_expires_in_s: int | None = None
    token_file: Path | None = None
    token_role: str = "authenticated"  # noqa: S105 - a Postgres role name, not a secret
    token_broker_url: str | None = None
    token_broker_credential_file: Path | None = None
    topics: tuple[str, ...] = ("events",)
    handlers: tuple[str, ...] = ()
    http_host: str = "0.0.0.0"  # noqa: S104 - the metrics port is scraped from outside the pod
    http_port: int = 9464
    token_refresh_margin_s: float = 15.0
    concurrency: int = 8
    queue_size: int = 1000
    handler_timeout_s: float = 30.0
    handler_max_attempts: int = 5
    shutdown_grace_s: float = 20.0
    consumer: str = "default"
    log_level: str = "INFO"
    realtime_join_timeout_s: float = 20.0
    realtime_heartbeat_s: float = 10.0
    settle_s: float = 10.0
    catchup_interval_s: float = 30.0
    catchup_page_size: int = 500
    checkpoint_interval_s: float = 2.0
    lease_enabled: bool = False
    lease_ttl_s: float = 15.0
    lease_renew_s: float = 5.0
    #: Every variable read (file and environment), for handler modules' own settings
    #: (``worker.lifespan``); never shown (it holds the secrets above).
    environ: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)

    @property
    def channel_topics(self) -> list[str]:
        """The full Realtime topics: ``org:<ORG_ID>:<topic>`` for each configured topic."""
        return [channel_topic(self.org_id, t) for t in self.topics]

    @property
    def uses_token_file(self) -> bool:
        """True when tokens come from ``WORKER_TOKEN_FILE`` instead of Clerk's API."""
        return self.token_file is not None

    @classmethod
    def from_env(cls, environ: Mapping[str, str], env_file: Path | None = None) -> Settings:
        """Build settings from ``environ`` (which wins) over an optional ``KEY=VALUE`` file.

        Raises ``ConfigError`` listing every problem at once.
        """
        problems: list[str] = []
        merged: dict[str, str] = {}
        if env_file is not None:
            merged.update(read_env_file(env_file, problems))
        merged.update(environ)
        reader = Reader(merged, problems)
        kwargs = _read_core(reader) | _read_clerk(reader) | _read_worker(reader)
        if problems:
            raise ConfigError(problems)
        return cls(**kwargs, environ=merged)  # type: ignore[arg-type]  # checked by Reader


def _read_core(r: Reader) -> dict[str, object]:
    url = r.url("SUPABASE_URL", r.required("SUPABASE_URL", "the project URL, https://<ref>..."))
    key = read_project_key(r)
    org = r.required("ORG_ID", "the Clerk organization id (org_...)")
    r.matching("ORG_ID", org, _ORG_RE, "a Clerk organization id like org_2abc")
    return {
        "supabase_url": url,
        "supabase_anon_key": SecretStr(key) if key else None,
        "org_id": org,
    }


def _read_clerk(r: Reader) -> dict[str, object]:
    api_url = r.url("CLERK_API_URL", r.raw("CLERK_API_URL") or "https://api.clerk.com")
    token_file = r.raw("WORKER_TOKEN_FILE")
    broker = _read_broker(r)
    secret = sid = user = None
    if token_file is None and not broker:
        secret = r.required("CLERK_SECRET_KEY", "the Clerk secret key (sk_live_... or sk_test_...)")
        sid, user = _read_session_or_user(r)
    issuer = r.url("CLERK_ISSUER", r.raw("CLERK_ISSUER"))
    if user and (secret or "").startswith("sk_live_") and issuer is None:
        r.problems.append(
            "CLERK_ISSUER is required with CLERK_USER_ID on a production instance: set it to "
            "the Frontend API URL (the worker signs the service user in there)"
        )
    jwks = r.url("CLERK_JWKS_URL", r.raw("CLERK_JWKS_URL"))
    if jwks is None and issuer is not None:
        jwks = f"{issuer}/.well-known/jwks.json"
    if r.raw("CLERK_ISSUER") is None and r.raw("CLERK_JWKS_URL") is None:
        r.problems.append(
            "CLERK_ISSUER or CLERK_JWKS_URL is required: set CLERK_ISSUER to the Frontend API "
            "URL (https://<slug>.clerk.accounts.dev) or CLERK_JWKS_URL to its JWKS"
        )
    return {
        "clerk_api_url": api_url,
        "clerk_secret_key": SecretStr(secret) if secret else None,
        "clerk_session_id": sid,
        "clerk_user_id": user,
        "clerk_session_renewal_margin_s": _read_margin(r),
        "clerk_issuer": issuer,
        "clerk_jwks_url": jwks,
        "clerk_token_template": r.raw("CLERK_TOKEN_TEMPLATE"),
        "clerk_token_expires_in_s": _read_expires_in(r, api_url),
        "token_file": Path(token_file) if token_file else None,
        "token_role": _read_token_role(r),
    } | broker


def _read_broker(r: Reader) -> dict[str, object]:
    """``WORKER_TOKEN_BROKER_URL`` and its credential file: both or neither."""
    url = r.url("WORKER_TOKEN_BROKER_URL", r.raw("WORKER_TOKEN_BROKER_URL"))
    credential = r.raw("WORKER_TOKEN_BROKER_CREDENTIAL_FILE")
    if r.raw("WORKER_TOKEN_BROKER_URL") is None:
        return {}
    if credential is None:
        r.problems.append(
            "WORKER_TOKEN_BROKER_CREDENTIAL_FILE is required with WORKER_TOKEN_BROKER_URL: "
            "set it to the projected ServiceAccount token or the static credential file"
        )
    return {"token_broker_url": url, "token_broker_credential_file": Path(credential or ".")}


def _read_token_role(r: Reader) -> str:
    role = r.raw("WORKER_TOKEN_ROLE") or "authenticated"
    r.matching("WORKER_TOKEN_ROLE", role, _NAME_RE, "a Postgres role name like authenticated")
    if role in ("service_role", "anon"):
        r.problems.append(
            f"WORKER_TOKEN_ROLE={role} is refused: the worker's token must run under RLS as a "
            "signed-in user; leave it unset (authenticated) or name the role your Clerk "
            "session token's 'role' claim carries"
        )
    return role


def _read_session_or_user(r: Reader) -> tuple[str | None, str | None]:
    sid, user = r.raw("CLERK_SESSION_ID"), r.raw("CLERK_USER_ID")
    if sid is None and user is None:
        r.problems.append(
            "CLERK_USER_ID or CLERK_SESSION_ID is required: set CLERK_USER_ID to the org's "
            "service user (user_...) and the worker gets and renews its own sessions, or "
            "CLERK_SESSION_ID to a session you created (sess_...)"
        )
    r.matching("CLERK_SESSION_ID", sid, _SESSION_RE, "a Clerk session id like sess_2abc")
    r.matching("CLERK_USER_ID", user, _USER_RE, "a Clerk user id like user_2abc")
    return sid, user


def _read_margin(r: Reader) -> float | None:
    name = "CLERK_SESSION_RENEWAL_MARGIN_SECONDS"
    return None if r.raw(name) is None else r.number(name, 0.0, float, 1)


def _read_expires_in(r: Reader, api_url: str | None) -> int | None:
    name = "CLERK_TOKEN_EXPIRES_IN_SECONDS"
    if r.raw(name) is None:
        return None
    value = r.number(name, 0, int, 1)
    if value < 1:  # already reported as a problem
        return None
    is_real_clerk = api_url is not None and urlsplit(api_url).hostname == _CLERK_REAL_HOST
    if is_real_clerk and value < CLERK_MIN_EXPIRES_IN_S:
        r.problems.append(
            f"{name}={value} is below Clerk's minimum: set {CLERK_MIN_EXPIRES_IN_S} or more "
            f"(shorter lifetimes only work against a local stand-in)"
        )
    return value


def _read_worker(r: Reader) -> dict[str, object]:
    level = (r.raw("WORKER_LOG_LEVEL") or "INFO").upper()
    if level not in _LOG_LEVELS:
        r.problems.append(f"WORKER_LOG_LEVEL={level!r} is invalid: use one of {_LOG_LEVELS}")
    consumer = r.raw("WORKER_CONSUMER") or "default"
    r.matching("WORKER_CONSUMER", consumer, _NAME_RE, "letters, digits, '_', '.' or '-'")
    topics = r.names("WORKER_TOPICS", "events", _NAME_RE, "letters, digits, '_', '.' or '-'")
    if not topics:
        r.problems.append("WORKER_TOPICS is empty: list at least one topic, e.g. events")
    port = r.number("WORKER_HTTP_PORT", 9464, int, 0)
    if port > 65535:
        r.problems.append(f"WORKER_HTTP_PORT={port} is too large: set a port <= 65535")
    return _read_delivery(r) | {
        "topics": topics,
        "handlers": r.names("WORKER_HANDLERS", "", _IMPORT_PATH_RE, "an import path like pkg.mod"),
        "http_host": r.raw("WORKER_HTTP_HOST") or "0.0.0.0",  # noqa: S104 - scraped from outside
        "http_port": port,
        "token_refresh_margin_s": r.number("WORKER_TOKEN_REFRESH_MARGIN_SECONDS", 15.0, float, 1),
        "concurrency": r.number("WORKER_CONCURRENCY", 8, int, 1),
        "queue_size": r.number("WORKER_QUEUE_SIZE", 1000, int, 1),
        "handler_timeout_s": r.number("WORKER_HANDLER_TIMEOUT_SECONDS", 30.0, float, 0.001),
        "handler_max_attempts": r.number("WORKER_HANDLER_MAX_ATTEMPTS", 5, int, 1),
        "shutdown_grace_s": r.number("WORKER_SHUTDOWN_GRACE_SECONDS", 20.0, float, 0),
        "consumer": consumer,
        "log_level": level,
        "realtime_join_timeout_s": r.number("REALTIME_JOIN_TIMEOUT_SECONDS", 20.0, float, 0.001),
        "realtime_heartbeat_s": r.number("REALTIME_HEARTBEAT_SECONDS", 10.0, float, 0.001),
    }


#: ``org_events_after`` returns at most this many rows per call.
MAX_CATCHUP_PAGE_SIZE = 1000


def _read_delivery(r: Reader) -> dict[str, object]:
    page = r.number("WORKER_CATCHUP_PAGE_SIZE", 500, int, 1)
    if page > MAX_CATCHUP_PAGE_SIZE:
        r.problems.append(
            f"WORKER_CATCHUP_PAGE_SIZE={page} is too large: set at most {MAX_CATCHUP_PAGE_SIZE} "
            "(the outbox RPC returns no more rows per call)"
        )
    return {
        "settle_s": r.number("WORKER_SETTLE_SECONDS", 10.0, float, 0),
        "catchup_interval_s": r.number("WORKER_CATCHUP_INTERVAL_SECONDS", 30.0, float, 0.05),
        "catchup_page_size": page,
        "checkpoint_interval_s": r.number("WORKER_CHECKPOINT_INTERVAL_SECONDS", 2.0, float, 0.05),
    } | _read_lease(r)


#: The renew interval may be at most this share of the lease lifetime.
MAX_RENEW_SHARE = 1 / 3


def _read_lease(r: Reader) -> dict[str, object]:
    enabled = (r.raw("WORKER_LEASE_ENABLED") or "false").lower()
    if enabled not in ("true", "false"):
        r.problems.append(f"WORKER_LEASE_ENABLED={enabled!r} is invalid: use true or false")
    ttl = r.number("WORKER_LEASE_TTL_SECONDS", 15.0, float, 0.5)
    renew = r.number("WORKER_LEASE_RENEW_SECONDS", 5.0, float, 0.05)
    if ttl > 3600:
        r.problems.append(f"WORKER_LEASE_TTL_SECONDS={ttl} is too large: set at most 3600")
    if renew > ttl * MAX_RENEW_SHARE:
        r.problems.append(
            f"WORKER_LEASE_RENEW_SECONDS={renew} is too close to WORKER_LEASE_TTL_SECONDS={ttl}: "
            "renew at most every third of the lifetime, so two renewals can fail before "
            "the holder must stop"
        )
    return {"lease_enabled": enabled == "true", "lease_ttl_s": ttl, "lease_renew_s": renew}
