"""Tunables of the Realtime stand-in, one frozen object (replaced whole by the control API).

Defaults are the real server's (``supabase/realtime: config/runtime.exs`` and the tenant
row defaults) except ``max_events_per_second``: the real default is 100 events/s per
tenant, far too low for a local stack that replays load tests, so it is 100,000 here.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RealtimeSettings:
    """Timing and limits; durations are seconds, sizes say their unit."""

    join_error_delay_s: float = 5.0  # CHANNEL_ERROR_BACKOFF_MS
    connect_error_delay_s: float = 2.0  # CONNECT_ERROR_BACKOFF_MS
    idle_timeout_s: float = 60.0  # Phoenix websocket timeout
    token_recheck_cap_s: float = 300.0  # v2.129.8 caps the expiry re-check at 5 min
    max_channels_per_client: int = 100
    max_joins_per_second: int = 100
    max_events_per_second: int = 100_000  # real default: 100
    max_payload_size_in_kb: int = 3000
    max_frame_bytes: int = 5_000_000
    partition_maintenance_s: float = 3600.0  # realtime.messages partitions (partitions.py)

    @property
    def max_payload_bytes(self) -> int:
        """Largest broadcast payload accepted: ``max_payload_size_in_kb * 1000 + 500``."""
        return self.max_payload_size_in_kb * 1000 + 500
