"""Presence: who is online, and on which side (office staff see who works from home).

Each app process counts its own open websockets per ``(user, side)``.  With one process
(the embedded default) those counts are the answer.  With several, each process writes its
counts to a Redis hash of its own (``<prefix>:presence:<process>``) about once a second and
keeps it alive with an expiry, and registers itself in a sorted set scored by its last write;
a lookup reads the hashes of the processes seen recently, so a crashed process drops out
within ``PRESENCE_TTL_S``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Iterable

import redis.asyncio as aioredis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)
PRESENCE_FLUSH_S = 1.0
PRESENCE_TTL_S = 30.0
PRESENCE_REFRESH_S = 10.0


class Presence:
    def __init__(self, redis_url: str | None = None, prefix: str = "kakehashi") -> None:
        self.local: dict[tuple[int, str], int] = {}
        self._dirty: set[tuple[int, str]] = set()
        self._redis = (
            aioredis.Redis.from_url(redis_url, socket_timeout=5, socket_connect_timeout=5)
            if redis_url
            else None
        )
        self.process = uuid.uuid4().hex[:12]
        self._procs_key = f"{prefix}:presence:procs"
        self._prefix = f"{prefix}:presence:"
        self._key = f"{self._prefix}{self.process}"
        self._wake = asyncio.Event()

    def up(self, user_id: int, side: str) -> None:
        key = (user_id, side)
        self.local[key] = self.local.get(key, 0) + 1
        self._dirty.add(key)

    def down(self, user_id: int, side: str) -> None:
        key = (user_id, side)
        left = self.local.get(key, 0) - 1
        if left > 0:
            self.local[key] = left
        else:
            self.local.pop(key, None)
        self._dirty.add(key)

    async def lookup(self, user_ids: Iterable[int]) -> dict[int, list[str]]:
        """For each user, the sides on which they have at least one open connection."""
        ids = list(dict.fromkeys(user_ids))
        found: dict[int, set[str]] = {uid: set() for uid in ids}
        if self._redis is None:
            for (uid, side), count in self.local.items():
                if count > 0 and uid in found:
                    found[uid].add(side)
        else:
            fields = [f"{uid}:{side}" for uid in ids for side in ("lgwan", "internet")]
            try:
                procs = await self._redis.zrangebyscore(
                    self._procs_key, time.time() - PRESENCE_TTL_S, "+inf"
                )
                if procs and fields:
                    async with self._redis.pipeline(transaction=False) as pipe:
                        for proc in procs:
                            name = proc.decode() if isinstance(proc, bytes) else str(proc)
                            pipe.hmget(self._prefix + name, fields)
                        results = await pipe.execute()
                    for values in results:
                        for field, value in zip(fields, values, strict=True):
                            if value is not None and int(value) > 0:
                                user, side = field.split(":")
                                found[int(user)].add(side)
            except RedisError:
                log.warning("presence lookup failed; answering from this process only")
                for (uid, side), count in self.local.items():
                    if count > 0 and uid in found:
                        found[uid].add(side)
        return {uid: sorted(sides) for uid, sides in found.items()}

    async def run(self) -> None:
        """Owned by the hub: writes this process's changes to Redis (nothing to do without)."""
        if self._redis is None:
            return
        last_refresh = 0.0
        while True:
            await asyncio.sleep(PRESENCE_FLUSH_S)
            now = time.monotonic()
            if not self._dirty and now - last_refresh < PRESENCE_REFRESH_S:
                continue
            dirty, self._dirty = self._dirty, set()
            try:
                async with self._redis.pipeline(transaction=False) as pipe:
                    for uid, side in dirty:
                        count = self.local.get((uid, side), 0)
                        if count > 0:
                            pipe.hset(self._key, f"{uid}:{side}", count)
                        else:
                            pipe.hdel(self._key, f"{uid}:{side}")
                    pipe.expire(self._key, int(PRESENCE_TTL_S))
                    pipe.zadd(self._procs_key, {self.process: time.time()})
                    pipe.zremrangebyscore(self._procs_key, "-inf", time.time() - PRESENCE_TTL_S)
                    await pipe.execute()
                last_refresh = now
            except RedisError:
                self._dirty |= dirty
                log.warning("presence: cannot write to Redis; will retry")

    async def close(self) -> None:
        if self._redis is not None:
            with contextlib.suppress(RedisError):
                await self._redis.delete(self._key)
                await self._redis.zrem(self._procs_key, self.process)
            await self._redis.aclose()
