"""JSON log lines and a last-line-of-defence redaction of tokens and secrets.

Nothing here runs at import: only the CLI calls ``configure_logging`` and
``install_uncaught_logging`` (and sets ``log_asyncio_exception`` on its event loop), so an
uncaught exception is one redacted JSON line too, never a raw traceback on stderr. Code never logs a
token on purpose (it logs ``kid`` and ``exp``); ``JsonFormatter`` catches accidents, in our
logs and in third-party ones, by redacting every rendered line (message, extras, nested
values and tracebacks alike) before it leaves the process.

The dispatcher writes one line per event, so this is on the hot path: ``redact`` runs its
patterns only when a cheap literal check says one could match (docs/performance.md).
"""

from __future__ import annotations

import json
import logging
import re
import sys
import threading
from asyncio import AbstractEventLoop
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, TextIO

__all__ = [
    "JsonFormatter",
    "configure_logging",
    "install_uncaught_logging",
    "log_asyncio_exception",
    "redact",
]

# Redaction runs on rendered JSON, where a secret can follow an escape ("\\n", "\\u00a0")
# or a percent-escape ("%20") rather than a word boundary: _START accepts any of them.
_START = r"(?:(?<=\\[nrtbf\\/\"])|(?<=\\u[0-9a-fA-F]{4})|(?<=%[0-9a-fA-F]{2})|\b)"
_SPACE = r"(?:\s|\\[nrtbf]|\\u[0-9a-fA-F]{4}|%20|\+)+"
# A JWT's dot, also escaped: "\u002e" and "\." (one backslash, or two once JSON-encoded)
# and the percent-escape "%2E".
_DOT = r"(?:\.|%2[eE]|\\+u002[eE]|\\+\.)"
# A JWT: base64url JSON header (always starts "ey", from '{"'), payload, signature. No start
# anchor: a token glued to a word ("abceyJ...") is masked too, and an unanchored pattern
# keeps re's fast literal-prefix search.
_B64 = r"[A-Za-z0-9_-]"
_JWT_RE = re.compile(f"ey{_B64}{{8,}}{_DOT}{_B64}{{8,}}{_DOT}{_B64}*")
# A necessary condition of _JWT_RE (what follows the header is the first character of a
# _DOT), cheaper than it on a line with no token.
_JWT_HINT = re.compile(r"ey[A-Za-z0-9_-]{8,}[.%\\]")
# Clerk keys need a start ("task_test_x" is no key); "sb_secret_" never occurs by chance.
_SECRET_RE = re.compile(f"(?:{_START}sk_(?:live|test)_|sb_secret_)[A-Za-z0-9_-]+")
_BEARER_RE = re.compile(_START + r"(?i:bearer)" + _SPACE + r"[A-Za-z0-9._~+/-]+=*")

_ENCODER = json.JSONEncoder(default=str)

# Attributes every LogRecord has; anything else on a record came from ``extra=``.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
}


def redact(text: str) -> str:
    """Mask JWTs (also glued to a word or with escaped dots), Clerk and Supabase secret keys
    and bearer credentials in ``text``."""
    # Each guard is a necessary condition of its pattern, so skipping is never a miss.
    if _JWT_HINT.search(text):
        text = _JWT_RE.sub("[redacted-jwt]", text)
    if "sk_" in text or "sb_secret_" in text:
        text = _SECRET_RE.sub("[redacted-secret]", text)
    if "bearer" in text.lower():
        text = _BEARER_RE.sub("Bearer [redacted]", text)
    return text


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``ts``, ``level``, ``logger``, ``msg``, static fields
    (such as ``org_id``) and every ``extra=`` field (``topic``, ``event``, ``event_id``...)."""

    def __init__(self, static: dict[str, Any] | None = None) -> None:
        super().__init__()
        self._static = dict(static or {})
        self._second: tuple[int, str] = (-1, "")  # one tuple: swapped atomically

    def _timestamp(self, created: float) -> str:
        # ISO 8601 in UTC with milliseconds; the date part is formatted once a second.
        second = int(created)
        cached, prefix = self._second
        if cached != second:
            prefix = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")
            self._second = (second, prefix)
        return f"{prefix}.{int((created - second) * 1000):03d}+00:00"

    def format(self, record: logging.LogRecord) -> str:
        """Render ``record``; values that are not JSON become their ``str``."""
        line: dict[str, Any] = {
            "ts": self._timestamp(record.created),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
            **self._static,
        }
        for key, value in vars(record).items():
            if key not in _STANDARD:
                line[key] = value
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        # Redacting the rendered line also covers nested extras; a match never ends inside
        # a quote or an escape sequence, so the JSON stays valid.
        return redact(_ENCODER.encode(line))


def configure_logging(level: str, org_id: str, *, stream: TextIO | None = None) -> logging.Handler:
    """Send every log record (ours and third-party) as redacted JSON lines to ``stream``
    (stderr by default), replacing the root logger's handlers. Returns the handler."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter({"org_id": org_id}))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # No line carries the caller's file, thread or process: skip collecting them for every
    # record (the logging HOWTO's "Optimization" section).
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    # httpx logs every request at INFO; one line per token mint or JWKS fetch is noise.
    logging.getLogger("httpx").setLevel(max(logging.WARNING, root.level))
    return handler


_uncaught = logging.getLogger("worker.uncaught")


def install_uncaught_logging() -> None:
    """Log uncaught exceptions (the main thread's and other threads') through the logging
    setup, that is the redacting JSON formatter, instead of Python's raw traceback."""

    def excepthook(
        kind: type[BaseException], value: BaseException, tb: TracebackType | None
    ) -> None:
        _uncaught.critical("uncaught exception: the process stops", exc_info=(kind, value, tb))

    def threadhook(args: threading.ExceptHookArgs) -> None:
        if args.exc_value is None:
            return
        exc_info = (args.exc_type, args.exc_value, args.exc_traceback)
        _uncaught.critical("uncaught exception in a thread", exc_info=exc_info)

    sys.excepthook = excepthook
    threading.excepthook = threadhook


def log_asyncio_exception(loop: AbstractEventLoop, context: dict[str, Any]) -> None:
    """An asyncio exception handler (``loop.set_exception_handler``): one redacted line."""
    del loop
    exc = context.get("exception")
    exc_info = (type(exc), exc, exc.__traceback__) if isinstance(exc, BaseException) else None
    _uncaught.error("asyncio: %s", context.get("message", "unhandled error"), exc_info=exc_info)
