"""``BrokerSettings``: what ``realtime-worker broker`` reads from its environment.

| variable | meaning |
|---|---|
| `BROKER_ORGS_FILE` | the orgs file (required) |
| `CLERK_SECRET_KEY`, `CLERK_API_URL` | the Clerk instance (the key is only ever here) |
| `CLERK_TOKEN_EXPIRES_IN_SECONDS`, `CLERK_TOKEN_TEMPLATE` | as for the worker |
| `BROKER_OIDC_ISSUER` | the cluster's ServiceAccount issuer; unset: static credentials only |
| `BROKER_OIDC_JWKS_URL` | its JWKS (default `<issuer>/openid/v1/jwks`) |
| `BROKER_OIDC_CA_FILE` | the CA of that JWKS URL (in-cluster: the ServiceAccount's `ca.crt`) |
| `BROKER_OIDC_TOKEN_FILE` | a bearer token for it (in-cluster: the broker's own `token`) |
| `BROKER_AUDIENCE` | the audience of the ServiceAccount tokens (`realtime-worker-broker`) |
| `BROKER_REMINT_MARGIN_SECONDS` | a cached token with less left is minted again (20) |
| `BROKER_HTTP_HOST`, `BROKER_HTTP_PORT` | where to listen (0.0.0.0:8080) |
| `BROKER_REQUEST_TIMEOUT_SECONDS` | the deadline of one request (10) |
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from worker.broker.identity import AUDIENCE
from worker.errors import ConfigError
from worker.settings.reader import Reader, SecretStr, read_env_file

__all__ = ["BrokerSettings"]


@dataclass(frozen=True)
class BrokerSettings:
    """The broker's validated settings (the secret key never in a repr)."""

    orgs_file: Path
    clerk_secret_key: SecretStr
    clerk_api_url: str = "https://api.clerk.com"
    clerk_token_template: str | None = None
    clerk_token_expires_in_s: int | None = None
    oidc_issuer: str | None = None
    oidc_jwks_url: str | None = None
    oidc_ca_file: Path | None = None
    oidc_token_file: Path | None = None
    audience: str = AUDIENCE
    remint_margin_s: float = 20.0
    http_host: str = "0.0.0.0"  # noqa: S104 - the workers reach it through a Service
    http_port: int = 8080
    request_timeout_s: float = 10.0
    log_level: str = "INFO"

    @classmethod
    def from_env(cls, environ: Mapping[str, str], env_file: Path | None = None) -> BrokerSettings:
        """Validate everything at once; ``ConfigError`` lists every problem."""
        problems: list[str] = []
        merged = read_env_file(env_file, problems) if env_file is not None else {}
        r = Reader({**merged, **environ}, problems)
        orgs = r.required("BROKER_ORGS_FILE", "the path of the broker's orgs file (JSON)")
        secret = r.required("CLERK_SECRET_KEY", "the Clerk secret key (sk_live_... or sk_test_...)")
        issuer = r.url("BROKER_OIDC_ISSUER", r.raw("BROKER_OIDC_ISSUER"))
        jwks = r.url("BROKER_OIDC_JWKS_URL", r.raw("BROKER_OIDC_JWKS_URL"))
        if jwks is None and issuer is not None:
            jwks = f"{issuer}/openid/v1/jwks"
        expires = r.raw("CLERK_TOKEN_EXPIRES_IN_SECONDS")
        port = r.number("BROKER_HTTP_PORT", 8080, int, 0)
        values = {
            "clerk_api_url": r.url("CLERK_API_URL", r.raw("CLERK_API_URL"))
            or "https://api.clerk.com",
            "clerk_token_template": r.raw("CLERK_TOKEN_TEMPLATE"),
            "clerk_token_expires_in_s": r.number("CLERK_TOKEN_EXPIRES_IN_SECONDS", 0, int, 1)
            if expires
            else None,
            "oidc_issuer": issuer,
            "oidc_jwks_url": jwks,
            "oidc_ca_file": _path(r.raw("BROKER_OIDC_CA_FILE")),
            "oidc_token_file": _path(r.raw("BROKER_OIDC_TOKEN_FILE")),
            "audience": r.raw("BROKER_AUDIENCE") or AUDIENCE,
            "remint_margin_s": r.number("BROKER_REMINT_MARGIN_SECONDS", 20.0, float, 0),
            "http_host": r.raw("BROKER_HTTP_HOST") or "0.0.0.0",  # noqa: S104 - see above
            "http_port": port,
            "request_timeout_s": r.number("BROKER_REQUEST_TIMEOUT_SECONDS", 10.0, float, 0.01),
            "log_level": (r.raw("WORKER_LOG_LEVEL") or "INFO").upper(),
        }
        if problems or orgs is None or secret is None:
            raise ConfigError(problems)
        return cls(orgs_file=Path(orgs), clerk_secret_key=SecretStr(secret), **values)  # type: ignore[arg-type]


def _path(value: str | None) -> Path | None:
    return Path(value) if value else None
