"""Reading the environment: ``KEY=VALUE`` env files, typed values with problems recorded
(never the value of a secret), and ``SecretStr``."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

__all__ = ["Reader", "SecretStr", "read_env_file", "shown"]

_SECRETISH_RE = re.compile(r"sk_(live|test)_|sb_secret_|ey[A-Za-z0-9_-]{8,}\.")
_N = TypeVar("_N", int, float)


class SecretStr:
    """A string that never shows itself: ``repr`` and ``str`` give ``[secure]``."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get_secret_value(self) -> str:
        """The secret itself; pass it straight to the place that needs it."""
        return self._value

    def __repr__(self) -> str:
        return "[secure]"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SecretStr) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


def read_env_file(path: Path, problems: list[str]) -> dict[str, str]:
    """Parse ``KEY=VALUE`` lines; ``#`` comments, blank lines and surrounding quotes allowed."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        problems.append(f"env file {path}: cannot be read ({exc.strerror}); fix the path")
        return {}
    values: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.removeprefix("export ").partition("=")
        if not sep or not key.strip():
            problems.append(f"env file {path} line {number}: expected KEY=VALUE")
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip()] = value
    return values


class Reader:
    """Reads typed values, recording a problem (never the value of a secret) on failure."""

    def __init__(self, env: Mapping[str, str], problems: list[str]) -> None:
        self.env = env
        self.problems = problems

    def raw(self, name: str) -> str | None:
        value = self.env.get(name, "").strip()
        return value or None

    def required(self, name: str, what: str) -> str | None:
        value = self.raw(name)
        if value is None:
            self.problems.append(f"{name} is required: set it to {what}")
        return value

    def matching(self, name: str, value: str | None, pattern: re.Pattern[str], what: str) -> None:
        if value is not None and not pattern.match(value):
            self.problems.append(f"{name}={shown(value)} is invalid: it must be {what}")

    def number(self, name: str, default: _N, parse: Callable[[str], _N], minimum: float) -> _N:
        value = self.raw(name)
        if value is None:
            return default
        kind = "an integer" if parse is int else "a number"
        try:
            parsed = parse(value)
        except ValueError:
            parsed = None
        if parsed is None or not math.isfinite(parsed):
            self.problems.append(f"{name}={value!r} is not {kind}: set {kind} >= {minimum}")
            return default
        if parsed < minimum:
            self.problems.append(f"{name}={value!r} is too small: set a value >= {minimum}")
        return parsed

    def url(self, name: str, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            self.problems.append(f"{name}={shown(value)} is not an http(s) URL: set https://...")
            return None
        return value.rstrip("/")

    def names(
        self, name: str, default: str, pattern: re.Pattern[str], what: str
    ) -> tuple[str, ...]:
        raw = self.env.get(name, default)
        items = tuple(part.strip() for part in raw.split(",") if part.strip())
        for item in items:
            self.matching(name, item, pattern, what)
        if len(set(items)) != len(items):
            self.problems.append(f"{name} lists a name twice: remove the duplicate")
        return items


def shown(value: str) -> str:
    """Echo a bad value to help the operator, unless it looks like a pasted secret."""
    if _SECRETISH_RE.search(value) or len(value) > 120:
        return "[hidden: looks like a secret or token]"
    return repr(value)
