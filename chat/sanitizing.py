"""The sanitiser in the app: attachments go to the sanitiser's job queue, results come back as
attachment state, a rendition blob and an ``attachment`` event.

Two set-ups (``Settings.effective_sanitizer_queue_url``):

- ``memory://`` (the embedded default): a :class:`sanitizer.worker.Worker` runs in this
  process as an owned task (``sanitizer_workers`` jobs at once, each in a sandboxed child);
  the queue calls back with each result.
- ``redis://…`` (scale-out): jobs go to the sanitiser's Redis stream, where ``kakehashi
  worker`` processes (and this process too if ``sanitizer_workers`` > 0) take them; results
  are read from the results stream with the consumer group ``app`` (at least once; applying
  a result is idempotent: only a ``scanning`` attachment changes).

The worker sees files, not blobs: an original is linked (or copied) into the shared
directory as ``incoming/<job id>``, the rendition is read back from ``sanitized/<job id>``
into the blob store, and both files are removed.  Nothing is lost when a worker or the app
dies mid-job: the Redis stream redelivers unacknowledged jobs (``JOB_CLAIM_IDLE_MS``,
``JOB_MAX_DELIVERIES``), on start-up every attachment still ``scanning`` is queued again, and
so is, every ``STUCK_SWEEP_INTERVAL_S``, one still scanning ``STUCK_AFTER_S`` after its upload
(the job id is the attachment's, so a job done twice gives one result).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
import socket
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select

from chat import attachments
from chat.attachments import Outcome
from chat.broker import Broker
from chat.db import Database
from chat.models import Attachment
from chat.settings import Settings
from chat.unit import Unit, unit_of_work
from sanitizer.report import Report
from sanitizer.worker import Job, JobQueue, JobResult, Worker, open_queue
from storage.blobs import BlobStore, LocalBlobStore
from storage.orphans import Collected, collect_orphans
from storage.tasks import cancel_all

log = logging.getLogger(__name__)

RESULTS_GROUP = "app"
RESULTS_BLOCK_MS = 1_000
# A result read by an app process that died before applying it is taken over after this long.
RESULTS_CLAIM_IDLE_MS = 30_000
STOP_GRACE_S = 5.0
SUBMIT_TIMEOUT_S = 10.0
# Attachments still scanning this long after their upload are queued again (a submission
# that failed, a result that could not be applied); every start-up queues all of them.
STUCK_AFTER_S = 30 * 60.0
STUCK_SWEEP_INTERVAL_S = 5 * 60.0
# Blobs no attachment references (a refused or abandoned upload's, one whose row was never
# committed) are collected this often, once older than the longest an upload can take.
BLOB_GC_INTERVAL_S = 60 * 60.0
BLOB_GC_MIN_AGE = timedelta(hours=6)
FILE_CHUNK_BYTES = 1024 * 1024


class Sanitizing:
    """Owned by the app's lifespan: :meth:`start` then :meth:`stop`."""

    def __init__(self, settings: Settings, db: Database, broker: Broker, blobs: BlobStore) -> None:
        self.settings = settings
        self.db = db
        self.broker = broker
        self.blobs = blobs
        self.directory = settings.effective_sanitizer_dir
        self.url = settings.effective_sanitizer_queue_url
        self.prefix = f"{settings.redis_prefix}:sanitizer"
        self.queue: JobQueue | None = None
        self._stop = asyncio.Event()
        self._worker: Worker | None = None
        self._worker_task: asyncio.Task[None] | None = None
        self._results_task: asyncio.Task[None] | None = None
        self._sweep_task: asyncio.Task[None] | None = None
        self._redis: Any = None

    @property
    def started(self) -> bool:
        return self.queue is not None

    async def start(self) -> None:
        if self.queue is not None:
            return
        for sub in ("incoming", "sanitized"):
            (self.directory / sub).mkdir(parents=True, exist_ok=True)
        self._stop.clear()
        self.queue = open_queue(self.url, prefix=self.prefix, on_result=self._on_memory_result)
        if self.settings.sanitizer_workers > 0:
            self._worker = Worker(
                self.queue,
                directory=self.directory,
                concurrency=self.settings.sanitizer_workers,
                timeout_s=self.settings.sanitizer_timeout_s,
            )
            self._worker_task = asyncio.create_task(
                self._worker.run(self._stop), name="sanitizer-worker"
            )
        if not self.url.startswith("memory://"):
            import redis.asyncio as aioredis

            self._redis = aioredis.from_url(self.url, decode_responses=True)
            self._results_task = asyncio.create_task(
                self._consume_results(), name="sanitizer-results"
            )
        # In the background: start-up does not wait for a backlog to be queued.
        self._sweep_task = asyncio.create_task(self._sweep(), name="sanitizer-requeue")

    async def stop(self) -> None:
        """Jobs under way get ``STOP_GRACE_S`` to end; what is cut short stays ``scanning``
        and is queued again on the next start."""
        if self.queue is None:
            return
        self._stop.set()
        if self._worker_task is not None:
            if self._worker is not None and self._worker._active:
                await asyncio.wait([self._worker_task], timeout=STOP_GRACE_S)
        await cancel_all((self._worker_task, self._results_task, self._sweep_task))
        self._worker = self._worker_task = self._results_task = self._sweep_task = None
        await self.queue.close()
        self.queue = None
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None

    # -- submitting --------------------------------------------------------------------

    async def submit(
        self, attachment: Attachment, *, timeout_s: float | None = SUBMIT_TIMEOUT_S
    ) -> None:
        """Queue one attachment (again).  A failure leaves it ``scanning``: the sweep queues
        it again later."""
        assert self.queue is not None, "Sanitizing.start() was not called"
        job_id = attachments.job_id(attachment)
        try:
            existing = await self.queue.get_result(job_id)
            if existing is not None:  # done while nobody listened: apply it now
                await self.apply(existing)
                return
            incoming = self.directory / "incoming" / job_id
            await self._place_input(attachment.original_key, incoming)
            job = Job(job_id, input=f"incoming/{job_id}", filename=attachment.filename)
            await asyncio.wait_for(self.queue.submit(job), timeout_s)
        except Exception:
            log.exception("attachment %s: could not queue it for the sanitiser", attachment.id)

    async def requeue(self, *, older_than_s: float | None = None) -> int:
        """Queue again the attachments still scanning (uploaded ``older_than_s`` ago)."""
        async with self.db.read_sessions() as session:
            pending = await attachments.scanning(Unit(session), older_than_s=older_than_s)
        for attachment in pending:
            await self.submit(attachment, timeout_s=None)  # a backlog waits for room
        if pending:
            log.info("queued %d attachment(s) still scanning again", len(pending))
        return len(pending)

    async def collect_blobs(
        self, *, min_age: timedelta = BLOB_GC_MIN_AGE, dry_run: bool = False
    ) -> Collected:
        """Delete the blobs that no attachment references (see storage/orphans.py)."""
        async with self.db.read_sessions() as session:
            referenced: set[str] = set()
            rows = await session.execute(select(Attachment.original_key, Attachment.sanitized_key))
            for original, sanitized in rows.all():
                referenced.add(original)
                if sanitized:
                    referenced.add(sanitized)
        collected = await collect_orphans(self.blobs, referenced, min_age=min_age, dry_run=dry_run)
        if collected.blobs or collected.staging:
            log.info(
                "collected %d orphaned blobs (%d bytes) and %d staging leftovers",
                len(collected.blobs),
                collected.bytes_freed,
                collected.staging,
            )
        return collected

    async def _sweep(self) -> None:
        older_than_s: float | None = None  # at start-up: every one
        last_gc = time.monotonic()
        while not self._stop.is_set():
            try:
                await self.requeue(older_than_s=older_than_s)
            except Exception:
                log.exception("queueing attachments still scanning again")
            if time.monotonic() - last_gc >= BLOB_GC_INTERVAL_S:
                last_gc = time.monotonic()
                try:
                    await self.collect_blobs()
                except Exception:
                    log.exception("collecting orphaned blobs")
            older_than_s = STUCK_AFTER_S
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), STUCK_SWEEP_INTERVAL_S)

    async def _place_input(self, key: str, target: Path) -> None:
        if isinstance(self.blobs, LocalBlobStore):
            source = self.blobs.path_of(key)

            def link() -> None:
                tmp = target.with_name(target.name + ".tmp")
                with contextlib.suppress(FileNotFoundError):
                    tmp.unlink()
                try:
                    os.link(source, tmp)
                except OSError:
                    shutil.copyfile(source, tmp)
                os.replace(tmp, target)

            await asyncio.to_thread(link)
            return
        tmp = target.with_name(target.name + ".tmp")
        file = await asyncio.to_thread(open, tmp, "wb")
        try:
            async for chunk in self.blobs.read(key):
                await asyncio.to_thread(file.write, chunk)
        finally:
            await asyncio.to_thread(file.close)
        await asyncio.to_thread(os.replace, tmp, target)

    # -- results -------------------------------------------------------------------------

    async def _on_memory_result(self, result: JobResult) -> None:
        try:
            await self.apply(result)
        except Exception:  # the worker must go on; the attachment stays scanning
            log.exception("sanitiser result for %s could not be applied", result.job_id)

    async def apply(self, result: JobResult) -> None:
        """Store the rendition, set the state, emit the event; idempotent."""
        parsed = attachments.parse_job_id(result.job_id)
        if parsed is None:
            log.warning("sanitiser result for an unknown job %r ignored", result.job_id)
            return
        attachment_id, key_prefix = parsed
        rendition_key = rendition_size = None
        output = self._output_path(result)
        if result.verdict != attachments.BLOCKED and output is not None and output.is_file():
            stored = await self.blobs.put(_file_chunks(output))
            rendition_key, rendition_size = stored.key, stored.size
        verdict = result.verdict if rendition_key is not None else attachments.BLOCKED
        report = result.report
        if verdict == attachments.BLOCKED and result.verdict != attachments.BLOCKED:
            report = Report.blocked("worker_failed").to_dict()  # the rendition went missing
        async with unit_of_work(self.db, self.broker) as uow:
            changed = await attachments.finish(
                uow,
                attachment_id,
                key_prefix,
                Outcome(verdict, report, rendition_key, rendition_size),
            )
        if changed:
            log.info("attachment %s: %s", attachment_id, verdict)
        await asyncio.to_thread(self._cleanup, result.job_id, output)

    def _output_path(self, result: JobResult) -> Path | None:
        if not result.output:
            return None
        path = (self.directory / result.output).resolve()
        return path if path.is_relative_to(self.directory) else None

    def _cleanup(self, job_id: str, output: Path | None) -> None:
        for path in (self.directory / "incoming" / job_id, output):
            if path is not None:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()

    async def _consume_results(self) -> None:
        """Read the results stream with the consumer group ``app`` until stopped."""
        from redis.exceptions import ResponseError

        stream = f"{self.prefix}:results"
        consumer = f"{socket.gethostname()}-{os.getpid()}"
        group_ready = False
        while not self._stop.is_set():
            try:
                if not group_ready:
                    try:
                        await self._redis.xgroup_create(
                            stream, RESULTS_GROUP, id="0", mkstream=True
                        )
                    except ResponseError as exc:
                        if "BUSYGROUP" not in str(exc):
                            raise
                    group_ready = True
                # Results read but not applied (a process that died, an apply that failed)…
                claimed = await self._redis.xautoclaim(
                    stream, RESULTS_GROUP, consumer, RESULTS_CLAIM_IDLE_MS, "0-0", count=50
                )
                for message_id, fields in claimed[1]:
                    await self._apply_fields(stream, message_id, fields)
                # …then new ones.
                read = await self._redis.xreadgroup(
                    RESULTS_GROUP, consumer, {stream: ">"}, count=50, block=RESULTS_BLOCK_MS
                )
                for _stream, messages in read or []:
                    for message_id, fields in messages:
                        await self._apply_fields(stream, message_id, fields)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("reading sanitiser results; retrying")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), 1.0)

    async def _apply_fields(self, stream: str, message_id: str, fields: dict[str, str]) -> None:
        if not fields:  # deleted from the stream meanwhile
            await self._redis.xack(stream, RESULTS_GROUP, message_id)
            return
        try:
            result = JobResult(
                fields["job_id"],
                fields["verdict"],
                fields.get("output") or None,
                json.loads(fields.get("report") or "{}"),
            )
        except (KeyError, ValueError):
            log.warning("malformed sanitiser result %s dropped", message_id)
            await self._redis.xack(stream, RESULTS_GROUP, message_id)
            return
        await self.apply(result)  # raises: not acknowledged, read again later
        await self._redis.xack(stream, RESULTS_GROUP, message_id)


async def _file_chunks(path: Path) -> AsyncIterator[bytes]:
    file = await asyncio.to_thread(open, path, "rb")
    try:
        while chunk := await asyncio.to_thread(file.read, FILE_CHUNK_BYTES):
            yield chunk
    finally:
        await asyncio.to_thread(file.close)
