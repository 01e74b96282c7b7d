"""Orphan collection: deleting blobs that nothing references any more.

A blob is written before the attachment row that references it is committed, so a blob that
is not referenced *yet* looks exactly like one that is referenced no more.  Age tells them
apart: only blobs last modified more than ``min_age`` ago are collected, and ``min_age`` must
be longer than any upload takes from its first byte to its commit (hours, not seconds; with an
object store also more than the clock difference between the app hosts and the store).

Writing bytes that are already stored refreshes the blob's modification time, and each delete
checks that time again just before it deletes, so an upload that lands on an old unreferenced
blob while a collection runs keeps it.  Read ``referenced`` completely (from the database)
*before* calling; a reference committed later is protected by the age.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from storage.blobs import BlobInfo, BlobStore


@dataclass(frozen=True, slots=True)
class Collected:
    """What a collection removed (or, in a dry run, would remove)."""

    blobs: tuple[BlobInfo, ...]
    #: Temporary files and multipart uploads that crashed writers had left (0 in a dry run).
    staging: int

    @property
    def bytes_freed(self) -> int:
        return sum(blob.size for blob in self.blobs)


async def collect_orphans(
    store: BlobStore,
    referenced: Collection[str],
    *,
    min_age: timedelta,
    now: datetime | None = None,
    dry_run: bool = False,
) -> Collected:
    """Delete the blobs whose key is not in ``referenced`` and that were last modified before
    ``now - min_age``, and what writers left behind before then; return what was removed."""
    if min_age < timedelta(0):
        raise ValueError("min_age must not be negative")
    cutoff = (now or datetime.now(UTC)) - min_age
    removed: list[BlobInfo] = []
    async for blob in store.list_blobs():
        if blob.key in referenced or blob.modified >= cutoff:
            continue
        if dry_run or await store.delete(blob.key, modified_before=cutoff):
            removed.append(blob)
    staging = 0 if dry_run else await store.sweep_staging(cutoff)
    return Collected(tuple(removed), staging)
