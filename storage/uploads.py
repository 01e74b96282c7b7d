"""Receiving an untrusted upload into a blob store, its size capped while it is read.

The cap is checked on every chunk as it arrives, before the chunk is passed on: a sender that
goes past :data:`MAX_ATTACHMENT_BYTES` is stopped at the first byte too many, never read to its
end, and the store discards what it had written (no blob, no temporary file, no open multipart
upload).  A stream with no bytes at all is refused before the store is touched.  Memory per
upload is what the store buffers (two write buffers or one S3 part), never the file.

A ``Content-Length`` the client declares may let the HTTP layer refuse earlier; this cap is the
one that holds whatever the client says.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator

from storage.blobs import BlobStore, StoredBlob
from storage.errors import EmptyFile, FileTooLarge

#: Largest attachment (PRODUCT.md: "a file of at most 20 MiB"); 20 MiB exactly is accepted.
MAX_ATTACHMENT_BYTES = 20 * 1024 * 1024


async def receive_upload(
    store: BlobStore,
    untrusted_chunks: AsyncIterable[bytes],
    *,
    max_bytes: int = MAX_ATTACHMENT_BYTES,
) -> StoredBlob:
    """Store the bytes of ``untrusted_chunks``: :class:`FileTooLarge` past ``max_bytes``,
    :class:`EmptyFile` for none; either way, and on any other failure or cancellation, nothing
    is left in the store."""
    iterator = aiter(untrusted_chunks)
    try:
        first = b""
        async for untrusted_chunk in iterator:
            if untrusted_chunk:
                first = untrusted_chunk
                break
        if not first:
            raise EmptyFile()
        if len(first) > max_bytes:
            raise FileTooLarge(max_bytes)
        async with contextlib.aclosing(_capped(first, iterator, max_bytes)) as capped:
            return await store.put(capped)
    finally:
        close = getattr(iterator, "aclose", None)
        if close is not None:
            await close()


async def _capped(
    first: bytes, rest: AsyncIterator[bytes], max_bytes: int
) -> AsyncGenerator[bytes, None]:
    received = len(first)
    yield first
    async for untrusted_chunk in rest:
        received += len(untrusted_chunk)
        if received > max_bytes:
            raise FileTooLarge(max_bytes)
        if untrusted_chunk:
            yield untrusted_chunk
