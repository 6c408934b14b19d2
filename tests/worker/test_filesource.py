"""FileTokenSource: reads the sidecar's file, re-reads it when it changes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from worker.errors import TokenUnavailable
from worker.tokens.sources.file import FileTokenSource

pytestmark = pytest.mark.anyio


async def test_reads_the_token_and_strips_whitespace(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text("eyJ.first.sig\n")
    assert await FileTokenSource(path).fetch() == "eyJ.first.sig"


async def test_a_changed_file_is_read_again(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text("eyJ.first.sig")
    source = FileTokenSource(path)
    await source.fetch()
    path.write_text("eyJ.second.token")
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    assert await source.fetch() == "eyJ.second.token"


async def test_missing_or_empty_files_are_unavailable(tmp_path: Path) -> None:
    with pytest.raises(TokenUnavailable, match="unreadable"):
        await FileTokenSource(tmp_path / "nope").fetch()
    (tmp_path / "empty").write_text("  \n")
    with pytest.raises(TokenUnavailable, match="empty"):
        await FileTokenSource(tmp_path / "empty").fetch()
