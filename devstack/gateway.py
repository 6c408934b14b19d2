"""The Supabase API gateway in front of every service: project API keys in, JWTs out.

On Supabase the gateway, not the services, understands the API keys: Realtime,
PostgREST and Storage only ever see JWTs. :class:`Gateway` is that layer as an aiohttp
middleware; ``gateway.install(app)`` puts it in front of every route under one of
:data:`ROUTES` (``/realtime/v1``, ``/rest/v1``, ``/storage/v1``), so a service mounted on
the same app under such a prefix is behind it without doing anything else.

Rules (supabase/supabase ``apps/docs/content/guides/api/api-keys.mdx``, "Known limitations"
and "service_role and secret keys"; ``guides/getting-started/migrating-to-new-api-keys.mdx``;
the local equivalent is supabase/cli ``internal/start/start.go`` ``BearerToken``/
``QueryToken``):

* ``apikey`` (header, or query parameter) that is a known ``sb_`` key: a short-lived JWT
  of its role (publishable -> ``anon``, secret -> ``service_role``) is minted. REST-style
  routes get it in ``Authorization`` when that is missing or is ``Bearer`` + the same key;
  the Realtime websocket gets it in ``x-api-key`` (which Realtime prefers over the query
  parameter).
* ``Authorization: Bearer <a JWT>`` passes through unchanged (a Clerk token runs as its
  own ``role``). ``Bearer sb_...`` other than the ``apikey`` is refused.
* A secret key from a browser (``User-Agent`` starting with ``Mozilla/``) is refused.
* Legacy JWT keys keep working: REST-style routes check that the key is one of the
  project's (HS-signed, role ``anon`` or ``service_role``) and forward it as the bearer
  token when ``Authorization`` is missing; the websocket leaves the JWT to Realtime.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

import jwt as pyjwt
from aiohttp import web
from multidict import CIMultiDict

from devstack.jwt import SYMMETRIC, JwtFailure, Keyring, split_token

PUBLISHABLE_PREFIX = "sb_publishable_"
SECRET_PREFIX = "sb_secret_"
# Minted JWTs live a day: "Public Realtime connections are limited to 24 hours in duration"
# (api-keys.mdx, Known limitations): a socket authenticated by a key lasts as long as
# the JWT minted for it.
MINTED_TTL_S = 24 * 3600
LEGACY_KEY_ROLES = frozenset({"anon", "service_role"})
TEN_YEARS_S = 10 * 365 * 24 * 3600

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Route:
    """A path prefix behind the gateway and how its service takes the minted JWT."""

    prefix: str
    socket: bool = False  # True: the JWT goes in x-api-key (the Realtime websocket)
    require_apikey: bool = True


# Longest prefix first. /realtime/v1 answers without a key (ping; the websocket's own
# "API key is missing"), as the stand-in always has.
ROUTES: tuple[Route, ...] = (
    Route("/realtime/v1/websocket", socket=True, require_apikey=False),
    Route("/realtime/v1", require_apikey=False),
    Route("/rest/v1"),
    # A signed URL is the credential itself (it is put in <img src>, mailed, ...): fetching
    # one needs no apikey, as the storage tests with the official clients expect.
    Route("/storage/v1/object/sign", require_apikey=False),
    Route("/storage/v1"),
)


def _opaque_key(prefix: str) -> str:
    """A key shaped like the platform's: 22 random base64url characters, '_', 8 more."""
    body = secrets.token_urlsafe(16)
    return f"{prefix}{body}_{hashlib.sha256(body.encode()).hexdigest()[:8]}"


def legacy_key(jwt_secret: str, role: str) -> str:
    """A legacy API key like a local Supabase's: an HS256 JWT with ``role``, ten years long."""
    now = int(time.time())
    claims = {"iss": "supabase-demo", "role": role, "iat": now, "exp": now + TEN_YEARS_S}
    return pyjwt.encode(claims, jwt_secret, algorithm="HS256")


@dataclass(frozen=True)
class ApiKeys:
    """A project's API keys: the new opaque ones and the legacy JWTs (as the CLI keeps)."""

    publishable: str = field(repr=False)
    secret: str = field(repr=False)
    anon: str = field(repr=False)
    service_role: str = field(repr=False)

    @classmethod
    def generate(cls, jwt_secret: str) -> ApiKeys:
        return cls(
            publishable=_opaque_key(PUBLISHABLE_PREFIX),
            secret=_opaque_key(SECRET_PREFIX),
            anon=legacy_key(jwt_secret, "anon"),
            service_role=legacy_key(jwt_secret, "service_role"),
        )

    def role_of(self, key: str) -> str | None:
        """The role of a known ``sb_`` key, else None (compared in constant time)."""
        for known, role in ((self.publishable, "anon"), (self.secret, "service_role")):
            if secrets.compare_digest(key.encode(), known.encode()):
                return role
        return None


def _refusal(status: int, body: Mapping[str, str], code: str | None = None) -> web.Response:
    headers = {"sb-error-code": code} if code else None
    return web.Response(
        status=status, text=json.dumps(body), content_type="application/json", headers=headers
    )


# Missing and invalid legacy keys: the gateway's long-standing bodies (kept from the
# stand-in's data API, which had them from the hosted platform).
NO_API_KEY = {
    "message": "No API key found in request",
    "hint": "No `apikey` request header or url param was found.",
}
INVALID_LEGACY_KEY = {
    "message": "Invalid API key",
    "hint": "Double check your Supabase `anon` or `service_role` API key.",
}
# An unknown sb_ key: 401, sb-error-code UNAUTHORIZED_INVALID_API_KEY, {"message":"Invalid
# API key"} (responses of hosted projects recorded in public repositories' tests and notes).
INVALID_SB_KEY = ({"message": "Invalid API key"}, "UNAUTHORIZED_INVALID_API_KEY")
# A secret key from a browser: always 401 (api-keys.mdx); body and code as hosted projects
# answer (recorded in public repositories, e.g. a PowerShell script whose default
# User-Agent starts with Mozilla/5.0).
SECRET_IN_BROWSER = (
    {
        "message": "Forbidden use of secret API key in browser",
        "hint": "Secret API keys can only be used in a protected environment and should "
        "never be used in a browser. Delete this secret API key immediately!",
    },
    "UNAUTHORIZED_INVALID_API_KEY_TYPE",
)
# Bearer sb_... that is not the apikey: "the platform tries to parse it as a JWT and
# rejects the request with `Invalid JWT`" (migrating-to-new-api-keys.mdx); body and code
# as in supabase/supabase#45993.
BEARER_NOT_A_JWT = (
    {"code": "UNAUTHORIZED_INVALID_JWT_FORMAT", "message": "Invalid JWT"},
    "UNAUTHORIZED_INVALID_JWT_FORMAT",
)


def is_browser(user_agent: str | None) -> bool:
    """The platform matches browsers on the User-Agent; every browser's starts so."""
    return bool(user_agent) and str(user_agent).startswith("Mozilla/")


class Gateway:
    """Project API keys in front of the services; see the module docstring."""

    def __init__(
        self,
        keys: ApiKeys,
        keyring: Keyring,
        routes: tuple[Route, ...] = ROUTES,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.keys = keys
        self._keyring = keyring
        self._jwt_secret = keyring.secret
        self._routes = routes
        self._clock = clock

    def install(self, app: web.Application) -> None:
        """Put the gateway in front of every route of ``app`` under :data:`ROUTES`."""
        app.middlewares.append(self.middleware)

    def mint(self, role: str) -> str:
        """The short-lived JWT the gateway forwards for a key of ``role``."""
        now = int(self._clock())
        claims = {"iss": "supabase", "role": role, "iat": now, "exp": now + MINTED_TTL_S}
        return pyjwt.encode(claims, self._jwt_secret, algorithm="HS256")

    def route_for(self, path: str) -> Route | None:
        for route in self._routes:
            if path == route.prefix or path.startswith(route.prefix + "/"):
                return route
        return None

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        route = self.route_for(request.path)
        if route is None:
            return await handler(request)
        outcome = self.forward_headers(route, request.headers, request.query)
        if isinstance(outcome, web.Response):
            return outcome
        if outcome is not None:
            request = request.clone(headers=outcome)
        return await handler(request)

    def forward_headers(
        self, route: Route, headers: Mapping[str, str], query: Mapping[str, str]
    ) -> CIMultiDict[str] | web.Response | None:
        """The headers to forward (None: unchanged), or the gateway's refusal."""
        apikey = headers.get("apikey") or query.get("apikey")
        if not apikey:
            return _refusal(401, NO_API_KEY) if route.require_apikey else None
        if apikey.startswith("sb_"):
            return self._opaque(route, apikey, headers)
        return self._legacy(route, apikey, headers)

    def _opaque(
        self, route: Route, apikey: str, headers: Mapping[str, str]
    ) -> CIMultiDict[str] | web.Response:
        role = self.keys.role_of(apikey)
        if role is None:
            return _refusal(401, *INVALID_SB_KEY)
        if role == "service_role" and is_browser(headers.get("User-Agent")):
            return _refusal(401, *SECRET_IN_BROWSER)
        forwarded = CIMultiDict(headers)
        if route.socket:
            forwarded["x-api-key"] = self.mint(role)
            return forwarded
        bearer = _bearer(headers.get("Authorization"))
        if bearer is not None and bearer.startswith("sb_") and bearer != apikey:
            return _refusal(401, *BEARER_NOT_A_JWT)
        if headers.get("Authorization") is None or bearer == apikey:
            forwarded["Authorization"] = f"Bearer {self.mint(role)}"
        return forwarded

    def _legacy(
        self, route: Route, apikey: str, headers: Mapping[str, str]
    ) -> CIMultiDict[str] | web.Response | None:
        if route.socket or not route.require_apikey:
            return None  # Realtime verifies the JWT itself
        if not self._is_legacy_project_key(apikey):
            return _refusal(401, INVALID_LEGACY_KEY)
        bearer = _bearer(headers.get("Authorization"))
        if bearer is not None and bearer.startswith("sb_"):
            return _refusal(401, *BEARER_NOT_A_JWT)
        if headers.get("Authorization") is not None:
            return None
        forwarded = CIMultiDict(headers)
        forwarded["Authorization"] = f"Bearer {apikey}"
        return forwarded

    def _is_legacy_project_key(self, apikey: str) -> bool:
        """HS-signed by the project with role anon or service_role (not a user's token)."""
        try:
            _, header, _ = split_token(apikey)
            claims = self._keyring.verify(apikey)
        except JwtFailure:
            return False
        return header.get("alg") in SYMMETRIC and claims.get("role") in LEGACY_KEY_ROLES


def _bearer(authorization: str | None) -> str | None:
    if authorization is None:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None
