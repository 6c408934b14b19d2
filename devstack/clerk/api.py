"""aiohttp routes of the Clerk host: BAPI under ``/v1``, the Frontend API beside it.

One host serves both APIs (a real instance has ``api.clerk.com`` and its own Frontend
API domain, the tokens' ``iss``): BAPI routes (``/v1/...``) need
``Authorization: Bearer <secret key>`` and share one request budget
(:meth:`Clerk.set_rate_limit`); ``GET /v1/jwks`` needs the key but, as in Clerk, is
never rate-limited. The Frontend API (``/v1/client/...``, ``/.well-known/...``) is
in :mod:`devstack.clerk.fapi`. Every refusal is a Clerk-shaped error body, every
answer ``Content-Type: application/json`` (:mod:`devstack.clerk.replies`); every
request except the control surface's is counted in :attr:`Clerk.requests`.
"""

from __future__ import annotations

import hmac
from typing import TYPE_CHECKING

from aiohttp import web
from aiohttp.typedefs import Handler

from devstack.clerk import api_sessions, errors, fapi, params
from devstack.clerk.appkey import CLERK
from devstack.clerk.control import CONTROL_PREFIX, control_app
from devstack.clerk.replies import reply

if TYPE_CHECKING:
    from devstack.clerk.service import Clerk

JWKS_PATH = "/jwks"


@web.middleware
async def clerk_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn :class:`ClerkAPIError` into its status, JSON body and Retry-After header."""
    try:
        return await handler(request)
    except errors.ClerkAPIError as exc:
        headers = {} if exc.retry_after_s is None else {"Retry-After": str(exc.retry_after_s)}
        return reply(exc.body(), status=exc.status, headers=headers)


@web.middleware
async def count_requests(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Count each BAPI/FAPI request by ``"<METHOD> <route>"``, refused ones included."""
    if not request.path.startswith(CONTROL_PREFIX):
        request.app[CLERK].requests[route_key(request)] += 1
    return await handler(request)


def route_key(request: web.Request) -> str:
    """``"POST /v1/sessions/{session_id}/tokens"``: the route's template, not its ids."""
    resource = request.match_info.route.resource
    return f"{request.method} {resource.canonical if resource else request.path}"


@web.middleware
async def secret_key_auth(request: web.Request, handler: Handler) -> web.StreamResponse:
    """401 without the instance's secret key; then spend one unit of the rate budget."""
    clerk = request.app[CLERK]
    supplied = request.headers.get("Authorization", "")
    if not hmac.compare_digest(supplied.encode(), f"Bearer {clerk.secret_key}".encode()):
        raise errors.unauthorized()
    if not _is_jwks(request):
        clerk.faults.check_rate()
    return await handler(request)


def _is_jwks(request: web.Request) -> bool:
    return request.method == "GET" and request.path.rstrip("/") == "/v1" + JWKS_PATH


def build_app(clerk: Clerk) -> web.Application:
    """The root application: ``/.well-known/*``, ``/v1`` (BAPI), ``/__devstack/clerk/``."""
    root = web.Application(middlewares=[count_requests, clerk_errors])
    root[CLERK] = clerk
    fapi.add_routes(root)
    root.add_subapp("/v1/client", fapi.client_app(clerk))  # before /v1: longest prefix first
    root.add_subapp("/v1", _bapi_app(clerk))
    root.add_subapp(CONTROL_PREFIX, control_app(clerk))
    # A hang must not hold the server's shutdown for its whole duration.
    root.on_shutdown.append(lambda _app: _release_hangs(clerk))
    return root


async def _release_hangs(clerk: Clerk) -> None:
    clerk.clear_faults()


def _bapi_app(clerk: Clerk) -> web.Application:
    bapi = web.Application(middlewares=[secret_key_auth])  # errors: the root middleware
    bapi[CLERK] = clerk
    bapi.router.add_get(JWKS_PATH, _bapi_jwks)
    bapi.router.add_post("/users", _create_user)
    bapi.router.add_get("/users", _list_users)
    bapi.router.add_get("/users/{user_id}", _get_user)
    bapi.router.add_delete("/users/{user_id}", _delete_user)
    bapi.router.add_post("/organizations", _create_organization)
    bapi.router.add_post("/organizations/{org_id}/memberships", _add_membership)
    bapi.router.add_delete("/organizations/{org_id}/memberships/{user_id}", _remove_membership)
    api_sessions.add_routes(bapi)
    return bapi


async def _bapi_jwks(request: web.Request) -> web.Response:
    return reply(request.app[CLERK].public_jwks())


async def _create_user(request: web.Request) -> web.Response:
    body = await params.json_body(request)
    user = request.app[CLERK].create_user(
        email_addresses=params.str_list(body, "email_address"),
        first_name=params.optional_str(body, "first_name"),
        last_name=params.optional_str(body, "last_name"),
        username=params.optional_str(body, "username"),
        external_id=params.optional_str(body, "external_id"),
        public_metadata=params.metadata(body, "public_metadata"),
        private_metadata=params.metadata(body, "private_metadata"),
        # Clerk enrols a TOTP second factor when a secret comes with the user.
        second_factor=params.optional_str(body, "totp_secret") is not None,
    )
    return reply(user)


async def _list_users(request: web.Request) -> web.Response:
    """``GET /v1/users``: a JSON array, newest first; ``external_id`` and ``user_id``
    (repeatable) filter it, as in Clerk's ``GetUserList``."""
    clerk = request.app[CLERK]
    external = set(request.query.getall("external_id", []))
    ids = set(request.query.getall("user_id", []))
    users = [
        clerk.get_user(user.id)
        for user in reversed(list(clerk.store.users.values()))
        if (not external or user.external_id in external) and (not ids or user.id in ids)
    ]
    return reply(users)


async def _get_user(request: web.Request) -> web.Response:
    return reply(request.app[CLERK].get_user(request.match_info["user_id"]))


async def _delete_user(request: web.Request) -> web.Response:
    return reply(request.app[CLERK].delete_user(request.match_info["user_id"]))


async def _create_organization(request: web.Request) -> web.Response:
    body = await params.json_body(request)
    org = request.app[CLERK].create_organization(
        params.required_str(body, "name"),
        slug=params.optional_str(body, "slug"),
        created_by=params.optional_str(body, "created_by"),
    )
    return reply(org)


async def _add_membership(request: web.Request) -> web.Response:
    body = await params.json_body(request)
    membership = request.app[CLERK].add_membership(
        request.match_info["org_id"],
        params.required_str(body, "user_id"),
        params.required_str(body, "role"),
    )
    return reply(membership)


async def _remove_membership(request: web.Request) -> web.Response:
    org_id, user_id = request.match_info["org_id"], request.match_info["user_id"]
    return reply(request.app[CLERK].remove_membership(org_id, user_id))
