"""``realtime-worker broker``: settings, logging, signals, exit codes (as the worker's CLI).

Exit codes: 0 stopped by SIGTERM or SIGINT, 2 invalid configuration (settings or orgs file).
"""

from __future__ import annotations

import signal
import sys
from collections.abc import AsyncIterator, Mapping
from pathlib import Path

import anyio

from worker.broker.config import BrokerSettings
from worker.broker.orgs import load_orgs
from worker.broker.service import Broker
from worker.errors import ConfigError
from worker.observe.logs import configure_logging

__all__ = ["run_broker"]


def run_broker(environ: Mapping[str, str], env_file: Path | None) -> int:
    """Validate, then serve until a signal; the process's exit code."""
    try:
        settings = BrokerSettings.from_env(environ, env_file)
        load_orgs(settings.orgs_file)  # an invalid orgs file is a configuration error
    except ConfigError as exc:
        sys.stderr.write(f"realtime-worker broker: {exc}\n")
        return 2
    configure_logging(settings.log_level, "broker")
    anyio.run(_serve, Broker(settings), backend="asyncio")
    return 0


async def _serve(broker: Broker) -> None:
    stop = anyio.Event()
    async with anyio.create_task_group() as tg:
        with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            tg.start_soon(_stop_on_signal, signals, stop)
            await broker.run(stop)
            tg.cancel_scope.cancel()


async def _stop_on_signal(signals: AsyncIterator[signal.Signals], stop: anyio.Event) -> None:
    async for _ in signals:
        stop.set()
