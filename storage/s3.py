"""``S3BlobStore``: blobs in an S3-compatible object store (Amazon S3, MinIO, Ceph RGW, …),
shared by several app hosts.  URL: ``s3://bucket/prefix?endpoint=http://host:9000&region=NAME``.

Objects::

    <prefix>blobs/ab/cd/abcd…(64 hex digits)   one object a blob, named by its key
    <prefix>tmp/<random>                       multipart uploads in progress

A blob smaller than :data:`PART_BYTES` is hashed in memory and written with one PutObject.  A
larger one cannot be named before its last byte, so it goes up as a multipart upload to a
staging key, one part at a time (at most one part is buffered), and is then copied to its key
inside the store and the staging object deleted.  On any error or cancellation the multipart
upload is aborted (or the staging object deleted); a writer that crashed leaves what
:meth:`S3BlobStore.sweep_staging` removes (a bucket lifecycle rule "abort incomplete multipart
uploads after a day" is a good second net).

The bucket must exist; the store never creates or configures it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import logging
import uuid
from collections.abc import AsyncIterable, AsyncIterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, unquote, urlsplit

from aiobotocore.config import AioConfig
from aiobotocore.session import AioSession
from botocore.exceptions import ClientError

from storage.blobs import (
    READ_CHUNK_BYTES,
    BlobInfo,
    StoredBlob,
    check_key,
    check_range,
)
from storage.errors import BlobNotFound
from storage.tasks import uninterrupted

if TYPE_CHECKING:
    from types_aiobotocore_s3 import S3Client

log = logging.getLogger(__name__)

#: Size of one multipart part: S3's minimum (every part but the last must be at least this).
#: One part is the most an upload buffers.
PART_BYTES = 5 * 1024 * 1024

S3_CONNECT_TIMEOUT_S = 5.0
S3_READ_TIMEOUT_S = 30.0
S3_MAX_ATTEMPTS = 3
S3_MAX_CONNECTIONS = 32

_NOT_FOUND = frozenset({"404", "NoSuchKey", "NotFound"})


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


class S3BlobStore:
    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        session: AioSession | None = None,
    ) -> None:
        """``session`` lets stores share botocore's loaded service models (and tests start
        clients faster); by default each store has its own."""
        if not bucket:
            raise ValueError("an S3 blob store needs a bucket")
        prefix = prefix.strip("/")
        self.bucket = bucket
        self.prefix = f"{prefix}/" if prefix else ""
        self.endpoint_url = endpoint_url
        self.region = region
        self._credentials = (access_key_id, secret_access_key)
        self._session = session
        self._client: S3Client | None = None
        self._exit = contextlib.AsyncExitStack()
        self._lock = asyncio.Lock()

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
    ) -> S3BlobStore:
        parts = urlsplit(url)
        if parts.scheme != "s3":
            raise ValueError(f"not an s3:// URL: {url!r}")
        if "@" in parts.netloc:
            raise ValueError("S3 credentials do not belong in the blob store URL")
        query = parse_qs(parts.query, strict_parsing=bool(parts.query))
        unknown = set(query) - {"endpoint", "region"}
        if unknown:
            raise ValueError(f"unknown s3:// URL parameters: {sorted(unknown)}")
        return cls(
            parts.netloc,
            unquote(parts.path),
            endpoint_url=query.get("endpoint", [None])[-1],
            region=query.get("region", [None])[-1],
            access_key_id=access_key_id,
            secret_access_key=secret_access_key,
        )

    def object_key(self, key: str) -> str:
        check_key(key)
        return f"{self.prefix}blobs/{key[:2]}/{key[2:4]}/{key}"

    @property
    def staging_prefix(self) -> str:
        return f"{self.prefix}tmp/"

    async def _s3(self) -> S3Client:
        """The client, created on first use (no work in ``__init__``) and kept until close."""
        if self._client is None:
            async with self._lock:
                if self._client is None:
                    config = AioConfig(
                        connect_timeout=S3_CONNECT_TIMEOUT_S,
                        read_timeout=S3_READ_TIMEOUT_S,
                        retries={"max_attempts": S3_MAX_ATTEMPTS, "mode": "standard"},
                        max_pool_connections=S3_MAX_CONNECTIONS,
                        # Path-style requests and checksums only where S3 requires them: what
                        # S3-compatible servers (MinIO, Ceph, …) all understand.
                        s3={"addressing_style": "path"} if self.endpoint_url else None,
                        request_checksum_calculation="when_required",
                        response_checksum_validation="when_required",
                    )
                    access_key_id, secret_access_key = self._credentials
                    self._client = await self._exit.enter_async_context(
                        (self._session or AioSession()).create_client(
                            "s3",
                            region_name=self.region,
                            endpoint_url=self.endpoint_url,
                            aws_access_key_id=access_key_id,
                            aws_secret_access_key=secret_access_key,
                            config=config,
                        )
                    )
        return self._client

    async def put(self, chunks: AsyncIterable[bytes]) -> StoredBlob:
        s3 = await self._s3()
        hasher = hashlib.sha256()
        size = 0
        buffer = io.BytesIO()  # at most one part (and one chunk): sent, then let go
        upload: _Staging | None = None
        try:
            async for chunk in chunks:
                hasher.update(chunk)
                size += len(chunk)
                buffer.write(chunk)
                if buffer.tell() >= PART_BYTES:
                    if upload is None:
                        upload = _Staging(s3, self.bucket, f"{self.staging_prefix}{uuid.uuid4()}")
                        # Once asked for, the upload exists: learn its id even if cancelled.
                        await uninterrupted(upload.start())
                    part, buffer = buffer, io.BytesIO()
                    await upload.send(part)
                    part.close()
            key = hasher.hexdigest()
            target = self.object_key(key)
            if upload is None:
                # Writing the same bytes again refreshes the object's LastModified.
                buffer.seek(0)
                await s3.put_object(Bucket=self.bucket, Key=target, Body=buffer)
            else:
                if buffer.tell():
                    await upload.send(buffer)
                buffer.close()
                await uninterrupted(upload.complete())
                await s3.copy_object(
                    Bucket=self.bucket,
                    Key=target,
                    CopySource={"Bucket": self.bucket, "Key": upload.key},
                )
                await upload.remove()
        except BaseException:
            if upload is not None:
                await uninterrupted(upload.discard())
            raise
        return StoredBlob(key, size)

    async def read(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        check_range(start, end)
        s3 = await self._s3()
        target = self.object_key(key)
        if end is not None and end == start:
            if not await self.exists(key):
                raise BlobNotFound(key)
            return
        try:
            if start == 0 and end is None:
                response = await s3.get_object(Bucket=self.bucket, Key=target)
            else:
                last = "" if end is None else str(end - 1)
                response = await s3.get_object(
                    Bucket=self.bucket, Key=target, Range=f"bytes={start}-{last}"
                )
        except ClientError as exc:
            code = _error_code(exc)
            if code in _NOT_FOUND:
                raise BlobNotFound(key) from None
            if code == "InvalidRange":
                return  # start at or past the end: nothing to read
            raise
        async with response["Body"] as body:
            async for chunk in body.iter_chunks(READ_CHUNK_BYTES):
                yield chunk

    async def size(self, key: str) -> int:
        s3 = await self._s3()
        try:
            head = await s3.head_object(Bucket=self.bucket, Key=self.object_key(key))
        except ClientError as exc:
            if _error_code(exc) in _NOT_FOUND:
                raise BlobNotFound(key) from None
            raise
        return head["ContentLength"]

    async def exists(self, key: str) -> bool:
        try:
            await self.size(key)
        except BlobNotFound:
            return False
        return True

    async def delete(self, key: str, *, modified_before: datetime | None = None) -> bool:
        s3 = await self._s3()
        target = self.object_key(key)
        try:
            head = await s3.head_object(Bucket=self.bucket, Key=target)
        except ClientError as exc:
            if _error_code(exc) in _NOT_FOUND:
                return False
            raise
        if modified_before is not None and head["LastModified"] >= modified_before:
            return False
        await s3.delete_object(Bucket=self.bucket, Key=target)
        return True

    async def list_blobs(self) -> AsyncIterator[BlobInfo]:
        s3 = await self._s3()
        blobs = f"{self.prefix}blobs/"
        paginator = s3.get_paginator("list_objects_v2")
        async for page in paginator.paginate(Bucket=self.bucket, Prefix=blobs):
            for obj in page.get("Contents", []):
                name = obj["Key"][len(blobs) :]
                key = name.rsplit("/", 1)[-1]
                try:
                    if name != self.object_key(key)[len(blobs) :]:
                        continue
                except ValueError:
                    continue  # not laid out as a blob: left alone
                yield BlobInfo(key, obj["Size"], obj["LastModified"])

    async def sweep_staging(self, modified_before: datetime) -> int:
        s3 = await self._s3()
        removed = 0
        uploads = s3.get_paginator("list_multipart_uploads")
        async for listing in uploads.paginate(Bucket=self.bucket, Prefix=self.staging_prefix):
            for upload in listing.get("Uploads", []):
                key, upload_id = upload["Key"], upload["UploadId"]
                if upload["Initiated"] >= modified_before:
                    continue
                try:
                    if await self._last_part_time(key, upload_id) >= modified_before:
                        continue  # started long ago, but parts are still arriving
                    await s3.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
                except ClientError as exc:
                    if _error_code(exc) != "NoSuchUpload":
                        raise
                    continue  # finished or aborted meanwhile
                removed += 1
        objects = s3.get_paginator("list_objects_v2")
        async for page in objects.paginate(Bucket=self.bucket, Prefix=self.staging_prefix):
            for obj in page.get("Contents", []):
                if obj["LastModified"] < modified_before:
                    await s3.delete_object(Bucket=self.bucket, Key=obj["Key"])
                    removed += 1
        return removed

    async def _last_part_time(self, key: str, upload_id: str) -> datetime:
        s3 = await self._s3()
        last = datetime.min.replace(tzinfo=UTC)
        parts = s3.get_paginator("list_parts")
        async for page in parts.paginate(Bucket=self.bucket, Key=key, UploadId=upload_id):
            for part in page.get("Parts", []):
                last = max(last, part["LastModified"])
        return last

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await self._exit.aclose()


class _Staging:
    """One multipart upload to a staging key, and what it takes to leave nothing of it."""

    def __init__(self, s3: S3Client, bucket: str, key: str) -> None:
        self.s3 = s3
        self.bucket = bucket
        self.key = key
        self.upload_id: str | None = None
        self.parts: list[tuple[int, str]] = []
        self.completed = False
        self.removed = False

    async def start(self) -> None:
        created = await self.s3.create_multipart_upload(Bucket=self.bucket, Key=self.key)
        self.upload_id = created["UploadId"]

    async def send(self, part: io.BytesIO) -> None:
        """Send ``part`` (written, not yet rewound) as the next part.  A file object, not bytes:
        botocore rewinds it to retry, and aiohttp sends it in pieces."""
        part.seek(0)
        assert self.upload_id is not None
        number = len(self.parts) + 1
        sent = await self.s3.upload_part(
            Bucket=self.bucket, Key=self.key, UploadId=self.upload_id, PartNumber=number, Body=part
        )
        self.parts.append((number, sent["ETag"]))

    async def complete(self) -> None:
        assert self.upload_id is not None
        await self.s3.complete_multipart_upload(
            Bucket=self.bucket,
            Key=self.key,
            UploadId=self.upload_id,
            MultipartUpload={"Parts": [{"PartNumber": n, "ETag": etag} for n, etag in self.parts]},
        )
        self.completed = True

    async def remove(self) -> None:
        await self.s3.delete_object(Bucket=self.bucket, Key=self.key)
        self.removed = True

    async def discard(self) -> None:
        """After a failure: abort the upload, or delete the staging object it became."""
        try:
            if self.completed:
                if not self.removed:
                    await self.remove()
            elif self.upload_id is not None:
                await self.s3.abort_multipart_upload(
                    Bucket=self.bucket, Key=self.key, UploadId=self.upload_id
                )
        except Exception:
            log.exception("could not clean up the staging upload %s; sweep_staging will", self.key)
