"""The `realtime-worker` command line."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``realtime-worker`` console script."""
    del argv
    sys.stderr.write("realtime-worker: the worker is not built yet (see issue 4)\n")
    return 2
