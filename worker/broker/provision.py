"""``realtime-worker provision`` and ``deprovision``: one org's service user, its
``org:worker`` membership and its orgs-file entry, through Clerk's Backend API.

Idempotent: the service user is found again by its ``external_id``
(``realtime-worker:<org>``), an existing membership is kept, an existing entry keeps its
identities. ``dry_run`` reads but never writes. Run by an operator with the secret key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx

from worker.broker.orgs import OrgEntry
from worker.errors import WorkerError
from worker.settings import SecretStr

__all__ = ["SERVICE_ROLE", "Clerk", "ProvisionError", "Steps", "external_id"]

SERVICE_ROLE = "org:worker"
ROLE_FIX = (
    "the Clerk instance has no organization role 'org:worker': create it in the Clerk "
    "Dashboard (Configure, Organizations, Roles & Permissions, key 'worker'), then run "
    "provision again"
)


class ProvisionError(WorkerError):
    """A step Clerk refused; the message says what to do."""


def external_id(org_id: str) -> str:
    """How the org's service user is recognised: ``realtime-worker:<org>``."""
    return f"realtime-worker:{org_id}"


@dataclass
class Steps:
    """What provisioning did (or, with ``dry_run``, would do), one line each."""

    dry_run: bool
    lines: list[str] = field(default_factory=list)
    changed: bool = False

    def note(self, text: str, *, change: bool = False) -> None:
        self.changed |= change
        prefix = "would " if change and self.dry_run else ""
        self.lines.append(prefix + text)


class Clerk:
    """The few Backend API calls provisioning needs."""

    def __init__(self, api_url: str, secret_key: SecretStr, http: httpx.AsyncClient) -> None:
        self._base = api_url.rstrip("/") + "/v1"
        self._secret = secret_key
        self._http = http

    async def call(self, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {self._secret.get_secret_value()}"}
        try:
            response = await self._http.request(
                method, self._base + path, headers=headers, **kwargs
            )
        except httpx.HTTPError as exc:
            raise ProvisionError(f"Clerk unreachable ({type(exc).__name__})") from exc
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code in (401, 403):
            raise ProvisionError("Clerk refused the secret key: check CLERK_SECRET_KEY")
        return response.status_code, body

    async def find_user(self, org_id: str) -> dict[str, Any] | None:
        status, body = await self.call("GET", "/users", params={"external_id": external_id(org_id)})
        if status != 200 or not isinstance(body, list):
            raise ProvisionError(f"listing users failed (HTTP {status}, {_code(body)})")
        return body[0] if body else None

    async def create_user(self, org_id: str) -> dict[str, Any]:
        payload = {
            "external_id": external_id(org_id),
            "first_name": "realtime-worker",
            "last_name": org_id,
        }
        status, body = await self.call("POST", "/users", json=payload)
        if status != 200 or not isinstance(body, dict):
            raise ProvisionError(f"creating the service user failed (HTTP {status}, {_code(body)})")
        return body

    async def add_member(self, org_id: str, user_id: str) -> bool:
        """True if the membership was created, False if the user was already a member."""
        path = f"/organizations/{quote(org_id, safe='')}/memberships"
        payload = {"user_id": user_id, "role": SERVICE_ROLE}
        status, body = await self.call("POST", path, json=payload)
        code = _code(body)
        if status == 200:
            return True
        if code == "already_a_member_in_organization":
            return False
        if status == 404 and "role" not in _text(body):
            raise ProvisionError(f"organization {org_id} not found in this Clerk instance")
        if "role" in _text(body) or code in ("role_not_found", "invalid_role"):
            raise ProvisionError(ROLE_FIX)
        raise ProvisionError(f"adding the membership failed (HTTP {status}, {code})")

    async def remove_member(self, org_id: str, user_id: str) -> bool:
        path = f"/organizations/{quote(org_id, safe='')}/memberships/{quote(user_id, safe='')}"
        status, body = await self.call("DELETE", path)
        if status == 200:
            return True
        if status == 404:
            return False
        raise ProvisionError(f"removing the membership failed (HTTP {status}, {_code(body)})")

    async def org_session(self, user_id: str, org_id: str, *, create: bool) -> str | None:
        """An active session of the user with ``org_id`` active (made on a development
        instance when ``create``); None when there is none and none can be made here."""
        params = {"user_id": user_id, "status": "active"}
        status, body = await self.call("GET", "/sessions", params=params)
        if status == 200 and isinstance(body, list):
            for session in body:
                if session.get("last_active_organization_id") == org_id:
                    return str(session["id"])
        if not create:
            return None
        payload = {"user_id": user_id, "active_organization_id": org_id}
        status, body = await self.call("POST", "/sessions", json=payload)
        return str(body["id"]) if status == 200 and isinstance(body, dict) else None


def _code(body: Any) -> str:
    errors = body.get("errors") if isinstance(body, dict) else None
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        return str(errors[0].get("code") or "no code")
    return "no error details"


def _text(body: Any) -> str:
    errors = body.get("errors") if isinstance(body, dict) else None
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        first = errors[0]
        meta = first.get("meta") or {}
        return " ".join(
            str(x) for x in (first.get("message"), first.get("long_message"), meta)
        ).lower()
    return ""


def merged_entry(old: OrgEntry | None, new: OrgEntry) -> OrgEntry:
    """The new entry, keeping the identities (and a session) an existing entry had."""
    if old is None:
        return new
    return OrgEntry(
        org_id=new.org_id,
        user_id=new.user_id,
        session_id=new.session_id or old.session_id,
        service_accounts=tuple(dict.fromkeys(old.service_accounts + new.service_accounts)),
        credential_sha256=old.credential_sha256 or new.credential_sha256,
    )
