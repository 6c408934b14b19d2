"""JSON log lines and a last-line-of-defence redaction of tokens and secrets.

Nothing here runs at import: only the CLI calls ``configure_logging``. Code never logs a
token on purpose (it logs ``kid`` and ``exp``); ``RedactingFilter`` catches accidents, in
our logs and in third-party ones, because it sits on the handler.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

__all__ = ["JsonFormatter", "RedactingFilter", "configure_logging", "redact"]

# A JWT: base64url JSON header (always starts "ey", from '{"'), payload, signature.
_JWT_RE = re.compile(r"\bey[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*")
_SECRET_RE = re.compile(r"\bsk_(?:live|test)_[A-Za-z0-9]+")
_BEARER_RE = re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._~+/-]+=*")

# Attributes every LogRecord has; anything else on a record came from ``extra=``.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
}


def redact(text: str) -> str:
    """Mask JWTs, Clerk secret keys and bearer credentials in ``text``."""
    text = _JWT_RE.sub("[redacted-jwt]", text)
    text = _SECRET_RE.sub("[redacted-secret]", text)
    return _BEARER_RE.sub("Bearer [redacted]", text)


class RedactingFilter(logging.Filter):
    """Renders the message, masks secrets in it and in string extras, keeps the record."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Always True: the record is rewritten, never dropped."""
        record.msg = redact(record.getMessage())
        record.args = None
        for key, value in list(vars(record).items()):
            if key not in _STANDARD and isinstance(value, str):
                setattr(record, key, redact(value))
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``ts``, ``level``, ``logger``, ``msg``, static fields
    (such as ``org_id``) and every ``extra=`` field (``topic``, ``event``, ``event_id``...)."""

    def __init__(self, static: dict[str, Any] | None = None) -> None:
        super().__init__()
        self._static = dict(static or {})

    def format(self, record: logging.LogRecord) -> str:
        """Render ``record``; values that are not JSON become their ``str``."""
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
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
        # Redacting the rendered line also covers nested extras; the patterns cannot span a
        # quote or a backslash, so the JSON stays valid.
        return redact(json.dumps(line, default=str))


def configure_logging(level: str, org_id: str, *, stream: TextIO | None = None) -> logging.Handler:
    """Send every log record (ours and third-party) as redacted JSON lines to ``stream``
    (stderr by default), replacing the root logger's handlers. Returns the handler."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter({"org_id": org_id}))
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # httpx logs every request at INFO; one line per token mint or JWKS fetch is noise.
    logging.getLogger("httpx").setLevel(max(logging.WARNING, root.level))
    return handler
