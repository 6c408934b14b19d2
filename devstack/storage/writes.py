"""Routes that write: upload (POST, ``x-upsert``), update (PUT), remove, move.

As in supabase/storage (``src/storage/uploader.ts``, ``src/storage/object.ts``) the caller's
INSERT (or, for an upsert, INSERT ... ON CONFLICT DO UPDATE) is what RLS judges; a refusal
is ``AccessDenied "new row violates row-level security policy"``. Removing what RLS hides
is not an error: ``remove`` answers with the objects it did delete, possibly none.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from devstack.storage import database as db
from devstack.storage import errors as err
from devstack.storage.blobs import Blob, BlobStore
from devstack.storage.database import Caller, Database
from devstack.storage.http import Auth, json_body, json_response, object_name, required
from devstack.storage.uploads import Upload, check_mime_type, read_upload


class Writes:
    """The write handlers, bound to the database and the bytes."""

    def __init__(
        self,
        database: Database,
        blobs: BlobStore,
        auth: Auth,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._db = database
        self._blobs = blobs
        self._auth = auth
        self._clock = clock

    async def upload(self, request: web.Request) -> web.StreamResponse:
        updating = request.method == "PUT"
        upsert = updating or request.headers.get("x-upsert") == "true"
        operation = "storage.object.upload_update" if updating else "storage.object.upload"
        caller = self._auth.caller(request, operation)
        name = object_name(request)
        bucket = await self._db.bucket(request.match_info["bucket"])
        upload = await read_upload(request, bucket.file_size_limit)
        check_mime_type(upload.content_type, bucket.allowed_mime_types)
        row = await self._store(caller, bucket.id, name, upload, upsert=upsert)
        return json_response({"Id": row["id"], "Key": f"{bucket.id}/{name}"})

    async def _store(
        self, caller: Caller, bucket: str, name: str, upload: Upload, *, upsert: bool
    ) -> Any:
        blob = Blob(upload.data, upload.content_type, upload.cache_control)
        metadata = self._metadata(blob)
        async with self._db.as_caller(caller) as conn:
            previous = await conn.fetchval(
                "select version from storage.objects where bucket_id = $1 and name = $2",
                bucket,
                name,
            )
            row = await db.write(
                conn,
                caller,
                bucket,
                name,
                metadata=metadata,
                user_metadata=upload.user_metadata,
                upsert=upsert,
            )
            # Bytes before commit: a reader who sees the row finds its bytes.
            self._blobs.put(row["version"], blob)
        self._blobs.drop([previous])
        return row

    def _metadata(self, blob: Blob) -> dict[str, Any]:
        """``storage.objects.metadata`` as the server writes it after an upload."""
        now = datetime.fromtimestamp(self._clock(), tz=UTC)
        return {
            "eTag": blob.etag,
            "size": len(blob.data),
            "mimetype": blob.content_type,
            "cacheControl": blob.cache_control,
            "lastModified": now.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            "contentLength": len(blob.data),
            "httpStatusCode": 200,
        }

    async def remove(self, request: web.Request) -> web.StreamResponse:
        """DELETE ``/object/<bucket>`` with ``{"prefixes": [names]}``."""
        caller = self._auth.caller(request, "storage.object.delete_many")
        bucket = request.match_info["bucket"]
        names = required(await json_body(request), "prefixes")
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise err.invalid_request("body/prefixes must be array")
        await self._db.bucket(bucket)
        async with self._db.as_caller(caller) as conn:
            rows = await db.delete(conn, bucket, names)
        self._blobs.drop(row["version"] for row in rows)
        return json_response([db.as_json(row) for row in rows])

    async def remove_one(self, request: web.Request) -> web.StreamResponse:
        """DELETE ``/object/<bucket>/<name>``: NoSuchKey, or AccessDenied when RLS refuses."""
        caller = self._auth.caller(request, "storage.object.delete")
        bucket, name = request.match_info["bucket"], object_name(request)
        await self._db.bucket(bucket)
        await self._db.server_find(bucket, name)
        async with self._db.as_caller(caller) as conn:
            rows = await db.delete(conn, bucket, [name])
        if not rows:
            raise err.access_denied()
        self._blobs.drop(row["version"] for row in rows)
        return json_response({"message": "Successfully deleted"})

    async def move(self, request: web.Request) -> web.StreamResponse:
        """POST ``/object/move`` with ``bucketId``, ``sourceKey``, ``destinationKey``."""
        caller = self._auth.caller(request, "storage.object.move")
        body = await json_body(request)
        bucket = str(required(body, "bucketId"))
        source, target = str(required(body, "sourceKey")), str(required(body, "destinationKey"))
        target_bucket = str(body.get("destinationBucket") or bucket)
        await self._db.bucket(bucket)
        async with self._db.as_caller(caller) as conn:
            row = await db.move(conn, caller, (bucket, source), (target_bucket, target))
        return json_response({"message": "Successfully moved", "Id": row["id"], "Key": row["name"]})
