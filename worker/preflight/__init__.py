"""``realtime-worker check`` and ``token``: prove the configuration works, step by step.

Each step prints one line, PASS or FAIL with the reason and what to do. Nothing printed
contains a token or a secret: claims are shown decoded, the signature is cut off.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TextIO, TypeVar

import httpx
from postgrest import AsyncPostgrestClient

from worker.context import make_data_client
from worker.errors import ConfigError, JoinRefused, StorageError, WorkerError
from worker.lifespan import Resources
from worker.preflight.tokens import (
    describe_session,
    describe_token,
    keeps_its_session,
    mint_and_verify,
    session_for,
)
from worker.realtime.adapter import RealtimeAdapter
from worker.registry import load_handlers
from worker.settings import Settings
from worker.storage import OrgFiles, make_storage_client
from worker.tokens import Token
from worker.tokens.sources import describe_source

T = TypeVar("T")
UNAUTHORIZED_HINT = (
    "the realtime.messages RLS policies refuse this token on this topic: apply "
    "supabase/migrations to the project (supabase db push), and check that ORG_ID is the "
    "session's active organization and that the service user is a member of it"
)
#: The org roles that the RLS policies let publish and move checkpoints.
PUBLISHING_ROLES = ("worker", "admin")


@dataclass
class Report:
    """The pass/fail lines of a preflight run."""

    out: TextIO
    failures: int = 0

    def line(self, ok: bool, step: str, detail: str) -> None:
        self.failures += 0 if ok else 1
        self.out.write(f"{'PASS' if ok else 'FAIL'}  {step:<28} {detail}\n")
        self.out.flush()


async def show_token(settings: Settings, out: TextIO) -> int:
    """``realtime-worker token``: mint, verify and print the claims."""
    async with httpx.AsyncClient(timeout=15.0) as http:
        session = await session_for(settings, http) if keeps_its_session(settings) else None
        token = await mint_and_verify(settings, http, session.id if session else None)
    out.write(json.dumps(describe_token(token), indent=2, sort_keys=True) + "\n")
    return 0


async def run_checks(settings: Settings, out: TextIO, *, storage: bool = False) -> int:
    """``realtime-worker check``: 0 when every step passes, else 1. With ``storage``, also
    write and delete a probe object under ``<org_id>/`` of the ``org-files`` bucket."""
    report = Report(out)
    report.line(True, "token source", describe_source(settings))
    _check_handlers(settings, report)
    async with httpx.AsyncClient(timeout=15.0) as http:
        token = await _check_token(settings, http, report)
    if token is not None:
        await _check_realtime(settings, token, report)
        await _check_data_api(settings, token, report)
        if storage:
            await _check_storage(settings, token, report)
    out.write(f"{'all checks passed' if not report.failures else f'{report.failures} failed'}\n")
    return 0 if report.failures == 0 else 1


async def _check_token(settings: Settings, http: httpx.AsyncClient, report: Report) -> Token | None:
    session = None
    if keeps_its_session(settings):
        session = await _step(
            report, "clerk session", lambda: session_for(settings, http), describe_session
        )
        if session is None:
            return None
    return await _step(
        report,
        "clerk token",
        lambda: mint_and_verify(settings, http, session.id if session else None),
        lambda t: f"verified, kid={t.kid}, org={t.org_id}, expires in {t.lifetime_s:.0f}s",
    )


def _check_handlers(settings: Settings, report: Report) -> None:
    """The handlers load and validate, and their modules' settings are valid: one line
    per lifespan, as its manager's repr shows it (secrets hidden)."""
    try:
        registry = load_handlers(settings.handlers)
        registry.validate(settings.topics)
        resources = Resources()
        resources.configure(registry.lifespans, settings)
    except ConfigError as exc:
        report.line(False, "handlers", "; ".join(exc.problems))
        return
    report.line(True, "handlers", f"{len(registry.routes)} route(s) loaded and valid")
    for name, shown in resources.describe():
        report.line(True, f"resource {name.rsplit('.', 1)[0]}", shown)


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
            report.line(False, "realtime connect", _connect_reason(exc, settings.supabase_url))
            return
        report.line(True, "realtime connect", settings.supabase_url)
        for topic, channel in zip(settings.topics, settings.channel_topics, strict=True):
            await _join_once(adapter, topic, channel, token, report)
    finally:
        await adapter.close(timeout_s=5.0)


def _connect_reason(exc: WorkerError, url: str) -> str:
    """Why the socket did not open, and what to do: unreachable, silent, or refused."""
    cause = exc.__cause__
    if isinstance(cause, TimeoutError):
        return f"SUPABASE_URL={url} did not answer in time: check the URL and the network"
    if isinstance(cause, OSError):
        what = "connection refused" if isinstance(cause, ConnectionRefusedError) else str(cause)
        return (
            f"cannot reach SUPABASE_URL={url} ({what}): check the URL (https://<ref>.supabase.co;"
            " locally the SUPABASE_URL in .devstack/env) and that the project is running"
        )
    return f"{exc} (is SUPABASE_URL the project URL and SUPABASE_ANON_KEY its anon key?)"


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


@dataclass(frozen=True)
class _Fixed:
    """A token provider that always has the one token the check minted."""

    current: Token


async def _check_data_api(settings: Settings, token: Token, report: Report) -> None:
    client = make_data_client(
        settings.supabase_url, settings.supabase_anon_key.get_secret_value(), _Fixed(token)
    )
    step = "data api read"
    try:
        saved = await client.rpc("get_worker_checkpoint", {"consumer": settings.consumer}).execute()
        last_id = int(saved.data) if isinstance(saved.data, int) else 0
        report.line(True, step, f"checkpoint of {settings.consumer!r} = {saved.data}")
        step = "data api write"
        params: dict[str, Any] = {"consumer": settings.consumer, "last_event_id": last_id}
        await client.rpc("save_worker_checkpoint", params).execute()
        report.line(True, step, "checkpoint saved under RLS")
        if settings.lease_enabled:
            step = "lease read"
            report.line(True, step, await _describe_lease(client, settings.consumer))
    except Exception as exc:  # postgrest raises several unrelated types
        report.line(False, step, _data_api_reason(exc, settings.supabase_url, token))
    finally:
        await client.aclose()


async def _describe_lease(client: AsyncPostgrestClient, consumer: str) -> str:
    """Who holds the org's lease (read only: a check never takes it from the workers)."""
    query = client.table("worker_leases").select("epoch,holder,expires_at")
    rows = (await query.eq("consumer", consumer).execute()).data
    if not rows or not isinstance(rows[0], Mapping):
        return f"no lease of {consumer!r} yet: the first worker takes epoch 1"
    row = rows[0]
    return f"lease of {consumer!r}: epoch {row['epoch']}, {row['holder']} until {row['expires_at']}"


def org_role(claims: Mapping[str, Any]) -> str | None:
    """The token's org role without the ``org:`` prefix (v2 ``o.rol`` or v1 ``org_role``)."""
    org = claims.get("o")
    role = org.get("rol") if isinstance(org, dict) else claims.get("org_role")
    return role.removeprefix("org:") if isinstance(role, str) else None


def _data_api_reason(exc: Exception, url: str, token: Token) -> str:
    if isinstance(exc, httpx.HTTPError):
        return (
            f"cannot reach the data API at {url}/rest/v1 ({type(exc).__name__}): check "
            "SUPABASE_URL and that the project is running"
        )
    message = getattr(exc, "message", None) or str(exc)
    code = str(getattr(exc, "code", "") or "")
    role = org_role(token.claims)
    if code == "42501" and role not in PUBLISHING_ROLES:
        return (
            f"{message}: only the org roles {' and '.join(map(repr, PUBLISHING_ROLES))} may "
            f"write checkpoints and this token's org role is {role!r}; in Clerk, give the "
            "service user the role org:worker in ORG_ID"
        )
    if code in ("PGRST202", "42883", "42P01"):
        return f"{message}: apply supabase/migrations to the project (supabase db push)"
    return (
        f"{message} (check that supabase/migrations are applied and that the service user "
        "has the org role 'worker' or 'admin' in ORG_ID)"
    )


async def _check_storage(settings: Settings, token: Token, report: Report) -> None:
    """Write then delete a probe object under ``<org_id>/``: one line for both."""
    anon = settings.supabase_anon_key.get_secret_value()
    async with make_storage_client(settings.supabase_url, anon, _Fixed(token)) as client:
        files = OrgFiles(client, settings.org_id)
        probe = f"realtime-worker-check/{secrets.token_hex(8)}.txt"
        step = "storage write+delete"
        try:
            await files.upload(probe, b"realtime-worker check", content_type="text/plain")
            removed = await files.remove(probe)
        except StorageError as exc:
            report.line(False, step, _storage_reason(exc, settings.supabase_url, token))
            return
    if removed != [files.key(probe)]:
        report.line(False, step, f"wrote {files.bucket}/{files.key(probe)} but RLS kept it")
        return
    report.line(True, step, f"wrote and deleted {files.bucket}/{files.key(probe)}")


def _storage_reason(exc: StorageError, url: str, token: Token) -> str:
    if exc.status is None:
        return f"{exc}: check SUPABASE_URL ({url}) and that the project's Storage is running"
    role = org_role(token.claims)
    if exc.status == 403 and role not in PUBLISHING_ROLES:
        return (
            f"{exc}: only the org roles {' and '.join(map(repr, PUBLISHING_ROLES))} may write "
            f"files and this token's org role is {role!r}; in Clerk, give the service user "
            "the role org:worker in ORG_ID"
        )
    if exc.status in (403, 404):
        return f"{exc} (apply supabase/migrations: the org-files bucket and its policies)"
    return str(exc)
