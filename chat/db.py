"""Engine and sessions.  Nothing happens at import time: ``Database`` is built by the app's
lifespan (or a CLI command) from the settings and disposed of when it ends."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Callable, Generator
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import aiosqlite
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from chat.protocol import json_text

SQLITE_BUSY_TIMEOUT_S = 5.0
SQLITE_READ_POOL = 2
SQLITE_READ_OVERFLOW = 4


class InlineSQLiteConnection(aiosqlite.Connection):
    """aiosqlite's connection, with its calls made on the event loop's own thread.

    aiosqlite hands every call (cursor, execute, fetch, close) to a thread and back: about
    0.3 ms a hop on a busy loop, four hops a statement, ten milliseconds a message.  SQLite
    answers our statements in microseconds (WAL, synchronous=NORMAL: no fsync per commit), so
    running them inline is far cheaper.  What makes it safe: the app never waits on SQLite's
    lock from inside the loop, because its own writers queue on ``Database``'s asyncio lock,
    and WAL readers never wait; only another process (the CLI) can make a writer wait, for at
    most ``SQLITE_BUSY_TIMEOUT_S``.
    """

    def __await__(self) -> Generator[Any, None, aiosqlite.Connection]:
        return self._connect().__await__()  # no worker thread

    async def _connect(self) -> aiosqlite.Connection:
        if self._connection is None:
            self._connection = self._connector()
        return self

    async def _execute(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if not self._running or not self._connection:
            raise ValueError("Connection closed")
        return fn(*args, **kwargs)

    def stop(self) -> asyncio.Future[Any] | None:
        self._running = False
        if self._connection is not None:
            self._connection.close()
            self._connection = None
        return None


def _inline_sqlite_creator(url: str) -> Callable[[], Any]:
    path = make_url(url).database or ":memory:"

    async def create() -> aiosqlite.Connection:
        connector = partial(
            sqlite3.connect, path, timeout=SQLITE_BUSY_TIMEOUT_S, check_same_thread=False
        )
        return await InlineSQLiteConnection(connector, iter_chunk_size=64)

    return create


def make_engine(url: str, *, writer: bool = True) -> AsyncEngine:
    if url.startswith("sqlite"):
        # Inline calls on one thread gain nothing from many connections, and each keeps a
        # page cache of its own: writers queue on Database's lock (one connection suffices,
        # with a spare), readers share a few.
        engine = create_async_engine(
            url,
            async_creator=_inline_sqlite_creator(url),
            pool_size=1 if writer else SQLITE_READ_POOL,
            max_overflow=1 if writer else SQLITE_READ_OVERFLOW,
            json_serializer=json_text,
        )

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute(f"PRAGMA busy_timeout={int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
            cur.close()

        @event.listens_for(engine.sync_engine, "begin")
        def _sqlite_begin(conn: Any) -> None:
            # Writers take the write lock at BEGIN so that they queue up instead of failing on
            # lock upgrade (SQLite's "database is locked").  Readers use another engine with
            # plain deferred transactions (WAL: they never block), begun here because pysqlite
            # would begin none before a SELECT: each SELECT would see another moment.
            conn.exec_driver_sql("BEGIN IMMEDIATE" if writer else "BEGIN")

        return engine
    return create_async_engine(
        url, pool_size=10, max_overflow=20, pool_pre_ping=True, json_serializer=json_text
    )


class Database:
    def __init__(self, url: str) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        self.engine = make_engine(url)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        # Read-only work sees one moment (a snapshot) across its statements: on SQLite a
        # second engine whose transactions take no write lock; on PostgreSQL the same pool
        # in REPEATABLE READ (READ COMMITTED would let a list's counts and its last messages
        # come from either side of a commit).
        self.read_engine = (
            make_engine(url, writer=False)
            if self.is_sqlite
            else self.engine.execution_options(isolation_level="REPEATABLE READ")
        )
        self.read_sessions = async_sessionmaker(self.read_engine, expire_on_commit=False)
        # SQLite has one writer at a time; in this process they queue here, never on the
        # database's own lock (which would wait on the loop's thread).
        self._write_lock = asyncio.Lock() if self.is_sqlite else None

    @asynccontextmanager
    async def writer(self) -> AsyncIterator[AsyncSession]:
        """A session for a write transaction (the caller begins it)."""
        if self._write_lock is None:
            async with self.sessions() as session:
                yield session
            return
        async with self._write_lock, self.sessions() as session:
            yield session

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A session in one transaction: committed on success, rolled back on error."""
        async with self.writer() as session, session.begin():
            yield session

    async def dispose(self) -> None:
        await self.engine.dispose()
        if self.is_sqlite:
            await self.read_engine.dispose()
