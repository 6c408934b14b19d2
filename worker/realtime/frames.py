"""Reading each Realtime frame once, before the client's listen task sees it.

``deliver(client, data, sink)`` is called with every frame the socket receives. A valid
broadcast goes to its channel's broadcast callbacks, as the client's ``_handle_message``
would send it, but without a second pydantic validation of the same frame and the client's
eager debug reprs of it: together most of the client's cost per event
(docs/performance.md). A broadcast the client cannot read goes to ``sink`` (the intake,
whose parser rejects and counts it); any other frame passes on to the client.

Client members used (pinned, see ``adapter.py``): ``ServerMessageAdapter`` (public),
``client.channels`` and ``channel.broadcast_callbacks``.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from typing import Any, cast

from realtime import AsyncRealtimeClient
from realtime.message import BroadcastMessage, ServerMessageAdapter

from worker.realtime.channel import MessageSink

__all__ = ["MAX_FRAME_BYTES", "deliver"]

_log = logging.getLogger("worker.realtime")

#: Realtime accepts broadcast payloads up to 3000 KB (+ 500 B) on its largest plans
#: (``max_payload_size_in_kb``, realtime-server.md); websockets' own default of 1 MiB would
#: close the socket (1009) on such a frame, losing everything in flight.
MAX_FRAME_BYTES = 4 * 1024 * 1024
_TOPIC_RE = re.compile(r'"topic"\s*:\s*"(realtime:[^"\\]{1,300})"')


def deliver(client: AsyncRealtimeClient, data: str | bytes, sink: MessageSink | None) -> bool:
    """True when ``data`` was delivered here; False to pass it on to the client."""
    try:
        message = ServerMessageAdapter.validate_json(data)
    except ValueError:  # pydantic's ValidationError
        return _screened(data, sink)
    if not isinstance(message, BroadcastMessage):
        return False
    channel = client.channels.get(message.topic)
    if channel is None:
        return True  # left or never joined: the client would drop it too
    try:
        for callback in channel.broadcast_callbacks:
            callback(message.payload)
    except Exception:  # never hand it on: the client would deliver it a second time
        _log.exception("a broadcast callback failed for %s", message.topic)
    return True


def _screened(data: str | bytes, sink: MessageSink | None) -> bool:
    """True when ``data`` is a broadcast the client cannot read, handed to ``sink``.

    The client drops a frame that fails validation with an ERROR line holding the whole
    frame: payloads that are not objects, lone surrogates, JSON nested deeper than pydantic
    parses. Such broadcasts go to the intake instead; other frames pass on.
    """
    frame = _loads(data)
    if isinstance(frame, dict):
        topic, message = frame.get("topic"), frame.get("payload")
        if frame.get("event") != "broadcast" or not isinstance(topic, str):
            return False  # not an event: the client logs and drops it
    else:
        topic, message = _topic_in(data), data  # not even JSON: rejected as malformed
        if topic is None:
            _log.warning("dropped an undecodable Realtime frame of %d bytes", len(data))
            return True
    if sink is not None:
        sink(topic, cast(Mapping[str, Any], message))  # the parser takes any object
    return True


def _loads(data: str | bytes) -> object:
    """The JSON value of ``data``, or None when it is not JSON (or nests too deep)."""
    try:
        return json.loads(data)
    except (ValueError, RecursionError):
        return None


def _topic_in(data: str | bytes) -> str | None:
    """The channel topic of a frame that is not JSON, if one can be seen near its start."""
    head = data[:2000] if isinstance(data, str) else data[:2000].decode("utf-8", "replace")
    found = _TOPIC_RE.search(head)
    return found.group(1) if found else None
