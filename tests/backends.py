"""Real databases and brokers for tests: SQLite files or PostgreSQL databases cloned from a
migrated template, and Redis with a key prefix of their own.  Chosen by environment:

- ``KAKEHASHI_TEST_BACKEND=sqlite`` (default) — SQLite + in-process broker;
- ``KAKEHASHI_TEST_BACKEND=postgres`` — PostgreSQL (``KAKEHASHI_TEST_PG``, default
  ``postgresql://postgres@127.0.0.1:5432/test``) + Redis (``KAKEHASHI_TEST_REDIS``, default
  ``redis://127.0.0.1:6379/0``).
"""

from __future__ import annotations

import itertools
import os
import shutil
import uuid
from pathlib import Path

import asyncpg
import redis.asyncio as aioredis

from chat.db import Database
from chat.migrate import upgrade

BACKEND = os.environ.get("KAKEHASHI_TEST_BACKEND", "sqlite")
PG_ADMIN_URL = os.environ.get("KAKEHASHI_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("KAKEHASHI_TEST_REDIS", "redis://127.0.0.1:6379/0")
_counter = itertools.count()


def _pg_url(name: str, driver: str = "postgresql+asyncpg") -> str:
    base = PG_ADMIN_URL.rsplit("/", 1)[0].split("://", 1)[1]
    return f"{driver}://{base}/{name}"


class Backends:
    """Makes one fresh database per test from a template migrated once per session."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.run_id = uuid.uuid4().hex[:8]
        self.template: str | None = None
        self.created: list[str] = []

    @property
    def uses_redis(self) -> bool:
        return BACKEND == "postgres"

    async def _admin(self, *statements: str) -> None:
        """Run statements on the PostgreSQL admin database (CREATE/DROP DATABASE)."""
        conn = await asyncpg.connect(PG_ADMIN_URL)
        try:
            for statement in statements:
                await conn.execute(statement)
        finally:
            await conn.close()

    async def prepare_template(self) -> None:
        if BACKEND == "postgres":
            name = f"kk_tpl_{self.run_id}"
            await self._admin(f'CREATE DATABASE "{name}"')
            db = Database(_pg_url(name))
            await upgrade(db)
            await db.dispose()
            self.template = name
        else:
            path = self.workdir / "template.db"
            db = Database(f"sqlite+aiosqlite:///{path}")
            await upgrade(db)
            await db.dispose()
            self.template = str(path)

    async def new_database_url(self) -> str:
        n = next(_counter)
        if BACKEND == "postgres":
            name = f"kk_t_{self.run_id}_{n}"
            await self._admin(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"')
            self.created.append(name)
            return _pg_url(name)
        assert self.template is not None
        path = self.workdir / f"t{n}.db"
        shutil.copyfile(self.template, path)
        return f"sqlite+aiosqlite:///{path}"

    def redis_url(self) -> str | None:
        return REDIS_URL if self.uses_redis else None

    def redis_prefix(self) -> str:
        return f"kktest:{self.run_id}:{next(_counter)}"

    async def drop(self, url: str) -> None:
        if BACKEND != "postgres":
            return
        name = url.rsplit("/", 1)[1]
        await self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    async def cleanup(self) -> None:
        if self.uses_redis:
            # Every key this run left in Redis (streams, presence hashes) goes with it.
            client = aioredis.from_url(REDIS_URL)
            keys = [k async for k in client.scan_iter(f"kktest:{self.run_id}:*", count=1000)]
            for i in range(0, len(keys), 500):
                await client.delete(*keys[i : i + 500])
            await client.aclose()
        if BACKEND == "postgres" and self.template:
            await self._admin(
                *(
                    f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'
                    for name in [*self.created, self.template]
                )
            )
