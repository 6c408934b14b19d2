"""Local, protocol-faithful stand-ins for Supabase (Realtime, data API) and Clerk.

Development and test tooling only: never imported by ``worker`` and never shipped in
its wheel. It shares no code with the worker on purpose, so that a bug in the worker's
parsing or claim checks cannot hide behind the same bug in its stand-in.
"""
