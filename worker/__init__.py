"""realtime-worker: backend work on Supabase Realtime private channels with Clerk tokens."""

__version__ = "0.1.0"

__all__ = ["__version__"]
