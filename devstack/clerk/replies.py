"""JSON answers with the exact ``Content-Type`` Clerk sends.

``@clerk/backend`` parses a body as JSON only when ``Content-Type`` is exactly
``application/json`` (its ``request.ts`` compares the header with
``constants.ContentTypes.Json``); aiohttp's ``json_response`` appends ``; charset=utf-8``,
so every Clerk answer goes through :func:`reply` instead.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

JSON = "application/json"


def reply(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    """``data`` as JSON with ``Content-Type: application/json`` and no charset parameter."""
    response = web.Response(body=json.dumps(data).encode(), status=status, headers=headers)
    response.headers["Content-Type"] = JSON
    return response
