"""Writing the access log: one hash-chained record per request.

Each record holds who asked (client, department, role), why (purpose, case), what was
served (per enterprise: record type, ids and field names, never values) and what was
withheld, under which policy version, with the trace id. Its hash covers a canonical JSON
encoding of all of that plus its sequence number and the previous record's hash, so
changing, removing, inserting or reordering any record breaks the chain from there on
(chain.py finds where); signed checkpoints (hub/checkpoint.py) catch a truncated tail or a
chain rewritten whole.

Appends are serialized on the chain head: a PostgreSQL advisory lock across processes,
SQLite's write lock, and the sequence number's primary key everywhere (a lost race retries
on the new head). Concurrent appends of reads within a process share one transaction and
one sync to disk; a batch that fails is written again member by member, so one request's
record can never fail another's. A write's record is appended in the write's own
transaction (``append_within``): they commit together or not at all.

Caller-controlled text (operation name, purpose, case reference...) is checked at the door;
what reaches a record anyway, such as the value of a refused header, is kept escaped and
cut to its column (text.kept), so no value can make an append fail.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import shutil
import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

from sqlalchemy import String, insert, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from hub.audit import served
from hub.db import condition, transaction
from hub.metrics import ACCESS_LOG_APPEND_SECONDS, ACCESS_LOG_BATCH_RECORDS
from hub.models import AccessRecord
from hub.text import kept

GENESIS = "0" * 64
# Any constant shared by every hub process: the key of the PostgreSQL advisory lock.
CHAIN_LOCK = 0x4855_4241_5544_4954  # "HUBAUDIT"
APPEND_ATTEMPTS = 20
SHARED_SECONDS = 1.0  # how long a lost race means the head is read first
# Records per transaction: a live event's thousand records go in several, so that a
# publish's own record (in its transaction, under the same lock) waits for one at most.
MAX_BATCH = 200
RECENT = 5.0  # seconds a failed append keeps /readyz at 503 (as long as Retry-After says)
MIN_FREE_BYTES = 1 << 20  # an SQLite file's disk with less free is full for /readyz
COLUMNS = [column.name for column in AccessRecord.__table__.columns]
# The text columns a caller's values reach, and how long each may be.
TEXT_LIMITS = {
    column.name: column.type.length or 2000
    for column in AccessRecord.__table__.columns
    if column.name in {"client", "department", "role", "operation_name", "operation_type",
                       "purpose", "case_ref", "remote_address", "policy_version"}
    and isinstance(column.type, String)
}  # fmt: skip


class Outcome:
    OK = "ok"  # everything asked for was served
    PARTIAL = "partial"  # served with some fields withheld, or published with some lines rejected
    DENIED = "denied"  # no credential, or nothing the caller may read
    ERROR = "error"  # a bad request or a failure in the hub

    ALL = (OK, PARTIAL, DENIED, ERROR)


def timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical(values: Any) -> bytes:
    return json.dumps(values, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()


# Columns added after records were first written: hashed only when set, so the records
# written before them keep their hashes.
LATER_COLUMNS = frozenset({"written"})


def record_hash(values: Mapping[str, Any]) -> str:
    """The hash of a record: over every column but the hash itself."""
    hashed = {
        k: v for k, v in values.items() if k != "hash" and not (k in LATER_COLUMNS and v is None)
    }
    return hashlib.sha256(canonical(hashed)).hexdigest()


# (Type.field, grant id) of the conditional fields served under a grant (see sharing.py).
Grants = tuple[tuple[str, int], ...]
Opened = tuple[tuple[str, str], ...]  # (Type.field, the relation that opened it)


@dataclass
class Trail:
    """What one request served and withheld, collected while it runs."""

    enterprises: set[str] = field(default_factory=set)
    # (enterprise, type, fields served, grants that opened conditional ones, relations that
    # opened fields) -> ids of the records served with exactly those fields that way
    served: defaultdict[tuple[str, str, tuple[str, ...], Grants, Opened], list[str]] = field(
        default_factory=lambda: defaultdict(list)
    )
    denied: list[dict[str, str]] = field(default_factory=list)
    # (enterprise, type, change) -> ids of the records the request published so
    written: defaultdict[tuple[str, str, str], list[str]] = field(
        default_factory=lambda: defaultdict(list)
    )
    # State changes of workflow objects, with their state before and after.
    transitions: list[dict[str, Any]] = field(default_factory=list)
    frozen: dict[str, Any] | None = None  # see freeze

    def serve(
        self,
        enterprise: str,
        type_name: str,
        record_id: str,
        fields: tuple[str, ...],
        grants: Grants = (),
        opened: Opened = (),
    ) -> None:
        self.enterprises.add(enterprise)
        self.served[enterprise, type_name, fields, grants, opened].append(record_id)

    def deny(self, enterprise: str, type_name: str, record_id: str, owner: str, coordinate: str,
             reason: str) -> None:  # fmt: skip
        self.enterprises.add(enterprise)
        self.denied.append({
            "enterprise": enterprise, "type": type_name, "id": record_id, "owner": owner,
            "field": coordinate, "reason": reason,
        })  # fmt: skip

    def forget_reads(self) -> None:
        """Drop what was entered as served and withheld: an answer abandoned before it was
        sent (see graphql_http.GraphQLEndpoint.execute) served nothing."""
        self.enterprises.clear()
        self.served.clear()
        self.denied.clear()

    def write(self, enterprise: str, type_name: str, change: str, record_id: str) -> None:
        """A record published (created, updated, retracted...) or found unchanged."""
        self.enterprises.add(enterprise)
        self.written[enterprise, type_name, change].append(record_id)

    def transition(
        self, type_name: str, record_id: str, change: str, before: Any, after: Any
    ) -> None:
        """A workflow object changed state (a share request decided, a grant revoked)."""
        self.transitions.append({
            "enterprise": "", "type": type_name, "change": change, "ids": [record_id],
            "before": before, "after": after,
        })  # fmt: skip

    def written_json(self) -> list[dict[str, Any]] | None:
        if not self.written and not self.transitions:
            return None
        return [
            {"enterprise": enterprise, "type": type_name, "change": change, "ids": ids}
            for (enterprise, type_name, change), ids in sorted(self.written.items())
        ] + self.transitions

    @property
    def served_fields(self) -> int:
        return sum(len(key[2]) * len(ids) for key, ids in self.served.items())

    def served_json(self) -> list[dict[str, Any]]:
        """What was served, in the record's compact form (served.py)."""
        return served.pack(self.served, sorted(self.enterprises))

    def columns(self) -> dict[str, Any]:
        """The record's columns that say what was served, withheld and written; once
        ``frozen``, computed once for every record of the same trail (a live event's
        subscribers)."""
        if self.frozen is not None:
            return self.frozen
        written = self.written_json()
        return {
            "enterprises": _spaced(sorted(self.enterprises)),
            "fields": _spaced(served.search_text(self.served)),
            "served": canonical(self.served_json()).decode(),
            "denied": canonical(served.pack_denied(self.denied, sorted(self.enterprises))).decode(),
            "written": None if written is None else canonical(written).decode(),
        }

    def freeze(self) -> None:
        """Nothing more will be entered: compute the columns once."""
        self.frozen = None
        self.frozen = self.columns()


@dataclass
class AccessEntry:
    """A record to append: what the hub knows of a request once it has its answer."""

    recorded_at: datetime
    outcome: str
    trace_id: str
    duration_us: int
    client: str | None = None
    department: str | None = None
    role: str | None = None
    operation_name: str | None = None
    operation_type: str | None = None
    document_hash: str | None = None
    purpose: str | None = None
    case_ref: str | None = None
    remote_address: str | None = None
    policy_version: str | None = None
    trail: Trail = field(default_factory=Trail)

    def columns(self) -> dict[str, Any]:
        fitted = {name: kept(getattr(self, name), limit) for name, limit in TEXT_LIMITS.items()}
        return {
            "recorded_at": timestamp(self.recorded_at),
            "document_hash": self.document_hash,
            **fitted,
            "outcome": self.outcome,
            **self.trail.columns(),
            "trace_id": self.trace_id,
            "duration_us": self.duration_us,
        }


def _spaced(words: list[str]) -> str:
    """a b c : every word between spaces, so LIKE '% word %' finds exactly it."""
    return f" {' '.join(words)} " if words else ""


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
                async with transaction(self.engine) as connection:
                    records = await _append(connection, take, head)
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


async def _append(
    connection: AsyncConnection,
    batch: list[dict[str, Any]] | Callable[[], list[dict[str, Any]]],
    head: Head | None = None,
) -> list[dict[str, Any]]:
    """Chain ``batch`` (or what it gives once the chain's lock is held) onto the head (read
    here unless given), in ``connection``'s transaction; the records as written."""
    if connection.dialect.name == "postgresql":  # held until the transaction ends
        await connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": CHAIN_LOCK})
    if callable(batch):
        batch = batch()
    if head is None:
        last = (await connection.execute(
            select(AccessRecord.seq, AccessRecord.hash).order_by(AccessRecord.seq.desc()).limit(1)
        )).first()  # fmt: skip
        head = Head(last.seq, last.hash) if last else Head(0, GENESIS)
    seq, prev_hash = head
    records = []
    for values in batch:
        seq += 1
        record = {**values, "seq": seq, "prev_hash": prev_hash}
        record["hash"] = prev_hash = record_hash(record)
        records.append(record)
    await connection.execute(insert(AccessRecord), records)
    return records
