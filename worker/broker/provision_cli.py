"""The ``provision`` and ``deprovision`` commands: arguments, the orgs file, the overlay.

Exit codes: 0 done (or nothing to do), 1 Clerk refused a step (the message says what to
do), 2 invalid arguments or settings.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path

import anyio
import httpx

from worker.broker import overlay
from worker.broker.orgs import OrgEntry, hash_credential, load_orgs, new_credential, parse_orgs
from worker.broker.provision import Clerk, ProvisionError, Steps, external_id, merged_entry
from worker.errors import ConfigError
from worker.settings import SecretStr

__all__ = ["add_parsers", "run_provisioning"]


def add_parsers(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """``provision`` and ``deprovision`` on the CLI's sub-command parser."""
    for name, text in (
        ("provision", "create an org's service user, membership and orgs-file entry"),
        ("deprovision", "remove an org's membership and orgs-file entry"),
    ):
        p = sub.add_parser(name, help=f"{text} (needs CLERK_SECRET_KEY)")
        p.add_argument("--org", required=True, help="the Clerk organization id, org_...")
        p.add_argument("--orgs-file", type=Path, help="the broker's orgs file to update")
        p.add_argument(
            "--dry-run", action="store_true", help="say what would change; change nothing"
        )
        p.add_argument("--namespace", default="realtime-worker", help="the workers' namespace")
        if name == "provision":
            p.add_argument("--topics", default="events", help="the overlay's WORKER_TOPICS")
            p.add_argument("--overlay", type=Path, help="write the org's Kustomize overlay here")
            p.add_argument(
                "--static-credential-file",
                type=Path,
                help="also make a static credential (written here, mode 600; its hash goes "
                "in the entry) for a worker outside Kubernetes",
            )


def run_provisioning(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    secret = environ.get("CLERK_SECRET_KEY", "").strip()
    if not secret:
        sys.stderr.write("realtime-worker: CLERK_SECRET_KEY is required to provision\n")
        return 2
    api_url = environ.get("CLERK_API_URL", "").strip() or "https://api.clerk.com"
    try:
        return anyio.run(_provisioning, args, api_url, SecretStr(secret), backend="asyncio")
    except (ProvisionError, ConfigError) as exc:
        sys.stderr.write(f"realtime-worker {args.command}: {exc}\n")
        return 1 if isinstance(exc, ProvisionError) else 2


async def _provisioning(args: argparse.Namespace, api_url: str, secret: SecretStr) -> int:
    steps = Steps(dry_run=args.dry_run)
    async with httpx.AsyncClient(timeout=15.0) as http:
        clerk = Clerk(api_url, secret, http)
        entry: OrgEntry | None = None
        if args.command == "provision":
            entry = await _provision(clerk, args, steps)
        else:
            await _deprovision(clerk, args, steps)
    _write_orgs_file(args, entry, steps)
    for line in steps.lines:
        sys.stdout.write(f"{line}\n")
    if entry is not None and args.orgs_file is None:
        sys.stdout.write(json.dumps(entry.as_json(), indent=2) + "\n")
    return 0


async def _provision(clerk: Clerk, args: argparse.Namespace, steps: Steps) -> OrgEntry:
    user = await clerk.find_user(args.org)
    if user is None:
        steps.note(f"create the service user ({external_id(args.org)})", change=True)
        user = {"id": "user_new"} if args.dry_run else await clerk.create_user(args.org)
    else:
        steps.note(f"service user {user['id']} exists ({external_id(args.org)})")
    user_id = str(user["id"])
    if args.dry_run:
        steps.note(f"add {user_id} to {args.org} as org:worker (if not a member yet)", change=True)
    elif await clerk.add_member(args.org, user_id):
        steps.note(f"added {user_id} to {args.org} as org:worker", change=True)
    else:
        steps.note(f"{user_id} is already a member of {args.org}")
    session = None if args.dry_run else await clerk.org_session(user_id, args.org, create=True)
    entry = OrgEntry(
        org_id=args.org,
        user_id=user_id,
        session_id=session,
        service_accounts=(overlay.service_account(args.org, args.namespace),),
    )
    return _with_static_credential(entry, args, steps)


def _with_static_credential(entry: OrgEntry, args: argparse.Namespace, steps: Steps) -> OrgEntry:
    path: Path | None = args.static_credential_file
    if path is None:
        return entry
    if path.exists():
        digest = hash_credential(path.read_text(encoding="utf-8").strip())
        steps.note(f"static credential in {path} kept")
    else:
        credential = new_credential()
        digest = hash_credential(credential)
        steps.note(f"write a new static credential to {path}", change=True)
        if not args.dry_run:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(credential + "\n")
    return OrgEntry(entry.org_id, entry.user_id, entry.session_id, entry.service_accounts, digest)


async def _deprovision(clerk: Clerk, args: argparse.Namespace, steps: Steps) -> None:
    user = await clerk.find_user(args.org)
    if user is None:
        steps.note(f"no service user {external_id(args.org)}: nothing to remove in Clerk")
    elif args.dry_run:
        steps.note(f"remove {user['id']} from {args.org}", change=True)
    elif await clerk.remove_member(args.org, str(user["id"])):
        steps.note(f"removed {user['id']} from {args.org}", change=True)
    else:
        steps.note(f"{user['id']} was not a member of {args.org}")


def _write_orgs_file(args: argparse.Namespace, entry: OrgEntry | None, steps: Steps) -> None:
    path: Path | None = args.orgs_file
    if path is not None:
        orgs = load_orgs(path) if path.exists() else parse_orgs({"orgs": []})
        old = orgs.for_org(args.org)
        others = [e for e in orgs.entries if e.org_id != args.org]
        new = merged_entry(old, entry) if entry is not None else None
        if new != old:
            steps.note(
                f"{'update' if new else 'remove'} the entry of {args.org} in {path}", change=True
            )
            if not args.dry_run:
                entries = [*others, new] if new else others
                text = json.dumps({"orgs": [e.as_json() for e in entries]}, indent=2)
                path.write_text(text + "\n", encoding="utf-8")
        else:
            steps.note(f"entry of {args.org} in {path} unchanged")
    if entry is not None and getattr(args, "overlay", None) is not None:
        _write_overlay(args, steps)


def _write_overlay(args: argparse.Namespace, steps: Steps) -> None:
    folder: Path = args.overlay
    topics = [t.strip() for t in args.topics.split(",") if t.strip()]
    files = {
        "kustomization.yaml": overlay.render_kustomization(args.org, args.namespace),
        "org.env": overlay.render_env(args.org, topics),
    }
    if folder.exists():
        steps.note(f"overlay {folder} exists: left as it is")
        return
    steps.note(f"write the overlay {folder}", change=True)
    if not args.dry_run:
        folder.mkdir(parents=True)
        for name, text in files.items():
            (folder / name).write_text(text, encoding="utf-8")
