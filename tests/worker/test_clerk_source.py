"""ClerkTokenSource: the request it sends and how each Clerk answer is translated."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.worker.fakes import (
    API_URL,
    SECRET,
    SESSION,
    FakeClerk,
    clerk_error,
    raising,
)
from worker.errors import SessionEnded, TokenUnavailable
from worker.tokens.sources.clerk import ClerkTokenSource

pytestmark = pytest.mark.anyio


def source(http: httpx.AsyncClient, **kwargs: object) -> ClerkTokenSource:
    return ClerkTokenSource(API_URL, SECRET, SESSION, http=http, **kwargs)  # type: ignore[arg-type]


async def test_mints_with_the_secret_as_bearer_and_returns_the_jwt(
    clerk: FakeClerk, http: httpx.AsyncClient
) -> None:
    token = await source(http).fetch()
    assert token.startswith("ey")
    request = clerk.token_requests[0]
    assert request.method == "POST"
    assert request.url == f"{API_URL}/v1/sessions/{SESSION}/tokens"
    assert request.headers["Authorization"] == f"Bearer {SECRET}"
    assert json.loads(request.content) == {}


async def test_template_and_expires_in_are_sent(clerk: FakeClerk, http: httpx.AsyncClient) -> None:
    await source(http, template="supabase", expires_in_s=45).fetch()
    request = clerk.token_requests[0]
    assert request.url.path == f"/v1/sessions/{SESSION}/tokens/supabase"
    assert json.loads(request.content) == {"expires_in_seconds": 45}


def test_short_lifetimes_are_refused_for_the_real_clerk_api() -> None:
    with pytest.raises(ValueError, match="30"):
        ClerkTokenSource("https://api.clerk.com", SECRET, SESSION, expires_in_s=10, http=None)  # type: ignore[arg-type]


@pytest.mark.parametrize("code", ["resource_not_found", "session_ended", "other"])
async def test_404_means_the_session_ended(
    clerk: FakeClerk, http: httpx.AsyncClient, code: str
) -> None:
    clerk.script.append(clerk_error(404, code))
    with pytest.raises(SessionEnded, match="CLERK_SESSION_ID"):
        await source(http).fetch()


async def test_a_revoked_session_code_means_the_session_ended(
    clerk: FakeClerk, http: httpx.AsyncClient
) -> None:
    clerk.script.append(clerk_error(400, "session_revoked"))
    with pytest.raises(SessionEnded):
        await source(http).fetch()


@pytest.mark.parametrize("status", [401, 403])
async def test_auth_failures_blame_the_secret_key_without_printing_it(
    clerk: FakeClerk, http: httpx.AsyncClient, status: int
) -> None:
    clerk.script.append(clerk_error(status, "authentication_invalid"))
    with pytest.raises(TokenUnavailable) as info:
        await source(http).fetch()
    assert "CLERK_SECRET_KEY" in str(info.value)
    assert SECRET not in str(info.value)
    assert SECRET not in repr(source(http))
    assert info.value.status == status


@pytest.mark.parametrize(("header", "expected"), [("7", 7.0), (None, None), ("soon", None)])
async def test_429_carries_retry_after(
    clerk: FakeClerk, http: httpx.AsyncClient, header: str | None, expected: float | None
) -> None:
    headers = {"Retry-After": header} if header else {}
    clerk.script.append(clerk_error(429, "too_many_requests", **headers))
    with pytest.raises(TokenUnavailable) as info:
        await source(http).fetch()
    assert (info.value.status, info.value.retry_after_s) == (429, expected)


async def test_server_errors_are_retryable(clerk: FakeClerk, http: httpx.AsyncClient) -> None:
    clerk.script.append(lambda _req: httpx.Response(503, text="upstream down"))
    with pytest.raises(TokenUnavailable, match="503"):
        await source(http).fetch()


@pytest.mark.parametrize(
    "exc",
    [httpx.ConnectError("refused"), httpx.ReadTimeout("slow"), httpx.RemoteProtocolError("bye")],
)
async def test_transport_errors_become_token_unavailable(
    clerk: FakeClerk, http: httpx.AsyncClient, exc: httpx.HTTPError
) -> None:
    clerk.script.append(raising(exc))
    with pytest.raises(TokenUnavailable) as info:
        await source(http).fetch()
    assert info.value.__cause__ is exc


async def test_a_200_without_a_jwt_is_unavailable(
    clerk: FakeClerk, http: httpx.AsyncClient
) -> None:
    clerk.script.append(lambda _req: httpx.Response(200, json={"object": "token"}))
    with pytest.raises(TokenUnavailable, match="without a jwt"):
        await source(http).fetch()
