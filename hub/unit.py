"""A request's writes and its access record: one transaction, committed together or not at all.

A mutation's writes (publishing, retracting, share requests, decisions, revocations) go into
one transaction per request, opened at the request's first write; each write is a savepoint
in it, so a refused one (an invalid batch, a forbidden decision) leaves nothing behind while
the request goes on. When the answer is ready, the request's access record is appended in
the same transaction and both commit at once: if the record cannot be written, nothing the
request wrote stays (fail closed, as for reads), and a crash between the two cannot happen.

The transaction takes the feed head first, the hub's one write lock
(hub/publishing/versions.py): every write transaction takes its locks in the same order
(feed head, then rows, then the access log's chain), so two requests writing different
things at once cannot deadlock.
"""

from __future__ import annotations

import asyncio

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from hub.audit import AccessEntry, AccessLog
from hub.errors import BadUserInput
from hub.publishing import MAX_BATCH, lock_feed

__all__ = ["Writes"]


class Writes:
    """One request's write transaction; mutations ask it for their connection."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._connection: AsyncConnection | None = None
        self.records = 0  # published or retracted by the request so far, dry runs too

    def admit(self, records: int) -> None:
        """Count ``records`` the request is about to write. A request writes at most one
        batch's worth in all, however many aliased mutations it holds: the hub's one write
        lock (the feed head) stays short for everyone else."""
        self.records += records
        if self.records > MAX_BATCH:
            raise BadUserInput(
                f"this request would write {self.records} records; write at most {MAX_BATCH} "
                "in one request (aliased mutations and dry runs count too), and send the rest "
                "in further requests",
                argument="records",
            )

    @property
    def begun(self) -> bool:
        return self._connection is not None

    async def connection(self) -> AsyncConnection:
        """The transaction's connection, begun at the first call (writes make savepoints)."""
        if self._connection is None:
            connection = await self._engine.connect()
            try:
                await connection.execution_options(hub_writer=True)
                await connection.begin()
                await lock_feed(connection)
            except BaseException:
                await connection.close()
                raise
            self._connection = connection
        return self._connection

    async def commit(self, log: AccessLog, entry: AccessEntry) -> int:
        """Append the request's record and commit it with the writes; its sequence number.
        On any failure nothing is committed and the error is raised."""
        connection = await self.connection()
        try:
            seq = await log.append_within(connection, entry)
            await connection.commit()
        finally:
            await self.close()
        return seq

    async def close(self) -> None:
        """End the transaction; whatever was not committed is rolled back. Runs to its end
        even when the request is cancelled (a client gone): the connection goes back."""
        if self._connection is not None:
            connection, self._connection = self._connection, None
            await asyncio.shield(connection.close())
