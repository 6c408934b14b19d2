"""The ``broker`` token source: its settings, the request it sends, the credential file
re-read on change, and every broker answer translated without echoing a credential."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.worker.test_settings import BASE, problems_of
from worker.errors import TokenUnavailable
from worker.settings import Settings
from worker.tokens.sources import BrokerTokenSource, describe_source, source_from_settings
from worker.tokens.sources.broker import describe_credential

pytestmark = pytest.mark.anyio
URL = "http://broker.realtime-worker.svc:8080"
NO_CLERK = {k: v for k, v in BASE.items() if k not in ("CLERK_SECRET_KEY", "CLERK_SESSION_ID")}
SA_TOKEN = (  # {"sub": "system:serviceaccount:ns:rw-a"}, unsigned: only its sub is read
    "eyJhbGciOiJub25lIn0.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6bnM6cnctYSJ9.c2ln"
)


def broker(answer: Callable[[httpx.Request], httpx.Response]) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.MockTransport(answer))


def test_with_a_broker_the_worker_needs_no_clerk_secret_key_or_session(tmp_path: Path) -> None:
    env = NO_CLERK | {
        "WORKER_TOKEN_BROKER_URL": URL,
        "WORKER_TOKEN_BROKER_CREDENTIAL_FILE": str(tmp_path / "token"),
    }
    settings = Settings.from_env(env)
    assert settings.clerk_secret_key is None
    assert isinstance(source_from_settings(settings, httpx.AsyncClient()), BrokerTokenSource)


def test_a_broker_url_without_a_credential_file_is_a_problem() -> None:
    problems = problems_of(NO_CLERK | {"WORKER_TOKEN_BROKER_URL": URL})
    assert any("WORKER_TOKEN_BROKER_CREDENTIAL_FILE is required" in p for p in problems)


async def test_sends_the_credential_as_bearer_and_rereads_the_file_when_it_changes(
    tmp_path: Path,
) -> None:
    seen: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["Authorization"])
        return httpx.Response(200, json={"token": "ey.a.b", "expires_at": 1})

    path = tmp_path / "token"
    path.write_text("first\n")
    async with broker(answer) as http:
        source = BrokerTokenSource(URL, path, http=http)
        assert await source.fetch() == "ey.a.b"
        path.write_text("second-rotated")
        os.utime(path, ns=(1, 10**18))
        await source.fetch()
    assert seen == ["Bearer first", "Bearer second-rotated"]


@pytest.mark.parametrize(
    ("status", "body", "words"),
    [
        (401, {"error": "unauthenticated", "reason": "expired"}, "HTTP 401 (expired)"),
        (403, {"reason": "unknown_service_account"}, "HTTP 403 (unknown_service_account)"),
        (503, {"reason": "clerk_unavailable"}, "HTTP 503"),
        (200, {"no": "token"}, "without a token"),
        (502, None, "HTTP 502 (no reason)"),
    ],
)
async def test_broker_answers_become_retryable_failures_that_never_echo_the_credential(
    tmp_path: Path, status: int, body: object, words: str
) -> None:
    path = tmp_path / "token"
    path.write_text("rwb_the-credential")
    reply = httpx.Response(status, json=body) if body is not None else httpx.Response(status)
    async with broker(lambda _r: reply) as http:
        with pytest.raises(TokenUnavailable, match=re.escape(words)) as info:
            await BrokerTokenSource(URL, path, http=http).fetch()
    assert "rwb_the" not in str(info.value)


async def test_a_missing_or_empty_credential_file_is_a_retryable_failure(tmp_path: Path) -> None:
    async with broker(lambda _r: httpx.Response(200)) as http:
        with pytest.raises(TokenUnavailable, match="unreadable"):
            await BrokerTokenSource(URL, tmp_path / "absent", http=http).fetch()
        (tmp_path / "empty").write_text("  \n")
        with pytest.raises(TokenUnavailable, match="empty"):
            await BrokerTokenSource(URL, tmp_path / "empty", http=http).fetch()


def test_check_names_the_source_and_identity_but_never_the_credential(tmp_path: Path) -> None:
    (tmp_path / "sa").write_text(SA_TOKEN)
    (tmp_path / "static").write_text("rwb_the-credential")
    assert describe_credential(tmp_path / "sa").startswith(
        "ServiceAccount token of system:serviceaccount:ns:rw-a"
    )
    assert describe_credential(tmp_path / "static").startswith("a static credential")
    env = NO_CLERK | {
        "WORKER_TOKEN_BROKER_URL": URL,
        "WORKER_TOKEN_BROKER_CREDENTIAL_FILE": str(tmp_path / "static"),
    }
    described = describe_source(Settings.from_env(env))
    assert described.startswith(f"broker {URL} as a static credential")
    assert "rwb_the" not in described
    assert SA_TOKEN[:20] not in describe_credential(tmp_path / "sa")
