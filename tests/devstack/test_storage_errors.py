"""Storage's error bodies and statuses (devstack.storage.errors), from its own source."""

from __future__ import annotations

import json

import asyncpg
import pytest

from devstack.storage import errors


def postgres_error(sqlstate: str, message: str) -> asyncpg.PostgresError:
    exc = asyncpg.PostgresError(message)
    exc.sqlstate = sqlstate  # type: ignore[attr-defined]
    exc.message = message  # type: ignore[attr-defined]
    return exc


def test_an_error_is_http_400_carrying_its_own_status_in_the_body() -> None:
    response = errors.access_denied(errors.RLS_MESSAGE).response()
    assert response.status == 400
    assert response.text is not None
    assert json.loads(response.text) == {
        "statusCode": "403",
        "error": "Unauthorized",
        "message": "new row violates row-level security policy",
        "code": "AccessDenied",
    }


def test_only_internal_errors_keep_their_status() -> None:
    assert errors.StorageError(500, "InternalError", "Internal server error").http_status == 500
    assert errors.no_such_key().http_status == 400


@pytest.mark.parametrize(
    ("error", "body"),
    [
        (errors.no_such_key(), ("404", "not_found", "Object not found", "NoSuchKey")),
        (errors.no_such_bucket(), ("404", "Bucket not found", "Bucket not found", "NoSuchBucket")),
        (
            errors.key_already_exists(),
            ("409", "Duplicate", "The resource already exists", "KeyAlreadyExists"),
        ),
        (
            errors.entity_too_large(),
            (
                "413",
                "Payload too large",
                "The object exceeded the maximum allowed size",
                "EntityTooLarge",
            ),
        ),
    ],
)
def test_bodies_match_the_servers_error_codes(
    error: errors.StorageError, body: tuple[str, str, str, str]
) -> None:
    assert tuple(error.body().values()) == body


@pytest.mark.parametrize(
    ("sqlstate", "message", "code", "text"),
    [
        (
            "42501",
            'new row violates row-level security policy for table "objects"',
            "AccessDenied",
            "new row violates row-level security policy",
        ),
        ("42501", "permission denied for table x", "AccessDenied", "permission denied for table x"),
        ("23505", "duplicate key", "ResourceAlreadyExists", "The resource already exists"),
        ("XX000", "boom", "DatabaseError", "database error, code: XX000"),
    ],
)  # fmt: skip
def test_database_errors_are_translated_as_dberror_does(
    sqlstate: str, message: str, code: str, text: str
) -> None:
    translated = errors.from_postgres(postgres_error(sqlstate, message))
    assert (translated.code, translated.message) == (code, text)
