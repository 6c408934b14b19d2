"""Errors as the Supabase data API returns them: PostgREST's JSON shape and statuses.

Tree::

    ApiError            PostgREST's ``{"code", "details", "hint", "message"}`` body
    GatewayError        the API gateway's ``{"message", "hint"}`` body (missing/invalid apikey)

Database errors are translated once, in :func:`from_postgres`, with PostgREST's table of
SQLSTATE -> HTTP status (``src/PostgREST/Error.hs: mapSQLtoHTTP``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import asyncpg
from aiohttp import web

JSON_UTF8 = "application/json"


class ApiError(Exception):
    """An error response in PostgREST's shape; ``status`` is the HTTP status."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        details: str | None = None,
        hint: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.hint = hint
        self.headers = dict(headers or {})

    def body(self) -> dict[str, Any]:
        """The JSON body PostgREST sends (verbose mode, as Supabase runs it)."""
        return {
            "code": self.code,
            "details": self.details,
            "hint": self.hint,
            "message": self.message,
        }

    def response(self) -> web.Response:
        """This error as an aiohttp response."""
        headers = {"Proxy-Status": f"PostgREST; error={self.code}", **self.headers}
        return web.Response(
            status=self.status,
            text=json.dumps(self.body()),
            content_type=JSON_UTF8,
            charset="utf-8",
            headers=headers,
        )


class GatewayError(ApiError):
    """Refused by the gateway in front of PostgREST: its body has no code or details."""

    def body(self) -> dict[str, Any]:
        return {"message": self.message, "hint": self.hint}

    def response(self) -> web.Response:
        return web.Response(
            status=self.status,
            text=json.dumps(self.body()),
            content_type=JSON_UTF8,
            charset="utf-8",
        )


def parse_error(message: str, details: str | None = None) -> ApiError:
    """PGRST100: a query string PostgREST cannot parse."""
    return ApiError(400, "PGRST100", message, details=details)


def not_implemented(details: str) -> ApiError:
    """PGRST127: a PostgREST feature this stand-in does not implement."""
    return ApiError(400, "PGRST127", "Feature not implemented", details=details)


def undefined_column(relation: str, column: str) -> ApiError:
    """42703 as PostgREST relays it when a filter, order or select names no column."""
    return ApiError(400, "42703", f"column {relation}.{column} does not exist")


def invalid_body(message: str = "Empty or invalid json") -> ApiError:
    """PGRST102: a request body that is not the JSON PostgREST expects."""
    return ApiError(400, "PGRST102", message)


# Prefix -> status, checked after the exact codes; the first matching prefix wins.
_EXACT = {
    "23503": 409,
    "23505": 409,
    "25006": 405,
    "53400": 500,
    "57P01": 503,
    "P0001": 400,
    "42883": 404,
    "42P01": 404,
    "42P17": 500,
}
_PREFIXES = (
    ("08", 503), ("09", 500), ("0L", 403), ("0P", 403), ("25", 500), ("28", 403),
    ("2D", 500), ("38", 500), ("39", 500), ("3B", 500), ("40", 500), ("53", 503),
    ("54", 500), ("55", 500), ("57", 500), ("58", 500), ("F0", 500), ("HV", 500),
    ("P0", 500), ("XX", 500),
)  # fmt: skip


def status_for(sqlstate: str, message: str, *, authed: bool) -> int:
    """PostgREST's HTTP status for a Postgres error (``mapSQLtoHTTP``)."""
    if sqlstate == "42501":
        # The anonymous role gets 401 so that clients know a token would help.
        return 403 if authed else 401
    if sqlstate == "21000":
        return 400 if message.endswith("requires a WHERE clause") else 500
    if sqlstate == "22023" and message.startswith("role") and message.endswith("does not exist"):
        return 401
    if sqlstate in _EXACT:
        return _EXACT[sqlstate]
    return next((status for prefix, status in _PREFIXES if sqlstate.startswith(prefix)), 400)


def from_postgres(exc: asyncpg.PostgresError, *, authed: bool) -> ApiError:
    """Translate a server error: SQLSTATE as ``code``, Postgres' own texts, PostgREST's status."""
    sqlstate = str(getattr(exc, "sqlstate", None) or "XX000")
    message = str(getattr(exc, "message", None) or exc)
    status = status_for(sqlstate, message, authed=authed)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return ApiError(
        status,
        sqlstate,
        message,
        details=getattr(exc, "detail", None),
        hint=getattr(exc, "hint", None),
        headers=headers,
    )
