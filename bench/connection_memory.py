"""Server memory per idle websocket connection, clients connecting one at a time versus in
batches (as bench/realtime.py's clients do).  The server runs in this process (embedded
default, a temporary SQLite file); the clients in a child process, answering the server's
heartbeat pings as every client must.  Prints, for each mode, the connections the server held
and its RSS growth per held connection, and again after malloc_trim.

    .venv/bin/python bench/connection_memory.py [CONNECTIONS] [BATCH]

Each mode runs in a process of its own.  (Clients that did not answer pings were dropped by
the heartbeat while the slow one-at-a-time mode was still connecting: that mode then divided
the growth of about half the connections by all of them, and looked cheaper than it is.)
"""

from __future__ import annotations

import asyncio
import ctypes
import gc
import json
import resource
import secrets
import subprocess
import sys
import tempfile
from datetime import timedelta
from pathlib import Path

from sqlalchemy import insert, select

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # this checkout's code
from chat.auth import hash_token
from chat.cli import prepare
from chat.db import Database
from chat.models import AuthSession, User, utcnow
from chat.settings import Settings
from tests.harness import Server

CLIENT = r"""
import asyncio, json, sys, resource, websockets
resource.setrlimit(resource.RLIMIT_NOFILE, (20000, 20000))
async def main():
    url, tokens, batch = sys.argv[1], json.load(open(sys.argv[2])), int(sys.argv[3])
    held = []
    async def answer(c):
        async for text in c:
            if '"type":"ping"' in text:
                await c.send('{"type":"pong"}')
    async def one(token):
        c = await websockets.connect(url, ping_interval=None)
        await c.send(json.dumps({"type": "hello", "token": token}))
        await c.recv(); await c.recv()
        held.append(asyncio.create_task(answer(c)))
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


async def seed(settings: Settings, count: int) -> list[str]:
    """The schema, an organisation and its administrator, and ``count`` sessions of theirs
    (rows as ``chat.auth`` stores them, as bench/realtime.py seeds them)."""
    await prepare(settings, quiet=True)
    db = Database(settings.effective_database_url)
    tokens = [secrets.token_urlsafe(32) for _ in range(count)]
    now = utcnow()
    try:
        async with db.session() as s:
            user_id = await s.scalar(select(User.id).order_by(User.id))
            await s.execute(
                insert(AuthSession),
                [
                    {
                        "user_id": user_id,
                        "token_hash": hash_token(token),
                        "created_at": now,
                        "expires_at": now + timedelta(hours=1),
                        "user_agent": "bench/connection_memory.py",
                    }
                    for token in tokens
                ],
            )
    finally:
        await db.dispose()
    return tokens


async def measure(tmp: Path, count: int, batch: int) -> tuple[int, float, float]:
    url = f"sqlite+aiosqlite:///{tmp / f'm{batch}.db'}"
    settings = Settings(database_url=url, data_dir=tmp, log_level="warning")
    tokens = await seed(settings, count)
    server = Server(settings)
    await server.start()
    assert server.services is not None
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
    held = sum(len(conns) for conns in server.services.hub.by_session.values())
    grown = (rss_kb() - before) / max(held, 1)
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    trimmed = (rss_kb() - before) / max(held, 1)
    child.kill()
    await child.wait()
    await server.stop()
    return held, grown, trimmed


async def one_mode(count: int, batch: int) -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (20000, 20000))
    with tempfile.TemporaryDirectory() as tmp:
        held, grown, trimmed = await measure(Path(tmp), count, batch)
    label = "one at a time" if batch == 1 else f"{batch} at a time"
    print(
        f"{count} connections, {label}: {held} held, {grown:.1f} KB each"
        f" ({trimmed:.1f} KB after malloc_trim)"
    )


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
