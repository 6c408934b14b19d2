"""Configuration: one frozen, typed ``Settings`` built from an explicit mapping.

Owns reading and validating the environment (every problem reported at once, each naming
the variable and its fix) and ``SecretStr``. Never touches the network, the clock or any
other part: every part receives the values it needs from ``Settings``.
"""

from worker.settings.model import CLERK_MIN_EXPIRES_IN_S, SecretStr, Settings

__all__ = ["CLERK_MIN_EXPIRES_IN_S", "SecretStr", "Settings"]
