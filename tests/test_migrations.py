"""Alembic: upgrade from empty to head works on this backend, and the models do not drift
from the migrations."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

from chat.db import Database
from chat.migrate import upgrade
from chat.models import Base
from chat.settings import Settings
from tests.backends import BACKEND, Backends


def _diff(connection: Connection) -> list[Any]:
    def include(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
        # The trigram index exists on PostgreSQL only (declared with ddl_if).
        return not (name == "ix_messages_body_trgm" and connection.dialect.name != "postgresql")

    context = MigrationContext.configure(
        connection, opts={"compare_type": True, "include_object": include}
    )
    return list(compare_metadata(context, Base.metadata))


async def test_upgrade_from_empty_and_no_drift(backends: Backends, settings: Settings) -> None:
    # A database with nothing in it (not the migrated template).
    if BACKEND == "postgres":
        url = settings.database_url
        db = Database(url)
        async with db.engine.begin() as conn:
            await conn.exec_driver_sql("DROP SCHEMA public CASCADE")
            await conn.exec_driver_sql("CREATE SCHEMA public")
    else:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        db = Database(f"sqlite+aiosqlite:///{settings.data_dir / 'empty.db'}")
    try:
        async with db.engine.connect() as conn:
            tables = await conn.run_sync(lambda c: inspect(c).get_table_names())
        assert tables == []
        await upgrade(db)
        async with db.engine.connect() as conn:
            tables = await conn.run_sync(lambda c: inspect(c).get_table_names())
            diff = await conn.run_sync(_diff)
        assert {"users", "rooms", "events", "messages", "alembic_version"} <= set(tables)
        assert diff == [], f"models drift from migrations: {diff}"
        await upgrade(db)  # idempotent at head
    finally:
        await db.dispose()


async def test_upgrading_to_licenses_keeps_active_users_able_to_sign_in(
    backends: Backends, settings: Settings
) -> None:
    """0003 gives every active user both sides' licenses and sizes the pools to match, so an
    upgraded deployment does not lock everyone out."""
    if BACKEND == "postgres":
        db = Database(settings.database_url)
        async with db.engine.begin() as conn:
            await conn.exec_driver_sql("DROP SCHEMA public CASCADE")
            await conn.exec_driver_sql("CREATE SCHEMA public")
    else:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        db = Database(f"sqlite+aiosqlite:///{settings.data_dir / 'old.db'}")
    try:
        await upgrade(db, "0002")
        async with db.engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO organisations (id, name, password_min_length, "
                    "password_min_classes, lockout_threshold, lockout_minutes, created_at) "
                    "VALUES (1, '旧市', 10, 2, 5, 15, CURRENT_TIMESTAMP)"
                )
            )
            for uid, login, active in ((1, "kept", True), (2, "gone", False)):
                await conn.execute(
                    text(
                        "INSERT INTO users (id, org_id, login_id, display_name, kana, title, "
                        "email, role, is_active, failed_logins, created_at) VALUES "
                        "(:id, 1, :login, :login, '', '', '', 'member', :active, 0, "
                        "CURRENT_TIMESTAMP)"
                    ),
                    {"id": uid, "login": login, "active": active},
                )
        await upgrade(db)
        async with db.engine.connect() as conn:
            licenses = (
                await conn.execute(text("SELECT user_id, side FROM licenses ORDER BY side"))
            ).all()
            pools = dict((await conn.execute(text("SELECT side, size FROM license_pools"))).all())
        assert [tuple(r) for r in licenses] == [(1, "internet"), (1, "lgwan")]
        assert pools == {"internet": 1, "lgwan": 1}
    finally:
        await db.dispose()
