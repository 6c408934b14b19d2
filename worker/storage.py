"""Supabase Storage for handlers: the official client with the current token, and ``OrgFiles``.

``make_storage_client`` builds one ``storage3.AsyncStorageClient`` for the whole process
over one httpx client whose request hook reads the *current* Clerk token on every
request (as the data API client does): a rotated token is used at once. ``OrgFiles`` is
the org's own folder of the ``org-files`` bucket (``<org_id>/...``), the folder the
Clerk-claim RLS policies of ``storage.objects`` open to this org: every path a handler
gives is relative to it, so no call can name another org's folder or the bucket root.
storage3's and httpx's errors are translated here into ``StorageError``.
"""

from __future__ import annotations

import contextlib
import urllib.parse
from collections.abc import Iterator

import httpx
from storage3 import AsyncStorageClient
from storage3.exceptions import StorageApiError
from storage3.types import FileOptions

from worker.errors import StorageError
from worker.ports import TokenProvider

__all__ = ["ORG_FILES_BUCKET", "OrgFiles", "make_storage_client"]

#: The private bucket of supabase/migrations/20261202010000_storage.sql.
ORG_FILES_BUCKET = "org-files"


def make_storage_client(
    supabase_url: str,
    anon_key: str,
    tokens: TokenProvider,
    *,
    timeout_s: float = 30.0,
    transport: httpx.AsyncBaseTransport | None = None,
) -> AsyncStorageClient:
    """A storage3 client for ``<supabase_url>/storage/v1/`` that sends the current token.

    ``apikey`` stays the anon key; ``Authorization: Bearer <jwt>`` is set per request from
    ``tokens.current``. With no token yet, calls fail with ``StorageError``. Closing the
    client (``async with`` or ``__aexit__``) closes its httpx client. ``transport`` is the
    test seam (``httpx.MockTransport``).
    """

    async def authorize(request: httpx.Request) -> None:
        token = tokens.current
        if token is None:
            raise StorageError("no verified session token yet; the Storage call was not sent")
        request.headers["Authorization"] = f"Bearer {token.jwt}"

    # Our own httpx client: supabase-py's default hands storage3 a deprecated `timeout`.
    http = httpx.AsyncClient(
        timeout=timeout_s, event_hooks={"request": [authorize]}, transport=transport
    )
    # The trailing slash: storage3 joins paths onto it (and warns without one).
    url = f"{supabase_url.rstrip('/')}/storage/v1/"
    return AsyncStorageClient(url, {"apikey": anon_key}, http_client=http)


class OrgFiles:
    """The org's folder ``<org_id>/`` of a bucket (``org-files`` unless told otherwise).

    Paths are relative to that folder (``"reports/42.json"``); absolute paths, empty parts
    and ``.``/``..`` are refused with ``ValueError`` before anything is sent. Every failed
    call raises ``StorageError`` with the platform's status (``403`` when RLS refuses,
    ``404`` for an object that is absent or hidden) and message, never a token.
    """

    def __init__(
        self, client: AsyncStorageClient, org_id: str, bucket: str = ORG_FILES_BUCKET
    ) -> None:
        if not org_id or "/" in org_id:
            raise ValueError(f"not an org id: {org_id!r}")
        self.org_id = org_id
        self.bucket = bucket
        self._client = client

    def __repr__(self) -> str:
        return f"OrgFiles(bucket={self.bucket!r}, folder={self.org_id + '/'!r})"

    def key(self, path: str) -> str:
        """The object's name in the bucket: ``<org_id>/<path>``."""
        parts = urllib.parse.unquote(path).split("/")
        if not path or any(part in ("", ".", "..") for part in parts):
            raise ValueError(
                f"expected a relative path like 'reports/1.json' inside the org's folder, "
                f"got {path!r}"
            )
        return f"{self.org_id}/{path}"

    async def upload(
        self,
        path: str,
        data: bytes | str,
        *,
        content_type: str = "application/octet-stream",
        upsert: bool = False,
    ) -> str:
        """Store ``data`` at ``path``; return the object's key. Without ``upsert`` an
        existing object is not replaced (``StorageError`` with status 409)."""
        key = self.key(path)
        body = data.encode() if isinstance(data, str) else data
        options: FileOptions = {"content-type": content_type}
        if upsert:
            options["upsert"] = "true"
        with self._translated("upload", key):
            await self._client.from_(self.bucket).upload(key, body, options)
        return key

    async def download(self, path: str) -> bytes:
        """The object's bytes (``StorageError`` 404 when it is absent or not readable)."""
        key = self.key(path)
        with self._translated("download", key):
            return await self._client.from_(self.bucket).download(key)

    async def exists(self, path: str) -> bool:
        """Whether the object exists and this token may read it."""
        key = self.key(path)
        with self._translated("exists", key):
            return await self._client.from_(self.bucket).exists(key)

    async def remove(self, *paths: str) -> list[str]:
        """Delete the objects; return the keys that were deleted (RLS hides the others)."""
        keys = [self.key(p) for p in paths]
        with self._translated("remove", ", ".join(keys)):
            removed = await self._client.from_(self.bucket).remove(keys)
        return [str(row["name"]) for row in removed]

    async def signed_url(self, path: str, expires_in_s: int) -> str:
        """A URL that downloads the object without a token until ``expires_in_s`` pass."""
        key = self.key(path)
        with self._translated("sign", key):
            signed = await self._client.from_(self.bucket).create_signed_url(key, expires_in_s)
        url = signed["signedURL"]
        if url is None:
            raise StorageError(f"Storage sign {self.bucket}/{key}: no signed URL returned")
        return url

    async def list(self, folder: str = "", *, limit: int = 100, offset: int = 0) -> list[str]:
        """Names directly under ``folder`` (files and sub-folders), sorted by name."""
        prefix = self.key(folder) if folder else self.org_id
        with self._translated("list", prefix + "/"):
            entries = await self._client.from_(self.bucket).list(
                prefix, {"limit": limit, "offset": offset}
            )
        return [str(entry["name"]) for entry in entries]

    @contextlib.contextmanager
    def _translated(self, operation: str, key: str) -> Iterator[None]:
        where = f"Storage {operation} {self.bucket}/{key}"
        try:
            yield
        except StorageApiError as exc:
            status = str(exc.status)
            code = int(status) if status.isdigit() else None
            raise StorageError(f"{where}: {status} {exc.message}", status=code) from exc
        except httpx.HTTPError as exc:
            raise StorageError(f"{where}: cannot reach Storage ({type(exc).__name__})") from exc
