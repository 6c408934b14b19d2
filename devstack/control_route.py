"""The stand-ins' test control routes: a JSON body in, a JSON result out, 400 on bad input."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

ControlOp = Callable[[dict[str, Any]], Awaitable[Any]]


def json_route(op: ControlOp) -> Callable[[web.Request], Awaitable[web.Response]]:
    """An aiohttp handler calling ``op`` with the request's JSON object (``{}`` if none)."""

    async def handler(request: web.Request) -> web.Response:
        try:
            body = await request.json() if request.can_read_body else {}
            result = await op(body if isinstance(body, dict) else {})
        except (ValueError, TypeError, KeyError) as exc:
            return web.json_response({"error": repr(exc)}, status=400)
        return web.json_response(result, dumps=lambda v: json.dumps(v, default=str))

    return handler
