"""Channel tokens: which one a join uses, the expiry timer and ``access_token`` refresh.

Mirrors ``supabase/realtime: lib/realtime_web/channels/realtime_channel.ex``
(``handle_info(:confirm_token)``, ``handle_in("access_token")``) and
``lib/realtime_web/channels/auth/jwt_verification.ex``. The server never replies to
``access_token``; every failure is a ``system`` error followed by ``phx_close``.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from devstack.jwt import JwtFailure
from devstack.realtime.authorization import PolicyError
from devstack.realtime.tenant import DB_UNREACHABLE, DatabaseUnavailable

if TYPE_CHECKING:
    from devstack.jwt import Keyring
    from devstack.realtime.channel import Channel

log = logging.getLogger(__name__)

UNKNOWN_JOIN_ERROR = "Unknown Error on Channel"
# Keyring reports a non-numeric exp with this text; the server's claim validator failure
# becomes "Unknown Error on Channel" at join and HTTP 500 at connect (§6).
NON_NUMERIC_EXP = "Token expiration time is invalid"


class JoinError(Exception):
    """A refused join: ``reason`` is the ``Code: message`` text."""

    def __init__(self, reason: str, *, disconnect: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.disconnect = disconnect


def pick(payload: Any, socket_token: str) -> Any:
    """``user_token`` > ``access_token`` > the socket's token; ``sb_`` keys mean the socket's."""
    params = payload if isinstance(payload, dict) else {}
    token = params.get("user_token")
    if token is None:
        token = params.get("access_token")
    if token is None or (isinstance(token, str) and token.startswith("sb_")):
        return socket_token
    return token


def verify_for_join(keyring: Keyring, token: Any) -> dict[str, Any]:
    """Claims of a valid channel token; JoinError with the server's reason otherwise."""
    try:
        return keyring.verify(token)
    except JwtFailure as failure:
        if failure.text == NON_NUMERIC_EXP:
            raise JoinError(UNKNOWN_JOIN_ERROR) from failure
        raise JoinError(failure.join_reason) from failure
    except Exception as exc:  # a broken JWK must not crash the socket
        log.warning("token verification crashed: %r", exc)
        raise JoinError(UNKNOWN_JOIN_ERROR) from exc


def arm(channel: Channel) -> None:
    """Re-check the token at ``min(cap, exp - now)`` (§7.2); each channel has its own timer."""
    if channel.timer is not None:
        channel.timer.cancel()
    left = channel.tenant.keyring.seconds_left(channel.claims)
    delay = max(0.0, min(channel.tenant.settings.token_recheck_cap_s, left))
    loop = asyncio.get_running_loop()
    channel.timer = loop.call_later(delay, _confirm_token, channel)


def _confirm_token(channel: Channel) -> None:
    """The timer re-checks the JWT only (never RLS): expired -> shutdown, else re-arm."""
    channel.timer = None
    if channel.closed:
        return
    try:
        channel.claims = channel.tenant.keyring.verify(channel.token)
    except JwtFailure as failure:
        channel.shutdown(failure.text)
        return
    except Exception as exc:
        channel.shutdown(repr(exc))
        return
    arm(channel)


async def refresh(channel: Channel, payload: Any) -> None:
    """``access_token``: no reply ever; ignore sb_/identical/null/non-strings (§7.3)."""
    token = payload.get("access_token") if isinstance(payload, dict) else None
    if not isinstance(token, str) or token.startswith("sb_") or token == channel.token:
        return
    channel.token = token
    channel.write_cache.clear()
    try:
        claims = channel.tenant.keyring.verify(token)
    except JwtFailure as failure:
        channel.shutdown(failure.text)
        return
    except Exception as exc:
        channel.shutdown(repr(exc))
        return
    channel.claims = claims
    arm(channel)
    if channel.private and not await _recheck_read(channel):
        return
    pg = channel.tenant.pg_changes
    if pg is not None and not channel.closed:
        channel.tenant.spawn(pg.update_claims(channel.key, claims), name=f"pg-claims {channel.key}")


async def _recheck_read(channel: Channel) -> bool:
    """Re-run the read check with the new claims; shut down on loss. True if still joined."""
    sub = channel.sub
    try:
        perms = await channel.tenant.read_permissions(
            channel.claims, sub, channel.read_presence is not None, channel.conn.rls_headers
        )
    except PolicyError:
        channel.shutdown(f"You do not have permissions to read from this Channel topic: {sub}")
        return False
    except DatabaseUnavailable:
        channel.shutdown(DB_UNREACHABLE)
        return False
    if channel.closed:
        return False
    new_presence = perms.presence if channel.read_presence is not None else None
    lost = (channel.read_broadcast and not perms.broadcast) or (
        bool(channel.read_presence) and not new_presence
    )
    if lost:
        channel.shutdown(f"You no longer have permission to read from this Channel topic: {sub}")
        return False
    if not perms.any:
        channel.shutdown(f"You do not have permissions to read from this Channel topic: {sub}")
        return False
    channel.read_broadcast, channel.read_presence = perms.broadcast, new_presence
    return True
