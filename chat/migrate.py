"""Schema migrations through Alembic, run from our own code (``kakehashi migrate``, the
server's start-up, the tests) with the URL from the settings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Connection

from chat.db import Database

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(connection: Connection | None = None, url: str | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url is not None:
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    cfg.attributes["connection"] = connection
    return cfg


async def upgrade(db: Database, revision: str = "head") -> None:
    def _run(connection: Connection) -> None:
        command.upgrade(alembic_config(connection), revision)

    async with db.engine.begin() as conn:
        await conn.run_sync(_run)


async def run_alembic(db: Database, fn: Any, *args: Any) -> None:
    """Run any ``alembic.command`` function on the database's connection."""

    def _run(connection: Connection) -> None:
        fn(alembic_config(connection), *args)

    async with db.engine.begin() as conn:
        await conn.run_sync(_run)
