"""Clerk-shaped API errors (the ``ClerkErrors`` schema of the BAPI OpenAPI spec).

Every failure the stand-in reports over HTTP is a :class:`ClerkAPIError`; the direct
Python helpers raise the same exception so tests see one behaviour on both paths.
"""

from __future__ import annotations

import secrets
from typing import Any

from devstack.errors import DevstackError


class ClerkAPIError(DevstackError):
    """A request Clerk would refuse; ``status`` and ``code`` match what Clerk answers."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        long_message: str | None = None,
        *,
        meta: dict[str, Any] | None = None,
        retry_after_s: int | None = None,
    ) -> None:
        super().__init__(long_message or message)
        self.status = status
        self.code = code
        self.message = message
        self.long_message = long_message or message
        self.meta = meta or {}
        self.retry_after_s = retry_after_s

    def body(self) -> dict[str, Any]:
        """The JSON body Clerk sends: ``{"errors": [...], "clerk_trace_id": ...}``."""
        error = {
            "message": self.message,
            "long_message": self.long_message,
            "code": self.code,
            "meta": self.meta,
        }
        return {"errors": [error], "clerk_trace_id": secrets.token_hex(16)}


def not_found(what: str) -> ClerkAPIError:
    """404 ``resource_not_found``, Clerk's answer for unknown (or unusable) resources."""
    return ClerkAPIError(404, "resource_not_found", "not found", f"{what} not found")


def param_missing(name: str) -> ClerkAPIError:
    """422 ``form_param_missing`` for a required body parameter."""
    return ClerkAPIError(
        422,
        "form_param_missing",
        f"{name} must be included",
        f"{name} must be included",
        meta={"param_name": name},
    )


def param_invalid(name: str, why: str) -> ClerkAPIError:
    """422 ``form_param_format_invalid`` for a parameter of the wrong type or range."""
    return ClerkAPIError(
        422,
        "form_param_format_invalid",
        f"{name} is invalid",
        f"{name} {why}",
        meta={"param_name": name},
    )


def unauthorized() -> ClerkAPIError:
    """401 for a missing or wrong secret key (Clerk's ``authentication_invalid``)."""
    return ClerkAPIError(
        401,
        "authentication_invalid",
        "Unauthorized request",
        "The provided Clerk Secret Key is invalid. Make sure that your Clerk Secret Key"
        " is correct.",
    )


_STATUS_CODES = {
    429: ("too_many_requests", "Too many requests"),
    500: ("internal_clerk_error", "Oops, an unexpected error occurred"),
    502: ("bad_gateway", "Bad gateway"),
    503: ("service_unavailable", "Service unavailable"),
    504: ("gateway_timeout", "Gateway timeout"),
}


def for_status(status: int, retry_after_s: int | None = None) -> ClerkAPIError:
    """An injected failure with the error code Clerk uses for that HTTP status."""
    code, message = _STATUS_CODES.get(status, ("injected_failure", f"HTTP {status}"))
    return ClerkAPIError(status, code, message, retry_after_s=retry_after_s)


# Texts from Clerk's error catalogues (clerk.com/docs/guides/development/errors/
# backend-api and .../frontend-api): ``message`` is the catalogue's shortMessage.


def invalid_for_environment() -> ClerkAPIError:
    """400 for ``POST /v1/sessions`` on a production instance."""
    return ClerkAPIError(
        400,
        "request_invalid_for_environment",
        "Invalid request for environment",
        "Request only valid for development instances.",
    )


def native_api_disabled() -> ClerkAPIError:
    """400 for an ``_is_native`` Frontend API request while the Native API is off."""
    return ClerkAPIError(
        400,
        "native_api_disabled",
        "Native API disabled",
        "The Native API is disabled for this instance. Visit the Clerk Dashboard to enable it.",
    )


def origin_and_authorization() -> ClerkAPIError:
    """400 when a Frontend API request carries both ``Origin`` and ``Authorization``."""
    return ClerkAPIError(
        400,
        "origin_authorization_headers_conflict",
        "Setting both the 'Origin' and 'Authorization' headers is forbidden",
        "For security purposes, only one of the 'Origin' and 'Authorization' headers should"
        " be provided, but not both. In browser contexts, the 'Origin' header is set"
        " automatically by the browser. In native application contexts (e.g. mobile apps),"
        " set the 'Authorization' header.",
    )


def client_not_found() -> ClerkAPIError:
    """400 when a Frontend API request needs a client and carries none."""
    return ClerkAPIError(
        400,
        "client_not_found",
        "No client found",
        "This request is expecting a client and did not find one",
    )


def unauthenticated() -> ClerkAPIError:
    """401 for a Frontend API request whose client JWT is missing or unknown."""
    return ClerkAPIError(
        401,
        "authentication_invalid",
        "Invalid authentication",
        "Unable to authenticate the request, you need to supply an active session",
    )
