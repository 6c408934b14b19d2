"""``python -m devstack up``: the local stack in the foreground, like ``supabase start``."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from pathlib import Path

import anyio

from devstack.errors import DevstackError
from devstack.stack import Stack, StackConfig

DEFAULT_ENV_FILE = Path(".devstack/env")


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
    return parser


def write_env_file(path: Path, env: dict[str, str]) -> None:
    """Write KEY=VALUE lines readable only by the owner (the file holds secrets)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text("".join(f"{k}={v}\n" for k, v in env.items()), encoding="utf-8")
    tmp.chmod(0o600)
    tmp.replace(path)


async def up(args: argparse.Namespace) -> None:
    config = StackConfig(database_url=args.database_url, port=args.port, clerk_port=args.clerk_port)
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


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        anyio.run(up, args)
    except DevstackError as exc:
        print(f"devstack: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
