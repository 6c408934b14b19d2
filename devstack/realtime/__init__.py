"""Supabase Realtime stand-in (Phoenix channels over websockets)."""
