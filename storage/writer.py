"""Writing one blob to local disk: hashed in one thread, written in another, while the event
loop reads the stream on.

Each thread takes the pieces in order from its own queue as fast as it can, so the hashing
(the slower of the two: SHA-256 runs at about 1.2 GB/s here) never waits for the event loop
between pieces; the event loop waits only while more than :data:`BACKLOG_BYTES` are queued for
the slower thread, which bounds the memory of a put.  The writing thread owns the file: it
creates the temporary file, has what it wrote synced to disk as it goes (by a third thread,
:class:`_Syncer`, once the file is large enough to need it), and at the end either commits it
under its key (fsync while the last piece is still being hashed, rename, fsync of the
directory) or removes it.

Threads of their own, not the event loop's executor: the two must run at the same time, and
a busy executor could start one and leave the other queued behind it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from queue import SimpleQueue
from typing import IO

from storage.tasks import uninterrupted

log = logging.getLogger(__name__)

#: Bytes of a put that may wait for the hashing or the writing thread before the event loop
#: stops reading the stream (at most this plus one piece are queued).
BACKLOG_BYTES = 1024 * 1024

#: Bytes written between two syncs of a put's file while it is written (:class:`_Syncer`).
SYNC_EVERY_BYTES = 2 * 1024 * 1024

_HASHING, _WRITING = 0, 1


class BlobWriter:
    """One put to a :class:`storage.blobs.LocalBlobStore`: :meth:`give` the pieces in order,
    then :meth:`finish` (the key) or, on any failure or cancellation, :meth:`abort`."""

    def __init__(self, tmp_dir: Path, path_of: Callable[[str], Path]) -> None:
        self._tmp_dir = tmp_dir
        self._path_of = path_of
        self._loop = asyncio.get_running_loop()
        self._hasher = hashlib.sha256()
        self._key = ""
        self._failure: BaseException | None = None
        self._aborted = False
        self._queues: tuple[SimpleQueue[list[bytes] | None], SimpleQueue[list[bytes] | None]] = (
            SimpleQueue(),
            SimpleQueue(),
        )
        self._lock = threading.Lock()
        self._queued = [0, 0]  # bytes waiting for the hashing thread, for the writing thread
        self._room: asyncio.Future[None] | None = None
        self._hashed = threading.Event()
        self._done: asyncio.Future[None] = self._loop.create_future()
        threading.Thread(target=self._hash_all, name="blob-hash", daemon=True).start()
        threading.Thread(target=self._write_all, name="blob-write", daemon=True).start()

    async def give(self, piece: list[bytes], size: int) -> None:
        """Queue the chunks of ``piece`` (``size`` bytes in all) for both threads; wait while
        too much is queued already."""
        with self._lock:  # a thread failing after this still wakes the room made here
            self._raise_failure()
            self._queued[_HASHING] += size
            self._queued[_WRITING] += size
            if max(self._queued) > BACKLOG_BYTES:
                self._room = self._loop.create_future()
            room = self._room
        self._queues[_HASHING].put(piece)
        self._queues[_WRITING].put(piece)
        if room is not None:
            await room
            self._raise_failure()

    async def finish(self) -> str:
        """The key, once every piece is hashed and the file committed under it."""
        self._end()
        await uninterrupted(self._done)
        self._raise_failure()
        return self._key

    async def abort(self) -> None:
        """Stop both threads and remove the temporary file (waits for them, even if
        cancelled: the file is never removed under a thread still writing it)."""
        self._aborted = True
        self._end()
        await uninterrupted(self._done)

    def _end(self) -> None:
        self._queues[_HASHING].put(None)
        self._queues[_WRITING].put(None)

    def _raise_failure(self) -> None:
        if self._failure is not None:
            raise self._failure

    # -- in the threads ------------------------------------------------------------------

    def _hash_all(self) -> None:
        try:
            while (piece := self._queues[_HASHING].get()) is not None:
                size = 0
                for chunk in piece:
                    size += len(chunk)
                    if not self._aborted:
                        self._hasher.update(chunk)  # releases the GIL for 2 KiB and more
                self._taken(_HASHING, size)
            self._key = self._hasher.hexdigest()
        except BaseException as exc:
            self._fail(exc)
        finally:
            self._hashed.set()

    def _write_all(self) -> None:
        file: IO[bytes] | None = None
        tmp: Path | None = None
        syncer: _Syncer | None = None
        try:
            file, tmp = _new_temp(self._tmp_dir)
            syncer = _Syncer(file.fileno(), self._fail)
            while (piece := self._queues[_WRITING].get()) is not None:
                size = sum(map(len, piece))
                if not self._aborted:
                    _write(file, piece)
                    syncer.wrote(size)
                self._taken(_WRITING, size)
            syncer.stop()
            if not self._aborted:
                file.flush()
                os.fsync(file.fileno())  # while the hashing thread finishes
                file.close()
                self._hashed.wait()
                if self._failure is None:
                    _commit(tmp, self._path_of(self._key))
                    tmp = None
        except BaseException as exc:
            self._fail(exc)
        finally:
            if syncer is not None:
                syncer.stop()  # no descriptor is closed under the syncing thread
            if tmp is not None and file is not None:
                _discard(file, tmp)
            self._hashed.wait()  # the put ends with both threads
            self._loop.call_soon_threadsafe(_set_done, self._done)

    def _taken(self, queue: int, size: int) -> None:
        with self._lock:
            self._queued[queue] -= size
            room = self._room if max(self._queued) <= BACKLOG_BYTES else None
            if room is not None:
                self._room = None
        if room is not None:
            self._loop.call_soon_threadsafe(_set_done, room)

    def _fail(self, exc: BaseException) -> None:
        with self._lock:
            if self._failure is None:
                self._failure = exc
            self._aborted = True
            room, self._room = self._room, None
        if room is not None:
            self._loop.call_soon_threadsafe(_set_done, room)


def _set_done(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _new_temp(tmp_dir: Path) -> tuple[IO[bytes], Path]:
    tmp_dir.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix="put-", suffix=".part", dir=tmp_dir)
    try:
        return os.fdopen(fd, "wb"), Path(name)
    except BaseException:
        os.close(fd)
        os.unlink(name)
        raise


def _write(file: IO[bytes], piece: list[bytes]) -> None:
    for chunk in piece:
        file.write(chunk)


class _Syncer:
    """Makes a file's data durable while the rest of it still arrives: a thread of its own
    (started once :data:`SYNC_EVERY_BYTES` are written) runs ``fdatasync`` each time that
    many more have been written, so the commit's ``fsync`` has only the last of them left.

    Measured on a VM whose disk flush costs ~34 ms per 20 MiB (the host writes the image
    through): the fsync after a 20 MiB body ~44 ms → ~7 ms, with 5–11 syncs during the body
    and the body itself no slower.  A failed sync fails the put (Linux reports a write-back
    error once: the commit's fsync could not be trusted to see it again)."""

    def __init__(self, fd: int, on_failure: Callable[[BaseException], None]) -> None:
        self._fd = fd
        self._on_failure = on_failure
        self._cv = threading.Condition()
        self._written = 0
        self._synced = 0
        self._stopped = False
        self._thread: threading.Thread | None = None

    def wrote(self, size: int) -> None:
        """Called by the writing thread after each piece."""
        with self._cv:
            self._written += size
            if self._stopped or self._written - self._synced < SYNC_EVERY_BYTES:
                return
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="blob-sync", daemon=True)
                self._thread.start()
            else:
                self._cv.notify()

    def stop(self) -> None:
        """No more syncs; returns once a sync under way has ended (may be called again)."""
        with self._cv:
            self._stopped = True
            self._cv.notify()
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        try:
            while True:
                with self._cv:
                    while not self._stopped and self._written - self._synced < SYNC_EVERY_BYTES:
                        self._cv.wait()
                    if self._stopped:
                        return
                    target = self._written
                _fdatasync(self._fd)
                with self._cv:
                    self._synced = target
        except BaseException as exc:
            self._on_failure(exc)


_fdatasync = getattr(os, "fdatasync", os.fsync)


def _commit(tmp: Path, final: Path) -> None:
    """Rename the fsynced ``tmp`` into place and fsync the directory.  Replacing an existing
    blob (same bytes) gives it a fresh modification time, which protects it from a collector
    that saw it unreferenced before this write."""
    final.parent.mkdir(parents=True, exist_ok=True)
    os.replace(tmp, final)
    fsync_dir(final.parent)


def _discard(file: IO[bytes], tmp: Path) -> None:
    with contextlib.suppress(OSError):
        file.close()
    try:
        tmp.unlink(missing_ok=True)
    except OSError:
        log.exception("could not remove the temporary file %s", tmp)


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
