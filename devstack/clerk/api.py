"""aiohttp routes of the Clerk host: BAPI under ``/v1`` and the FAPI ``/.well-known`` pair.

BAPI routes need ``Authorization: Bearer <secret key>`` and share one request budget
(:meth:`Clerk.set_rate_limit`); ``GET /v1/jwks`` needs the key but, as in Clerk, is
never rate-limited. Every refusal is a Clerk-shaped error body.
"""

from __future__ import annotations

import hmac
from typing import TYPE_CHECKING

from aiohttp import web
from aiohttp.typedefs import Handler

from devstack.clerk import errors, params
from devstack.clerk.appkey import CLERK
from devstack.clerk.control import control_app

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
        return web.json_response(exc.body(), status=exc.status, headers=headers)


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
    root = web.Application(middlewares=[clerk_errors])
    root[CLERK] = clerk
    root.router.add_get("/.well-known/jwks.json", _public_jwks)
    root.router.add_get("/.well-known/openid-configuration", _openid_configuration)
    root.add_subapp("/v1", _bapi_app(clerk))
    root.add_subapp("/__devstack/clerk", control_app(clerk))
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
    bapi.router.add_post("/organizations", _create_organization)
    bapi.router.add_post("/organizations/{org_id}/memberships", _add_membership)
    bapi.router.add_post("/sessions", _create_session)
    bapi.router.add_get("/sessions/{session_id}", _get_session)
    bapi.router.add_post("/sessions/{session_id}/revoke", _revoke_session)
    bapi.router.add_post("/sessions/{session_id}/tokens", _create_token)
    bapi.router.add_post("/sessions/{session_id}/tokens/{template}", _create_token)
    return bapi


async def _public_jwks(request: web.Request) -> web.Response:
    return web.json_response(request.app[CLERK].public_jwks())


async def _openid_configuration(request: web.Request) -> web.Response:
    issuer = request.app[CLERK].issuer
    return web.json_response(
        {
            "issuer": issuer,
            "jwks_uri": issuer + "/.well-known/jwks.json",
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
        }
    )


async def _bapi_jwks(request: web.Request) -> web.Response:
    return web.json_response(request.app[CLERK].public_jwks())


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
    return web.json_response(user)


async def _create_organization(request: web.Request) -> web.Response:
    body = await params.json_body(request)
    org = request.app[CLERK].create_organization(
        params.required_str(body, "name"),
        slug=params.optional_str(body, "slug"),
        created_by=params.optional_str(body, "created_by"),
    )
    return web.json_response(org)


async def _add_membership(request: web.Request) -> web.Response:
    body = await params.json_body(request)
    membership = request.app[CLERK].add_membership(
        request.match_info["org_id"],
        params.required_str(body, "user_id"),
        params.required_str(body, "role"),
    )
    return web.json_response(membership)


async def _create_session(request: web.Request) -> web.Response:
    body = await params.json_body(request)
    session = request.app[CLERK].create_session(
        params.required_str(body, "user_id"),
        params.optional_str(body, "active_organization_id"),
    )
    return web.json_response(session)


async def _get_session(request: web.Request) -> web.Response:
    return web.json_response(request.app[CLERK].get_session(request.match_info["session_id"]))


async def _revoke_session(request: web.Request) -> web.Response:
    session_id = request.match_info["session_id"]
    return web.json_response(request.app[CLERK].revoke_session(session_id))


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
    return web.json_response({"object": "token", "jwt": jwt})
