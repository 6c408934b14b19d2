"""The Frontend API at the issuer URL: JWKS/discovery, and the native ticket sign-in.

Only what a backend that holds no browser needs (../shared/reference/clerk-sessions.md
§2, fapi/2026-05-12.yml ``createSignIn`` and ``touchSession``):

- ``POST /v1/client/sign_ins?_is_native=1``, form-encoded ``strategy=ticket&ticket=...``:
  answers ``{"response": <SignIn>, "client": <Client>}`` and the client JWT in the
  ``Authorization`` response header;
- ``POST /v1/client/sessions/{session_id}/touch?_is_native=1`` with
  ``active_organization_id``, authenticated by that client JWT in ``Authorization``
  (raw, as clerk-expo sends it; ``Bearer <jwt>`` is accepted too);
- ``GET /v1/client?_is_native=1``: the client of that JWT.

Native requests need the instance's Native API (400 ``native_api_disabled``) and must
not carry both ``Origin`` and ``Authorization``. Browser (cookie) mode is not modelled:
without ``_is_native`` the request has no client (400 ``client_not_found``). Sign-ins
are limited per IP (:attr:`Clerk.sign_in_limit`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from devstack.clerk import errors, fapi_objects
from devstack.clerk.appkey import CLERK
from devstack.clerk.replies import reply
from devstack.clerk.signin import Client
from devstack.clerk.store import new_id

if TYPE_CHECKING:
    from devstack.clerk.service import Clerk

NATIVE_FLAGS = ("1", "true")


def add_routes(root: web.Application) -> None:
    """The ``/.well-known`` documents (public, never rate-limited) and ``GET /v1/client``."""
    root.router.add_get("/.well-known/jwks.json", _public_jwks)
    root.router.add_get("/.well-known/openid-configuration", _openid_configuration)
    root.router.add_get("/v1/client", _get_client)


def client_app(clerk: Clerk) -> web.Application:
    """``/v1/client``: the native sign-in, touch and client routes."""
    app = web.Application()
    app[CLERK] = clerk
    app.router.add_post("/sign_ins", _sign_in)
    app.router.add_post("/sessions/{session_id}/touch", _touch)
    return app


async def _public_jwks(request: web.Request) -> web.Response:
    return reply(request.app[CLERK].public_jwks())


async def _openid_configuration(request: web.Request) -> web.Response:
    issuer = request.app[CLERK].issuer
    return reply(
        {
            "issuer": issuer,
            "jwks_uri": issuer + "/.well-known/jwks.json",
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
        }
    )


def _native_checks(request: web.Request) -> None:
    """Clerk's order: native mode, the instance's switch, then the header conflict."""
    if request.query.get("_is_native") not in NATIVE_FLAGS:
        raise errors.client_not_found()
    if not request.app[CLERK].settings.native_api:
        raise errors.native_api_disabled()
    if request.headers.get("Origin") and request.headers.get("Authorization"):
        raise errors.origin_and_authorization()


def _client_of(request: web.Request) -> Client | None:
    header = request.headers.get("Authorization", "")
    return request.app[CLERK].sign_ins.client_for(header) if header else None


def _answer(clerk: Clerk, response: object, client: Client) -> web.Response:
    body = {"response": response, "client": clerk.fapi_client(client)}
    return reply(body, headers={"Authorization": client.jwt})


async def _sign_in(request: web.Request) -> web.Response:
    clerk = request.app[CLERK]
    _native_checks(request)
    clerk.sign_in_limit.hit(request.remote or "unknown")
    form = await request.post()
    strategy, ticket = form.get("strategy"), form.get("ticket")
    if not isinstance(strategy, str) or not strategy:
        raise errors.param_missing("strategy")
    if strategy != "ticket":
        raise errors.param_invalid("strategy", "is not supported by the stand-in (only ticket)")
    if not isinstance(ticket, str) or not ticket:
        raise errors.param_missing("ticket")
    # A known client JWT signs in on that client; otherwise a new client (only on success).
    session = clerk.redeem_ticket(ticket, _client_of(request))
    sign_in = fapi_objects.sign_in(new_id("sia"), session, clerk.store)
    return _answer(clerk, sign_in, clerk.sign_ins.clients[session.client_id])


async def _touch(request: web.Request) -> web.Response:
    clerk = request.app[CLERK]
    _native_checks(request)
    client = _client_of(request)
    if client is None:
        raise errors.unauthenticated()
    form = await request.post()
    org = form.get("active_organization_id")
    session = clerk.sign_ins.touch(
        client, request.match_info["session_id"], org if isinstance(org, str) else None
    )
    return _answer(clerk, clerk.fapi_session(session), client)


async def _get_client(request: web.Request) -> web.Response:
    clerk = request.app[CLERK]
    _native_checks(request)
    client = _client_of(request)
    if client is None:
        raise errors.unauthenticated()
    return reply({"response": clerk.fapi_client(client), "client": None})
