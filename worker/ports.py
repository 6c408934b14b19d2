"""Narrow protocols the parts code against instead of each other's classes.

The metric shapes (``Counter``, ``Gauge``, ...; satisfied by ``prometheus_client``'s and
by ``observe.Metrics``' attributes) and the current-token provider (``TokenManager``):
each part declares the few members it uses in its own metrics Protocol built from these,
so no part imports ``observe`` or ``tokens`` for them, and tests pass 20-line fakes.
``Clock`` is re-exported from ``clock.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from worker.clock import Clock

__all__ = [
    "Clock",
    "Counter",
    "CounterChild",
    "Gauge",
    "GaugeChild",
    "Histogram",
    "TokenLike",
    "TokenProvider",
]


class TokenLike(Protocol):
    """The part of ``tokens.Token`` the realtime side needs."""

    @property
    def jwt(self) -> str: ...


class TokenProvider(Protocol):
    """Anything with the current verified token (``tokens.TokenManager``)."""

    @property
    def current(self) -> TokenLike | None: ...


class CounterChild(Protocol):
    """One labelled counter series."""

    def inc(self, amount: float = 1) -> None: ...


class Counter(Protocol):
    """A labelled Prometheus counter."""

    def labels(self, *labelvalues: str, **labelkwargs: str) -> CounterChild: ...


class GaugeChild(Protocol):
    """One labelled gauge series."""

    def set(self, value: float) -> None: ...


class Gauge(Protocol):
    """A Prometheus gauge, labelled or not."""

    def set(self, value: float) -> None: ...

    def set_function(self, f: Callable[[], float]) -> None: ...

    def labels(self, *labelvalues: str, **labelkwargs: str) -> GaugeChild: ...


class Histogram(Protocol):
    """An unlabelled Prometheus histogram."""

    def observe(self, amount: float) -> None: ...
