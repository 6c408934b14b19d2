"""Object bytes, kept outside Postgres as the platform keeps them in S3.

Keyed by the object row's ``version`` (a fresh uuid per upload), so a rename moves no bytes
and an upsert never shows half of a new file under the old row. In memory: the stand-in is
for tests and demos, and a restart of it starts with an empty database anyway.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Blob:
    data: bytes
    content_type: str
    cache_control: str

    @property
    def etag(self) -> str:
        # S3's ETag of a single-part upload: the MD5 of the bytes, quoted.
        return f'"{hashlib.md5(self.data, usedforsecurity=False).hexdigest()}"'


class BlobStore:
    """``version -> Blob``."""

    def __init__(self) -> None:
        self._blobs: dict[str, Blob] = {}

    def put(self, version: str, blob: Blob) -> None:
        self._blobs[version] = blob

    def get(self, version: str | None) -> Blob | None:
        return self._blobs.get(version) if version else None

    def drop(self, versions: Iterable[str | None]) -> None:
        for version in versions:
            if version:
                self._blobs.pop(version, None)

    def __len__(self) -> int:
        return len(self._blobs)
