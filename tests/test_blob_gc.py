"""Orphaned attachment blobs are collected; referenced ones and young ones stay."""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator

from storage.blobs import LocalBlobStore
from tests.clirun import kakehashi
from tests.harness import World
from tests.test_attachments import upload


async def _chunks(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def test_collect_blobs_removes_only_old_unreferenced_blobs(world: World) -> None:
    services = world.server.services
    assert services is not None
    store = services.blobs
    assert isinstance(store, LocalBlobStore)
    alice, bob = world["alice"], world["bob"]
    room = (await alice.api.post("/api/rooms/direct", json={"user_id": bob.id})).json()["id"]
    r = await upload(alice, room, "在庫表\n".encode() * 100, "在庫.txt", "text/plain")
    assert r.status_code == 201, r.text
    kept = (await services.sanitizing.collect_blobs(dry_run=True)).blobs  # nothing old yet
    assert kept == ()
    orphan = await store.put(_chunks(b"abandoned upload " * 50))
    young = await store.put(_chunks(b"an upload in flight " * 50))
    day_ago = time.time() - 24 * 3600
    for blob in [b async for b in store.list_blobs()]:
        if blob.key != young.key:
            os.utime(store.path_of(blob.key), (day_ago, day_ago))
    done = await kakehashi(services.settings, "admin", "collect-blobs", "--dry-run")
    assert done.code == 0 and "would remove 1 orphaned blobs" in done.out
    assert await store.exists(orphan.key)
    done = await kakehashi(services.settings, "admin", "collect-blobs")
    assert done.code == 0 and "removed 1 orphaned blobs" in done.out, done.err
    assert not await store.exists(orphan.key)
    assert await store.exists(young.key)  # too young to tell from an upload in flight
    attachment = (await alice.api.get(f"/api/attachments/{r.json()['id']}")).json()
    assert attachment["size"] == len("在庫表\n".encode() * 100)
    remaining = {b.key async for b in store.list_blobs()}
    assert remaining >= {young.key} and orphan.key not in remaining and len(remaining) >= 2
