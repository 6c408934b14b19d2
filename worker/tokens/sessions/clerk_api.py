"""The Clerk calls a session keeper makes: Backend API sessions and sign-in tokens (with
the secret key), and the Frontend API's native ticket sign-in and ``touch`` (at the
instance's Frontend API, the tokens' ``iss``).

Every httpx and HTTP failure is translated here: ``SessionUnobtainable`` when no retry
can help (the secret key refused, the user or org unknown, not a member, the Native API
off), ``SessionEnded`` for a session Clerk no longer knows, ``DevelopmentOnly`` when a
production instance refuses ``POST /v1/sessions``, else ``TokenUnavailable``
(retryable, with Clerk's ``Retry-After``). No message contains the secret key, a ticket
or the client JWT.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx

from worker.errors import SessionEnded, SessionUnobtainable, TokenError, TokenUnavailable
from worker.settings import SecretStr
from worker.tokens.sources.clerk import clerk_error, retry_after_seconds

__all__ = ["ClerkSessionApi", "DevelopmentOnly", "SignedIn"]

NATIVE = {"_is_native": "1"}
TICKET_LIFETIME_S = 120  # the sign-in token is redeemed at once
_NATIVE_FIX = (
    "enable the Native API in the Clerk Dashboard (Configure > Native applications) or use "
    "a development instance (sk_test_); note that it opens a sign-in path without browser "
    "CAPTCHA"
)


class DevelopmentOnly(TokenError):
    """``POST /v1/sessions`` answered ``request_invalid_for_environment``: a production
    instance, where sessions come from sign-in tokens."""


class SignedIn:
    """A completed ticket sign-in: the new session and the client that holds it."""

    __slots__ = ("client_jwt", "session")

    def __init__(self, session: dict[str, Any], client_jwt: str) -> None:
        self.session = session
        self.client_jwt = client_jwt

    def __repr__(self) -> str:
        return f"SignedIn(session={self.session.get('id')!r}, client_jwt=[secure])"


class ClerkSessionApi:
    """Sessions of one instance: ``api_url`` (BAPI), ``frontend_url`` (FAPI, may be None
    on development instances, which never sign in)."""

    def __init__(
        self,
        api_url: str,
        secret_key: SecretStr,
        frontend_url: str | None,
        *,
        http: httpx.AsyncClient,
    ) -> None:
        self._bapi = api_url.rstrip("/") + "/v1"
        self._fapi = frontend_url.rstrip("/") + "/v1/client" if frontend_url else None
        self._secret = secret_key
        self._http = http

    def __repr__(self) -> str:
        return f"ClerkSessionApi(api={self._bapi!r}, secret_key=[secure])"

    @property
    def production_key(self) -> bool:
        """True for a production instance's secret key (``sk_live_``)."""
        return self._secret.get_secret_value().startswith("sk_live_")

    async def get(self, session_id: str) -> dict[str, Any]:
        """``GET /v1/sessions/{id}``; ``SessionEnded`` when Clerk does not know it."""
        response = await self._backend("GET", f"/sessions/{quote(session_id, safe='')}")
        if response.status_code == 404:
            raise SessionEnded(f"Clerk knows no session {session_id}")
        return _object(self._checked(response, "reading a session"))

    async def list_active(self, user_id: str) -> list[dict[str, Any]]:
        """The user's active sessions, newest first."""
        params = {"user_id": user_id, "status": "active", "limit": "100"}
        response = await self._backend("GET", "/sessions", params=params)
        body = _json(self._checked(self._user_known(response, user_id), "listing sessions"))
        return [s for s in body if isinstance(s, dict)] if isinstance(body, list) else []

    async def create(self, user_id: str, org_id: str) -> dict[str, Any]:
        """``POST /v1/sessions`` with the org active (development instances)."""
        body = {"user_id": user_id, "active_organization_id": org_id}
        response = await self._backend("POST", "/sessions", json=body)
        code, _ = clerk_error(response)
        if response.status_code == 400 and code == "request_invalid_for_environment":
            raise DevelopmentOnly("POST /v1/sessions is for development instances only")
        return _object(self._checked(self._user_known(response, user_id), "creating a session"))

    async def revoke(self, session_id: str) -> None:
        """``POST /v1/sessions/{id}/revoke``; a session Clerk no longer knows is fine."""
        response = await self._backend("POST", f"/sessions/{quote(session_id, safe='')}/revoke")
        if response.status_code != 404:
            self._checked(response, "revoking a session")

    async def sign_in_token(self, user_id: str, org_id: str) -> tuple[str, str]:
        """``POST /v1/sign_in_tokens`` for ``org_id``: (its id, the one-use ticket)."""
        body = {"user_id": user_id, "org_id": org_id, "expires_in_seconds": TICKET_LIFETIME_S}
        response = await self._backend("POST", "/sign_in_tokens", json=body)
        token = _object(self._checked(self._user_known(response, user_id), "a sign-in token"))
        if not isinstance(token.get("token"), str) or not isinstance(token.get("id"), str):
            raise TokenUnavailable("Clerk answered a sign-in token without its ticket")
        return token["id"], token["token"]

    async def revoke_sign_in_token(self, token_id: str) -> None:
        """Revoke an unused ticket (after a failed sign-in)."""
        path = f"/sign_in_tokens/{quote(token_id, safe='')}/revoke"
        self._checked(await self._backend("POST", path), "revoking a sign-in token")

    async def sign_in(self, ticket: str) -> SignedIn:
        """The Frontend API's native ``strategy=ticket`` sign-in on a new client."""
        form = {"strategy": "ticket", "ticket": ticket}
        response = await self._frontend("/sign_ins", form, client_jwt=None)
        body = _object(self._checked(response, "the ticket sign-in"))
        client_jwt = response.headers.get("Authorization", "")
        sid = (body.get("response") or {}).get("created_session_id")
        if not client_jwt or not isinstance(sid, str):
            raise TokenUnavailable("the ticket sign-in answered no session or no client JWT")
        return SignedIn(_client_session(body, sid), client_jwt)

    async def touch(self, session_id: str, client_jwt: str, org_id: str) -> dict[str, Any]:
        """Make ``org_id`` the session's active organization (Frontend API ``touch``)."""
        path = f"/sessions/{quote(session_id, safe='')}/touch"
        form = {"active_organization_id": org_id}
        response = await self._frontend(path, form, client_jwt=client_jwt)
        return _object(_object(self._checked(response, "touching the session")).get("response"))

    async def _backend(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self._secret.get_secret_value()}"}
        return await self._send(method, self._bapi + path, headers=headers, **kwargs)

    async def _frontend(
        self, path: str, form: dict[str, str], *, client_jwt: str | None
    ) -> httpx.Response:
        if self._fapi is None:
            raise SessionUnobtainable(
                "no_frontend_api",
                "signing the service user in needs the Frontend API: set CLERK_ISSUER",
            )
        headers = {"Authorization": client_jwt} if client_jwt else {}
        url = self._fapi + path
        return await self._send("POST", url, headers=headers, params=NATIVE, data=form)

    async def _send(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        try:
            return await self._http.request(method, url, **kwargs)
        except httpx.TimeoutException as exc:
            raise TokenUnavailable(f"Clerk did not answer in time ({type(exc).__name__})") from exc
        except httpx.HTTPError as exc:
            raise TokenUnavailable(f"Clerk unreachable: {type(exc).__name__}") from exc

    def _user_known(self, response: httpx.Response, user_id: str) -> httpx.Response:
        if response.status_code == 404:
            raise SessionUnobtainable(
                "user_not_found",
                f"Clerk knows no user CLERK_USER_ID={user_id} or no organization ORG_ID "
                f"({_detail(response)}): create the service user, add it to ORG_ID with the "
                "role org:worker, and set CLERK_USER_ID to its user_... id",
            )
        return response

    def _checked(self, response: httpx.Response, what: str) -> httpx.Response:
        if response.status_code < 300:
            return response
        raise _refusal(response, what)


def _refusal(response: httpx.Response, what: str) -> Exception:
    status, (code, _) = response.status_code, clerk_error(response)
    detail = _detail(response)
    if status in (401, 403) and not what.startswith("touch"):
        return SessionUnobtainable(
            "secret_key_refused",
            f"Clerk refused CLERK_SECRET_KEY ({what}: HTTP {status}, {detail}): set the "
            "current secret key of the instance whose Frontend API is CLERK_ISSUER",
        )
    if code == "not_a_member_in_organization":
        return SessionUnobtainable(
            "not_a_member",
            f"the service user is not a member of ORG_ID ({what}: {detail}): add CLERK_USER_ID "
            "to the organization with the role org:worker",
        )
    if code == "native_api_disabled":
        return SessionUnobtainable(
            "native_api_disabled", f"Clerk's Native API is disabled ({what}): {_NATIVE_FIX}"
        )
    retry_after = retry_after_seconds(response.headers.get("Retry-After"))
    return TokenUnavailable(
        f"Clerk refused {what} (HTTP {status}, {detail})", status=status, retry_after_s=retry_after
    )


def _detail(response: httpx.Response) -> str:
    code, message = clerk_error(response)
    return f"{code}: {message}" if code else message


def _json(response: httpx.Response) -> object:
    try:
        return response.json()
    except ValueError:
        return None


def _object(value: object) -> dict[str, Any]:
    body = _json(value) if isinstance(value, httpx.Response) else value
    if not isinstance(body, dict):
        raise TokenUnavailable("Clerk answered something that is not a JSON object")
    return body


def _client_session(body: dict[str, Any], session_id: str) -> dict[str, Any]:
    """The new session as the sign-in's piggybacked ``client`` lists it."""
    client = body.get("client") or {}
    for session in client.get("sessions") or []:
        if isinstance(session, dict) and session.get("id") == session_id:
            return session
    raise TokenUnavailable("the ticket sign-in's client does not hold the new session")
