"""Database engines and migrations, for SQLite (embedded) and PostgreSQL (production)."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from hub.settings import Settings

__all__ = ["alembic_config", "create_engine", "current_revision", "head_revision", "upgrade"]

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def create_engine(settings: Settings, *, pooled: bool = True) -> AsyncEngine:
    """An engine for ``settings.database_url``; creates the folder of an SQLite file."""
    options: dict[str, Any] = {}
    if not pooled:
        options["poolclass"] = NullPool
    sqlite_path = settings.sqlite_path()
    if sqlite_path is not None:
        sqlite_path.parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(settings.database_url, **options)
    if engine.dialect.name == "sqlite":
        event.listen(engine.sync_engine, "connect", _configure_sqlite)
    return engine


def _configure_sqlite(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # SQLite leaves foreign keys unchecked unless asked, per connection.
    cursor.execute("PRAGMA foreign_keys = ON")
    # Readers keep reading while the demo loader or a publisher writes.
    cursor.execute("PRAGMA journal_mode = WAL")
    cursor.execute("PRAGMA busy_timeout = 5000")
    cursor.close()


def alembic_config(settings: Settings) -> Config:
    config = Config(str(PROJECT_ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(PROJECT_ROOT / "migrations"))
    config.set_main_option("sqlalchemy.url", settings.database_url.replace("%", "%%"))
    # The hub reports progress itself; only the plain `alembic` command configures logging.
    config.attributes["configure_logger"] = False
    return config


def upgrade(settings: Settings, revision: str = "head") -> None:
    """Migrate the database to ``revision``; creates an SQLite file when there is none.

    Blocking. Alembic's environment runs its own event loop, so when called from inside one
    the migration runs on a thread of its own.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        command.upgrade(alembic_config(settings), revision)
        return
    with ThreadPoolExecutor(max_workers=1) as thread:
        thread.submit(command.upgrade, alembic_config(settings), revision).result()


def head_revision(settings: Settings) -> str | None:
    return ScriptDirectory.from_config(alembic_config(settings)).get_current_head()


async def current_revision(connection: AsyncConnection) -> str | None:
    def read(sync_connection: Any) -> str | None:
        return MigrationContext.configure(sync_connection).get_current_revision()

    return await connection.run_sync(read)
