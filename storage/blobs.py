"""Attachment bytes behind one narrow interface, the store chosen by URL (like ``chat.broker``):

- a plain directory or ``file:///var/lib/kakehashi/blobs`` — :class:`LocalBlobStore`, the
  embedded default: one host, files on its disk;
- ``s3://bucket/prefix?endpoint=http://127.0.0.1:9000&region=ap-northeast-1`` —
  :class:`storage.s3.S3BlobStore`: an S3-compatible object store shared by several app hosts.

A blob is immutable and named by its key, the SHA-256 of its bytes in lowercase hex, computed
while it is written: a name a user chose never reaches a disk or a bucket, and the same bytes
written twice are one blob.  Writing is all or nothing: on any error or cancellation nothing
is left behind, neither a blob nor a temporary file nor an open multipart upload.

Errors: :class:`storage.errors.BlobNotFound` for a key that is not there; ``ValueError`` for a
string that is not a key or a range that is not one (programming errors, not user input);
``OSError`` and botocore's errors for the storage itself failing.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlsplit

from storage.errors import BlobNotFound
from storage.tasks import in_thread, uninterrupted
from storage.writer import BlobWriter

log = logging.getLogger(__name__)

#: Largest chunk a read yields (one thread hop per chunk on local disk).
READ_CHUNK_BYTES = 256 * 1024

#: A local write hands chunks to its threads when it has gathered this many bytes.
PIECE_BYTES = 256 * 1024

_KEY = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True, slots=True)
class StoredBlob:
    """What :meth:`BlobStore.put` wrote: its key (SHA-256, hex) and its size in bytes."""

    key: str
    size: int


@dataclass(frozen=True, slots=True)
class BlobInfo:
    """One blob as listed for garbage collection; ``modified`` is timezone-aware (UTC)."""

    key: str
    size: int
    modified: datetime


class BlobStore(Protocol):
    async def put(self, chunks: AsyncIterable[bytes]) -> StoredBlob:
        """Write the bytes of ``chunks`` and return their key and size.  Writing bytes that are
        already stored succeeds and refreshes the blob's modification time.  On any exception
        (the stream's own included) or cancellation, nothing new is left in the store."""
        ...

    def read(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        """Bytes ``start`` up to ``end`` (exclusive; ``None`` or past the size: to the end) in
        chunks of at most :data:`READ_CHUNK_BYTES`.  :class:`BlobNotFound` is raised before the
        first chunk.  Close the iterator (``contextlib.aclosing``) if you stop early."""
        ...

    async def size(self, key: str) -> int:
        """Size in bytes; :class:`BlobNotFound` if absent."""
        ...

    async def exists(self, key: str) -> bool: ...

    async def delete(self, key: str, *, modified_before: datetime | None = None) -> bool:
        """Delete a blob; ``True`` if one was deleted.  With ``modified_before``, a blob modified
        at or after that time is kept (the collector's last check before it deletes)."""
        ...

    def list_blobs(self) -> AsyncIterator[BlobInfo]:
        """Every blob, in no particular order."""
        ...

    async def sweep_staging(self, modified_before: datetime) -> int:
        """Remove what crashed writers left (temporary files, multipart uploads) that was last
        touched before ``modified_before``; return how many were removed."""
        ...

    async def close(self) -> None: ...


def check_key(key: str) -> str:
    """``key`` itself if it is a blob key (64 lowercase hex digits), else ``ValueError``."""
    if not isinstance(key, str) or not _KEY.fullmatch(key):
        raise ValueError(f"not a blob key: {key!r}")
    return key


def check_range(start: int, end: int | None) -> None:
    if start < 0 or (end is not None and end < start):
        raise ValueError(f"not a byte range: start={start} end={end}")


class LocalBlobStore:
    """Blobs as files under ``root``::

        root/blobs/ab/cd/abcd…(64 hex digits)   one file a blob, named by its key
        root/tmp/put-*.part                     writes in progress (same filesystem)

    A write goes to a temporary file, is fsynced, then renamed into place (atomic), and the
    directory is fsynced.  Readers therefore see a whole blob or none.  Every file operation
    runs in a thread, in chunks, so the event loop never waits on the disk: a put hashes and
    writes in two threads of its own (:mod:`storage.writer`), the rest in the loop's executor.
    """

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        self.blob_dir = self.root / "blobs"
        self.tmp_dir = self.root / "tmp"

    def path_of(self, key: str) -> Path:
        check_key(key)
        return self.blob_dir / key[:2] / key[2:4] / key

    async def put(self, chunks: AsyncIterable[bytes]) -> StoredBlob:
        writer = BlobWriter(self.tmp_dir, self.path_of)
        size = 0
        piece: list[bytes] = []  # chunks as read, handed over together (fewer thread wake-ups)
        piece_bytes = 0
        try:
            async for chunk in chunks:
                size += len(chunk)
                piece.append(chunk)
                piece_bytes += len(chunk)
                if piece_bytes >= PIECE_BYTES:
                    await writer.give(piece, piece_bytes)
                    piece, piece_bytes = [], 0
            if piece:
                await writer.give(piece, piece_bytes)
            key = await writer.finish()
        except BaseException:
            await writer.abort()
            raise
        return StoredBlob(key, size)

    async def read(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        check_range(start, end)
        path = self.path_of(key)
        try:
            fd, size = await uninterrupted(
                asyncio.to_thread(_open_for_read, path), undo=lambda opened: os.close(opened[0])
            )
        except FileNotFoundError:
            raise BlobNotFound(key) from None
        try:
            stop = size if end is None else min(end, size)
            offset = start
            while offset < stop:
                data = await in_thread(os.pread, fd, min(READ_CHUNK_BYTES, stop - offset), offset)
                if not data:
                    break
                offset += len(data)
                yield data
        finally:
            os.close(fd)

    async def size(self, key: str) -> int:
        try:
            return (await in_thread(os.stat, self.path_of(key))).st_size
        except FileNotFoundError:
            raise BlobNotFound(key) from None

    async def exists(self, key: str) -> bool:
        return await in_thread(self.path_of(key).is_file)

    async def delete(self, key: str, *, modified_before: datetime | None = None) -> bool:
        return await in_thread(self._delete, self.path_of(key), modified_before)

    @staticmethod
    def _delete(path: Path, modified_before: datetime | None) -> bool:
        try:
            if modified_before is not None and _mtime(path.stat()) >= modified_before:
                return False
            path.unlink()
        except FileNotFoundError:
            return False
        return True

    async def list_blobs(self) -> AsyncIterator[BlobInfo]:
        top = await in_thread(_subdirs, self.blob_dir)
        for first in top:
            for info in await in_thread(self._scan, first):
                yield info

    @staticmethod
    def _scan(first: Path) -> list[BlobInfo]:
        """The blobs under ``blobs/ab/``; anything not laid out as a blob is left alone."""
        found: list[BlobInfo] = []
        for second in _subdirs(first):
            with os.scandir(second) as entries:
                for entry in entries:
                    name = entry.name
                    if (
                        _KEY.fullmatch(name)
                        and name[:2] == first.name
                        and name[2:4] == second.name
                        and entry.is_file(follow_symlinks=False)
                    ):
                        st = entry.stat(follow_symlinks=False)
                        found.append(BlobInfo(name, st.st_size, _mtime(st)))
        return found

    async def sweep_staging(self, modified_before: datetime) -> int:
        return await in_thread(self._sweep, modified_before)

    def _sweep(self, modified_before: datetime) -> int:
        removed = 0
        try:
            entries = list(os.scandir(self.tmp_dir))
        except FileNotFoundError:
            return 0
        for entry in entries:
            if not entry.name.endswith(".part"):
                continue
            try:
                if _mtime(entry.stat(follow_symlinks=False)) < modified_before:
                    os.unlink(entry.path)
                    removed += 1
            except FileNotFoundError:
                pass  # its writer finished or gave up meanwhile
        return removed

    async def close(self) -> None:
        return None


def _open_for_read(path: Path) -> tuple[int, int]:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        return fd, os.fstat(fd).st_size
    except BaseException:
        os.close(fd)
        raise


def _subdirs(path: Path) -> list[Path]:
    try:
        with os.scandir(path) as entries:
            return sorted(
                Path(e.path)
                for e in entries
                if len(e.name) == 2 and e.is_dir(follow_symlinks=False)
            )
    except FileNotFoundError:
        return []


def _mtime(st: os.stat_result) -> datetime:
    return datetime.fromtimestamp(st.st_mtime, UTC)


def make_blob_store(
    url: str,
    *,
    access_key_id: str | None = None,
    secret_access_key: str | None = None,
) -> BlobStore:
    """The store a URL names: a directory (``/srv/blobs``, ``file:///srv/blobs``) or
    ``s3://bucket/prefix?endpoint=URL&region=NAME``.  Object store credentials are passed
    here, never in the URL; without them botocore's usual chain applies (``AWS_*`` variables,
    an instance role)."""
    parts = urlsplit(url)
    if parts.scheme == "s3":
        from storage.s3 import S3BlobStore  # botocore is heavy: loaded only when used

        return S3BlobStore.from_url(
            url, access_key_id=access_key_id, secret_access_key=secret_access_key
        )
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost") or parts.query or parts.fragment:
            raise ValueError(f"a file:// blob store URL names a local directory: {url!r}")
        return LocalBlobStore(Path(unquote(parts.path)))
    if parts.scheme == "" and url:
        return LocalBlobStore(Path(url))
    raise ValueError(f"unknown blob store URL {url!r}: use a directory, file:// or s3://")
