"""The cost of one message send in process (the domain's send_message in a unit of work), on
a fresh database: median and p90 of sequential sends after a warm-up.

    .venv/bin/python bench/send_path.py                      # SQLite in a temporary folder
    .venv/bin/python bench/send_path.py postgresql+asyncpg://postgres@127.0.0.1:5432/kk_bench
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

from argon2 import PasswordHasher

from chat import accounts, messages, passwords, rooms
from chat.app import build_services, close_services
from chat.auth import Principal
from chat.migrate import upgrade
from chat.settings import Settings

SENDS = 300
WARM_UP = 50


async def main(url: str) -> None:
    passwords._hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    services = await build_services(Settings(database_url=url))
    await upgrade(services.db)
    suffix = uuid.uuid4().hex[:6]
    async with services.unit() as uow:
        org = await accounts.create_organisation(uow, "bench")
        a, b = [
            await accounts.create_user(
                uow,
                org.id,
                accounts.UserInput(login_id=f"{n}{suffix}", display_name=n, password=None),
            )
            for n in ("sender", "reader")
        ]
    principal = Principal(a, 0)
    async with services.unit() as uow:
        room, _ = await rooms.open_direct(uow, principal, b.id)
    times = []
    for _ in range(SENDS):
        start = time.perf_counter()
        async with services.unit() as uow:
            await messages.send_message(
                uow, principal, room.id, client_id=uuid.uuid4().hex, body="こんにちは"
            )
        times.append(time.perf_counter() - start)
    measured = sorted(times[WARM_UP:])
    print(
        f"{url.split(':', 1)[0]}: send median {statistics.median(measured) * 1000:.2f} ms, "
        f"p90 {measured[int(len(measured) * 0.9)] * 1000:.2f} ms over {len(measured)} sends"
    )
    await close_services(services)


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        target = sys.argv[1] if len(sys.argv) > 1 else f"sqlite+aiosqlite:///{Path(tmp) / 'b.db'}"
        asyncio.run(main(target))
