"""Instance settings that Clerk keeps in its Dashboard, chosen here when the stand-in starts.

Facts (../shared/reference/clerk-sessions.md §1, §2): an instance is a development or a
production instance (``sk_test_``/``sk_live_`` secret keys); sessions end at the maximum
lifetime (7 days on new instances) and, when the inactivity timeout is on (off by
default), after that long without activity; the Native API (Dashboard, "Native
applications") gates every ``_is_native`` Frontend API request; Frontend API sign-ins
are limited to 5 per 10 s per IP.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

InstanceType = Literal["development", "production"]
INSTANCE_TYPES: tuple[InstanceType, ...] = ("development", "production")
DEFAULT_SESSION_LIFETIME_S = 7 * 24 * 3600
SIGN_IN_LIMIT = 5
SIGN_IN_WINDOW_S = 10.0


@dataclass
class InstanceSettings:
    """What the Dashboard decides for one instance; sessions read it when they are created."""

    instance_type: InstanceType = "development"
    session_lifetime_s: int = DEFAULT_SESSION_LIFETIME_S
    session_inactivity_s: int | None = None  # None: the inactivity timeout is off
    native_api: bool = True  # off on a new real instance; on here so the native flow works

    def __post_init__(self) -> None:
        check_instance_type(self.instance_type)
        check_session_times(self.session_lifetime_s, self.session_inactivity_s)

    @property
    def production(self) -> bool:
        """True on a production instance (``sk_live_`` keys, no ``POST /v1/sessions``)."""
        return self.instance_type == "production"

    @property
    def key_prefix(self) -> str:
        """``sk_live_`` on production instances, ``sk_test_`` on development ones."""
        return "sk_live_" if self.production else "sk_test_"

    def describe(self) -> dict[str, object]:
        """The settings as the control surface's ``GET /state`` shows them."""
        return {
            "instance_type": self.instance_type,
            "session_lifetime_seconds": self.session_lifetime_s,
            "session_inactivity_seconds": self.session_inactivity_s,
            "native_api": self.native_api,
        }


def check_instance_type(value: str) -> InstanceType:
    """``value`` if it names an instance type, else ValueError."""
    for known in INSTANCE_TYPES:
        if value == known:
            return known
    raise ValueError(f"instance type must be development or production, got {value!r}")


def check_session_times(lifetime_s: int, inactivity_s: int | None) -> None:
    """Both must be positive whole seconds (the stand-in accepts far less than Clerk's minimum)."""
    if isinstance(lifetime_s, bool) or not isinstance(lifetime_s, int) or lifetime_s < 1:
        raise ValueError(f"session lifetime must be a positive number of seconds, got {lifetime_s}")
    if inactivity_s is not None and (
        isinstance(inactivity_s, bool) or not isinstance(inactivity_s, int) or inactivity_s < 1
    ):
        raise ValueError(f"inactivity timeout must be positive seconds or off, got {inactivity_s}")
