"""The test control surface over HTTP, under ``/__devstack/clerk/`` (no auth).

Each route calls the :class:`Clerk` method of the same name, so a test or a demo in
another process can script the stand-in. Bad control input answers 400
``{"error": ...}``; Clerk errors (unknown session...) keep their Clerk shape.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from devstack.clerk.appkey import CLERK
from devstack.clerk.scripting import KEEP

if TYPE_CHECKING:
    from devstack.clerk.service import Clerk

CONTROL_PREFIX = "/__devstack/clerk"
Action = Callable[["Clerk", dict[str, Any], dict[str, str]], Any]


def _state(clerk: Clerk, _body: dict[str, Any], _path: dict[str, str]) -> Any:
    """What a test reads: settings, counters (``requests`` by ``"<METHOD> <route>"``)."""
    return {
        "issuer": clerk.issuer,
        "token_requests": clerk.token_requests,
        "requests": dict(clerk.requests),
        "token_format": clerk.token_format,
        "include_role": clerk.include_role,
        "current_kid": clerk.keys.current_kid,
        "sign_in_limit": {
            "requests": clerk.sign_in_limit.limit,
            "window_seconds": clerk.sign_in_limit.window_s,
        },
        **clerk.settings.describe(),
    }


def _session_settings(clerk: Clerk, body: dict[str, Any], _path: dict[str, str]) -> Any:
    # "inactivity_seconds": null turns the timeout off; leaving it out keeps it.
    inactivity = body.get("inactivity_seconds", KEEP)
    return clerk.configure_sessions(body.get("lifetime_seconds"), inactivity)


def _reset_counters(clerk: Clerk, _body: dict[str, Any], _path: dict[str, str]) -> Any:
    clerk.requests.clear()
    clerk.token_requests = 0


def _fail(clerk: Clerk, body: dict[str, Any], _path: dict[str, str]) -> Any:
    clerk.fail_next_tokens(
        int(body.get("count", 1)), int(body["status"]), body.get("retry_after_seconds")
    )


def _hang(clerk: Clerk, body: dict[str, Any], _path: dict[str, str]) -> Any:
    then = body.get("then", "answer")
    if then not in ("answer", "drop"):
        raise ValueError("then must be 'answer' or 'drop'")
    clerk.hang_next_tokens(int(body.get("count", 1)), float(body["seconds"]), then)


def _token_org(clerk: Clerk, body: dict[str, Any], path: dict[str, str]) -> Any:
    clerk.set_token_org(path["session_id"], body.get("org_id"))


def _foreign_org_token(clerk: Clerk, body: dict[str, Any], path: dict[str, str]) -> Any:
    jwt = clerk.mint_for_org(path["session_id"], body["org_id"], body.get("expires_in_seconds"))
    return {"object": "token", "jwt": jwt}


_ROUTES: dict[str, Action] = {
    "/faults/fail": _fail,
    "/faults/hang": _hang,
    "/faults/clear": lambda clerk, _b, _p: clerk.clear_faults(),
    "/rate_limit": lambda clerk, b, _p: clerk.set_rate_limit(
        b.get("requests"), float(b.get("window_seconds", 10.0))
    ),
    "/sessions/{session_id}/end": lambda clerk, _b, p: clerk.end_session(p["session_id"]),
    "/sessions/{session_id}/pending": lambda clerk, b, p: clerk.set_session_pending(
        p["session_id"], bool(b.get("pending", True))
    ),
    "/sessions/{session_id}/token_format": lambda clerk, b, p: clerk.set_token_format(
        p["session_id"], b.get("token_format")
    ),
    "/sessions/{session_id}/token_org": _token_org,
    "/sessions/{session_id}/foreign_org_token": _foreign_org_token,
    "/keys/rotate": lambda clerk, b, _p: {
        "kid": clerk.rotate_key(drop_old=bool(b.get("drop_old")))
    },
    "/keys/drop_retired": lambda clerk, _b, _p: clerk.drop_retired_keys(),
    "/drop_role": lambda clerk, b, _p: clerk.set_drop_role(bool(b.get("drop", True))),
    "/jwt_templates": lambda clerk, b, _p: clerk.add_jwt_template(
        b["name"], b.get("claims", {}), int(b.get("lifetime_seconds", 60))
    ),
    "/roles": lambda clerk, b, _p: clerk.define_role(b["role"], b.get("permissions", [])),
    "/requests/reset": _reset_counters,
    "/session_settings": _session_settings,
    "/native_api": lambda clerk, b, _p: clerk.set_native_api(bool(b["enabled"])),
    "/sign_in_rate_limit": lambda clerk, b, _p: clerk.set_sign_in_limit(
        b.get("requests"), float(b.get("window_seconds", 10.0))
    ),
    "/secret_key/rotate": lambda clerk, _b, _p: {"secret_key": clerk.rotate_secret_key()},
    "/sessions/{session_id}/expire": lambda clerk, _b, p: clerk.expire_session(p["session_id"]),
    "/sign_in": lambda clerk, b, _p: clerk.sign_in(b["user_id"], b.get("org_id")),
}


def _handler(action: Action) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handle(request: web.Request) -> web.Response:
        body = await request.json() if request.can_read_body else {}
        try:
            result = action(request.app[CLERK], body or {}, dict(request.match_info))
        except (KeyError, TypeError, ValueError) as exc:
            return web.json_response({"error": f"bad control request: {exc!r}"}, status=400)
        return web.json_response(result if result is not None else {"ok": True})

    return handle


def control_app(clerk: Clerk) -> web.Application:
    """``GET /state`` and one ``POST`` route per control action."""
    control = web.Application()
    control[CLERK] = clerk
    control.router.add_get("/state", _handler(_state))
    for path, action in _ROUTES.items():
        control.router.add_post(path, _handler(action))
    return control
