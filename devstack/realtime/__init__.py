"""Supabase Realtime stand-in (Phoenix channels over websockets)."""

from devstack.realtime.server import Realtime
from devstack.realtime.settings import RealtimeSettings

__all__ = ["Realtime", "RealtimeSettings"]
