"""Sanitisation jobs: a queue behind a narrow interface, and the worker that drains it.

Backends, chosen by URL (as encode/broadcaster does):

- ``memory://`` — in-process: a bounded asyncio queue; the worker runs in the app's event
  loop and sanitises in sandboxed children (at most `concurrency` at once). Nothing survives
  the process; the app resubmits unfinished attachments on start.
- ``redis://`` — Redis Streams with a consumer group. Keys (``P`` = prefix, default
  ``kakehashi:sanitizer``):

  ``P:jobs``          stream of jobs (fields job_id, input, output, filename), group ``workers``
  ``P:results``       stream of results (fields job_id, verdict, output, report)
  ``P:result:<id>``   the result of one job (JSON), written once (SET NX), kept RESULT_TTL_S

  A worker reads with XREADGROUP, refreshes the jobs it holds with XCLAIM (heartbeat), and
  takes over jobs idle longer than `claim_idle_ms` (a worker that died) with XAUTOCLAIM.
  Completion is one Lua script: SET NX the result key, XADD to the results stream only if
  that SET won, then XACK + XDEL the job. A job done twice therefore gives one result; the
  rendition path is a function of the job id and is written by atomic rename, so a second
  run rewrites the same path with the same bytes.

A job names files relative to the worker's shared directory (`--dir`); anything resolving
outside it is refused (`invalid_job`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from sanitizer import limits
from sanitizer.report import Report

log = logging.getLogger(__name__)

_JOB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")
GROUP = "workers"


@dataclass(frozen=True)
class Job:
    """`input` and `output` are paths relative to the shared directory; `output` defaults to
    ``sanitized/<job_id>``. `filename` is the name the sender gave."""

    job_id: str
    input: str
    filename: str | None = None
    output: str | None = None

    def __post_init__(self) -> None:
        if not _JOB_ID.match(self.job_id):
            raise ValueError(f"invalid job id {self.job_id!r}")

    @property
    def output_path(self) -> str:
        return self.output or f"sanitized/{self.job_id}"

    def to_fields(self) -> dict[str, str]:
        return {
            "job_id": self.job_id,
            "input": self.input,
            "output": self.output_path,
            "filename": self.filename or "",
        }

    @classmethod
    def from_fields(cls, fields: dict[str, str]) -> Job:
        return cls(
            job_id=fields["job_id"],
            input=fields["input"],
            filename=fields.get("filename") or None,
            output=fields.get("output") or None,
        )


@dataclass(frozen=True)
class JobResult:
    """`output` is relative to the shared directory (None when blocked); `report` is
    `Report.to_dict()`."""

    job_id: str
    verdict: str
    output: str | None
    report: dict[str, Any]

    def to_json(self) -> str:
        return json.dumps(
            {
                "job_id": self.job_id,
                "verdict": self.verdict,
                "output": self.output,
                "report": self.report,
            },
            ensure_ascii=False,
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str) -> JobResult:
        data = json.loads(text)
        return cls(data["job_id"], data["verdict"], data["output"], data["report"])


@dataclass
class Delivery:
    job: Job
    token: str
    deliveries: int = 1


class JobQueue(Protocol):
    async def submit(self, job: Job) -> None: ...
    async def receive(self, count: int, block_ms: int) -> list[Delivery]: ...
    async def touch(self, deliveries: list[Delivery]) -> None: ...
    async def complete(self, delivery: Delivery, result: JobResult) -> bool: ...
    async def get_result(self, job_id: str) -> JobResult | None: ...
    async def wait_result(self, job_id: str, timeout_s: float) -> JobResult | None: ...
    async def close(self) -> None: ...


def open_queue(
    url: str,
    *,
    prefix: str = "kakehashi:sanitizer",
    consumer: str | None = None,
    claim_idle_ms: int = limits.JOB_CLAIM_IDLE_MS,
    on_result: Callable[[JobResult], Awaitable[None]] | None = None,
) -> JobQueue:
    """A queue for `url`: ``memory://`` or ``redis://host:port/db``."""
    if url.startswith("memory://"):
        return MemoryQueue(on_result=on_result)
    if url.startswith(("redis://", "rediss://", "unix://")):
        return RedisQueue(url, prefix=prefix, consumer=consumer, claim_idle_ms=claim_idle_ms)
    raise ValueError(f"unsupported queue URL {url!r}")


class MemoryQueue:
    """In-process queue; `on_result` is awaited once per job with its first result."""

    def __init__(
        self,
        *,
        max_jobs: int = limits.MEMORY_QUEUE_MAX_JOBS,
        on_result: Callable[[JobResult], Awaitable[None]] | None = None,
    ) -> None:
        self._jobs: asyncio.Queue[Job] = asyncio.Queue(maxsize=max_jobs)
        self._results: dict[str, JobResult] = {}
        self._changed = asyncio.Condition()
        self._on_result = on_result
        self._counter = 0

    async def submit(self, job: Job) -> None:
        await self._jobs.put(job)

    async def receive(self, count: int, block_ms: int) -> list[Delivery]:
        out: list[Delivery] = []
        try:
            job = await asyncio.wait_for(self._jobs.get(), block_ms / 1000)
        except TimeoutError:
            return out
        out.append(self._delivery(job))
        while len(out) < count and not self._jobs.empty():
            out.append(self._delivery(self._jobs.get_nowait()))
        return out

    def _delivery(self, job: Job) -> Delivery:
        self._counter += 1
        return Delivery(job, str(self._counter))

    async def touch(self, deliveries: list[Delivery]) -> None:
        return None

    async def complete(self, delivery: Delivery, result: JobResult) -> bool:
        if result.job_id in self._results:
            return False
        self._results[result.job_id] = result
        async with self._changed:
            self._changed.notify_all()
        if self._on_result is not None:
            await self._on_result(result)
        return True

    async def get_result(self, job_id: str) -> JobResult | None:
        return self._results.get(job_id)

    async def wait_result(self, job_id: str, timeout_s: float) -> JobResult | None:
        async def wait() -> JobResult:
            async with self._changed:
                await self._changed.wait_for(lambda: job_id in self._results)
            return self._results[job_id]

        try:
            return await asyncio.wait_for(wait(), timeout_s)
        except TimeoutError:
            return None

    async def close(self) -> None:
        return None


_COMPLETE_LUA = """
local first = redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[2])
if first then
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*',
             'job_id', ARGV[4], 'verdict', ARGV[5], 'output', ARGV[6], 'report', ARGV[7])
end
redis.call('XACK', KEYS[3], ARGV[8], ARGV[9])
redis.call('XDEL', KEYS[3], ARGV[9])
if first then return 1 else return 0 end
"""


class RedisQueue:
    """Redis Streams consumer group (see the module docstring for keys and guarantees)."""

    def __init__(
        self,
        url: str,
        *,
        prefix: str,
        consumer: str | None = None,
        claim_idle_ms: int = limits.JOB_CLAIM_IDLE_MS,
    ) -> None:
        import redis.asyncio as aioredis

        self._redis: Any = aioredis.from_url(url, decode_responses=True)
        self.prefix = prefix
        self.jobs_key = f"{prefix}:jobs"
        self.results_key = f"{prefix}:results"
        self.consumer = consumer or f"{socket.gethostname()}-{os.getpid()}"
        self.claim_idle_ms = claim_idle_ms
        self._group_ready = False
        self._complete = self._redis.register_script(_COMPLETE_LUA)

    def result_key(self, job_id: str) -> str:
        return f"{self.prefix}:result:{job_id}"

    async def _ensure_group(self) -> None:
        if self._group_ready:
            return
        from redis.exceptions import ResponseError

        try:
            await self._redis.xgroup_create(self.jobs_key, GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._group_ready = True

    async def submit(self, job: Job) -> None:
        await self._ensure_group()
        await self._redis.xadd(self.jobs_key, job.to_fields())

    async def receive(self, count: int, block_ms: int) -> list[Delivery]:
        await self._ensure_group()
        out: list[Delivery] = []
        claimed = await self._redis.xautoclaim(
            self.jobs_key, GROUP, self.consumer, self.claim_idle_ms, start_id="0-0", count=count
        )
        for message_id, fields in claimed[1]:
            if fields:
                out.append(await self._delivery(message_id, fields, reclaimed=True))
        if len(out) < count:
            streams = await self._redis.xreadgroup(
                GROUP,
                self.consumer,
                {self.jobs_key: ">"},
                count=count - len(out),
                block=block_ms if not out else None,
            )
            for _stream, messages in streams or []:
                for message_id, fields in messages:
                    out.append(await self._delivery(message_id, fields, reclaimed=False))
        return out

    async def _delivery(
        self, message_id: str, fields: dict[str, str], *, reclaimed: bool
    ) -> Delivery:
        deliveries = 1
        if reclaimed:
            pending = await self._redis.xpending_range(
                self.jobs_key, GROUP, min=message_id, max=message_id, count=1
            )
            if pending:
                deliveries = int(pending[0]["times_delivered"])
        try:
            job = Job.from_fields(fields)
        except (KeyError, ValueError):
            job = Job(job_id="invalid", input="")
        return Delivery(job, message_id, deliveries)

    async def touch(self, deliveries: list[Delivery]) -> None:
        if deliveries:
            await self._redis.xclaim(
                self.jobs_key,
                GROUP,
                self.consumer,
                0,
                [d.token for d in deliveries],
                justid=True,
            )

    async def complete(self, delivery: Delivery, result: JobResult) -> bool:
        first = await self._complete(
            keys=[self.result_key(result.job_id), self.results_key, self.jobs_key],
            args=[
                result.to_json(),
                limits.RESULT_TTL_S,
                limits.RESULTS_STREAM_MAXLEN,
                result.job_id,
                result.verdict,
                result.output or "",
                json.dumps(result.report, ensure_ascii=False, sort_keys=True),
                GROUP,
                delivery.token,
            ],
        )
        return bool(first)

    async def get_result(self, job_id: str) -> JobResult | None:
        text = await self._redis.get(self.result_key(job_id))
        return JobResult.from_json(text) if text else None

    async def wait_result(self, job_id: str, timeout_s: float) -> JobResult | None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while True:
            result = await self.get_result(job_id)
            if result is not None or loop.time() >= deadline:
                return result
            await asyncio.sleep(0.05)

    async def close(self) -> None:
        await self._redis.aclose()


@dataclass
class Worker:
    """Drains a JobQueue, at most `concurrency` jobs at once, each in a sandboxed child."""

    queue: JobQueue
    directory: Path
    concurrency: int = limits.WORKER_CONCURRENCY
    heartbeat_s: float = limits.JOB_HEARTBEAT_S
    timeout_s: float = limits.SANDBOX_TIMEOUT_S
    _active: dict[str, Delivery] = field(default_factory=dict)

    async def run(self, stop: asyncio.Event | None = None) -> None:
        stop = stop or asyncio.Event()
        slots = asyncio.Semaphore(self.concurrency)
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self._heartbeat(stop))
            while not stop.is_set():
                await slots.acquire()
                free = 1
                while free < self.concurrency and not slots.locked():
                    await slots.acquire()
                    free += 1
                deliveries = await self.queue.receive(free, block_ms=500)
                for _ in range(free - len(deliveries)):
                    slots.release()
                for delivery in deliveries:
                    self._active[delivery.token] = delivery
                    tasks.create_task(self._handle(delivery, slots))

    async def _heartbeat(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.heartbeat_s)
            await self.queue.touch(list(self._active.values()))

    async def _handle(self, delivery: Delivery, slots: asyncio.Semaphore) -> None:
        try:
            job = delivery.job
            result = await self.queue.get_result(job.job_id)
            if result is None:
                if delivery.deliveries > limits.JOB_MAX_DELIVERIES:
                    result = _blocked(job.job_id, "worker_failed")
                else:
                    result = await asyncio.to_thread(self.process, job)
            first = await self.queue.complete(delivery, result)
            log.info("job %s: %s%s", job.job_id, result.verdict, "" if first else " (again)")
        finally:
            self._active.pop(delivery.token, None)
            slots.release()

    def process(self, job: Job) -> JobResult:
        """Sanitise one job's file (blocking; runs in a thread)."""
        from sanitizer.core import sanitize

        base = self.directory.resolve()
        source = (base / job.input).resolve()
        target = (base / job.output_path).resolve()
        if (
            not job.input
            or not source.is_relative_to(base)
            or not target.is_relative_to(base)
            or source == target
            or not source.is_file()
        ):
            return _blocked(job.job_id, "invalid_job")
        target.parent.mkdir(parents=True, exist_ok=True)
        _sweep_stale_workdirs(target.parent, max_age_s=2 * self.timeout_s + 60)
        result = sanitize(
            source, filename=job.filename, output_path=target, timeout_s=self.timeout_s
        )
        output = str(target.relative_to(base)) if result.output is not None else None
        return JobResult(job.job_id, result.verdict, output, result.report.to_dict())


def _sweep_stale_workdirs(directory: Path, *, max_age_s: float) -> None:
    """Remove work directories left by a worker that was killed (older than any live job)."""
    import shutil
    import time

    now = time.time()
    for entry in directory.glob(".kakehashi-sanitize-*"):
        with contextlib.suppress(OSError):
            if now - entry.lstat().st_mtime > max_age_s:
                shutil.rmtree(entry, ignore_errors=True)


def _blocked(job_id: str, code: str) -> JobResult:
    return JobResult(job_id, "blocked", None, Report.blocked(code).to_dict())
