"""Errors as Supabase Storage returns them.

Body ``{"statusCode", "error", "message", "code"}`` (``src/http/schemas/error.ts``), where
``statusCode`` is the error's own status as a string and the HTTP status is 400 for every
error but a 500 (``StorageBackendError.userStatusCode``; ``src/http/error-handler.ts``): a
refused upload is HTTP 400 with ``"statusCode": "403"``. The constructors below copy
``src/internal/errors/codes.ts``; database errors are translated once, in
:func:`from_postgres`, as ``src/storage/database/errors.ts`` does.
"""

from __future__ import annotations

import json

import asyncpg
from aiohttp import web

RLS_MESSAGE = "new row violates row-level security policy"


class StorageError(Exception):
    """An error response in Storage's shape."""

    def __init__(self, status: int, code: str, message: str, error: str | None = None) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.error = error or code

    @property
    def http_status(self) -> int:
        return self.status if self.status in (500, 544) else 400

    def body(self) -> dict[str, str]:
        return {
            "statusCode": str(self.status),
            "error": self.error,
            "message": self.message,
            "code": self.code,
        }

    def response(self) -> web.Response:
        return web.Response(
            status=self.http_status, text=json.dumps(self.body()), content_type="application/json"
        )


def access_denied(message: str = "Access denied") -> StorageError:
    return StorageError(403, "AccessDenied", message, "Unauthorized")


def no_such_key() -> StorageError:
    return StorageError(404, "NoSuchKey", "Object not found", "not_found")


def no_such_bucket() -> StorageError:
    return StorageError(404, "NoSuchBucket", "Bucket not found", "Bucket not found")


def key_already_exists() -> StorageError:
    return StorageError(409, "KeyAlreadyExists", "The resource already exists", "Duplicate")


def resource_already_exists() -> StorageError:
    return StorageError(409, "ResourceAlreadyExists", "The resource already exists", "Duplicate")


def entity_too_large() -> StorageError:
    return StorageError(
        413, "EntityTooLarge", "The object exceeded the maximum allowed size", "Payload too large"
    )


def invalid_mime_type(mime_type: str) -> StorageError:
    return StorageError(
        415, "InvalidMimeType", f"mime type {mime_type} is not supported", "invalid_mime_type"
    )


def invalid_jwt(message: str) -> StorageError:
    return StorageError(400, "InvalidJWT", message)


def invalid_signature(message: str = "Invalid signature") -> StorageError:
    return StorageError(400, "InvalidSignature", message)


def invalid_request(message: str) -> StorageError:
    return StorageError(400, "InvalidRequest", message)


def invalid_parameter(name: str) -> StorageError:
    return StorageError(400, "InvalidParameter", f"Invalid Parameter {name}")


def invalid_key(key: str) -> StorageError:
    return StorageError(400, "InvalidKey", f"Invalid key: {key}")


def no_content() -> StorageError:
    return StorageError(400, "InvalidRequest", "No content provided")


def from_postgres(exc: asyncpg.PostgresError) -> StorageError:
    """``DBError.fromDBError``: the SQLSTATEs a request can meet, else DatabaseError."""
    sqlstate = str(getattr(exc, "sqlstate", "") or "")
    message = str(getattr(exc, "message", None) or exc)
    if sqlstate == "42501":
        return access_denied(RLS_MESSAGE if "row-level security" in message else message)
    if sqlstate == "23505":
        return resource_already_exists()
    if sqlstate == "57014":
        return StorageError(544, "DatabaseTimeout", "The connection to the database timed out")
    return StorageError(500, "DatabaseError", f"database error, code: {sqlstate}")
