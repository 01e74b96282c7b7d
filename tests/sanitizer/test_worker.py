"""The worker: in-process (memory://) and Redis Streams, with real Redis and real processes."""

from __future__ import annotations

import asyncio
import io
import os
import signal
import subprocess
import sys
import time
import uuid
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis
import sancorpus as c
from PIL import Image

from sanitizer.worker import Job, JobResult, MemoryQueue, RedisQueue, Worker, open_queue

REDIS_URL = "redis://127.0.0.1:6379/0"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
async def prefix() -> AsyncIterator[str]:
    name = f"test:sanitizer:{uuid.uuid4().hex}"
    yield name
    client = aioredis.from_url(REDIS_URL)
    keys = [k async for k in client.scan_iter(f"{name}:*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


async def test_memory_queue_runs_jobs_and_reports_once(tmp_path: Path) -> None:
    (tmp_path / "q").mkdir()
    (tmp_path / "q" / "a").write_bytes(c.docm_active())
    seen: list[JobResult] = []

    async def on_result(result: JobResult) -> None:
        seen.append(result)

    queue = open_queue("memory://", on_result=on_result)
    assert isinstance(queue, MemoryQueue)
    worker = Worker(queue, directory=tmp_path, concurrency=2)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    await queue.submit(Job("a1", "q/a", filename="議事録.docm"))
    await queue.submit(Job("a1", "q/a", filename="議事録.docm"))  # the same job twice
    await queue.submit(Job("evil", "../../etc/passwd", filename="x.txt"))
    result = await queue.wait_result("a1", timeout_s=30)
    bad = await queue.wait_result("evil", timeout_s=30)
    await asyncio.sleep(0.5)
    stop.set()
    await task
    assert result is not None and result.verdict == "sanitized"
    assert result.output == "sanitized/a1"
    assert result.report["output_filename"] == "議事録.docx"
    assert zipfile.is_zipfile(tmp_path / "sanitized" / "a1")
    assert bad is not None and bad.report["reason"] == "invalid_job"
    assert [r.job_id for r in seen].count("a1") == 1


async def test_redis_job_done_twice_gives_one_result(tmp_path: Path, prefix: str) -> None:
    (tmp_path / "in").write_bytes(c.csv_cp932_with_formulas())
    queues = [RedisQueue(REDIS_URL, prefix=prefix, consumer=f"w{i}") for i in range(2)]
    workers = [Worker(q, directory=tmp_path, concurrency=1, heartbeat_s=0.2) for q in queues]
    stop = asyncio.Event()
    tasks = [asyncio.create_task(w.run(stop)) for w in workers]
    job = Job("dup-1", "in", filename="名簿.csv")
    await queues[0].submit(job)
    await queues[0].submit(job)
    result = await queues[0].wait_result("dup-1", timeout_s=30)
    client = aioredis.from_url(REDIS_URL, decode_responses=True)
    try:
        for _ in range(100):  # both deliveries acknowledged
            if await client.xlen(f"{prefix}:jobs") == 0:
                break
            await asyncio.sleep(0.1)
        stop.set()
        await asyncio.gather(*tasks)
        assert result is not None and result.verdict == "sanitized"
        entries = await client.xrange(f"{prefix}:results")
        assert [fields["job_id"] for _id, fields in entries] == ["dup-1"]
        assert await client.xlen(f"{prefix}:jobs") == 0
        text = (tmp_path / "sanitized" / "dup-1").read_bytes().decode("cp932")
        assert "'=HYPERLINK" in text and ",'+1+2" in text
    finally:
        await client.aclose()
        for q in queues:
            await q.close()


def _slow_zip() -> bytes:
    """About three seconds of work: eight 12-megapixel photos in a ZIP."""
    im = Image.linear_gradient("L").resize((4000, 3000)).convert("RGB")
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=85)
    return c.zip_plain({f"現場写真{i}.jpg": buf.getvalue() for i in range(8)})


def _start_worker(directory: Path, prefix: str, consumer: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable, "-m", "sanitizer", "worker",
            "--redis-url", REDIS_URL, "--dir", str(directory), "--prefix", prefix,
            "--consumer", consumer, "--claim-idle-ms", "1500", "--heartbeat-s", "0.3",
            "--concurrency", "1",
        ],
        cwd=ROOT,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip


@pytest.mark.slow
async def test_worker_killed_mid_job_is_replaced(tmp_path: Path, prefix: str) -> None:
    (tmp_path / "quarantine").mkdir()
    (tmp_path / "quarantine" / "photos").write_bytes(_slow_zip())
    queue = RedisQueue(REDIS_URL, prefix=prefix, consumer="test")
    client = aioredis.from_url(REDIS_URL, decode_responses=True)
    first = _start_worker(tmp_path, prefix, "doomed")
    second: subprocess.Popen[bytes] | None = None
    try:
        await queue.submit(Job("photos-1", "quarantine/photos", filename="写真.zip"))
        deadline = time.monotonic() + 30
        holder = None
        while time.monotonic() < deadline and holder is None:
            pending = await client.xpending_range(f"{prefix}:jobs", "workers", "-", "+", 10)
            holder = pending[0]["consumer"] if pending else None
            await asyncio.sleep(0.02)
        assert holder == "doomed"
        await asyncio.sleep(0.5)  # well inside the ~3 s job
        assert await queue.get_result("photos-1") is None
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(10)

        second = _start_worker(tmp_path, prefix, "rescuer")
        result = await queue.wait_result("photos-1", timeout_s=60)
        assert result is not None and result.verdict == "clean"
        out = zipfile.ZipFile(tmp_path / "sanitized" / "photos-1")
        assert len(out.namelist()) == 8 and out.namelist()[0] == "現場写真0.jpg"
        assert Image.open(io.BytesIO(out.read(out.namelist()[0]))).size == (4000, 3000)
        entries = await client.xrange(f"{prefix}:results")
        assert [fields["job_id"] for _id, fields in entries] == ["photos-1"]
        assert await client.xlen(f"{prefix}:jobs") == 0
        # the killed worker's work directory stays until it is older than any live job
        stale = [p for p in (tmp_path / "sanitized").iterdir() if p.name.startswith(".")]
        assert len(stale) <= 1
        old = time.time() - 3600
        for p in stale:
            os.utime(p, (old, old))
        Worker(queue, directory=tmp_path).process(Job("photos-2", "quarantine/photos"))
        assert not [p for p in (tmp_path / "sanitized").iterdir() if p.name.startswith(".")]
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
        await client.aclose()
        await queue.close()
