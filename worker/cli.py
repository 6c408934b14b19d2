"""The ``realtime-worker`` command line: ``run``, ``check``, ``token``, ``broker``,
``provision``, ``deprovision``.

Only this module installs signal handlers and configures logging. Exit codes: 0 done,
1 a check failed or the worker stopped on an error, 2 invalid configuration.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import anyio

from worker import __version__
from worker.app import Worker
from worker.broker.main import run_broker
from worker.broker.provision_cli import add_parsers as add_provisioning_parsers
from worker.broker.provision_cli import run_provisioning
from worker.errors import ConfigError, SessionEnded, SessionUnobtainable, WorkerError, sole_error
from worker.observe.logs import (
    configure_logging,
    install_uncaught_logging,
    log_asyncio_exception,
)
from worker.preflight import run_checks, show_token
from worker.settings import Settings

Command = Callable[[Settings, argparse.Namespace], Awaitable[int]]
SESSION_ENDED_HINT = (
    "The worker cannot mint tokens from an ended session: sign the service user in again "
    "(a new Clerk session in ORG_ID), set CLERK_SESSION_ID to its sess_... id and restart. "
    "Or set CLERK_USER_ID so the worker gets and renews its own sessions. See 'Running "
    "against a real Supabase project with Clerk' in README.md."
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="realtime-worker",
        description="Run one Clerk organization's backend work on Supabase Realtime.",
    )
    parser.add_argument("--version", action="version", version=f"realtime-worker {__version__}")
    parser.add_argument(
        "--env-file",
        type=Path,
        default=None,
        help="KEY=VALUE settings file; environment variables win over it",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="run the worker until SIGTERM or SIGINT")
    check = sub.add_parser(
        "check", help="preflight: token, channels and data API, as a pass/fail table"
    )
    check.add_argument(
        "--storage",
        action="store_true",
        help="also write and delete a probe file under <ORG_ID>/ of the org-files bucket",
    )
    sub.add_parser("token", help="mint and verify one token; print its claims (no signature)")
    sub.add_parser(
        "broker", help="run the token broker (holds CLERK_SECRET_KEY; BROKER_* settings)"
    )
    add_provisioning_parsers(sub)
    return parser


async def _run(worker: Worker) -> None:
    stop = anyio.Event()
    async with anyio.create_task_group() as tg:
        with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            tg.start_soon(_stop_on_signal, signals, stop)
            await worker.run(stop)
            tg.cancel_scope.cancel()


async def _stop_on_signal(signals: AsyncIterator[signal.Signals], stop: anyio.Event) -> None:
    async for _ in signals:
        stop.set()  # staged shutdown; a second signal is absorbed while draining


def _fail(message: str, code: int) -> int:
    sys.stderr.write(f"realtime-worker: {message}\n")
    return code


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``realtime-worker`` console script."""
    args = _parser().parse_args(argv)
    if args.command in _FLEET_COMMANDS:  # their own settings: no ORG_ID, the secret key
        return _FLEET_COMMANDS[args.command](args)
    try:
        settings = Settings.from_env(os.environ, args.env_file)
    except ConfigError as exc:
        return _fail(f"{exc}\nSee the configuration reference in README.md.", 2)
    configure_logging(settings.log_level, settings.org_id)
    install_uncaught_logging()  # a crash is a redacted JSON line, not a raw traceback
    return _run_worker_command(args, settings)


def _run_worker_command(args: argparse.Namespace, settings: Settings) -> int:
    """Run ``run``/``check``/``token``; each error class to its message and exit code."""
    try:
        return _run_command(_COMMANDS[args.command], settings, args)
    except ConfigError as exc:
        return _fail(str(exc), 2)
    except SessionEnded as exc:
        return _fail(f"{exc}\n{SESSION_ENDED_HINT}", 1)
    except SessionUnobtainable as exc:
        return _fail(f"no Clerk session can be had ({exc.reason}): {exc}", 1)
    except WorkerError as exc:
        return _fail(str(exc), 1)


def _run_command(command: Command, settings: Settings, args: argparse.Namespace) -> int:
    """``anyio.run(command)``, with a lone failure raised as itself (task groups wrap it)."""
    try:
        return anyio.run(_logging_loop_errors, command, settings, args, backend="asyncio")
    except BaseExceptionGroup as group:
        error = sole_error(group)
        if error is None:
            raise
        raise error from None


async def _logging_loop_errors(
    command: Command, settings: Settings, args: argparse.Namespace
) -> int:
    asyncio.get_running_loop().set_exception_handler(log_asyncio_exception)
    return await command(settings, args)


async def _check(settings: Settings, args: argparse.Namespace) -> int:
    return await run_checks(settings, sys.stdout, storage=args.storage)


async def _token(settings: Settings, _args: argparse.Namespace) -> int:
    return await show_token(settings, sys.stdout)


async def _serve(settings: Settings, _args: argparse.Namespace) -> int:
    await _run(Worker(settings))
    return 0


_COMMANDS: dict[str, Command] = {
    "run": _serve,
    "check": _check,
    "token": _token,
}


_FLEET_COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "broker": lambda args: run_broker(os.environ, args.env_file),
    "provision": lambda args: run_provisioning(args, os.environ),
    "deprovision": lambda args: run_provisioning(args, os.environ),
}
