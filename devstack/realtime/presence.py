"""Presence: tracked metas per sub-topic, ``presence_state`` and ``presence_diff``.

Mirrors ``supabase/realtime: lib/realtime_web/channels/realtime_channel/presence_handler.ex``
(track/untrack replies, the non-map error text, write check on private channels) and
Phoenix.Presence's shapes: ``{key: {"metas": [{"phx_ref": ..., ...fields}]}}``; an
update is a join of the new meta (with ``phx_ref_prev``) plus a leave of the old one.
Diffs go to every subscriber that may read presence, the tracker included.
"""

from __future__ import annotations

import base64
import os
from typing import Any

from devstack.realtime.pubsub import TopicKey

Meta = dict[str, Any]
Diff = dict[str, dict[str, dict[str, list[Meta]]]]


def _phx_ref() -> str:
    # Phoenix refs are opaque base64 strings; any unique value will do.
    return base64.b64encode(os.urandom(9)).decode()


class PresenceRegistry:
    """Metas by topic, presence key and channel (one meta per channel and key)."""

    def __init__(self) -> None:
        self._topics: dict[TopicKey, dict[str, dict[str, Meta]]] = {}

    def state(self, topic: TopicKey) -> dict[str, dict[str, list[Meta]]]:
        """The ``presence_state`` payload: ``{}`` for an empty room."""
        return {
            key: {"metas": list(metas.values())}
            for key, metas in self._topics.get(topic, {}).items()
        }

    def track(self, topic: TopicKey, key: str, owner: str, fields: dict[str, Any]) -> Diff | None:
        """Track or update ``owner``'s meta; None when identical (a no-op re-track)."""
        metas = self._topics.setdefault(topic, {}).setdefault(key, {})
        old = metas.get(owner)
        if old is not None and _fields(old) == fields:
            return None
        meta: Meta = {**fields, "phx_ref": _phx_ref()}
        diff: Diff = {"joins": {}, "leaves": {}}
        if old is not None:
            meta["phx_ref_prev"] = old["phx_ref"]
            diff["leaves"][key] = {"metas": [old]}
        metas[owner] = meta
        diff["joins"][key] = {"metas": [meta]}
        return diff

    def untrack(self, topic: TopicKey, owner: str) -> Diff | None:
        """Remove every meta of ``owner``; None if it tracked nothing."""
        keys = self._topics.get(topic, {})
        leaves: dict[str, dict[str, list[Meta]]] = {}
        for key in list(keys):
            old = keys[key].pop(owner, None)
            if old is not None:
                leaves[key] = {"metas": [old]}
            if not keys[key]:
                del keys[key]
        if not keys:
            self._topics.pop(topic, None)
        return {"joins": {}, "leaves": leaves} if leaves else None


def _fields(meta: Meta) -> dict[str, Any]:
    return {k: v for k, v in meta.items() if k not in ("phx_ref", "phx_ref_prev")}
