"""Reading BAPI request bodies, with Clerk's 400/422 answers for bad input."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from devstack.clerk import errors
from devstack.clerk.tokens import MAX_LIFETIME_S


async def json_body(request: web.Request) -> dict[str, Any]:
    """The JSON object in the body; an empty body is ``{}`` (every field is optional)."""
    raw = await request.read()
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except ValueError as exc:
        raise errors.ClerkAPIError(
            400, "malformed_request_body", "malformed request", "The body is not valid JSON."
        ) from exc
    if not isinstance(body, dict):
        raise errors.ClerkAPIError(
            400, "malformed_request_body", "malformed request", "The body must be an object."
        )
    return body


def required_str(body: dict[str, Any], name: str) -> str:
    """A non-empty string field, or 422 ``form_param_missing``/``form_param_format_invalid``."""
    value = body.get(name)
    if value is None or value == "":
        raise errors.param_missing(name)
    if not isinstance(value, str):
        raise errors.param_invalid(name, "must be a string")
    return value


def optional_str(body: dict[str, Any], name: str) -> str | None:
    """A string field that may be absent or null."""
    value = body.get(name)
    if value is not None and not isinstance(value, str):
        raise errors.param_invalid(name, "must be a string")
    return value


def str_list(body: dict[str, Any], name: str) -> list[str]:
    """A list of strings (absent: empty)."""
    value = body.get(name, [])
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise errors.param_invalid(name, "must be a list of strings")
    return value


def metadata(body: dict[str, Any], name: str) -> dict[str, Any]:
    """A metadata object (absent: empty)."""
    value = body.get(name) or {}
    if not isinstance(value, dict):
        raise errors.param_invalid(name, "must be an object")
    return value


def lifetime(value: object) -> int | None:
    """``expires_in_seconds``: null or an integer in 1..315360000.

    Clerk's minimum is 30; the stand-in accepts down to 1 so tests can watch tokens
    expire quickly (pitfalls #11: such values must never reach the real API).
    """
    if value is None:
        return None
    # bool is an int subclass, but Clerk's JSON decoder would refuse true/false.
    if not isinstance(value, int) or isinstance(value, bool):
        raise errors.param_invalid("expires_in_seconds", "must be an integer")
    if not 1 <= value <= MAX_LIFETIME_S:
        raise errors.param_invalid("expires_in_seconds", f"must be between 1 and {MAX_LIFETIME_S}")
    return value


def positive_int(body: dict[str, Any], name: str) -> int | None:
    """An optional integer of at least 1 (``expires_in_seconds`` of sign-in tokens)."""
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise errors.param_invalid(name, "must be an integer")
    if value < 1:
        raise errors.param_invalid(name, "must be at least 1")
    return value
