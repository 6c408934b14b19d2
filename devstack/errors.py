"""The devstack's one exception type: every message names the problem and the fix."""


class DevstackError(Exception):
    """The local stack cannot start or run as asked."""
