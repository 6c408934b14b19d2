"""``RecordingMetrics``: the dispatcher's metrics, recorded in order instead of exported."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from worker.dispatch import HandledResult

__all__ = ["RecordingMetrics"]


@dataclass
class _Child:
    into: list[tuple[dict[str, str], float]]
    labels: dict[str, str]

    def inc(self, amount: float = 1) -> None:
        self.into.append((self.labels, amount))

    def set(self, value: float) -> None:
        self.into.append((self.labels, value))


@dataclass
class _Series:
    """Counter, gauge or histogram: every update, with its labels."""

    updates: list[tuple[dict[str, str], float]] = field(default_factory=list)
    function: Callable[[], float] | None = None

    def labels(self, *labelvalues: str, **labelkwargs: str) -> _Child:
        return _Child(self.updates, dict(labelkwargs))

    def inc(self, amount: float = 1) -> None:
        self.updates.append(({}, amount))

    def set(self, value: float) -> None:
        self.updates.append(({}, value))

    def observe(self, amount: float) -> None:
        self.updates.append(({}, amount))

    def set_function(self, f: Callable[[], float]) -> None:
        self.function = f


class RecordingMetrics:
    """A ``DispatchMetrics`` keeping each update: ``handled`` lists the ``result`` label of
    every ``events_handled_total`` increment (failed attempts, then the final outcome)."""

    def __init__(self) -> None:
        self.events_handled_total = _Series()
        self.event_handler_duration_seconds = _Series()
        self.events_rejected_total = _Series()
        self.dispatch_queue_depth = _Series()

    @property
    def handled(self) -> list[HandledResult]:
        """The ``result`` of each ``events_handled_total`` increment, in order."""
        return [HandledResult(labels["result"]) for labels, _ in self.events_handled_total.updates]
