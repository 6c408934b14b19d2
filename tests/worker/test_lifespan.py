"""worker.lifespan: handler modules' resources, configured at build and opened around
dispatch; the webhook handler's settings validated at start."""

from __future__ import annotations

import contextlib
import sys
import textwrap
import uuid
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import httpx
import pytest

from worker import Context, Event, HandlerRegistry, Settings, Worker
from worker.cli import main
from worker.errors import ConfigError, ResourceError
from worker.handlers import webhook
from worker.lifespan import Lifespan, Resources, lifespan
from worker.registry import load_handlers
from worker.settings import SecretStr
from worker.testing import HandlerHarness, make_context, make_event

pytestmark = pytest.mark.anyio

WEBHOOK_ENV = {"WORKER_WEBHOOK_URL": "https://hooks.test/in", "WORKER_WEBHOOK_SECRET": "k" * 32}
CORE_ENV = {
    "SUPABASE_URL": "http://127.0.0.1:9",
    "SUPABASE_PUBLISHABLE_KEY": "sb_publishable_test",
    "ORG_ID": "org_abc",
    "WORKER_TOKEN_FILE": "/nonexistent/token",
    "CLERK_JWKS_URL": "http://127.0.0.1:9/jwks",
}


@pytest.fixture(autouse=True)
def _no_global_logging(monkeypatch: pytest.MonkeyPatch) -> None:
    """``main`` configures process-wide logging; the tests here only read exit codes."""
    monkeypatch.setattr("worker.cli.configure_logging", lambda *a, **k: None)
    monkeypatch.setattr("worker.cli.install_uncaught_logging", lambda *a, **k: None)


def settings(**environ: str) -> Settings:
    return Settings(
        supabase_url="http://127.0.0.1:9",
        supabase_anon_key=SecretStr("anon"),
        org_id="org_abc",
        clerk_jwks_url="http://127.0.0.1:9/jwks",
        token_file=Path("/nonexistent/token"),
        environ=environ,
    )


events: list[str] = []


@lifespan
def pool(settings: Settings) -> AbstractAsyncContextManager[list[str]]:
    if "POOL_BROKEN" in settings.environ:
        raise ConfigError(["POOL_SIZE is invalid: set a number"])

    @contextlib.asynccontextmanager
    async def opened() -> AsyncIterator[list[str]]:
        if "POOL_FAILS" in settings.environ:
            raise OSError("connection refused")
        events.append("open")
        yield events
        events.append("closed")

    return opened()


async def test_a_resource_is_open_for_handlers_and_closed_afterwards() -> None:
    reg = HandlerRegistry()
    reg.add_lifespan(pool)

    @reg.on("events")
    async def handler(event: Event, ctx: Context) -> None:
        ctx.resource(pool).append("used")

    events.clear()
    async with HandlerHarness(reg) as harness:
        assert (await harness.deliver()).outcome == "success"
        assert events == ["open", "used"]
    assert events == ["open", "used", "closed"]


async def test_configure_collects_problems_and_open_failures_name_the_hook() -> None:
    with pytest.raises(ConfigError, match="POOL_SIZE is invalid"):
        Resources().configure([pool], settings(POOL_BROKEN="1"))
    resources = Resources()
    resources.configure([pool], settings(POOL_FAILS="1"))
    with pytest.raises(ResourceError, match=r"test_lifespan\.pool failed to start: OSError"):
        async with resources.opened():
            pass
    with pytest.raises(ResourceError, match="is not open"):
        resources.get(pool)


async def test_a_worker_whose_resource_fails_to_open_stops_with_the_reason() -> None:
    reg = HandlerRegistry()
    reg.add_lifespan(pool)
    w = Worker(settings(POOL_FAILS="1"), registry=reg)
    with pytest.raises(ResourceError, match="connection refused"):
        await w.run()


def test_modules_lifespans_are_found_by_load_handlers(tmp_path: Path) -> None:
    name = f"mod_{uuid.uuid4().hex}"
    (tmp_path / f"{name}.py").write_text(
        textwrap.dedent(
            """
            from worker import on
            from worker.handlers.webhook import client  # a lifespan is found wherever defined

            @on("events")
            async def h(event, ctx):
                pass
            """
        )
    )
    sys.path.insert(0, str(tmp_path))
    try:
        assert load_handlers([name]).lifespans == [webhook.client]
        assert load_handlers([f"{name}:h"]).lifespans == [webhook.client]
    finally:
        sys.path.remove(str(tmp_path))


def test_webhook_settings_are_validated_at_start() -> None:
    with pytest.raises(ConfigError) as caught:
        webhook.WebhookSettings.from_env({"WORKER_WEBHOOK_URL": "ftp://x"})
    text = str(caught.value)
    assert "WORKER_WEBHOOK_URL=" in text
    assert "is not an http(s) URL" in text
    assert "WORKER_WEBHOOK_SECRET is required" in text
    shown = repr(webhook.client.setup(settings(**WEBHOOK_ENV)))
    assert "https://hooks.test/in" in shown
    assert "k" * 32 not in shown


def test_a_failing_start_exits_1_with_the_reason(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for key, value in {**CORE_ENV, "WORKER_HANDLERS": "worker.handlers.webhook"}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(webhook.WebhookHandler, "__init__", _refuse)
    for key, value in WEBHOOK_ENV.items():
        monkeypatch.setenv(key, value)
    assert main(["run"]) == 1
    assert "worker.handlers.webhook.client failed to start: OSError" in capsys.readouterr().err


def _refuse(*args: object, **kwargs: object) -> None:
    raise OSError("no route to the webhook")


def test_the_webhook_without_its_url_exits_2_before_connecting(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for key, value in {**CORE_ENV, "WORKER_HANDLERS": "worker.handlers.webhook"}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("WORKER_WEBHOOK_URL", raising=False)
    assert main(["run"]) == 2
    err = capsys.readouterr().err
    assert "WORKER_WEBHOOK_URL is required" in err


async def test_the_webhook_posts_through_its_lifespan_client() -> None:
    sent: list[httpx.Request] = []

    def receive(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(204)

    hook = webhook.WebhookHandler(
        "https://hooks.test/in",
        "k" * 32,
        client=httpx.AsyncClient(transport=httpx.MockTransport(receive)),
    )
    async with HandlerHarness(webhook, resources={webhook.client: hook}) as harness:
        done = await harness.deliver("events", "task.created", {"id": 1})
    await hook.aclose()
    assert done.outcome == "success"
    assert sent[0].headers["Idempotency-Key"] == done.event.idempotency_key
    ctx = make_context(make_event(), resources={webhook.client: hook})
    assert ctx.resource(webhook.client) is hook
    await ctx.data.aclose()


async def test_the_webhook_client_is_closed_after_the_harness() -> None:
    async with HandlerHarness(webhook, environ=WEBHOOK_ENV) as harness:
        del harness
    # A lifespan value is only reachable while open.
    unused: Lifespan[object] = Lifespan(lambda s: contextlib.nullcontext())  # type: ignore[arg-type,return-value]
    with pytest.raises(ResourceError):
        Resources().get(unused)
