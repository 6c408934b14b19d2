"""The body of an upload, in both forms the clients send (``fileUploadFromRequest`` in
``src/storage/uploader.ts``):

* ``multipart/form-data`` (storage3, browsers): a ``file`` part whose own content type is the
  object's, plus fields ``cacheControl`` (seconds) and ``metadata`` (JSON);
* anything else (storage-js with a Buffer): the raw body, ``Content-Type`` and
  ``Cache-Control`` from the request headers, ``x-metadata`` as base64 JSON.

Bytes are read as they arrive and refused past the bucket's ``file_size_limit`` (else the
server's global limit) with EntityTooLarge.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import BodyPartReader, web

from devstack.storage import errors as err

GLOBAL_FILE_SIZE_LIMIT = 50 * 1024 * 1024  # the platform's default FILE_SIZE_LIMIT
DEFAULT_CONTENT_TYPE = "text/plain;charset=UTF-8"
CHUNK = 64 * 1024


@dataclass(frozen=True)
class Upload:
    data: bytes
    content_type: str
    cache_control: str
    user_metadata: dict[str, Any] | None = field(default=None)


async def read_upload(request: web.Request, size_limit: int | None) -> Upload:
    """The uploaded file; EntityTooLarge past ``size_limit`` bytes."""
    limit = min(size_limit or GLOBAL_FILE_SIZE_LIMIT, GLOBAL_FILE_SIZE_LIMIT)
    if request.content_type == "multipart/form-data":
        return await _multipart(request, limit)
    data = await _bounded(request.content, limit)
    return Upload(
        data=data,
        content_type=request.headers.get("Content-Type") or DEFAULT_CONTENT_TYPE,
        cache_control=request.headers.get("Cache-Control") or "no-cache",
        user_metadata=_metadata(request.headers.get("x-metadata"), encoded=True),
    )


def check_mime_type(content_type: str, allowed: tuple[str, ...] | None) -> None:
    """``validateMimeType``: ``type/subtype`` must be listed, or ``type/*`` (parameters such
    as ``;charset=`` are not part of the match)."""
    if not allowed:
        return
    mime = content_type.split(";", 1)[0].strip()
    kind, _, subtype = mime.partition("/")
    for entry in allowed:
        allowed_kind, _, allowed_subtype = entry.partition("/")
        if subtype and allowed_kind == kind and allowed_subtype in ("*", subtype):
            return
    raise err.invalid_mime_type(content_type)


async def _multipart(request: web.Request, limit: int) -> Upload:
    reader = await request.multipart()
    fields: dict[str, str] = {}
    file: tuple[bytes, str] | None = None
    async for part in reader:
        if not isinstance(part, BodyPartReader):
            continue
        if part.name == "file" and file is None:
            content_type = part.headers.get("Content-Type") or DEFAULT_CONTENT_TYPE
            file = (await _bounded(part, limit), content_type)
        elif part.name:
            fields[part.name] = (await part.read(decode=True)).decode(errors="replace")
    if file is None:
        raise err.no_content()
    seconds = fields.get("cacheControl", "3600")
    return Upload(
        data=file[0],
        content_type=file[1],
        cache_control=f"max-age={seconds}",
        user_metadata=_metadata(fields.get("metadata"), encoded=False),
    )


async def _bounded(source: Any, limit: int) -> bytes:
    """Read ``source`` (a StreamReader or a body part) to its end; EntityTooLarge past
    ``limit`` bytes, raised only once the body is drained, so the client reads the answer."""
    chunks: list[bytes] = []
    size = 0
    while chunk := await _chunk(source):
        size += len(chunk)
        if size <= limit:
            chunks.append(chunk)
    if size > limit:
        raise err.entity_too_large()
    return b"".join(chunks)


async def _chunk(source: Any) -> bytes:
    if isinstance(source, BodyPartReader):
        return bytes(await source.read_chunk(CHUNK))
    return bytes(await source.read(CHUNK))


def _metadata(raw: str | None, *, encoded: bool) -> dict[str, Any] | None:
    if not raw:
        return None
    try:
        value = json.loads(base64.b64decode(raw) if encoded else raw)
    except (ValueError, binascii.Error) as exc:
        raise err.invalid_request("Invalid metadata") from exc
    if not isinstance(value, dict):
        raise err.invalid_request("Invalid metadata")
    return value
