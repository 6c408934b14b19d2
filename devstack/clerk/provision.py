"""Demo organizations for ``python -m devstack up``: each with a service user ready to run.

A worker that manages its own Clerk session needs only ``ORG_ID`` and ``CLERK_USER_ID``
(the org's service user); one that is handed a session also needs ``CLERK_SESSION_ID``.
:func:`demo_env` provisions both kinds of data for every demo org, through the same
calls as the Backend API, and names them ``DEMO_ORG_<KEY>_*``; the first org's values
are also written under the plain names, so ``set -a; . .devstack/env`` is enough to
start a worker for it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from devstack.clerk.service import Clerk

SERVICE_ROLE = "org:worker"


@dataclass(frozen=True)
class ServiceUser:
    """An org, its service user (``SERVICE_ROLE``) and one active session of that user."""

    org_id: str
    user_id: str
    session_id: str


def service_user(clerk: Clerk, org_name: str, role: str = SERVICE_ROLE) -> ServiceUser:
    """Create ``org_name`` with a service user holding ``role`` and an active session.

    The session is made the way the instance allows: ``POST /v1/sessions`` on a
    development instance, a sign-in token redeemed as a ticket on a production one.
    """
    user = clerk.create_user(first_name=f"{org_name} worker")
    org = clerk.create_organization(org_name)
    clerk.add_membership(org["id"], user["id"], role)
    if clerk.settings.production:
        session = clerk.sign_in(user["id"], org["id"])
    else:
        session = clerk.create_session(user["id"], active_organization_id=org["id"])
    return ServiceUser(org["id"], user["id"], session["id"])


def env_key(org_key: str) -> str:
    """``"A"`` -> ``"DEMO_ORG_A"`` (letters, digits and underscores only)."""
    return "DEMO_ORG_" + re.sub(r"[^A-Z0-9]+", "_", org_key.upper()).strip("_")


def demo_env(clerk: Clerk, org_keys: tuple[str, ...]) -> dict[str, str]:
    """Provision ``Org <key>`` for each key; the env-file lines that describe them."""
    env: dict[str, str] = {}
    for index, key in enumerate(org_keys):
        made = service_user(clerk, f"Org {key}")
        prefix = env_key(key)
        env |= {
            f"{prefix}_ORG_ID": made.org_id,
            f"{prefix}_CLERK_USER_ID": made.user_id,
            f"{prefix}_CLERK_SESSION_ID": made.session_id,
        }
        if index == 0:
            env |= {
                "ORG_ID": made.org_id,
                "CLERK_USER_ID": made.user_id,
                "CLERK_SESSION_ID": made.session_id,
            }
    return env
