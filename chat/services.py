"""What one app process holds while it runs: built by the lifespan, passed to the transport."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from chat.broker import Broker
from chat.db import Database
from chat.hub import Hub, Metrics
from chat.settings import Settings
from chat.unit import Unit, unit_of_work


@dataclass
class Services:
    settings: Settings
    db: Database
    broker: Broker
    hub: Hub
    metrics: Metrics

    @asynccontextmanager
    async def unit(self) -> AsyncIterator[Unit]:
        async with unit_of_work(self.db, self.broker) as uow:
            yield uow
