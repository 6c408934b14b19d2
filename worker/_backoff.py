"""Capped exponential backoff with jitter, as a pure function of the attempt number."""

from __future__ import annotations

import random


def backoff_delay(
    attempt: int,
    *,
    base_s: float,
    cap_s: float,
    floor_s: float = 0.0,
    rng: random.Random | None = None,
) -> float:
    """Seconds to wait before retry number ``attempt`` (1-based).

    The exponential step ``base_s * 2**(attempt-1)`` is capped at ``cap_s`` and then
    jittered down to between half and all of itself ("equal jitter"), so a fleet of workers
    that failed together does not retry together, while the wait never collapses to zero.
    ``floor_s`` is a hard minimum applied after jitter (servers that rate-limit say how
    long they want us to stay away).
    """
    return max(
        floor_s, equal_jitter(attempt, base_s=base_s, cap_s=cap_s, unit=(rng or _RNG).random())
    )


def equal_jitter(attempt: int, *, base_s: float, cap_s: float, unit: float) -> float:
    """The capped exponential step for ``attempt``, half fixed and half scaled by ``unit``
    (in [0, 1]). The exponent is clamped so that huge attempt counts cannot overflow."""
    step = min(cap_s, base_s * 2.0 ** max(0, min(attempt - 1, 32)))
    return step / 2 + min(max(unit, 0.0), 1.0) * step / 2


# Jitter needs no cryptographic quality; one shared generator avoids reseeding per call.
_RNG = random.Random()  # noqa: S311
