"""BAPI routes of sessions and sign-in tokens (bapi/2026-05-12.yml, tags Sessions and
Sign-in Tokens): create, get, list, revoke, mint tokens; create and revoke tickets.
"""

from __future__ import annotations

from aiohttp import web

from devstack.clerk import errors, params
from devstack.clerk.appkey import CLERK
from devstack.clerk.replies import reply

MAX_LIST_LIMIT = 500  # LimitParameter: 1..500, default 10
# ?status= values of GetSessionList ("pending" is not one of them).
LISTED_STATUSES = frozenset(
    {"abandoned", "active", "ended", "expired", "removed", "replaced", "revoked"}
)


def add_routes(bapi: web.Application) -> None:
    """Mount the routes on the ``/v1`` sub-application."""
    bapi.router.add_get("/sessions", _list_sessions)
    bapi.router.add_post("/sessions", _create_session)
    bapi.router.add_get("/sessions/{session_id}", _get_session)
    bapi.router.add_post("/sessions/{session_id}/revoke", _revoke_session)
    bapi.router.add_post("/sessions/{session_id}/tokens", _create_token)
    bapi.router.add_post("/sessions/{session_id}/tokens/{template}", _create_token)
    bapi.router.add_post("/sign_in_tokens", _create_sign_in_token)
    bapi.router.add_post("/sign_in_tokens/{token_id}/revoke", _revoke_sign_in_token)


async def _create_session(request: web.Request) -> web.Response:
    body = await params.json_body(request)
    session = request.app[CLERK].create_session(
        params.required_str(body, "user_id"),
        params.optional_str(body, "active_organization_id"),
    )
    return reply(session)


async def _get_session(request: web.Request) -> web.Response:
    return reply(request.app[CLERK].get_session(request.match_info["session_id"]))


async def _list_sessions(request: web.Request) -> web.Response:
    """``GET /v1/sessions``: a plain array, or ``{data, total_count}`` with ``paginated``.

    ``@clerk/backend``'s ``getSessionList`` always sends ``paginated=true`` and reads
    ``data``/``total_count``; ``clerk-backend-api`` reads the plain array.
    """
    query = request.query
    user_id, client_id = query.get("user_id"), query.get("client_id")
    if user_id is None and client_id is None:
        # "Requires either clientId or userId" (@clerk/backend SessionApi).
        raise errors.param_missing("user_id")
    status = query.get("status")
    if status is not None and status not in LISTED_STATUSES:
        raise errors.param_invalid("status", f"must be one of {sorted(LISTED_STATUSES)}")
    limit = _query_int(query.get("limit"), "limit", 10, (1, MAX_LIST_LIMIT))
    offset = _query_int(query.get("offset"), "offset", 0, (0, None))
    found = request.app[CLERK].list_sessions(user_id=user_id, client_id=client_id, status=status)
    page = found[offset : offset + limit]
    if query.get("paginated") == "true":
        return reply({"data": page, "total_count": len(found)})
    return reply(page)


def _query_int(raw: str | None, name: str, default: int, bounds: tuple[int, int | None]) -> int:
    if raw is None:
        return default
    low, high = bounds
    try:
        value = int(raw)
    except ValueError as exc:
        raise errors.param_invalid(name, "must be an integer") from exc
    if value < low or (high is not None and value > high):
        raise errors.param_invalid(name, f"must be between {low} and {high or 'any'}")
    return value


async def _revoke_session(request: web.Request) -> web.Response:
    session_id = request.match_info["session_id"]
    return reply(request.app[CLERK].revoke_session(session_id))


async def _create_token(request: web.Request) -> web.StreamResponse:
    """Session token, or JWT-template token when the path names a template."""
    clerk = request.app[CLERK]
    clerk.token_requests += 1
    await clerk.faults.before_token_request(request)
    if request.transport is None or request.transport.is_closing():
        return web.Response()  # dropped by a scripted fault: nothing will be sent
    body = await params.json_body(request)
    jwt = clerk.mint(
        request.match_info["session_id"],
        params.lifetime(body.get("expires_in_seconds")),
        request.match_info.get("template"),
    )
    return reply({"object": "token", "jwt": jwt})


async def _create_sign_in_token(request: web.Request) -> web.Response:
    body = await params.json_body(request)
    token = request.app[CLERK].create_sign_in_token(
        params.required_str(body, "user_id"),
        org_id=params.optional_str(body, "org_id"),
        expires_in_seconds=params.positive_int(body, "expires_in_seconds"),
    )
    return reply(token)


async def _revoke_sign_in_token(request: web.Request) -> web.Response:
    token_id = request.match_info["token_id"]
    return reply(request.app[CLERK].revoke_sign_in_token(token_id))
