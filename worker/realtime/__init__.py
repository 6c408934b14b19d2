"""Realtime: the org's private channels, kept joined, each frame read once.

Owns the only door to the official ``realtime`` client (``adapter``, with ``channel``,
``frames`` and ``watchdog``; the only modules that touch its private members), the intake
that turns broadcast frames into events (``intake``), and the supervisor that keeps the
socket connected and every channel joined (``supervisor``, ``socket``, with the part's
vocabulary in ``link``). Never touches the dispatcher's internals, delivery or token
minting: events leave through the intake's ``offer``, tokens arrive through
``Supervisor.on_token``.
"""

from worker.realtime.adapter import ChannelHandle, MessageSink, RealtimeAdapter
from worker.realtime.intake import Intake, IntakeMetrics, LiveGate
from worker.realtime.link import (
    ChannelState,
    CloseReason,
    JoinResult,
    ReconnectReason,
    SupervisorMetrics,
    SupervisorStatistics,
    SupervisorTiming,
)
from worker.realtime.supervisor import Supervisor

__all__ = [
    "ChannelHandle",
    "ChannelState",
    "CloseReason",
    "Intake",
    "IntakeMetrics",
    "JoinResult",
    "LiveGate",
    "MessageSink",
    "RealtimeAdapter",
    "ReconnectReason",
    "Supervisor",
    "SupervisorMetrics",
    "SupervisorStatistics",
    "SupervisorTiming",
]
