"""Local puts of 20 MiB with and without syncing while they are written (storage/writer.py).

Each put is fed 256 KiB chunks by an async stream that pauses between chunks (about the pace
of a socket), so the put's threads write while the rest arrives, as in an upload.  Printed,
for syncing every ``SYNC_EVERY_BYTES`` (the default) and for no sync before the commit
(``SYNC_EVERY_BYTES`` larger than the file), alternating: the median time the stream took
(the body) and the median time from the last chunk to the put's end (the tail: last hashing,
the commit's fsync, rename).  The tail is what syncing while writing shortens; how much
depends on the disk (on a VM whose host flushes the image, a 20 MiB fsync costs ~34 ms).
Every put writes new bytes (a new key) and the kernel writes back all dirty pages before it.

    .venv/bin/python bench/put_sync.py [--runs 15]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

from storage import writer
from storage.blobs import LocalBlobStore

CHUNK = 256 * 1024
CHUNKS = 80  # 20 MiB
PAUSE_S = 0.0004


async def paced(chunks: list[bytes], marks: dict[str, float]) -> AsyncIterator[bytes]:
    marks["start"] = time.perf_counter()
    for chunk in chunks:
        yield chunk
        await asyncio.sleep(PAUSE_S)
    marks["last"] = time.perf_counter()


async def one_put(store: LocalBlobStore, chunks: list[bytes]) -> tuple[float, float]:
    chunks[0] = os.urandom(CHUNK)  # a new key: no blob to replace
    await asyncio.to_thread(os.sync)
    marks: dict[str, float] = {}
    await store.put(paced(chunks, marks))
    end = time.perf_counter()
    return (marks["last"] - marks["start"]) * 1000, (end - marks["last"]) * 1000


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    default_every = writer.SYNC_EVERY_BYTES
    modes = {
        f"sync every {default_every // 2**20} MiB": default_every,
        "no sync before the commit": 2 * CHUNK * CHUNKS,
    }
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in modes}
    chunks = [os.urandom(CHUNK) for _ in range(CHUNKS)]
    with tempfile.TemporaryDirectory(prefix="kk-bench-put-", dir=Path.cwd()) as tmp:
        store = LocalBlobStore(Path(tmp))
        await one_put(store, chunks)  # warm-up
        for _ in range(args.runs):
            for name, every in modes.items():
                writer.SYNC_EVERY_BYTES = every
                results[name].append(await one_put(store, chunks))
    writer.SYNC_EVERY_BYTES = default_every
    print(f"20 MiB puts, {args.runs} each, alternating (medians, ms)")
    for name, values in results.items():
        body = statistics.median(v[0] for v in values)
        tail = statistics.median(v[1] for v in values)
        print(f"  {name:28} body {body:6.1f}   tail after the last chunk {tail:6.1f}")


if __name__ == "__main__":
    asyncio.run(main())
