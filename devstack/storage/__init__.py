"""A stand-in for Supabase Storage (behind the gateway at ``/storage/v1``) on a real Postgres.

The subset the official clients (``storage3``, ``@supabase/storage-js``) use for files:

==========================================================  ===============================
``POST|PUT /object/<bucket>/<name>``                        upload (``x-upsert``) / update
``GET|HEAD /object/[authenticated/]<bucket>/<name>``        download
``GET /object/info/[authenticated/]<bucket>/<name>``        info (``exists``)
``POST /object/list/<bucket>``                              list (``storage.search``)
``DELETE /object/<bucket>`` ``{"prefixes"}``; ``/<name>``   remove
``POST /object/move``                                       move
``POST /object/sign/<bucket>/<name>``; ``/<bucket>``         create signed URL(s)
``GET /object/sign/<bucket>/<name>?token=``                 fetch by signed URL (no apikey)
==========================================================  ===============================

Every operation runs as the caller's role with its claims, so the project's RLS policies on
``storage.objects`` decide; rows live in ``storage.objects``, bytes in memory. Errors are
Storage's ``{"statusCode", "error", "message", "code"}`` (see ``devstack.storage.errors``).
Not implemented: buckets API, copy, public URLs, image transforms, signed uploads, TUS/S3.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from aiohttp import web

from devstack.jwt import Keyring
from devstack.storage.blobs import BlobStore
from devstack.storage.database import Database
from devstack.storage.http import Auth, Handler, guarded
from devstack.storage.reads import Reads
from devstack.storage.signing import UrlSigner
from devstack.storage.writes import Writes

__all__ = ["PREFIX", "Storage"]

PREFIX = "/storage/v1"
_NAME = "{bucket}/{name:.+}"


class Storage:
    """Storage under ``/storage/v1/`` of an aiohttp application.

    Call :meth:`add_routes` before the app starts, :meth:`start` before serving (opens the
    pool) and :meth:`close` on shutdown (idempotent). ``jwt_secret`` signs the URLs;
    ``clock`` is the time signed URLs and tokens expire by.
    """

    def __init__(
        self,
        *,
        database_url: str,
        keyring: Keyring,
        jwt_secret: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.blobs = BlobStore()
        self._db = Database(database_url)
        auth = Auth(keyring, clock)
        self._reads = Reads(self._db, self.blobs, auth, UrlSigner(jwt_secret, clock))
        self._writes = Writes(self._db, self.blobs, auth, clock)

    def add_routes(self, app: web.Application) -> None:
        """Register the object routes (no middleware: the app is shared). Specific paths
        first: aiohttp matches in registration order, as Storage's router does by prefix."""
        reads, writes = self._reads, self._writes
        routes: list[tuple[str, str, Handler]] = [
            ("POST", "/object/list/{bucket}", reads.list),
            ("POST", "/object/move", writes.move),
            ("POST", "/object/sign/{bucket}", reads.sign_many),
            ("POST", f"/object/sign/{_NAME}", reads.sign),
            ("GET", f"/object/sign/{_NAME}", reads.signed),
            ("GET", f"/object/info/authenticated/{_NAME}", reads.info),
            ("GET", f"/object/info/{_NAME}", reads.info),
            ("GET", f"/object/authenticated/{_NAME}", reads.download),
            ("HEAD", f"/object/authenticated/{_NAME}", reads.download),
            ("GET", f"/object/{_NAME}", reads.download),
            ("HEAD", f"/object/{_NAME}", reads.download),
            ("POST", f"/object/{_NAME}", writes.upload),
            ("PUT", f"/object/{_NAME}", writes.upload),
            ("DELETE", "/object/{bucket}", writes.remove),
            ("DELETE", f"/object/{_NAME}", writes.remove_one),
        ]
        for method, path, handler in routes:
            app.router.add_route(method, PREFIX + path, guarded(handler))

    async def start(self) -> None:
        """Open the asyncpg pool."""
        await self._db.start()

    async def close(self) -> None:
        """Close the pool; safe to call twice or before :meth:`start`."""
        await self._db.close()

    def __repr__(self) -> str:
        return f"Storage(objects_in_memory={len(self.blobs)})"
