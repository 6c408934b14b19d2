"""The file token source: a sidecar writes the token to a file, the worker re-reads it.

The file is read again only when its modification time or size changed, so polling it on
every refresh is cheap.
"""

from __future__ import annotations

from pathlib import Path

import anyio

from worker.errors import TokenUnavailable

__all__ = ["FileTokenSource"]


class FileTokenSource:
    """Reads a session token from ``path`` (whitespace stripped), re-reading on change."""

    def __init__(self, path: Path | str) -> None:
        self._path = anyio.Path(path)
        self._seen: tuple[int, int] | None = None
        self._token: str | None = None

    def __repr__(self) -> str:
        return f"FileTokenSource(path={str(self._path)!r})"

    async def fetch(self) -> str:
        """The token in the file; ``TokenUnavailable`` when it is missing or empty."""
        try:
            stat = await self._path.stat()
            stamp = (stat.st_mtime_ns, stat.st_size)
            if stamp != self._seen or self._token is None:
                text = (await self._path.read_text(encoding="utf-8")).strip()
                self._seen, self._token = stamp, text
        except OSError as exc:
            raise TokenUnavailable(f"token file {self._path} unreadable: {exc.strerror}") from exc
        if not self._token:
            raise TokenUnavailable(f"token file {self._path} is empty")
        return self._token
