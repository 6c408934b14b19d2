"""ClerkSessionApi: every Clerk refusal translated into what the keeper does with it, and
no secret, ticket or client JWT in a message or a repr."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from worker.errors import SessionEnded, SessionUnobtainable, TokenUnavailable
from worker.settings import SecretStr
from worker.tokens.sessions import ClerkSessionApi
from worker.tokens.sessions.clerk_api import DevelopmentOnly

pytestmark = pytest.mark.anyio
SECRET = "sk_test_topsecretvalue"
CLIENT_JWT = "client.jwt.value"


def error(status: int, code: str, headers: dict[str, str] | None = None) -> httpx.Response:
    body = {"errors": [{"code": code, "message": code, "long_message": f"{code} text"}]}
    return httpx.Response(status, json=body, headers=headers)


def api(answer: Callable[[httpx.Request], httpx.Response]) -> ClerkSessionApi:
    http = httpx.AsyncClient(transport=httpx.MockTransport(answer))
    return ClerkSessionApi(
        "https://api.example", SecretStr(SECRET), "https://fapi.example", http=http
    )


async def test_a_refused_secret_key_is_unobtainable_without_showing_it() -> None:
    with pytest.raises(SessionUnobtainable) as info:
        await api(lambda _r: error(401, "authentication_invalid")).list_active("user_1")
    assert info.value.reason == "secret_key_refused"
    assert "CLERK_SECRET_KEY" in str(info.value)
    assert SECRET not in str(info.value)


@pytest.mark.parametrize(
    ("response", "reason"),
    [
        (error(422, "not_a_member_in_organization"), "not_a_member"),
        (error(404, "resource_not_found"), "user_not_found"),
    ],
)
async def test_a_user_out_of_the_org_is_unobtainable(response: httpx.Response, reason: str) -> None:
    with pytest.raises(SessionUnobtainable) as info:
        await api(lambda _r: response).sign_in_token("user_1", "org_1")
    assert info.value.reason == reason


async def test_the_native_api_switch_names_its_fix() -> None:
    with pytest.raises(SessionUnobtainable, match="enable the Native API") as info:
        await api(lambda _r: error(400, "native_api_disabled")).sign_in("ticket-text")
    assert info.value.reason == "native_api_disabled"
    assert "ticket-text" not in str(info.value)


async def test_a_production_instance_refuses_creating_sessions() -> None:
    with pytest.raises(DevelopmentOnly):
        await api(lambda _r: error(400, "request_invalid_for_environment")).create("u", "o")


async def test_a_rate_limit_carries_retry_after() -> None:
    limited = error(429, "too_many_requests", {"Retry-After": "7"})
    with pytest.raises(TokenUnavailable) as info:
        await api(lambda _r: limited).sign_in("ticket")
    assert (info.value.status, info.value.retry_after_s) == (429, 7.0)


async def test_an_unknown_session_has_ended() -> None:
    with pytest.raises(SessionEnded):
        await api(lambda _r: error(404, "resource_not_found")).get("sess_1")


async def test_clerk_unreachable_is_retryable() -> None:
    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with pytest.raises(TokenUnavailable, match="unreachable"):
        await api(down).list_active("user_1")


async def test_the_sign_in_reads_the_client_jwt_from_the_response_header() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        session = {"id": "sess_1", "status": "active", "last_active_organization_id": "org_1"}
        body = {
            "response": {"status": "complete", "created_session_id": "sess_1"},
            "client": {"sessions": [session]},
        }
        return httpx.Response(200, json=body, headers={"Authorization": CLIENT_JWT})

    signed = await api(answer).sign_in("ticket-text")
    assert signed.client_jwt == CLIENT_JWT
    assert signed.session["id"] == "sess_1"
    assert CLIENT_JWT not in repr(signed)
    (request,) = seen
    assert request.url.params["_is_native"] == "1"
    assert "Authorization" not in request.headers  # the first request carries none
    assert request.content == b"strategy=ticket&ticket=ticket-text"
