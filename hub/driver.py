"""Statements run on the database driver itself, with what SQLAlchemy does around one kept.

Through SQLAlchemy's adapter an aiosqlite statement costs four hand-offs to the driver's
thread (cursor, execute, fetch, close) and on both drivers each execution makes its
parameters and rows through layers of its own. ``fetch`` makes it one call to the driver,
and keeps what the rest of the hub relies on: the engine's statement events (the SQLite
deadline, the OpenTelemetry span, the tests' statement counter) and SQLAlchemy's handling
of a driver error (translated by the driver's adapter, wrapped as SQLAlchemy's own error,
handle_error listeners told, the connection invalidated when the database is gone).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from types import SimpleNamespace
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.pool import PoolProxiedConnection
from sqlalchemy.util import greenlet_spawn

__all__ = ["DRIVERS", "HERE", "abandon", "commit", "fetch", "rollback"]

# One round trip to the driver: aiosqlite executes and fetches in one hand-off to its thread;
# asyncpg prepares a statement once per connection (its statement cache) and fetches.
DRIVERS: dict[str, Callable[[Any, str, Sequence[Any]], Awaitable[Sequence[Any]]]] = {
    "aiosqlite": lambda driver, sql, values: driver.execute_fetchall(sql, values),
    "asyncpg": lambda driver, sql, values: driver.fetch(sql, *values),
}


async def _sqlite_here(driver: Any, sql: str, values: Sequence[Any]) -> Sequence[Any]:
    """What aiosqlite's execute_fetchall does in its thread, done in the calling one."""
    return driver._conn.execute(sql, values).fetchall()  # type: ignore[no-any-return]


# Brief statements on SQLite run in the event loop's own thread: those that cannot wait
# (reads in a snapshot that has begun reading, a deferred BEGIN, writes under a write lock
# already held) and are short. Handed to aiosqlite's thread, a statement waits for the
# thread to get the GIL back from the loop, which is busy with the rows of the statement
# before: a dossier's statements hardly overlapped with anything, and each paid two
# hand-offs (~7 ms idle in a 28 ms request).
HERE: dict[str, Callable[[Any, str, Sequence[Any]], Awaitable[Sequence[Any]]]] = {
    "aiosqlite": _sqlite_here,
}


class _Noted(SimpleNamespace):
    """A statement's execution context as far as its listeners use one: what they note on
    it (telemetry's span), and what SQLAlchemy's error handling asks of it."""

    executemany = False

    def handle_dbapi_exception(self, error: BaseException) -> None:
        """Nothing of the statement's own to clean up."""


async def fetch(
    connection: AsyncConnection, sql: str, positional: Sequence[Any], *, brief: bool = False
) -> Sequence[Any]:
    """The driver's rows of ``sql`` with ``positional`` parameters (already processed for
    the database), run on ``connection``'s driver connection (see DRIVERS); ``brief``: a
    short statement that cannot wait, run where it is asked for if the driver allows (HERE)."""
    driver = connection.dialect.driver
    run = (HERE.get(driver) if brief else None) or DRIVERS[driver]
    sync = connection.sync_connection
    assert sync is not None  # noqa: S101 - an open AsyncConnection has one
    raw = await _raw(connection)
    noted = _Noted()
    sync.dispatch.before_cursor_execute(sync, None, sql, positional, noted, False)
    call = run(raw.driver_connection, sql, positional)
    found: Sequence[Any] = await _translated(sync, raw, call, sql, positional, noted)
    sync.dispatch.after_cursor_execute(sync, None, sql, positional, noted, False)
    return found


async def commit(connection: AsyncConnection) -> None:
    """Commit on the driver the transaction that statements run by ``fetch`` began (one
    SQLAlchemy's adapter does not know of), as SQLAlchemy commits: no statement event, a
    driver error raised as SQLAlchemy raises it."""
    await _end(connection, "COMMIT")


async def rollback(connection: AsyncConnection) -> None:
    """Roll back on the driver the transaction that statements run by ``fetch`` began (on
    asyncpg SQLAlchemy's adapter would not end it), as ``commit`` commits."""
    await _end(connection, "ROLLBACK")


async def abandon(connection: AsyncConnection) -> None:
    """Roll back what statements run by ``fetch`` began, before ``connection`` goes back to
    the pool; a connection that cannot roll back (gone, broken) is invalidated, so that the
    pool never lends one inside a transaction."""
    try:
        await rollback(connection)
    except Exception:
        await connection.invalidate()


async def _end(connection: AsyncConnection, how: str) -> None:
    sync = connection.sync_connection
    assert sync is not None  # noqa: S101 - an open AsyncConnection has one
    raw = await _raw(connection)
    driver: Any = raw.driver_connection  # aiosqlite's commit() and rollback(), or asyncpg's
    asyncpg = connection.dialect.driver == "asyncpg"
    call = driver.execute(how) if asyncpg else getattr(driver, how.lower())()
    await _translated(sync, raw, call, None, None, None)  # as SQLAlchemy's own


async def _translated(
    sync: Any,
    raw: PoolProxiedConnection,
    call: Awaitable[Any],
    sql: Any,
    positional: Any,
    noted: Any,
) -> Any:
    """What the driver's ``call`` gives; its error as the driver's adapter translates it,
    then wrapped by SQLAlchemy (handle_error listeners told: the span's status)."""
    try:
        try:
            return await call
        except Exception as error:  # the driver's own error, as its adapter raises it
            raw.dbapi_connection._handle_exception(error)  # type: ignore[union-attr]
            raise
    except Exception as error:
        await _handled(sync, error, sql, positional, noted)
        raise


async def _handled(sync: Any, error: Exception, sql: Any, positional: Any, noted: Any) -> None:
    """SQLAlchemy's handling of a driver error: it raises the error wrapped (an error not
    the driver's, such as an integer too large for SQLite, as it is). Run where SQLAlchemy
    can wait on the driver, as in its own execution: outside a transaction it rolls back
    (the transaction a statement of ours began), which awaits the driver."""
    await greenlet_spawn(_raise_handled, sync, error, sql, positional, noted)


def _raise_handled(sync: Any, error: Exception, sql: Any, positional: Any, noted: Any) -> None:
    try:
        raise error  # SQLAlchemy reads the error it handles from sys.exc_info()
    except Exception as raised:
        sync._handle_dbapi_exception(raised, sql, positional, None, noted)


async def _raw(connection: AsyncConnection) -> PoolProxiedConnection:
    """The pool's connection under ``connection``: its attribute while it is valid (asking
    the AsyncConnection costs a greenlet each time, ~50 us, 13 times a dossier); asked for
    properly when it was invalidated, which reconnects."""
    sync = connection.sync_connection
    if sync is not None and not sync.invalidated and not sync.closed:
        return sync.connection
    return await connection.get_raw_connection()
