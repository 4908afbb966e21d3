"""A request's database connection for reading: one, opened on first use, used one statement
at a time, given back however the request ends."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any, TypeVarTuple

from sqlalchemy import Row, Select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

__all__ = ["Reader"]

Ts = TypeVarTuple("Ts")


class Reader:
    """One database connection per request, opened on first use, used one statement at a time.

    The request's first statement (who is calling: see clients.ClientLookup) runs alone,
    without a transaction; every statement after it reads from one snapshot (REPEATABLE READ
    on PostgreSQL, a read transaction on SQLite), so the lists of one answer agree with each
    other even while departments publish. A request that reads nothing more (``{ __typename
    }``, a refused one) so costs one round trip to the database, not three.

    A statement runs to its end even when the resolver that asked for it is cancelled:
    graphql-core cancels the sibling fields of a non-null field that fails (an invalid
    argument of one root field, say), and a driver call cancelled midway leaves the
    connection unusable, so that closing it would fail the whole request. Giving the
    connection back runs to its end too, after any statement still running: a request
    cancelled while it closes (a client gone) must not leave a connection that nobody
    returns to the pool. ``release`` gives it back for a while (a request waiting for its
    turn holds none); ``close`` for good: a closed reader runs no more statements.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._connection: AsyncConnection | None = None
        self._lock = asyncio.Lock()
        self._closed = False
        self._statements = 0
        self.released = False  # whether the request gave its connection back for a while

    async def rows(
        self, statement: Select[*Ts], parameters: Mapping[str, Any] | None = None
    ) -> Sequence[Row[*Ts]]:
        """The rows of ``statement``, with ``parameters`` for its bound parameters if given
        (a statement built once and run with values: see clients.LOOKUP)."""
        return await asyncio.shield(self._rows(statement, parameters))

    async def _rows(
        self, statement: Select[*Ts], parameters: Mapping[str, Any] | None
    ) -> Sequence[Row[*Ts]]:
        async with self._lock:
            if self._closed:
                raise RuntimeError("this request's reader is closed")
            if self._connection is None:
                self._connection = await self._engine.connect()
                alone = self._statements == 0
                await self._connection.execution_options(**_options(self._connection, alone))
            elif self._statements == 1:
                await _begin_snapshot(self._connection)
            self._statements += 1
            result = await self._connection.execute(statement, parameters)
            rows: Sequence[Row[*Ts]] = result.all()
            return rows

    async def release(self) -> None:
        """Give the connection back; the next statement opens another."""
        self.released = True
        await asyncio.shield(self._give_back(final=False))

    async def close(self) -> None:
        """Give the connection back for good."""
        await asyncio.shield(self._give_back(final=True))

    async def _give_back(self, final: bool) -> None:
        async with self._lock:
            self._closed = self._closed or final
            if self._connection is not None:
                connection, self._connection = self._connection, None
                await connection.close()


def _options(connection: AsyncConnection, alone: bool) -> dict[str, Any]:
    """Options of a reader's new connection: for a statement alone, or for a snapshot."""
    if connection.dialect.name == "postgresql":
        return {"isolation_level": "AUTOCOMMIT" if alone else "REPEATABLE READ"}
    return {"hub_reader": alone}  # SQLite: no BEGIN for it (db._begin_sqlite)


async def _begin_snapshot(connection: AsyncConnection) -> None:
    """From the second statement on: one snapshot."""
    if connection.dialect.name == "postgresql":
        await connection.commit()  # ends nothing in autocommit; the next statement begins
        await connection.execution_options(isolation_level="REPEATABLE READ")
    else:
        await connection.exec_driver_sql("BEGIN")
