"""The broker's orgs file: which org each caller identity may get tokens for.

JSON, one entry per org::

    {"orgs": [{"org_id": "org_2abc", "user_id": "user_2def", "session_id": "sess_2ghi",
               "service_accounts": ["system:serviceaccount:realtime-worker:rw-org-2abc"],
               "credential_sha256": "<hex sha256 of the org's static credential>"}]}

``service_accounts`` and ``credential_sha256`` are both optional (an entry with neither
serves nobody). A ServiceAccount or a credential hash may belong to one org only. The
file holds no secret: static credentials are 32 random bytes, so their SHA-256 is enough
(no dictionary to guess from), and it is compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from worker.errors import ConfigError

__all__ = ["OrgEntry", "Orgs", "hash_credential", "load_orgs", "new_credential"]

_ORG_RE = re.compile(r"^org_[A-Za-z0-9]+$")
_USER_RE = re.compile(r"^user_[A-Za-z0-9]+$")
_SESSION_RE = re.compile(r"^sess_[A-Za-z0-9]+$")
_SA_RE = re.compile(
    r"^system:serviceaccount:[a-z0-9]([-a-z0-9]*[a-z0-9])?:[a-z0-9]([-.a-z0-9]*[a-z0-9])?$"
)
_HEX_RE = re.compile(r"^[0-9a-f]{64}$")
CREDENTIAL_PREFIX = "rwb_"


def new_credential() -> str:
    """A fresh static credential: ``rwb_`` and 43 characters of 32 random bytes."""
    return CREDENTIAL_PREFIX + secrets.token_urlsafe(32)


def hash_credential(credential: str) -> str:
    """The hex SHA-256 stored in the orgs file for ``credential``."""
    return hashlib.sha256(credential.encode()).hexdigest()


@dataclass(frozen=True)
class OrgEntry:
    """One org the broker serves, and who may ask for its tokens."""

    org_id: str
    user_id: str | None = None
    session_id: str | None = None
    service_accounts: tuple[str, ...] = ()
    credential_sha256: str | None = None

    def as_json(self) -> dict[str, Any]:
        """The entry as it is written in the orgs file (empty fields left out)."""
        out: dict[str, Any] = {"org_id": self.org_id}
        for key in ("user_id", "session_id", "credential_sha256"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        if self.service_accounts:
            out["service_accounts"] = list(self.service_accounts)
        return out


@dataclass(frozen=True)
class Orgs:
    """Every entry, looked up by org, by ServiceAccount subject, by credential."""

    entries: tuple[OrgEntry, ...]
    _by_sa: dict[str, OrgEntry] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        for entry in self.entries:
            for sub in entry.service_accounts:
                self._by_sa[sub] = entry

    def for_org(self, org_id: str) -> OrgEntry | None:
        return next((e for e in self.entries if e.org_id == org_id), None)

    def for_service_account(self, subject: str) -> OrgEntry | None:
        return self._by_sa.get(subject)

    def for_credential(self, credential: str) -> OrgEntry | None:
        """The org of a static credential; every entry is compared, in constant time."""
        presented = hash_credential(credential)
        found = None
        for entry in self.entries:
            stored = entry.credential_sha256 or "0" * 64
            if hmac.compare_digest(presented, stored) and entry.credential_sha256:
                found = entry
        return found


def load_orgs(path: Path) -> Orgs:
    """Read and validate the orgs file; ``ConfigError`` lists every problem."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError([f"orgs file {path}: cannot be read ({exc.strerror})"]) from exc
    except ValueError as exc:
        raise ConfigError([f"orgs file {path}: not JSON ({exc})"]) from exc
    return parse_orgs(raw, str(path))


def parse_orgs(raw: object, where: str = "orgs file") -> Orgs:
    """Validate the decoded JSON of an orgs file."""
    items = raw.get("orgs") if isinstance(raw, dict) else None
    if not isinstance(items, list):
        raise ConfigError([f'{where}: expected {{"orgs": [...]}}'])
    problems: list[str] = []
    entries = [_entry(item, f"{where} entry {i}", problems) for i, item in enumerate(items)]
    _check_unique(entries, where, problems)
    if problems:
        raise ConfigError(problems)
    return Orgs(tuple(entries))


def _entry(item: object, where: str, problems: list[str]) -> OrgEntry:
    if not isinstance(item, dict):
        problems.append(f"{where}: expected an object")
        return OrgEntry(org_id="")
    checks = (("org_id", _ORG_RE), ("user_id", _USER_RE), ("session_id", _SESSION_RE))
    for key, pattern in checks:
        value = item.get(key)
        if (value is not None or key == "org_id") and not (
            isinstance(value, str) and pattern.match(value)
        ):
            problems.append(f"{where}: {key} is missing or invalid")
    sas = item.get("service_accounts", [])
    if not isinstance(sas, list) or not all(isinstance(s, str) and _SA_RE.match(s) for s in sas):
        problems.append(f"{where}: service_accounts must be system:serviceaccount:<ns>:<name>")
        sas = []
    digest = item.get("credential_sha256")
    if digest is not None and not (isinstance(digest, str) and _HEX_RE.match(digest)):
        problems.append(f"{where}: credential_sha256 must be 64 lowercase hex digits")
        digest = None
    return OrgEntry(
        org_id=str(item.get("org_id", "")),
        user_id=item.get("user_id"),
        session_id=item.get("session_id"),
        service_accounts=tuple(sas),
        credential_sha256=digest,
    )


def _check_unique(entries: list[OrgEntry], where: str, problems: list[str]) -> None:
    for what, values in (
        ("org_id", [e.org_id for e in entries]),
        ("service account", [s for e in entries for s in e.service_accounts]),
        ("credential_sha256", [e.credential_sha256 for e in entries if e.credential_sha256]),
    ):
        twice = sorted({v for v in values if values.count(v) > 1})
        if twice:
            problems.append(f"{where}: a {what} appears in more than one entry (one org each)")
