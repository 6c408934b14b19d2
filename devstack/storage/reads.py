"""Routes that read: list, info, download (authenticated or not), signed URLs (create, fetch).

Each mirrors its handler in ``src/http/routes/object/`` of supabase/storage: the bucket is
looked up as the server (NoSuchBucket), the object as the caller through RLS (NoSuchKey
when missing or not the caller's to see), except for a public bucket and for a signed URL,
whose object the server fetches itself once the token checks out.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from devstack.storage import database as db
from devstack.storage import errors as err
from devstack.storage.blobs import BlobStore
from devstack.storage.database import Database
from devstack.storage.http import Auth, asset, info_body, json_body, json_response, object_name
from devstack.storage.http import required as required_field
from devstack.storage.signing import UrlSigner, expires_in

MISSING_TEXT = "Either the object does not exist or you do not have access to it"


class Reads:
    """The read handlers, bound to the database, the bytes and the URL signer."""

    def __init__(self, database: Database, blobs: BlobStore, auth: Auth, signer: UrlSigner) -> None:
        self._db = database
        self._blobs = blobs
        self._auth = auth
        self._signer = signer

    async def list(self, request: web.Request) -> web.StreamResponse:
        caller = self._auth.caller(request, "storage.object.list")
        bucket = request.match_info["bucket"]
        body = await json_body(request)
        prefix = str(required_field(body, "prefix") or "")
        if prefix and not prefix.endswith("/"):
            prefix += "/"  # searchObjects: a prefix is always a folder
        await self._db.bucket(bucket)
        async with self._db.as_caller(caller) as conn:
            return json_response(await db.search(conn, bucket, prefix, body))

    async def info(self, request: web.Request) -> web.StreamResponse:
        caller = self._auth.caller(request, "object.get_authenticated_info")
        bucket, name = await self._bucket_and_name(request)
        async with self._db.as_caller(caller) as conn:
            row = await db.find(conn, bucket.id, name)
        return json_response(info_body(row))

    async def download(self, request: web.Request) -> web.StreamResponse:
        """GET (and HEAD) of ``/object/[authenticated/]<bucket>/<name>``."""
        caller = self._auth.caller(request, "storage.object.get_authenticated")
        bucket, name = await self._bucket_and_name(request)
        if bucket.public:
            row = await self._db.server_find(bucket.id, name)
        else:
            async with self._db.as_caller(caller) as conn:
                row = await db.find(conn, bucket.id, name)
        return asset(row, self._blobs.get(row["version"]), with_body=request.method != "HEAD")

    async def _bucket_and_name(self, request: web.Request) -> tuple[db.Bucket, str]:
        name = object_name(request)
        return await self._db.bucket(request.match_info["bucket"]), name

    async def sign(self, request: web.Request) -> web.StreamResponse:
        caller = self._auth.caller(request, "storage.object.sign")
        bucket, name = request.match_info["bucket"], object_name(request)
        seconds = expires_in(required_field(await json_body(request), "expiresIn"))
        async with self._db.as_caller(caller) as conn:
            await db.find(conn, bucket, name)
        return json_response({"signedURL": self._signer.sign(bucket, name, seconds)})

    async def sign_many(self, request: web.Request) -> web.StreamResponse:
        caller = self._auth.caller(request, "storage.object.sign_many")
        bucket = request.match_info["bucket"]
        body = await json_body(request)
        seconds = expires_in(required_field(body, "expiresIn"))
        paths = required_field(body, "paths")
        if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
            raise err.invalid_request("body/paths must be array")
        async with self._db.as_caller(caller) as conn:
            visible = await db.visible_names(conn, bucket, paths)
        return json_response([self._signed_entry(bucket, p, seconds, visible) for p in paths])

    def _signed_entry(
        self, bucket: str, path: str, seconds: int, visible: set[str]
    ) -> dict[str, Any]:
        if path not in visible:
            return {"error": MISSING_TEXT, "path": path, "signedURL": None}
        return {"error": None, "path": path, "signedURL": self._signer.sign(bucket, path, seconds)}

    async def signed(self, request: web.Request) -> web.StreamResponse:
        """GET ``/object/sign/<bucket>/<name>?token=``: no apikey, no JWT; only the token."""
        token = request.query.get("token")
        if not token:
            raise err.StorageError(
                400, "InvalidRequest", "querystring must have required property 'token'"
            )
        bucket, name = request.match_info["bucket"], object_name(request)
        self._signer.verify(token, bucket, name)
        row = await self._db.server_find(bucket, name)
        return asset(row, self._blobs.get(row["version"]), with_body=True)
