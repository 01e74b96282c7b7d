"""Server memory per idle websocket connection, clients connecting one at a time versus in
batches (as bench/realtime.py's clients do).  The server runs in this process (embedded
default, a temporary SQLite file); the clients in a child process.  Prints the server's RSS
growth per connection for each mode, and again after malloc_trim.

    .venv/bin/python bench/connection_memory.py [CONNECTIONS] [BATCH]

Each mode runs in a process of its own.
"""

from __future__ import annotations

import asyncio
import ctypes
import gc
import json
import resource
import subprocess
import sys
import tempfile
from datetime import timedelta
from pathlib import Path

from argon2 import PasswordHasher

from chat import accounts, passwords
from chat.auth import sign_in
from chat.db import Database
from chat.migrate import upgrade
from chat.settings import Settings

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repo, for tests.harness
from tests.harness import Server

CLIENT = r"""
import asyncio, json, sys, resource, websockets
resource.setrlimit(resource.RLIMIT_NOFILE, (20000, 20000))
async def main():
    url, tokens, batch = sys.argv[1], json.load(open(sys.argv[2])), int(sys.argv[3])
    held = []
    async def one(token):
        c = await websockets.connect(url, ping_interval=None)
        await c.send(json.dumps({"type": "hello", "token": token}))
        await c.recv(); await c.recv()
        held.append(c)
    for i in range(0, len(tokens), batch):
        await asyncio.gather(*(one(t) for t in tokens[i : i + batch]))
    print("ready", flush=True)
    await asyncio.sleep(3600)
asyncio.run(main())
"""


def rss_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


async def measure(tmp: Path, count: int, batch: int) -> tuple[float, float]:
    url = f"sqlite+aiosqlite:///{tmp / f'm{batch}.db'}"
    db = Database(url)
    await upgrade(db)
    await db.dispose()
    server = Server(Settings(database_url=url, data_dir=tmp, log_level="warning"))
    await server.start()
    assert server.services is not None
    async with server.services.unit() as uow:
        org = await accounts.create_organisation(uow, "bench")
        await accounts.create_user(
            uow,
            org.id,
            accounts.UserInput(login_id="u", display_name="u", password="Bench-password-1"),
        )
    tokens = [
        (await sign_in(server.services.db, "u", "Bench-password-1", ttl=timedelta(hours=1))).token
        for _ in range(count)
    ]
    (tmp / "tokens.json").write_text(json.dumps(tokens))
    (tmp / "client.py").write_text(CLIENT)
    gc.collect()
    before = rss_kb()
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        str(tmp / "client.py"),
        server.ws_url,
        str(tmp / "tokens.json"),
        str(batch),
        stdout=asyncio.subprocess.PIPE,
    )
    assert child.stdout is not None
    await child.stdout.readline()
    await asyncio.sleep(2)
    gc.collect()
    grown = (rss_kb() - before) / count
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    trimmed = (rss_kb() - before) / count
    child.kill()
    await child.wait()
    await server.stop()
    return grown, trimmed


async def one_mode(count: int, batch: int) -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (20000, 20000))
    passwords._hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    with tempfile.TemporaryDirectory() as tmp:
        grown, trimmed = await measure(Path(tmp), count, batch)
    label = "one at a time" if batch == 1 else f"{batch} at a time"
    print(f"{count} connections, {label}: {grown:.1f} KB each ({trimmed:.1f} KB after malloc_trim)")


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    batch = int(sys.argv[2]) if len(sys.argv) > 2 else 200
    # Each mode in a fresh process: a second server in the same process would reuse the
    # memory the first one freed, and measure less than it costs.
    for mode in (1, batch):
        subprocess.run(
            [sys.executable, __file__, "--mode", str(count), str(mode)], check=True, timeout=600
        )


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--mode":
        asyncio.run(one_mode(int(sys.argv[2]), int(sys.argv[3])))
    else:
        main()
