"""``python -m devstack up``: the local stack in the foreground, like ``supabase start``.

``python -m devstack demo``: the stack, two orgs, org A's worker and a live view of it
(see ``devstack.demo``).
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import os
import signal
import sys
from pathlib import Path

import anyio

from devstack.clerk.settings import DEFAULT_SESSION_LIFETIME_S, INSTANCE_TYPES
from devstack.demo import DemoOptions, run_demo
from devstack.errors import DevstackError
from devstack.stack import Stack, StackConfig

DEFAULT_ENV_FILE = Path(".devstack/env")
UP_DEMO_ORGS = ("A", "B")  # the env file describes their service users (DEMO_ORG_A_*...)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m devstack", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start the local stack and keep it running until Ctrl-C")
    up.add_argument(
        "--env-file",
        type=Path,
        default=DEFAULT_ENV_FILE,
        help=f"where to write KEY=VALUE settings when ready (default {DEFAULT_ENV_FILE})",
    )
    up.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL"),
        help="a Postgres server to create a fresh database on (default: embedded)",
    )
    up.add_argument("--port", type=int, default=54321, help="Supabase gateway port (0 = any)")
    up.add_argument("--clerk-port", type=int, default=0, help="Clerk stand-in port (0 = any)")
    _add_clerk_options(up)
    demo = sub.add_parser(
        "demo",
        help="the stack, orgs A and B, org A's worker (a separate process) and a live view",
    )
    demo.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL"),
        help="a Postgres server to create a fresh database on (default: embedded)",
    )
    demo.add_argument(
        "--headless",
        action="store_true",
        help="no live view: print one key=value summary line per second",
    )
    demo.add_argument(
        "--duration",
        type=_positive,
        default=None,
        metavar="SECONDS",
        help="stop by itself after this many seconds (default: run until Ctrl-C)",
    )
    demo.add_argument(
        "--token-seconds",
        type=_token_seconds,
        default=20,
        metavar="SECONDS",
        help="lifetime of the worker's Clerk tokens (default 20, so rotations show)",
    )
    demo.add_argument(
        "--session-seconds",
        type=_whole_seconds,
        default=90,
        metavar="SECONDS",
        help="maximum lifetime of Clerk sessions (default 90, so the worker's renewals show)",
    )
    demo.add_argument(
        "--rate",
        type=_positive,
        default=2.0,
        metavar="PER_SECOND",
        help="events inserted per second for each org (default 2)",
    )
    return parser


def _add_clerk_options(up: argparse.ArgumentParser) -> None:
    """The Clerk instance's Dashboard settings, chosen at start."""
    up.add_argument(
        "--clerk-instance",
        choices=INSTANCE_TYPES,
        default="development",
        help="Clerk instance type: development (sk_test_ keys, POST /v1/sessions) or "
        "production (sk_live_ keys, sessions through sign-in tokens); default development",
    )
    up.add_argument(
        "--clerk-session-lifetime",
        type=_whole_seconds,
        default=DEFAULT_SESSION_LIFETIME_S,
        metavar="SECONDS",
        help="maximum lifetime of Clerk sessions (default 604800, Clerk's 7 days)",
    )
    up.add_argument(
        "--clerk-session-inactivity",
        type=_whole_seconds,
        default=None,
        metavar="SECONDS",
        help="inactivity timeout of Clerk sessions (default: off, as on Clerk)",
    )


def _positive(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def _whole_seconds(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1 second, got {text}")
    return value


def _token_seconds(text: str) -> int:
    value = int(text)
    if value < 3:
        raise argparse.ArgumentTypeError(f"must be at least 3 seconds, got {text}")
    return value


def write_env_file(path: Path, env: dict[str, str]) -> None:
    """Write KEY=VALUE lines readable only by the owner (the file holds secrets)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text("".join(f"{k}={v}\n" for k, v in env.items()), encoding="utf-8")
    tmp.chmod(0o600)
    tmp.replace(path)


async def up(args: argparse.Namespace) -> None:
    config = StackConfig(
        database_url=args.database_url,
        port=args.port,
        clerk_port=args.clerk_port,
        clerk_instance=args.clerk_instance,
        clerk_session_lifetime_s=args.clerk_session_lifetime,
        clerk_session_inactivity_s=args.clerk_session_inactivity,
        clerk_demo_orgs=UP_DEMO_ORGS,
    )
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with Stack(config) as stack:
            write_env_file(args.env_file, stack.env)
            print(
                f"devstack is up: Supabase at {stack.supabase_url}, Clerk at "
                f"{stack.env['CLERK_API_URL']}; settings written to {args.env_file}. "
                "Ctrl-C stops it.",
                flush=True,
            )
            async for _ in signals:
                print("devstack: stopping...", flush=True)
                break
        args.env_file.unlink(missing_ok=True)
    print("devstack: stopped", flush=True)


async def demo(args: argparse.Namespace) -> int:
    if not args.headless and importlib.util.find_spec("rich") is None:
        print(
            "devstack: the live view needs rich: run `make install` (or pip install rich), "
            "or pass --headless",
            file=sys.stderr,
        )
        return 2
    options = DemoOptions(
        database_url=args.database_url,
        token_seconds=args.token_seconds,
        session_seconds=args.session_seconds,
        duration_s=args.duration,
        headless=args.headless,
        events_per_second=args.rate,
    )
    return await run_demo(options)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    # The demo's view is the output; the stack's own INFO lines would only scroll it away.
    level = logging.WARNING if args.command == "demo" else logging.INFO
    logging.basicConfig(level=level, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        if args.command == "demo":
            return anyio.run(demo, args)
        anyio.run(up, args)
    except DevstackError as exc:
        print(f"devstack: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
