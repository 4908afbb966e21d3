"""Database engines and migrations, for SQLite (embedded) and PostgreSQL (production)."""

from __future__ import annotations

import asyncio
import errno
import math
import time
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
from sqlalchemy import (
    JSON,
    BigInteger,
    ColumnElement,
    Integer,
    String,
    Text,
    TypeDecorator,
    bindparam,
    event,
    make_url,
)
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncTransaction,
    create_async_engine,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import QueryableAttribute
from sqlalchemy.pool import AsyncAdaptedQueuePool, ConnectionPoolEntry, NullPool
from sqlalchemy.sql.elements import ColumnElement as Element
from sqlalchemy.sql.visitors import InternalTraversal
from sqlalchemy.types import Boolean
from sqlalchemy.util import await_

from hub.settings import Settings

__all__ = [
    "DatabaseBusy",
    "MigrationRefused",
    "alembic_config",
    "condition",
    "create_engine",
    "current_revision",
    "database_away",
    "head_revision",
    "one_of",
    "transaction",
    "upgrade",
    "writing",
]

PROJECT_ROOT = Path(__file__).resolve().parent.parent
POOL_SIZE = 20
PROGRESS_STEPS = 10_000  # SQLite virtual machine steps between looks at a statement's deadline


class MissingFolder(FileNotFoundError):
    """The folder an SQLite database URL names, and its parent, do not exist."""

    def __init__(self, folder: Path) -> None:
        super().__init__(errno.ENOENT, "no such folder", str(folder))
        self.folder = folder


class MigrationRefused(RuntimeError):
    """A migration that cannot go on with the data as it is; it changed nothing. The message
    names what is in the way and what the operator should do (`hub db upgrade` shows it)."""


def create_engine(
    settings: Settings, *, pooled: bool = True, long_statements: bool = False
) -> AsyncEngine:
    """An engine for ``settings.database_url``; creates the folder of an SQLite file.

    Every wait is bounded: a statement by ``statement_timeout``, a lock (a table, a row, the
    SQLite file) by ``lock_timeout``, a free connection by ``lock_timeout`` too, and at most
    ``database_waiting`` requests wait for one at once (DatabaseBusy at once beyond).
    Migrations (``long_statements``) may run statements as long as they take: an index
    built over a large access log must not be stopped halfway.
    """
    statement_seconds = math.inf if long_statements else settings.statement_timeout_seconds
    sqlite_path = settings.sqlite_path()
    options: dict[str, Any] = {}
    if not pooled:
        options["poolclass"] = NullPool
    # Connections kept open for the requests of a busy process: the default pool (5, and 10
    # more opened and closed again) spent a connect on ~0.4 of requests under load.
    elif sqlite_path is not None or not settings.database_url.startswith("sqlite"):
        pool = type("BoundedPool", (BoundedPool,), {"waiting_limit": settings.database_waiting})
        options.update(poolclass=pool, pool_size=POOL_SIZE, max_overflow=POOL_SIZE,
                       pool_timeout=settings.lock_timeout_seconds)  # fmt: skip
    if sqlite_path is not None:
        folder = sqlite_path.parent
        # The folder of the default var/hub.db is made; a folder further from anything
        # that exists is a mistyped URL, not a place to start a database in.
        if not folder.exists() and not folder.parent.is_dir():
            raise MissingFolder(folder)
        folder.mkdir(exist_ok=True)
    if settings.database_url.startswith("postgresql"):
        bounds = {"lock_timeout": str(int(settings.lock_timeout_seconds * 1000))}
        if not long_statements:
            bounds["statement_timeout"] = str(int(statement_seconds * 1000))
        # Connecting is bounded too: a database host that drops packets is away.
        options["connect_args"] = {"timeout": settings.lock_timeout_seconds,
                                   "server_settings": bounds}  # fmt: skip
    if make_url(settings.database_url).get_driver_name() == "aiosqlite":
        # Brief reads run on a connection in the event loop's thread (driver.HERE), one at
        # a time as all of its statements; the rest in aiosqlite's, which opened it.
        options["connect_args"] = {"check_same_thread": False}
    engine = create_async_engine(settings.database_url, **options)
    if engine.dialect.name == "sqlite":
        sqlite = SQLiteBounds(statement_seconds, settings.lock_timeout_seconds)
        event.listen(engine.sync_engine, "connect", sqlite.connect)
        event.listen(engine.sync_engine, "before_cursor_execute", sqlite.before_statement)
        event.listen(engine.sync_engine, "begin", _begin_sqlite)
    return engine


class BoundedPool(AsyncAdaptedQueuePool):
    """The connection pool, with a bound on the requests waiting for a connection: past
    ``waiting_limit``, DatabaseBusy at once (a 503 with Retry-After), not a longer queue."""

    waiting_limit = 100
    waiting = 0

    def _do_get(self) -> ConnectionPoolEntry:
        if self.waiting >= self.waiting_limit:
            raise DatabaseBusy(
                f"{self.waiting} requests wait for a database connection already "
                f"(HUB_DATABASE_WAITING={self.waiting_limit})"
            )
        self.waiting += 1
        try:
            return super()._do_get()
        finally:
            self.waiting -= 1


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


class _Values(TypeDecorator[list[Any]]):
    """A list bound as one parameter: on PostgreSQL the text of an array, cast in the
    statement (see _any); on SQLite JSON text. asyncpg's own array encoding asks of every
    element whether it is itself an array, through Python-level ABC checks: ~1,100 of them a
    dossier, more than the rest of its statements' parameters together."""

    impl = JSON
    cache_ok = True

    def __init__(self, item: type[Integer] | type[BigInteger] | type[String]) -> None:
        super().__init__()
        self.item = item

    def load_dialect_impl(self, dialect: Any) -> Any:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(Text())
        return dialect.type_descriptor(JSON())

    def process_bind_param(self, value: Any, dialect: Any) -> Any:
        if dialect.name != "postgresql" or value is None:
            return value
        if self.item is String:  # each quoted, its quotes and backslashes escaped
            items = ('"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"' for v in value)
            return "{" + ",".join(items) + "}"
        return "{" + ",".join(map(str, map(int, value))) + "}"


class _OneOf(Element[bool]):
    """``column`` equal to one of a list bound as one parameter (see ``one_of``)."""

    inherit_cache = True
    type = Boolean()
    _is_implicitly_boolean = True  # a condition already: no "= 1" on SQLite
    _traverse_internals = [  # noqa: RUF012 - SQLAlchemy's own declaration
        ("column", InternalTraversal.dp_clauseelement),
        ("values", InternalTraversal.dp_clauseelement),
    ]

    def __init__(self, column: ColumnElement[Any], values: Any) -> None:
        self.column = column
        self.values = values


@compiles(_OneOf, "postgresql")
def _any(element: _OneOf, compiler: Any, **kw: Any) -> str:
    column, values = compiler.process(element.column, **kw), compiler.process(element.values, **kw)
    array = compiler.dialect.type_compiler_instance.process(element.values.type.item())
    # Cast once, as an init plan: a cast of the parameter in the condition itself is
    # evaluated again for every row a scan filters (the whole table, for small ones).
    return f"{column} = ANY(ARRAY(SELECT unnest(CAST({values} AS {array}[]))))"


@compiles(_OneOf)
def _json_each(element: _OneOf, compiler: Any, **kw: Any) -> str:
    column, values = compiler.process(element.column, **kw), compiler.process(element.values, **kw)
    return f"{column} IN (SELECT value FROM json_each({values}))"  # noqa: S608 - both compiled


def one_of(
    column: ColumnElement[Any] | QueryableAttribute[Any], values: Any = (), name: str | None = None
) -> ColumnElement[bool]:
    """``column IN values`` with the list as one bound parameter, so that a statement's text
    is the same whatever the list's length: compiled once by SQLAlchemy (an expanding IN is
    rendered again at every execution, ~1,000 parameters for a dossier) and prepared once by
    PostgreSQL. Integer and text columns, with values of the column's own type (SQLite's
    json_each does not convert '1' to 1 as IN would). With a ``name``, the list is given
    when the statement runs, as that parameter: a statement built once, run many times."""
    element = column.expression if isinstance(column, QueryableAttribute) else column
    item = (
        BigInteger if isinstance(element.type, BigInteger)
        else Integer if isinstance(element.type, Integer) else String
    )  # fmt: skip
    if name is not None:
        return _OneOf(element, bindparam(name, type_=_Values(item)))
    return _OneOf(element, bindparam(None, list(values), type_=_Values(item)))


class SQLiteBounds:
    """SQLite's bounded waits: the file's lock by busy_timeout, a statement by a progress
    handler that interrupts it past its deadline (SQLite has no statement timeout)."""

    def __init__(self, statement_seconds: float, lock_seconds: float) -> None:
        self.statement_seconds = statement_seconds
        self.lock_ms = int(lock_seconds * 1000)

    def connect(self, dbapi_connection: Any, record: Any) -> None:
        # The driver's own transaction handling begins late and turns SAVEPOINTs into
        # commits; transactions begin where SQLAlchemy says (_begin_sqlite).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        # SQLite leaves foreign keys unchecked unless asked, per connection.
        cursor.execute("PRAGMA foreign_keys = ON")
        # Readers keep reading while the demo loader or a publisher writes.
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute(f"PRAGMA busy_timeout = {self.lock_ms}")
        cursor.close()
        deadline = record.info["hub_deadline"] = [math.inf]

        def interrupt() -> int:  # runs on aiosqlite's thread, every N steps of a statement
            return 1 if time.monotonic() > deadline[0] else 0

        driver = dbapi_connection.driver_connection
        await_(driver.set_progress_handler(interrupt, PROGRESS_STEPS))

    def before_statement(self, connection: Any, *_: Any) -> None:
        deadline = connection.info.get("hub_deadline")
        if deadline is not None:
            deadline[0] = time.monotonic() + self.statement_seconds


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
# file that cannot be opened or written) says, as opposed to a statement that is wrong: the
# words, and the condition they are, in the operator's terms.
CONDITIONS = (
    ("database or disk is full", "the disk is full"),
    ("no space left on device", "the disk is full"),
    ("could not extend file", "the disk is full"),
    ("lock timeout", "a lock was held past HUB_LOCK_TIMEOUT_SECONDS (the access log or a "
     "table locked?)"),
    ("could not obtain lock", "a lock is held by another session (the access log locked?)"),
    ("database is locked", "the database file is locked by another writer past "
     "HUB_LOCK_TIMEOUT_SECONDS"),
    ("statement timeout", "a statement ran past HUB_STATEMENT_TIMEOUT_SECONDS"),
    ("interrupted", "a statement ran past HUB_STATEMENT_TIMEOUT_SECONDS"),
    ("requests wait for a database connection", "the database is busy"),
    ("queuepool limit", "no database connection came free within HUB_LOCK_TIMEOUT_SECONDS"),
    ("disk i/o error", "the database file cannot be read or written"),
    ("unable to open database file", "the database file cannot be opened"),
    ("too many connections", "the database accepts no more connections"),
    ("cannot connect now", "the database is starting or stopping"),
    ("the database system is", "the database is starting or stopping"),
    ("terminating connection", "the database closed the connection"),
    ("connection is closed", "the database closed the connection"),
    ("connection was closed", "the database closed the connection"),
    ("server closed the connection", "the database closed the connection"),
    ("connection refused", "the database is unreachable"),
)  # fmt: skip
AWAY_TYPES = ("ConnectionDoesNotExistError", "CannotConnectNowError", "TooManyConnectionsError",
              "InterfaceError", "QueryCanceledError", "LockNotAvailableError")  # fmt: skip


class DatabaseBusy(sqlalchemy.exc.TimeoutError):
    """Too many requests wait for a database connection already: refused at once."""


def condition(error: BaseException) -> str | None:
    """What ``error`` says of the database, in the operator's terms, when it says that the
    database is away, full, locked or busy rather than that a statement is wrong."""
    # The driver's own error where SQLAlchemy wraps one: the wrapper's text holds the
    # statement's parameters, which a caller could fill with these very words.
    for cause in (getattr(error, "orig", None) or error, error.__cause__):
        if cause is None:
            continue
        said = str(cause).lower()
        for words, meaning in CONDITIONS:
            if words in said:
                return meaning
        if isinstance(cause, OSError | TimeoutError | sqlalchemy.exc.TimeoutError):
            return "the database is unreachable"
        if getattr(cause, "connection_invalidated", False) or type(cause).__name__ in AWAY_TYPES:
            return "the database is unreachable"
    return None


def database_away(error: BaseException) -> bool:
    """Whether ``error`` says the database is away rather than that a statement is wrong."""
    return condition(error) is not None
