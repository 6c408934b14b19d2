"""Small fakes and helpers shared by the realtime-side worker tests (no internals patched)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry

from worker.errors import JoinRefused
from worker.observe.metrics import Metrics


@dataclass
class FakeToken:
    jwt: str


class FakeTokens:
    """A token provider whose current token the test swaps."""

    def __init__(self, jwt: str | None = "jwt-1") -> None:
        self.current: FakeToken | None = FakeToken(jwt) if jwt else None

    def rotate(self, jwt: str) -> FakeToken:
        self.current = FakeToken(jwt)
        return self.current


class MetricsProbe:
    """The real ``Metrics`` on a private registry, with a reader for samples."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.metrics = Metrics(self.registry)

    def value(self, name: str, **labels: str) -> float:
        sample = self.registry.get_sample_value(f"realtime_worker_{name}", labels)
        return 0.0 if sample is None else sample


class FakeChannel:
    def __init__(self) -> None:
        self.state = "joined"
        self.last_error: str | None = None
        self.left_by_us = False

    async def leave(self, *, timeout_s: float) -> None:
        self.left_by_us = True
        self.state = "leaving"


class FakeLink:
    def __init__(self) -> None:
        self.is_connected = True
        self.is_reconnecting = False
        self.listener_alive = True
        self.rebuilds = 0
        self.subscribes: list[str] = []
        self.refuse: str | None = None
        self.channels: list[FakeChannel] = []
        self.socket_losses = 0
        self.stalled_for: float | None = None

    def give_up_error(self) -> str | None:
        return None

    async def check_heartbeat(self) -> float | None:
        return self.stalled_for  # the heartbeat watchdog's verdict, set by the test

    async def connect(self, timeout_s: float) -> None:
        self.is_connected = True

    async def subscribe(self, topic: str, channel_topic: str, jwt: str, sink: Any) -> FakeChannel:
        self.subscribes.append(jwt)
        if self.refuse:
            raise JoinRefused(channel_topic, self.refuse)
        self.channels.append(FakeChannel())
        return self.channels[-1]

    async def set_auth(self, jwt: str, *, timeout_s: float) -> bool:
        return True

    async def rebuild(self, *, timeout_s: float = 5.0) -> None:
        self.rebuilds += 1
        self.listener_alive = True
        self.is_connected = False

    async def close(self, *, timeout_s: float = 5.0) -> None:
        self.is_connected = False
