"""What every Storage route shares: who is asking, the request's JSON, object responses.

Who is asking is decided by the same checks as the data API (``devstack.rest.auth``: the
gateway's ``apikey``, then the bearer token by the project secret or the Clerk JWKS); only
the refusal is Storage's: a bad token is ``AccessDenied`` with jose's message, and an
expired one is refused without PostgREST's 30 s of leeway.
"""

from __future__ import annotations

import functools
import json
import math
import time
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
from aiohttp import web

from devstack.jwt import Keyring
from devstack.rest.auth import authenticate
from devstack.rest.errors import ApiError, GatewayError
from devstack.storage import errors as err
from devstack.storage.blobs import Blob
from devstack.storage.database import Caller, as_json

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
EXPIRED_TEXT = '"exp" claim timestamp check failed'
# PostgREST's words (from devstack.rest.auth) -> jose's, as Storage says them.
_JOSE_TEXTS = {
    "JWT expired": EXPIRED_TEXT,
    "JWSError JWSInvalidSignature": "signature verification failed",
    "No suitable key or wrong key type": "no applicable key found in the JSON Web Key Set",
}


def guarded(handler: Handler) -> Handler:
    """StorageErrors and gateway refusals become their JSON responses."""

    @functools.wraps(handler)
    async def wrapper(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except err.StorageError as exc:
            return exc.response()
        except GatewayError as exc:
            return exc.response()

    return wrapper


class Auth:
    """Turns a request into a :class:`Caller`, with Storage's refusals."""

    def __init__(self, keyring: Keyring, clock: Callable[[], float] = time.time) -> None:
        self._keyring = keyring
        self._clock = clock

    def caller(self, request: web.Request, operation: str) -> Caller:
        try:
            identity = authenticate(request.headers, self._keyring)
        except GatewayError:
            raise
        except ApiError as exc:
            raise err.access_denied(_JOSE_TEXTS.get(exc.message, "Invalid Compact JWS")) from exc
        exp = identity.claims.get("exp")
        if isinstance(exp, int | float) and exp <= math.floor(self._clock()):
            raise err.access_denied(EXPIRED_TEXT)
        return Caller(
            identity=identity,
            method=request.method,
            path=request.path,
            headers={k.lower(): v for k, v in request.headers.items()},
            operation=operation,
        )


def object_name(request: web.Request) -> str:
    """The object key of the URL; InvalidKey for empty keys and dot segments."""
    name = request.match_info["name"]
    parts = name.split("/")
    if not name or any(part in ("", ".", "..") for part in parts[:-1]) or parts[-1] in (".", ".."):
        raise err.invalid_key(name)
    return name


async def json_body(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except (ValueError, UnicodeDecodeError) as exc:
        raise err.invalid_request("Body is not valid JSON") from exc
    if not isinstance(body, dict):
        raise err.invalid_request("body must be object")
    return body


def required(body: dict[str, Any], name: str) -> Any:
    if name not in body:
        raise err.StorageError(400, "InvalidRequest", f"body must have required property '{name}'")
    return body[name]


def json_response(value: Any, status: int = 200) -> web.Response:
    return web.Response(
        status=status, text=json.dumps(value, default=_jsonable), content_type="application/json"
    )


def asset(row: asyncpg.Record, blob: Blob | None, *, with_body: bool) -> web.Response:
    """The object's bytes (or, for HEAD, only its headers); NoSuchKey without bytes."""
    if blob is None:
        raise err.no_such_key()
    headers = {
        "Cache-Control": blob.cache_control,
        "ETag": blob.etag,
        "Last-Modified": row["updated_at"].strftime("%a, %d %b %Y %H:%M:%S GMT"),
    }
    if not with_body:
        headers["Content-Length"] = str(len(blob.data))
        return web.Response(status=200, headers={**headers, "Content-Type": blob.content_type})
    response = web.Response(status=200, body=blob.data, headers=headers)
    response.headers["Content-Type"] = blob.content_type
    return response


def info_body(row: asyncpg.Record) -> dict[str, Any]:
    """``InfoRenderer``'s body (``src/storage/renderer/info.ts``)."""
    decoded = as_json(row)
    metadata = decoded.get("metadata") or {}
    return {
        "id": row["id"],
        "name": row["name"],
        "version": row["version"],
        "bucket_id": row["bucket_id"],
        "size": metadata.get("size"),
        "content_type": metadata.get("mimetype"),
        "cache_control": metadata.get("cacheControl"),
        "etag": metadata.get("eTag"),
        "metadata": decoded.get("user_metadata"),
        "last_modified": row["updated_at"],
        "created_at": row["created_at"],
    }


def _jsonable(value: object) -> str:
    if hasattr(value, "isoformat"):
        return str(value.isoformat())
    return str(value)
