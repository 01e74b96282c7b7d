"""Untrusted uploads: 20 MiB is accepted, one byte more is refused while it is read and leaves
nothing behind, in both stores."""

from __future__ import annotations

import asyncio
import tracemalloc

import pytest

from storage.blobs import BlobStore
from storage.errors import EmptyFile, FileTooLarge, StorageError
from storage.s3 import PART_BYTES
from storage.uploads import MAX_ATTACHMENT_BYTES, receive_upload
from storage.writer import BACKLOG_BYTES
from tests.storage.conftest import StoreUnderTest
from tests.storage.streams import CHUNK_BYTES, Stream, expected, of


def test_the_limit_is_20_mib() -> None:
    assert MAX_ATTACHMENT_BYTES == 20_971_520


async def test_exactly_20_mib_is_accepted(under_test: StoreUnderTest, store: BlobStore) -> None:
    before = await under_test.everything()
    stream = Stream(MAX_ATTACHMENT_BYTES)
    stored = await receive_upload(store, stream)
    assert stored.size == MAX_ATTACHMENT_BYTES
    assert stored.key == expected(MAX_ATTACHMENT_BYTES)[0]
    assert await store.size(stored.key) == MAX_ATTACHMENT_BYTES
    # One new blob, and nothing else: no temporary file, no staging object, no open upload.
    assert await under_test.everything() == before | {under_test.location(stored.key)}
    assert await under_test.temp_files() == set()
    assert stream.closed


@pytest.mark.parametrize("chunk", [CHUNK_BYTES, 1_000_003])
async def test_one_byte_more_is_refused_and_leaves_nothing(
    under_test: StoreUnderTest, store: BlobStore, chunk: int
) -> None:
    kept = await receive_upload(store, of(b"an earlier attachment"))
    before = await under_test.everything()
    stream = Stream(MAX_ATTACHMENT_BYTES + 1, chunk=chunk)
    with pytest.raises(FileTooLarge) as caught:
        await receive_upload(store, stream)
    error = caught.value
    assert (error.code, error.status) == ("file_too_large", 413)
    assert error.ja == "ファイルが大きすぎます。添付できるのは 20 MiB までです。"
    assert error.en == "The file is too large: attachments may be at most 20 MiB."
    assert error.to_dict() == {
        "code": "file_too_large",
        "message": error.ja,
        "message_en": error.en,
        "details": {"max_bytes": MAX_ATTACHMENT_BYTES},
    }
    assert await under_test.everything() == before
    assert await under_test.temp_files() == set()
    assert stream.closed
    assert await store.exists(kept.key)


async def test_the_limit_holds_while_reading(store: BlobStore) -> None:
    """A sender that never stops is stopped at the chunk that crosses the limit."""
    endless = Stream(None)
    with pytest.raises(FileTooLarge):
        await receive_upload(store, endless)
    assert MAX_ATTACHMENT_BYTES < endless.pulled <= MAX_ATTACHMENT_BYTES + CHUNK_BYTES
    assert endless.closed


async def test_a_first_chunk_past_the_limit_never_reaches_the_store(
    under_test: StoreUnderTest, store: BlobStore
) -> None:
    before = await under_test.everything()
    with pytest.raises(FileTooLarge):
        await receive_upload(store, of(b"12345678901"), max_bytes=10)
    assert await under_test.everything() == before
    small = await receive_upload(store, of(b"1234567890"), max_bytes=10)
    assert small.size == 10


@pytest.mark.parametrize("chunks", [(), (b"",), (b"", b"", b"")])
async def test_an_empty_file_is_refused(
    under_test: StoreUnderTest, store: BlobStore, chunks: tuple[bytes, ...]
) -> None:
    before = await under_test.everything()
    with pytest.raises(EmptyFile) as caught:
        await receive_upload(store, of(*chunks))
    assert isinstance(caught.value, StorageError)
    assert (caught.value.code, caught.value.status) == ("empty_file", 400)
    assert caught.value.ja and caught.value.en
    assert await under_test.everything() == before


async def test_empty_chunks_among_others_are_fine(store: BlobStore) -> None:
    stored = await receive_upload(store, of(b"", b"abc", b"", b"def"))
    assert stored.size == 6


@pytest.mark.parametrize("cancelled_after", [3 * 1024 * 1024, MAX_ATTACHMENT_BYTES - 1])
async def test_cancelling_an_upload_leaves_nothing(
    under_test: StoreUnderTest, store: BlobStore, cancelled_after: int
) -> None:
    before = await under_test.everything()
    stream = Stream(cancelled_after, then="block")
    task = asyncio.create_task(receive_upload(store, stream))
    await asyncio.wait_for(stream.blocked.wait(), 30)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await under_test.everything() == before
    assert stream.closed


async def test_a_client_that_goes_away_leaves_nothing(
    under_test: StoreUnderTest, store: BlobStore
) -> None:
    before = await under_test.everything()
    stream = Stream(12 * 1024 * 1024, then=ConnectionResetError("client went away"))
    with pytest.raises(ConnectionResetError):
        await receive_upload(store, stream)
    assert await under_test.everything() == before


async def test_memory_per_upload_is_bounded(under_test: StoreUnderTest, store: BlobStore) -> None:
    """A 20 MiB upload never sits whole in memory: at most what waits for the hashing and
    writing threads (local) or an S3 part is held, plus the client's own working memory."""
    buffered = BACKLOG_BYTES if under_test.name == "local" else PART_BYTES
    await store.put(of(b"warm up"))  # the S3 client's own allocations are not the upload's
    tracemalloc.start()
    try:
        stored = await receive_upload(store, Stream(MAX_ATTACHMENT_BYTES))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert stored.size == MAX_ATTACHMENT_BYTES
    assert peak < buffered + 4 * 1024 * 1024, f"peak {peak / 2**20:.1f} MiB"
