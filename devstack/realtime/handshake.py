"""The upgrade checks of ``supabase/realtime: lib/realtime_web/channels/user_socket.ex``.

Order: ``vsn`` (Phoenix: invalid -> 403, empty body, no delay), API key, JWT (``role`` and
``exp`` required), joins/s. Each refusal after ``vsn`` waits ``connect_error_delay_s``
(``CONNECT_ERROR_BACKOFF_MS``) and answers ``{"error": "<text>"}``.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import TYPE_CHECKING

from aiohttp import web

from devstack.jwt import JwtFailure
from devstack.realtime import limits, serializer
from devstack.realtime.tokens import NON_NUMERIC_EXP

if TYPE_CHECKING:
    from devstack.realtime.tenant import Tenant

log = logging.getLogger(__name__)

_BY_KIND = {
    "expired": (401, "Token has expired"),
    "missing_fields": (401, "Fields `role` and `exp` are required in JWT"),
    "malformed": (401, "The token provided is not a valid JWT"),
    "signature": (401, "Failed to validate JWT signature"),
}
CONNECT_FAILED = (500, "Error connecting to Realtime")


def _refusal(failure: JwtFailure) -> tuple[int, str]:
    if failure.text == NON_NUMERIC_EXP:
        return CONNECT_FAILED
    if failure.kind == "signer":
        return 401, failure.text
    return _BY_KIND.get(failure.kind, CONNECT_FAILED)


async def _refuse(tenant: Tenant, status: int, text: str) -> web.Response:
    await asyncio.sleep(tenant.settings.connect_error_delay_s)
    body = json.dumps({"error": text})
    return web.Response(status=status, text=body, content_type="application/json")


async def check_upgrade(tenant: Tenant, request: web.Request) -> tuple[str, str] | web.Response:
    """``(vsn, socket token)`` for an accepted upgrade, else the refusal to send."""
    vsn = request.query.get("vsn", serializer.V1)
    if vsn not in (serializer.V1, serializer.V2):
        return web.Response(status=403)
    # x-api-key wins over the apikey query parameter.
    token = request.headers.get("x-api-key", request.query.get("apikey"))
    if not token:
        return await _refuse(tenant, 401, "API key is missing")
    try:
        tenant.keyring.verify(token)
    except JwtFailure as failure:
        return await _refuse(tenant, *_refusal(failure))
    except Exception:
        log.exception("socket token verification crashed")
        return await _refuse(tenant, *CONNECT_FAILED)
    if tenant.limits.joins.tripped():
        return await _refuse(tenant, 429, limits.JOINS_PER_SECOND_CONNECT)
    return vsn, token
