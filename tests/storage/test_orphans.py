"""Orphan collection in both stores: unreferenced old blobs go, everything else stays."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from storage.blobs import BlobInfo, BlobStore, LocalBlobStore
from storage.orphans import collect_orphans
from storage.s3 import PART_BYTES
from tests.storage.conftest import StoreUnderTest
from tests.storage.streams import Stream, of, read_all

HOUR = timedelta(hours=1)


async def test_unreferenced_old_blobs_are_collected(
    under_test: StoreUnderTest, store: BlobStore
) -> None:
    kept = await store.put(of(b"still attached"))
    orphan = await store.put(of(b"its message was deleted"))
    other = await store.put(of(b"x" * 5000))
    now = datetime.now(UTC)

    fresh = await collect_orphans(store, {kept.key}, min_age=HOUR, now=now)
    assert fresh.blobs == () and fresh.staging == 0  # too young: maybe an upload in flight
    assert len([b async for b in store.list_blobs()]) == 3

    later = now + 2 * HOUR
    dry = await collect_orphans(store, {kept.key}, min_age=HOUR, now=later, dry_run=True)
    assert {b.key for b in dry.blobs} == {orphan.key, other.key}
    assert len([b async for b in store.list_blobs()]) == 3

    done = await collect_orphans(store, {kept.key}, min_age=HOUR, now=later)
    assert {b.key for b in done.blobs} == {orphan.key, other.key}
    assert done.bytes_freed == orphan.size + other.size
    assert await under_test.everything() == {under_test.location(kept.key)}
    assert await read_all(store.read(kept.key)) == b"still attached"

    again = await collect_orphans(store, {kept.key}, min_age=HOUR, now=later)
    assert again.blobs == ()


async def test_an_upload_in_flight_is_never_collected(
    under_test: StoreUnderTest, store: BlobStore
) -> None:
    stream = Stream(PART_BYTES + 1000, then="block")  # a part sent, and more to come
    task = asyncio.create_task(store.put(aiter(stream)))
    await asyncio.wait_for(stream.blocked.wait(), 30)
    staged = await under_test.temp_files()
    assert staged

    collected = await collect_orphans(store, set(), min_age=HOUR)
    assert (collected.blobs, collected.staging) == ((), 0)
    assert await under_test.temp_files() == staged

    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await under_test.everything() == set()


async def test_what_crashed_writers_left_is_swept(
    under_test: StoreUnderTest, store: BlobStore
) -> None:
    kept = await store.put(of(b"attached"))
    await under_test.add_stale_staging()
    collected = await collect_orphans(store, {kept.key}, min_age=HOUR)
    assert collected.staging == 0  # it may still be a slow upload
    collected = await collect_orphans(
        store, {kept.key}, min_age=HOUR, now=datetime.now(UTC) + 2 * HOUR
    )
    assert (collected.blobs, collected.staging) == ((), 1)
    assert await under_test.everything() == {under_test.location(kept.key)}


async def test_a_negative_age_is_refused(store: BlobStore) -> None:
    with pytest.raises(ValueError, match="min_age"):
        await collect_orphans(store, set(), min_age=-HOUR)


async def test_writing_an_orphan_again_saves_it(tmp_path: Path) -> None:
    """An upload that lands on an old unreferenced blob refreshes it: a collection that runs
    before the new attachment is committed leaves it alone."""
    store = LocalBlobStore(tmp_path)
    orphan = await store.put(of(b"sent, deleted, sent again"))
    path = store.path_of(orphan.key)
    old = (datetime.now(UTC) - 3 * HOUR).timestamp()
    os.utime(path, (old, old))

    assert await store.put(of(b"sent, deleted, sent again")) == orphan
    collected = await collect_orphans(store, set(), min_age=HOUR)
    assert collected.blobs == ()
    assert await store.exists(orphan.key)


async def test_the_collector_checks_the_time_again_before_deleting(tmp_path: Path) -> None:
    """Between listing a blob as an old orphan and deleting it, the blob was written again."""
    store = LocalBlobStore(tmp_path)
    orphan = await store.put(of(b"raced"))
    path = store.path_of(orphan.key)
    old = (datetime.now(UTC) - 3 * HOUR).timestamp()
    os.utime(path, (old, old))

    class RewrittenWhileListed(LocalBlobStore):
        async def list_blobs(self) -> AsyncIterator[BlobInfo]:
            async for blob in super().list_blobs():
                await store.put(of(b"raced"))  # refreshed after it was listed
                yield blob

    collected = await collect_orphans(RewrittenWhileListed(tmp_path), set(), min_age=HOUR)
    assert collected.blobs == ()
    assert await store.exists(orphan.key)
