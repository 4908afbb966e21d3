"""Writing the access log: one hash-chained record per request (record.py says what one
holds).

Changing, removing, inserting or reordering any record breaks the chain from there on
(chain.py finds where); signed checkpoints (hub/checkpoint.py) catch a truncated tail or a
chain rewritten whole.

Appends are serialized on the chain head: a PostgreSQL advisory lock across processes,
SQLite's write lock, and the sequence number's primary key everywhere (a lost race retries
on the new head). Concurrent appends of reads within a process share one transaction and
one sync to disk; a batch that fails is written again member by member, so one request's
record can never fail another's. A write's record is appended in the write's own
transaction (``append_within``): they commit together or not at all.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from hub.audit.record import COLUMNS, GENESIS, AccessEntry, record_hash
from hub.db import condition
from hub.driver import abandon, commit, fetch
from hub.metrics import ACCESS_LOG_APPEND_SECONDS, ACCESS_LOG_BATCH_RECORDS
from hub.models import AccessRecord

# Any constant shared by every hub process: the key of the PostgreSQL advisory lock.
CHAIN_LOCK = 0x4855_4241_5544_4954  # "HUBAUDIT"
APPEND_ATTEMPTS = 20
SHARED_SECONDS = 1.0  # how long a lost race means the head is read first
# Records per transaction: a live event's thousand records go in several, so that a
# publish's own record (in its transaction, under the same lock) waits for one at most.
MAX_BATCH = 200
RECENT = 5.0  # seconds a failed append keeps /readyz at 503 (as long as Retry-After says)
MIN_FREE_BYTES = 1 << 20  # an SQLite file's disk with less free is full for /readyz


class AccessLog:
    """Appends records to the chain; each append is durable when it returns.

    Appends that arrive while a transaction is being written wait for the next one and are
    written together (group commit): one sync to disk serves them all, in arrival order.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._waiting: list[tuple[dict[str, Any], asyncio.Future[int]]] = []
        self._writer: asyncio.Task[None] | None = None
        # The head this process last committed, so that the next batch chains on it without
        # reading it first; an append by anyone else takes that sequence number, and the
        # batch then fails on its primary key and reads the head. While other processes
        # append too (`hub serve --workers`), every batch reads the head for a while.
        self._head: Head | None = None
        self._shared_until = 0.0
        # When an append last failed because of the database (full, locked, away), and why;
        # None once one succeeds again (see problem).
        self.unwritable: tuple[float, str] | None = None
        database = engine.url.database if engine.dialect.name == "sqlite" else None
        self._folder = (
            Path(database).resolve().parent if database not in (None, "", ":memory:") else None
        )

    async def problem(self) -> str | None:
        """Why records cannot be appended now, or None: an append that failed because of the
        database (full, locked, away) in the last few seconds; a lock on the log found
        without waiting (PostgreSQL: another session's LOCK TABLE or index build, which
        appends would queue behind); a disk without room (SQLite). For /readyz: a hub that
        cannot record serves nothing. An SQLite file held by a writer for a moment (a
        publish) is normal, and a lock held past the lock timeout fails an append."""
        if self.unwritable is not None and time.monotonic() - self.unwritable[0] < RECENT:
            return self.unwritable[1]
        if self.engine.dialect.name == "postgresql":
            try:
                async with self.engine.connect() as connection, connection.begin():
                    await connection.execute(
                        text("LOCK TABLE access_record IN ROW EXCLUSIVE MODE NOWAIT")
                    )
            except Exception as error:
                return condition(error) or "the access log cannot be written"
        if self._folder and shutil.disk_usage(self._folder).free < MIN_FREE_BYTES:
            return "the disk is full"
        return None

    async def append(self, entry: AccessEntry) -> int:
        """Append ``entry`` after the current head; returns its sequence number."""
        written: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._waiting.append((entry.columns(), written))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write())
        return await written

    async def append_within(self, connection: AsyncConnection, entry: AccessEntry) -> int:
        """Append ``entry`` in the caller's write transaction (db.transaction): the record
        commits with the writes it describes, or neither does. Returns its sequence number."""
        self._head = None  # this transaction may commit or not: read the head after it
        started = time.perf_counter()
        (record,) = await _append(connection, [entry.columns()])
        ACCESS_LOG_APPEND_SECONDS.observe(time.perf_counter() - started)
        ACCESS_LOG_BATCH_RECORDS.observe(1)
        seq: int = record["seq"]
        return seq

    async def _write(self) -> None:
        while self._waiting:
            batch: list[tuple[dict[str, Any], asyncio.Future[int]]] = []

            def take() -> list[dict[str, Any]]:
                # Taken once the chain's lock is this process's: what arrived while it
                # waited for the lock (another process appending) joins this batch.
                nonlocal batch
                if not batch:
                    batch, self._waiting = self._waiting[:MAX_BATCH], self._waiting[MAX_BATCH:]
                return [values for values, _ in batch]

            try:
                seqs = await self._commit(take)
            except Exception as error:
                take()
                said = condition(error)
                if said is not None:  # away, full, locked: no record can be written now
                    self.unwritable = (time.monotonic(), said)
                if len(batch) == 1 or said is not None:  # fail closed: no record, no answer
                    for _, written in batch:
                        _settle(written, error=error)
                    continue
                # One member's record must not fail the others': each on its own.
                for values, written in batch:
                    try:
                        (seq,) = await self._commit(_only(values))
                    except Exception as alone:
                        _settle(written, error=alone)
                    else:
                        _settle(written, seq)
            else:
                for (_, written), seq in zip(batch, seqs, strict=True):
                    _settle(written, seq)

    async def _commit(self, take: Callable[[], list[dict[str, Any]]]) -> list[int]:
        for _ in range(APPEND_ATTEMPTS):
            head, self._head = self._head, None
            if time.monotonic() < self._shared_until:
                head = None
            started = time.perf_counter()
            try:
                async with self.engine.connect() as connection:
                    records = await _append_alone(connection, take, head)
            except IntegrityError:  # someone else took these numbers: chain on their records
                self._shared_until = time.monotonic() + SHARED_SECONDS
                continue
            ACCESS_LOG_APPEND_SECONDS.observe(time.perf_counter() - started)
            ACCESS_LOG_BATCH_RECORDS.observe(len(records))
            self._head = Head(records[-1]["seq"], records[-1]["hash"])
            self.unwritable = None
            return [record["seq"] for record in records]
        raise RuntimeError(f"could not append to the access log in {APPEND_ATTEMPTS} attempts")


def _only(values: dict[str, Any]) -> Callable[[], list[dict[str, Any]]]:
    return lambda: [values]


def _settle(written: asyncio.Future[int], seq: int = 0, error: Exception | None = None) -> None:
    if written.done():  # the request went away
        return
    if error is not None:
        written.set_exception(error)
    else:
        written.set_result(seq)


class Head(NamedTuple):
    seq: int
    hash: str


async def _append(connection: AsyncConnection, batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Chain ``batch`` onto the head in ``connection``'s transaction (a write's, which its
    statements began); the records as written."""
    if connection.dialect.name == "postgresql":  # held until the transaction ends
        await connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": CHAIN_LOCK})
    last = (await connection.execute(
        select(AccessRecord.seq, AccessRecord.hash).order_by(AccessRecord.seq.desc()).limit(1)
    )).first()  # fmt: skip
    records = _chained(batch, Head(last.seq, last.hash) if last else Head(0, GENESIS))
    for sql, values in _inserts(connection, records):
        await fetch(connection, sql, values)
    return records


HEAD = "SELECT seq, hash FROM access_record ORDER BY seq DESC LIMIT 1"
INSERT = f"INSERT INTO access_record ({', '.join(COLUMNS)}) VALUES "  # noqa: S608 - our columns
# Records per INSERT: within the 999 parameters of any SQLite build.
ROWS_PER_INSERT = 999 // len(COLUMNS)


def _inserts(
    connection: AsyncConnection, records: list[dict[str, Any]]
) -> Iterator[tuple[str, list[Any]]]:
    """The INSERTs of ``records`` as the driver takes them (every column is text or an
    integer, which both drivers take as they are), ROWS_PER_INSERT at a time."""
    numbered = connection.dialect.name == "postgresql"  # $1, $2...; SQLite's are ?
    for start in range(0, len(records), ROWS_PER_INSERT):
        rows = records[start : start + ROWS_PER_INSERT]
        values = [record.get(name) for record in rows for name in COLUMNS]
        marks = [f"${n}" if numbered else "?" for n in range(1, len(values) + 1)]
        width = len(COLUMNS)
        tuples = (f"({', '.join(marks[at : at + width])})" for at in range(0, len(marks), width))
        yield INSERT + ", ".join(tuples), values


# How an append's own transaction begins. SQLite's takes the write lock at once; on
# PostgreSQL the chain's advisory lock, held until the transaction ends, serializes the
# appends of every process. Either may wait for the lock.
BEGIN: dict[str, list[tuple[str, tuple[Any, ...]]]] = {
    "sqlite": [("BEGIN IMMEDIATE", ())],
    "postgresql": [("BEGIN", ()), ("SELECT pg_advisory_xact_lock($1)", (CHAIN_LOCK,))],
}


async def _append_alone(
    connection: AsyncConnection, take: Callable[[], list[dict[str, Any]]], head: Head | None
) -> list[dict[str, Any]]:
    """``_append`` in a transaction of its own, each statement one call to the driver
    (hub/driver.py: the statement events and SQLAlchemy's errors kept): BEGIN and the
    chain's lock, the head when it is not known, the batch in INSERTs of 45, COMMIT. Through
    SQLAlchemy the same took ten hand-offs to aiosqlite's thread, and on PostgreSQL five
    greenlet hops. On an error or a cancellation it is rolled back before the connection
    goes back (SQLAlchemy's asyncpg adapter ends only transactions it began); a connection
    that cannot roll back is not lent again."""
    try:
        for statement, bound in BEGIN[connection.dialect.name]:  # SQLite: the driver's thread
            await fetch(connection, statement, bound)
        batch = take()
        # Holding the write lock, these never wait: on SQLite in the event loop's thread.
        if head is None:
            found = await fetch(connection, HEAD, (), brief=True)
            head = Head(*found[0]) if found else Head(0, GENESIS)
        records = _chained(batch, head)
        for sql, values in _inserts(connection, records):
            await fetch(connection, sql, values, brief=True)
        await commit(connection)  # writes and syncs the log: in the driver's thread on SQLite
    except BaseException:
        await abandon(connection)
        raise
    return records


def _chained(batch: list[dict[str, Any]], head: Head) -> list[dict[str, Any]]:
    """The records of ``batch`` numbered and hashed after ``head``."""
    seq, prev_hash = head
    records = []
    for values in batch:
        seq += 1
        record = {**values, "seq": seq, "prev_hash": prev_hash}
        record["hash"] = prev_hash = record_hash(record)
        records.append(record)
    return records
