"""Database engines and migrations, for SQLite (embedded) and PostgreSQL (production)."""

from __future__ import annotations

import asyncio
import errno
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import sqlalchemy.exc
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import event
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncTransaction,
    create_async_engine,
)
from sqlalchemy.pool import NullPool

from hub.settings import Settings

__all__ = [
    "alembic_config",
    "create_engine",
    "current_revision",
    "database_away",
    "head_revision",
    "transaction",
    "upgrade",
    "writing",
]

PROJECT_ROOT = Path(__file__).resolve().parent.parent
POOL_SIZE = 20


class MissingFolder(FileNotFoundError):
    """The folder an SQLite database URL names, and its parent, do not exist."""

    def __init__(self, folder: Path) -> None:
        super().__init__(errno.ENOENT, "no such folder", str(folder))
        self.folder = folder


def create_engine(settings: Settings, *, pooled: bool = True) -> AsyncEngine:
    """An engine for ``settings.database_url``; creates the folder of an SQLite file."""
    sqlite_path = settings.sqlite_path()
    options: dict[str, Any] = {}
    if not pooled:
        options["poolclass"] = NullPool
    # Connections kept open for the requests of a busy process: the default pool (5, and 10
    # more opened and closed again) spent a connect on ~0.4 of requests under load.
    elif sqlite_path is not None or not settings.database_url.startswith("sqlite"):
        options.update(pool_size=POOL_SIZE, max_overflow=POOL_SIZE)
    if sqlite_path is not None:
        folder = sqlite_path.parent
        # The folder of the default var/hub.db is made; a folder further from anything
        # that exists is a mistyped URL, not a place to start a database in.
        if not folder.exists() and not folder.parent.is_dir():
            raise MissingFolder(folder)
        folder.mkdir(exist_ok=True)
    engine = create_async_engine(settings.database_url, **options)
    if engine.dialect.name == "sqlite":
        event.listen(engine.sync_engine, "connect", _configure_sqlite)
        event.listen(engine.sync_engine, "begin", _begin_sqlite)
    return engine


@asynccontextmanager
async def transaction(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A write transaction, committed when the block ends and rolled back on an error.

    On SQLite it takes the database's write lock at its start (BEGIN IMMEDIATE): a writer
    that first read and then wrote could find another writer's commit in between and fail
    at once, without waiting; this way it waits its turn (busy_timeout) and then everything
    it reads is current.
    """
    async with engine.connect() as connection:
        await connection.execution_options(hub_writer=True)
        async with connection.begin():
            yield connection


@asynccontextmanager
async def writing(target: AsyncEngine | AsyncConnection) -> AsyncIterator[AsyncTransaction]:
    """Where one write goes, all of it or none: a transaction of its own when ``target`` is
    an engine; a savepoint when it is a connection in a transaction already (a request's
    writes, committed with its access record: see unit.py). An error rolls back to where
    the write began; so does ``rollback()`` on what this yields (a dry run)."""
    if isinstance(target, AsyncEngine):
        async with transaction(target) as connection:
            root = connection.get_transaction()
            assert root is not None  # noqa: S101 - begun by transaction()
            yield root
    else:
        async with target.begin_nested() as savepoint:
            yield savepoint


def _configure_sqlite(dbapi_connection: Any, _record: Any) -> None:
    # The driver's own transaction handling begins late and turns SAVEPOINTs into commits;
    # transactions begin where SQLAlchemy says (_begin_sqlite).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    # SQLite leaves foreign keys unchecked unless asked, per connection.
    cursor.execute("PRAGMA foreign_keys = ON")
    # Readers keep reading while the demo loader or a publisher writes.
    cursor.execute("PRAGMA journal_mode = WAL")
    cursor.execute("PRAGMA busy_timeout = 5000")
    cursor.close()


def _begin_sqlite(connection: Any) -> None:
    """Transactions begin at once: a request's reads see one snapshot, and writers (see
    ``transaction``) hold the write lock from the start. A request's first statement runs
    alone (schema/reader.py)."""
    options = connection.get_execution_options()
    if options.get("hub_writer"):
        connection.exec_driver_sql("BEGIN IMMEDIATE")
    elif not options.get("hub_reader"):
        connection.exec_driver_sql("BEGIN")


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


# What a database that is away (stopped, restarting, unreachable, out of connections, or a
# file that cannot be opened or written) says, as opposed to a statement that is wrong.
AWAY_WORDS = (
    "unable to open database file", "disk i/o error", "database or disk is full",
    "database is locked", "connection is closed", "connection was closed",
    "cannot connect now", "too many connections", "the database system is",
    "terminating connection", "server closed the connection", "connection refused",
)  # fmt: skip


def database_away(error: BaseException) -> bool:
    """Whether ``error`` says the database is away rather than that a statement is wrong."""
    for cause in (error, getattr(error, "orig", None), error.__cause__):
        if cause is None:
            continue
        if isinstance(cause, OSError | TimeoutError | sqlalchemy.exc.TimeoutError):
            return True
        if getattr(cause, "connection_invalidated", False):
            return True
        said = str(cause).lower()
        if any(words in said for words in AWAY_WORDS):
            return True
        name = type(cause).__name__
        if name in ("ConnectionDoesNotExistError", "CannotConnectNowError",
                    "TooManyConnectionsError", "InterfaceError"):  # fmt: skip
            return True
    return False
