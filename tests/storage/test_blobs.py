"""The BlobStore contract, run against the local store and the S3 store alike."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from storage.blobs import (
    READ_CHUNK_BYTES,
    BlobStore,
    LocalBlobStore,
    make_blob_store,
)
from storage.errors import BlobNotFound
from storage.s3 import PART_BYTES, S3BlobStore
from tests.storage.conftest import StoreUnderTest
from tests.storage.streams import Stream, expected, of, read_all

SIZES = [
    1,
    1000,
    PART_BYTES - 1,  # one PutObject
    PART_BYTES,  # one part, nothing after it
    2 * PART_BYTES + 12_345,  # two full parts and a short last one
]


@pytest.mark.parametrize("size", SIZES)
async def test_put_then_read_back(under_test: StoreUnderTest, store: BlobStore, size: int) -> None:
    digest, _ = expected(size)
    stored = await store.put(aiter(Stream(size)))
    assert (stored.key, stored.size) == (digest, size)
    assert await store.size(stored.key) == size
    assert await store.exists(stored.key)

    hasher = hashlib.sha256()
    total = 0
    async for chunk in store.read(stored.key):
        assert 0 < len(chunk) <= READ_CHUNK_BYTES
        hasher.update(chunk)
        total += len(chunk)
    assert (hasher.hexdigest(), total) == (digest, size)
    # The blob and nothing else: no temporary file, no staging object, no open upload.
    assert await under_test.everything() == {under_test.location(digest)}


async def test_the_key_is_the_content(under_test: StoreUnderTest, store: BlobStore) -> None:
    first = await store.put(of(b"\xe6\x9e\xb6\xe3\x81\x91", b"\xe6\xa9\x8b"))
    again = await store.put(of(b"\xe6\x9e\xb6\xe3\x81\x91\xe6\xa9\x8b"))
    assert first == again
    assert first.key == hashlib.sha256("架け橋".encode()).hexdigest()
    assert await read_all(store.read(first.key)) == "架け橋".encode()
    assert await under_test.everything() == {under_test.location(first.key)}
    assert [b.key async for b in store.list_blobs()] == [first.key]


RANGES = [
    (0, None),
    (0, 1),
    (10, 20),
    (READ_CHUNK_BYTES - 3, READ_CHUNK_BYTES + 5),  # across a chunk boundary
    (1000, None),
    (0, 10**9),  # an end past the size reads to the end
    (12_344, None),  # the last byte
    (12_345, None),  # at the end: nothing
    (20_000, 30_000),  # past the end: nothing
    (7, 7),  # empty
]


@pytest.mark.parametrize(("start", "end"), RANGES)
async def test_range_reads(store: BlobStore, start: int, end: int | None) -> None:
    size = READ_CHUNK_BYTES + 12_345
    _, data = expected(size)
    stored = await store.put(aiter(Stream(size)))
    assert await read_all(store.read(stored.key, start, end)) == data[start:end]


async def test_bad_ranges_and_keys_are_refused(store: BlobStore) -> None:
    stored = await store.put(of(b"abc"))
    with pytest.raises(ValueError, match="range"):
        await read_all(store.read(stored.key, -1))
    with pytest.raises(ValueError, match="range"):
        await read_all(store.read(stored.key, 5, 2))
    for bad in ("../../etc/passwd", stored.key.upper(), stored.key[:-1], f"{stored.key}/x", ""):
        with pytest.raises(ValueError, match="not a blob key"):
            await read_all(store.read(bad))
        with pytest.raises(ValueError, match="not a blob key"):
            await store.exists(bad)
        with pytest.raises(ValueError, match="not a blob key"):
            await store.delete(bad)


async def test_missing_blob(store: BlobStore) -> None:
    missing = hashlib.sha256(b"never stored").hexdigest()
    with pytest.raises(BlobNotFound) as caught:
        await read_all(store.read(missing))
    assert (caught.value.code, caught.value.status) == ("not_found", 404)
    with pytest.raises(BlobNotFound):
        await read_all(store.read(missing, 3, 3))
    with pytest.raises(BlobNotFound):
        await store.size(missing)
    assert not await store.exists(missing)
    assert not await store.delete(missing)


async def test_delete(under_test: StoreUnderTest, store: BlobStore) -> None:
    stored = await store.put(of(b"to be deleted"))
    now = datetime.now(UTC)
    # The collector's guard: a blob modified at or after the time given is kept.
    assert not await store.delete(stored.key, modified_before=now - timedelta(hours=1))
    assert await store.exists(stored.key)
    assert await store.delete(stored.key, modified_before=now + timedelta(hours=1))
    assert not await store.exists(stored.key)
    assert not await store.delete(stored.key)
    other = await store.put(of(b"deleted without a guard"))
    assert await store.delete(other.key)
    assert await under_test.everything() == set()


async def test_list_blobs(store: BlobStore) -> None:
    before = datetime.now(UTC) - timedelta(minutes=1)
    contents = [b"one", b"two" * 1000, b"three" * 100_000]
    keys = {(await store.put(of(c))).key: len(c) for c in contents}
    listed = [b async for b in store.list_blobs()]
    assert {b.key: b.size for b in listed} == keys
    for blob in listed:
        assert blob.modified.tzinfo is not None
        assert before < blob.modified < datetime.now(UTC) + timedelta(minutes=1)


@pytest.mark.parametrize("failed_after", [100_000, PART_BYTES + 100_000])
async def test_a_failing_stream_leaves_nothing(
    under_test: StoreUnderTest, store: BlobStore, failed_after: int
) -> None:
    kept = await store.put(of(b"already there"))
    before = await under_test.everything()
    stream = Stream(failed_after, then=ConnectionResetError("client went away"))
    with pytest.raises(ConnectionResetError):
        await store.put(aiter(stream))
    assert await under_test.everything() == before
    assert await read_all(store.read(kept.key)) == b"already there"


@pytest.mark.parametrize("cancelled_after", [100_000, 2 * PART_BYTES + 100_000])
async def test_cancelling_a_write_leaves_nothing(
    under_test: StoreUnderTest, store: BlobStore, cancelled_after: int
) -> None:
    before = await under_test.everything()
    stream = Stream(cancelled_after, then="block")
    task = asyncio.create_task(store.put(aiter(stream)))
    await asyncio.wait_for(stream.blocked.wait(), 30)
    if under_test.name == "local" or cancelled_after > PART_BYTES:
        # The write has something staged (the local store's writing thread creates its file).
        deadline = asyncio.get_running_loop().time() + 10
        while not await under_test.temp_files():
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await under_test.everything() == before


async def test_reading_can_stop_early(store: BlobStore) -> None:
    stored = await store.put(aiter(Stream(3 * READ_CHUNK_BYTES)))
    async with contextlib.aclosing(store.read(stored.key)) as chunks:
        async for chunk in chunks:
            assert chunk
            break
    assert await store.size(stored.key) == 3 * READ_CHUNK_BYTES


async def test_sweep_staging(under_test: StoreUnderTest, store: BlobStore) -> None:
    kept = await store.put(of(b"kept"))
    await under_test.add_stale_staging()
    now = datetime.now(UTC)
    assert await store.sweep_staging(now - timedelta(hours=1)) == 0
    assert await store.sweep_staging(now + timedelta(hours=1)) == 1
    assert await under_test.everything() == {under_test.location(kept.key)}


# --- the local store's files -----------------------------------------------------------------


async def test_local_layout_and_permissions(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    stored = await store.put(of(b"%PDF-1.7 ...", b"\n"))
    path = tmp_path / "blobs" / stored.key[:2] / stored.key[2:4] / stored.key
    assert store.path_of(stored.key) == path
    assert path.read_bytes() == b"%PDF-1.7 ...\n"
    assert path.stat().st_mode & 0o077 == 0  # readable by the server's user only
    assert list((tmp_path / "tmp").iterdir()) == []


async def test_local_rewrite_refreshes_the_modification_time(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    stored = await store.put(of(b"same bytes"))
    path = store.path_of(stored.key)
    old = (datetime.now(UTC) - timedelta(days=2)).timestamp()
    os.utime(path, (old, old))
    await store.put(of(b"same bytes"))
    assert path.stat().st_mtime > old + 86_400


async def test_local_listing_skips_what_is_not_a_blob(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    stored = await store.put(of(b"a blob"))
    key = stored.key
    stray = [
        tmp_path / "blobs" / "README",
        tmp_path / "blobs" / key[:2] / key[2:4] / "notes.txt",
        tmp_path / "blobs" / "00" / "00" / key,  # a key in the wrong place
    ]
    for path in stray:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
    assert [b.key async for b in store.list_blobs()] == [key]


# --- choosing a store by URL -------------------------------------------------------------


def test_store_by_url(tmp_path: Path) -> None:
    local = make_blob_store(f"file://{tmp_path}/blobs")
    assert isinstance(local, LocalBlobStore)
    assert local.root == tmp_path / "blobs"
    plain = make_blob_store("var/blobs")
    assert isinstance(plain, LocalBlobStore)
    assert plain.root == Path("var/blobs")
    spaced = make_blob_store("file:///srv/%E6%B7%BB%E4%BB%98/blobs")
    assert isinstance(spaced, LocalBlobStore)
    assert spaced.root == Path("/srv/添付/blobs")

    s3 = make_blob_store(
        "s3://kakehashi-prod/town/attachments/?endpoint=http://127.0.0.1:9000&region=ap-northeast-1",
        access_key_id="id",
        secret_access_key="secret",
    )
    assert isinstance(s3, S3BlobStore)
    assert (s3.bucket, s3.prefix, s3.endpoint_url, s3.region) == (
        "kakehashi-prod",
        "town/attachments/",
        "http://127.0.0.1:9000",
        "ap-northeast-1",
    )
    bare = make_blob_store("s3://bucket")
    assert isinstance(bare, S3BlobStore)
    assert (bare.prefix, bare.endpoint_url, bare.region) == ("", None, None)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("s3://key:secret@bucket/p", "credentials"),
        ("s3://bucket/p?endpont=http://x", "unknown s3:// URL parameters"),
        ("s3:///prefix-only", "needs a bucket"),
        ("file://otherhost/srv/blobs", "local directory"),
        ("redis://127.0.0.1/0", "unknown blob store URL"),
        ("", "unknown blob store URL"),
    ],
)
def test_bad_store_urls(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make_blob_store(url)
