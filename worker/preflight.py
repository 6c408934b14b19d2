"""``realtime-worker check`` and ``token``: prove the configuration works, step by step.

Each step prints one line, PASS or FAIL with the reason and what to do. Nothing printed
contains a token or a secret: claims are shown decoded, the signature is cut off.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TextIO, TypeVar

import httpx

from worker._realtime import RealtimeAdapter
from worker.clock import SystemClock
from worker.context import make_data_client
from worker.errors import JoinRefused, WorkerError
from worker.settings import Settings
from worker.tokens import Token, TokenVerifier, source_from_settings

T = TypeVar("T")
UNAUTHORIZED_HINT = (
    "the realtime.messages RLS policies refuse this token on this topic: check that ORG_ID "
    "is the session's active organization, that the service user is a member of it, and that "
    "supabase/migrations are applied to the project"
)


@dataclass
class Report:
    """The pass/fail lines of a preflight run."""

    out: TextIO
    failures: int = 0

    def line(self, ok: bool, step: str, detail: str) -> None:
        self.failures += 0 if ok else 1
        self.out.write(f"{'PASS' if ok else 'FAIL'}  {step:<28} {detail}\n")
        self.out.flush()


async def mint_and_verify(settings: Settings, http: httpx.AsyncClient) -> Token:
    """One token from the configured source, verified exactly as the worker would."""
    source = source_from_settings(settings, http)
    verifier = TokenVerifier(
        settings.clerk_jwks_url, settings.clerk_issuer, settings.org_id, http, SystemClock()
    )
    return await verifier.verify(await source.fetch())


def describe_token(token: Token) -> dict[str, Any]:
    """The decoded token without its signature: safe to print."""
    return {
        "kid": token.kid,
        "expires_at": token.expires_at,
        "org_id": token.org_id,
        "claims": token.claims,
    }


async def show_token(settings: Settings, out: TextIO) -> int:
    """``realtime-worker token``: mint, verify and print the claims."""
    async with httpx.AsyncClient(timeout=15.0) as http:
        token = await mint_and_verify(settings, http)
    out.write(json.dumps(describe_token(token), indent=2, sort_keys=True) + "\n")
    return 0


async def run_checks(settings: Settings, out: TextIO) -> int:
    """``realtime-worker check``: 0 when every step passes, else 1."""
    report = Report(out)
    async with httpx.AsyncClient(timeout=15.0) as http:
        token = await _step(
            report,
            "clerk token",
            lambda: mint_and_verify(settings, http),
            lambda t: f"verified, kid={t.kid}, org={t.org_id}, expires in {t.lifetime_s:.0f}s",
        )
    if token is not None:
        await _check_realtime(settings, token, report)
        await _check_data_api(settings, token, report)
    out.write(f"{'all checks passed' if not report.failures else f'{report.failures} failed'}\n")
    return 0 if report.failures == 0 else 1


async def _step(
    report: Report, name: str, action: Callable[[], Awaitable[T]], detail: Callable[[T], str]
) -> T | None:
    try:
        value = await action()
    except WorkerError as exc:
        report.line(False, name, str(exc))
        return None
    report.line(True, name, detail(value))
    return value


async def _check_realtime(settings: Settings, token: Token, report: Report) -> None:
    adapter = RealtimeAdapter(
        url=f"{settings.supabase_url}/realtime/v1",
        apikey=settings.supabase_anon_key.get_secret_value(),
        join_timeout_s=settings.realtime_join_timeout_s,
        max_retries=1,
    )
    try:
        try:
            await adapter.connect(timeout_s=settings.realtime_join_timeout_s)
        except WorkerError as exc:
            report.line(
                False,
                "realtime connect",
                f"{exc} (is SUPABASE_URL reachable and SUPABASE_ANON_KEY right?)",
            )
            return
        report.line(True, "realtime connect", settings.supabase_url)
        for topic, channel in zip(settings.topics, settings.channel_topics, strict=True):
            await _join_once(adapter, topic, channel, token, report)
    finally:
        await adapter.close(timeout_s=5.0)


async def _join_once(
    adapter: RealtimeAdapter, topic: str, channel: str, token: Token, report: Report
) -> None:
    try:
        await adapter.subscribe(topic, channel, token.jwt, lambda _t, _m: None)
    except JoinRefused as exc:
        hint = f" ({UNAUTHORIZED_HINT})" if exc.reason.startswith("Unauthorized") else ""
        report.line(False, f"join {channel}", f"{exc.reason}{hint}")
        return
    except WorkerError as exc:
        report.line(False, f"join {channel}", str(exc))
        return
    report.line(True, f"join {channel}", "joined as a private channel")


async def _check_data_api(settings: Settings, token: Token, report: Report) -> None:
    class _Fixed:
        current = token

    client = make_data_client(
        settings.supabase_url, settings.supabase_anon_key.get_secret_value(), _Fixed()
    )
    try:
        saved = await client.rpc("get_worker_checkpoint", {"consumer": settings.consumer}).execute()
        last_id = int(saved.data) if isinstance(saved.data, int) else 0
        report.line(True, "data api read", f"checkpoint of {settings.consumer!r} = {saved.data}")
        params: dict[str, Any] = {"consumer": settings.consumer, "last_event_id": last_id}
        await client.rpc("save_worker_checkpoint", params).execute()
        report.line(True, "data api write", "checkpoint saved under RLS")
    except Exception as exc:  # postgrest raises several unrelated types
        report.line(False, "data api", _data_api_reason(exc))
    finally:
        await client.aclose()


def _data_api_reason(exc: Exception) -> str:
    message = getattr(exc, "message", None) or str(exc)
    if isinstance(exc, httpx.HTTPError):
        return f"cannot reach the data API at SUPABASE_URL ({type(exc).__name__}): check the URL"
    return f"{message} (the service user needs the org role 'worker' or 'admin')"
