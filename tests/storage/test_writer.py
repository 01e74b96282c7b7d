"""storage/writer.py: a local put hashed and written by two threads of its own, with the event
loop waiting only while too much is queued, and synced to disk while it is written; failures
on any side leave nothing."""

from __future__ import annotations

import asyncio
import hashlib
import os
import threading
from pathlib import Path
from typing import IO

import pytest

from storage import writer as writer_module
from storage.blobs import LocalBlobStore
from storage.writer import BACKLOG_BYTES, BlobWriter
from tests.storage.streams import of

MIB = 1024 * 1024
PUT_THREADS = ("blob-hash", "blob-write", "blob-sync")


async def put_threads() -> list[str]:
    """The put threads still running, a moment after a put ended (they end right after the
    put is told; no thread is left behind)."""
    for _ in range(500):
        names = [t.name for t in threading.enumerate() if t.name in PUT_THREADS]
        if not names:
            break
        await asyncio.sleep(0.01)
    return names


def everything(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


async def test_pieces_of_any_size_give_the_content_key(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    chunks = [os.urandom(n) for n in (1, 3000, 256 * 1024, MIB + 7, 0, 5)]
    stored = await store.put(of(*chunks))
    data = b"".join(chunks)
    assert (stored.key, stored.size) == (hashlib.sha256(data).hexdigest(), len(data))
    assert store.path_of(stored.key).read_bytes() == data
    assert everything(tmp_path) == {f"blobs/{stored.key[:2]}/{stored.key[2:4]}/{stored.key}"}
    assert await put_threads() == []  # the put ends with its threads


async def test_the_loop_waits_while_more_than_the_backlog_is_queued(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the writing thread held, giving stops returning once more than BACKLOG_BYTES wait;
    it goes on as soon as the thread takes them."""
    held = threading.Event()
    real_write = writer_module._write

    def slow_write(file: object, piece: list[bytes]) -> None:
        held.wait()
        real_write(file, piece)  # type: ignore[arg-type]

    monkeypatch.setattr(writer_module, "_write", slow_write)
    store = LocalBlobStore(tmp_path)
    writer = BlobWriter(store.tmp_dir, store.path_of)
    piece = [os.urandom(256 * 1024)]
    given = 0
    try:
        while True:
            step = asyncio.ensure_future(writer.give(piece, len(piece[0])))
            await asyncio.sleep(0.05)
            if not step.done():
                break
            given += len(piece[0])
            assert given <= BACKLOG_BYTES + len(piece[0])
        assert given + len(piece[0]) > BACKLOG_BYTES  # it stopped only past the backlog
        held.set()
        await asyncio.wait_for(step, 10)
        key = await writer.finish()
    except BaseException:
        held.set()
        await writer.abort()
        raise
    data = piece[0] * (given // len(piece[0]) + 1)
    assert key == hashlib.sha256(data).hexdigest()
    assert store.path_of(key).read_bytes() == data


async def put_fails_leaving_nothing(tmp_path: Path, chunks: list[bytes], error: str) -> None:
    """A put of ``chunks`` raises the OSError matching ``error`` and leaves no file, no
    temporary file and no thread behind."""
    store = LocalBlobStore(tmp_path)
    with pytest.raises(OSError, match=error):
        await store.put(of(*chunks))
    assert everything(tmp_path) == set()
    assert await put_threads() == []


async def test_a_failing_disk_leaves_nothing_and_says_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full_disk(file: object, piece: list[bytes]) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(writer_module, "_write", full_disk)
    await put_fails_leaving_nothing(
        tmp_path, [os.urandom(256 * 1024) for _ in range(12)], "No space left"
    )


async def test_a_temporary_file_that_cannot_be_made_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "tmp").write_bytes(b"not a directory")
    store = LocalBlobStore(tmp_path)
    with pytest.raises(OSError):
        await store.put(of(b"bytes"))
    assert everything(tmp_path) == {"tmp"}
    assert await put_threads() == []


async def test_a_large_put_is_synced_while_it_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past SYNC_EVERY_BYTES the file's data is synced while more is still being written (the
    writing thread waits for the first sync here, so that the test does not race it); a put
    smaller than that is synced only by its commit."""
    every = 512 * 1024
    monkeypatch.setattr(writer_module, "SYNC_EVERY_BYTES", every)
    synced_sizes: list[int] = []
    first_sync = threading.Event()
    waited: list[bool] = []
    real_sync, real_write = writer_module._fdatasync, writer_module._write

    def recording_sync(fd: int) -> None:
        synced_sizes.append(os.fstat(fd).st_size)
        real_sync(fd)
        first_sync.set()

    def write_then_wait(file: IO[bytes], piece: list[bytes]) -> None:
        real_write(file, piece)
        file.flush()
        if os.fstat(file.fileno()).st_size >= 2 * every and not waited:
            waited.append(first_sync.wait(10))

    monkeypatch.setattr(writer_module, "_fdatasync", recording_sync)
    monkeypatch.setattr(writer_module, "_write", write_then_wait)
    store = LocalBlobStore(tmp_path)
    chunks = [os.urandom(64 * 1024) for _ in range(64)]  # 4 MiB
    stored = await store.put(of(*chunks))
    data = b"".join(chunks)
    assert store.path_of(stored.key).read_bytes() == data
    assert synced_sizes, "no sync while the file was written"
    # The first sync came while the writer waited, mid-file; a later one may find the whole
    # file written (a syncing thread behind the writer, under load), before the commit.
    assert synced_sizes[0] < len(data), synced_sizes
    assert all(every <= size <= len(data) for size in synced_sizes), synced_sizes
    assert await put_threads() == []

    synced_sizes.clear()
    small = await store.put(of(os.urandom(every - 1)))
    assert small.size == every - 1 and synced_sizes == []


async def test_a_failing_sync_fails_the_put_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Linux reports a write-back error once: a put whose sync failed is not committed."""

    def failing_sync(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(writer_module, "SYNC_EVERY_BYTES", 256 * 1024)
    monkeypatch.setattr(writer_module, "_fdatasync", failing_sync)
    await put_fails_leaving_nothing(
        tmp_path, [os.urandom(64 * 1024) for _ in range(64)], "Input/output error"
    )
