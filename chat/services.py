"""What one app process holds while it runs: built by the lifespan, passed to the transport."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from chat.broker import Broker
from chat.db import Database
from chat.hub import Hub, Metrics
from chat.settings import Settings
from chat.unit import Unit, unit_of_work
from storage.blobs import BlobStore

if TYPE_CHECKING:
    from chat.sanitizing import Sanitizing


@dataclass
class Services:
    settings: Settings
    db: Database
    broker: Broker
    hub: Hub
    metrics: Metrics
    blobs: BlobStore
    sanitizing: Sanitizing

    @asynccontextmanager
    async def unit(self) -> AsyncIterator[Unit]:
        """A write transaction; its events are published after commit."""
        async with unit_of_work(self.db, self.broker) as uow:
            yield uow

    @asynccontextmanager
    async def read(self) -> AsyncIterator[Unit]:
        """A read-only transaction (never takes SQLite's write lock; publishes nothing)."""
        async with self.db.read_sessions() as session:
            uow = Unit(session)
            yield uow
            if session.new or session.dirty or session.deleted or uow.pending:
                raise RuntimeError("a read-only unit tried to write")
