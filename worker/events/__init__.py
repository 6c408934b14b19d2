"""Events: what handlers receive, and the parser that makes them from broadcast frames.

Owns ``Event`` and the reasons a frame is refused (``model``), and ``parse_broadcast``,
which never trusts a frame (``parse``); used by the live path and by catch-up alike.
Never touches the network, the clock (a receive time is passed in) or any other part.
"""

from worker.events.model import (
    REJECT_REASONS,
    Event,
    Limits,
    RejectedEvent,
    RejectReason,
    channel_topic,
)
from worker.events.parse import parse_broadcast

__all__ = [
    "REJECT_REASONS",
    "Event",
    "Limits",
    "RejectReason",
    "RejectedEvent",
    "channel_topic",
    "parse_broadcast",
]
