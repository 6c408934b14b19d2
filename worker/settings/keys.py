"""Reading the project's API key: the publishable key (or the legacy anon JWT), never a
key that bypasses RLS (a secret key or the legacy ``service_role`` JWT)."""

from __future__ import annotations

import base64
import binascii
import json

from worker.settings.reader import Reader

__all__ = ["read_project_key"]


_KEY_FIX = (
    "set SUPABASE_PUBLISHABLE_KEY to the project's publishable key (sb_publishable_...) "
    "or its legacy anon key"
)


def read_project_key(r: Reader) -> str | None:
    """``SUPABASE_PUBLISHABLE_KEY``, or the legacy ``SUPABASE_ANON_KEY``; never a key that
    bypasses RLS (the worker's isolation rests on RLS over its own token)."""
    publishable, anon = r.raw("SUPABASE_PUBLISHABLE_KEY"), r.raw("SUPABASE_ANON_KEY")
    if publishable is not None and anon is not None and publishable != anon:
        r.problems.append(
            "SUPABASE_PUBLISHABLE_KEY and SUPABASE_ANON_KEY are both set and differ: "
            "set only SUPABASE_PUBLISHABLE_KEY (the publishable or anon key)"
        )
        return None
    key = publishable or anon
    if key is None:
        r.problems.append(f"SUPABASE_PUBLISHABLE_KEY is required: {_KEY_FIX}")
        return None
    name = "SUPABASE_PUBLISHABLE_KEY" if publishable else "SUPABASE_ANON_KEY"
    kind = _privileged_kind(key)
    if kind is not None:
        r.problems.append(
            f"{name} is {kind}, which bypasses row level security, the isolation between "
            f"organizations the worker relies on: never give it to the worker; {_KEY_FIX}"
        )
        return None
    return key


def _privileged_kind(key: str) -> str | None:
    """What a key that bypasses RLS is (None for a publishable or anon key); the key's value
    is never part of the answer."""
    if key.startswith("sb_secret_"):
        return "a secret key (sb_secret_...)"
    if _jwt_role(key) == "service_role":
        return "the legacy service_role key"
    return None


def _jwt_role(key: str) -> object:
    """The ``role`` claim of a legacy JWT project key, read without verifying (it is a
    project key, not a token to trust); None when ``key`` is not a JWT."""
    parts = key.split(".")
    if len(parts) != 3:  # header, payload, signature
        return None
    body = parts[1]
    try:
        claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    except (binascii.Error, ValueError):
        return None
    return claims.get("role") if isinstance(claims, dict) else None
