"""Percentiles and summaries (nearest-rank, no numpy)."""

from __future__ import annotations

import math
from collections.abc import Sequence


def percentile(values: Sequence[float], q: float) -> float | None:
    """The nearest-rank ``q``-th percentile (0 < q <= 100), None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def summary_ms(seconds: Sequence[float]) -> dict[str, float | int | None]:
    """p50, p99 and max in milliseconds, and the count."""
    ms = [s * 1000 for s in seconds]
    return {
        "count": len(ms),
        "p50_ms": _round(percentile(ms, 50)),
        "p99_ms": _round(percentile(ms, 99)),
        "max_ms": _round(max(ms) if ms else None),
    }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)
