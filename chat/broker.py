"""Event fan-out between app processes, chosen by URL: in-process (``memory://``, one app
process) or Redis pub/sub (``redis://``, several).  Pub/sub may drop messages while Redis
restarts; the hub covers any gap from the database's event log, so nothing is lost."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Protocol

import redis.asyncio as aioredis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

MEMORY_QUEUE_MAX = 100_000
REDIS_RETRY_S = 0.5


class Broker(Protocol):
    async def publish(self, message: str) -> None: ...

    def subscribe(self) -> AsyncIterator[str | None]:
        """Messages in publish order; ``None`` after a reconnect (something may be missing)."""
        ...

    async def ping(self) -> bool: ...

    async def close(self) -> None: ...


class MemoryBroker:
    def __init__(self) -> None:
        self._subscribers: list[asyncio.Queue[str | None]] = []

    async def publish(self, message: str) -> None:
        for queue in self._subscribers:
            try:
                queue.put_nowait(message)
            except asyncio.QueueFull:
                # The hub fell far behind: tell it to resynchronise from the database.
                log.warning("memory broker subscriber overflowed; forcing a resync")
                while not queue.empty():
                    queue.get_nowait()
                queue.put_nowait(None)

    async def subscribe(self) -> AsyncIterator[str | None]:
        queue: asyncio.Queue[str | None] = asyncio.Queue(MEMORY_QUEUE_MAX)
        self._subscribers.append(queue)
        try:
            while True:
                yield await queue.get()
        finally:
            self._subscribers.remove(queue)

    async def ping(self) -> bool:
        return True

    async def close(self) -> None:
        return None


class RedisBroker:
    def __init__(self, url: str, prefix: str) -> None:
        self._redis = aioredis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
        self.channel = f"{prefix}:events"

    async def publish(self, message: str) -> None:
        try:
            await self._redis.publish(self.channel, message)
        except RedisError:
            # The event is in the database; subscribers find it when they resynchronise.
            log.exception("could not publish to Redis; delivery falls back to resync")

    async def subscribe(self) -> AsyncIterator[str | None]:
        first = True
        while True:
            pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.channel)
                if not first:
                    yield None  # reconnected: the hub resynchronises from the database
                first = False
                while True:
                    message = await pubsub.get_message(timeout=30.0)
                    if message is not None and message["type"] == "message":
                        data = message["data"]
                        yield data.decode() if isinstance(data, bytes) else str(data)
            except (RedisError, OSError):
                log.warning("Redis subscription lost; reconnecting")
                await asyncio.sleep(REDIS_RETRY_S)
            finally:
                try:
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
                except (RedisError, OSError):
                    pass

    async def ping(self) -> bool:
        try:
            return bool(await self._redis.ping())
        except (RedisError, OSError):
            return False

    async def close(self) -> None:
        await self._redis.aclose()


def make_broker(redis_url: str | None, prefix: str) -> Broker:
    if not redis_url or redis_url == "memory://":
        return MemoryBroker()
    return RedisBroker(redis_url, prefix)
