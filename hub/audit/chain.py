"""Verifying the access log's hash chain: the first record that breaks it, and why.

``verify`` walks the whole log (optionally holding it against a signed checkpoint);
``verify_after`` walks only the records after a head signed earlier, which is what a
checkpoint schedule needs on a log that only grows.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from hub.audit.record import GENESIS, record_hash
from hub.models import AccessRecord


@dataclass(frozen=True, slots=True)
class Verification:
    records: int
    head_seq: int
    head_hash: str
    broken_seq: int | None = None
    problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None


async def _records(connection: AsyncConnection) -> AsyncIterator[dict[str, Any]]:
    result = await connection.stream(select(AccessRecord.__table__).order_by(AccessRecord.seq))
    async for row in result:
        yield dict(row._mapping)


async def verify(
    engine: AsyncEngine, checkpoint_seq: int | None = None, checkpoint_hash: str | None = None
) -> Verification:
    """Walk the chain from the first record; report the first record that breaks it.

    With a checkpoint (sequence number and hash of a head signed earlier), the log must
    still hold that record with that hash: a shorter log was truncated, a different hash
    means the chain was rewritten.
    """
    expected_seq, prev_hash, count = 1, GENESIS, 0
    checkpoint_found = False
    async with engine.connect() as connection:
        async for record in _records(connection):
            seq = record["seq"]
            problem = _link_problem(record, expected_seq, prev_hash)
            if problem:
                return Verification(count, expected_seq - 1, prev_hash, seq, problem)
            if seq == checkpoint_seq:
                checkpoint_found = True
                if record["hash"] != checkpoint_hash:
                    return Verification(
                        count, seq - 1, prev_hash, seq,
                        f"record {seq} differs from the signed checkpoint: the chain was "
                        "rewritten",
                    )  # fmt: skip
            expected_seq, prev_hash, count = seq + 1, record["hash"], count + 1
    if checkpoint_seq is not None and not checkpoint_found:
        return Verification(
            count, expected_seq - 1, prev_hash, checkpoint_seq,
            f"the log ends at record {expected_seq - 1}, before the checkpoint's record "
            f"{checkpoint_seq}: it was truncated",
        )  # fmt: skip
    return Verification(count, expected_seq - 1, prev_hash)


def _link_problem(record: Mapping[str, Any], expected_seq: int, prev_hash: str) -> str | None:
    """Why ``record`` does not continue a chain whose next record is ``expected_seq``."""
    seq = record["seq"]
    if seq != expected_seq:
        gap = "records are missing" if seq > expected_seq else "records are out of order"
        return f"record {seq} follows record {expected_seq - 1}: {gap}"
    if record["prev_hash"] != prev_hash:
        return (
            f"record {seq} does not chain to record {seq - 1}: a record was inserted, removed "
            "or reordered before it"
        )
    if record_hash(record) != record["hash"]:
        return f"record {seq} was changed after it was written: its hash does not match"
    return None


def _anchor_problem(record: Mapping[str, Any], signed_seq: int, signed_hash: str) -> str | None:
    """Why ``record`` is not the record a checkpoint signed as (``signed_seq``, ``signed_hash``)."""
    if record["seq"] != signed_seq:
        return f"record {signed_seq}, the last one signed, is missing"
    if record["hash"] != signed_hash:
        return f"record {signed_seq} differs from the last checkpoint: the chain was rewritten"
    return _link_problem(record, signed_seq, record["prev_hash"])  # its own hash still holds


async def verify_after(
    connection: AsyncConnection, signed_seq: int = 0, signed_hash: str = GENESIS
) -> Verification:
    """Walk only the records after a head signed earlier (``signed_seq``, ``signed_hash``;
    0 and GENESIS: the whole log): the signed record must still be there with that hash, and
    every later one chain on from it. ``records`` counts the records walked after it.
    """
    statement = (
        select(AccessRecord.__table__)
        .where(AccessRecord.seq >= signed_seq)
        .order_by(AccessRecord.seq)
    )
    expected_seq, prev_hash, count = signed_seq + 1, signed_hash, 0
    anchored = signed_seq == 0
    result = await connection.stream(statement)
    try:
        async for row in result:
            record = dict(row._mapping)
            if not anchored:  # the record signed last
                anchored = True
                problem = _anchor_problem(record, signed_seq, signed_hash)
                if problem is None:
                    continue
                return Verification(0, signed_seq, signed_hash, signed_seq, problem)
            broken = _link_problem(record, expected_seq, prev_hash)
            if broken:
                return Verification(count, expected_seq - 1, prev_hash, record["seq"], broken)
            expected_seq, prev_hash, count = expected_seq + 1, record["hash"], count + 1
    finally:
        await result.close()
    if not anchored:
        last = (await connection.execute(select(func.max(AccessRecord.seq)))).scalar() or 0
        return Verification(
            0, last, prev_hash, signed_seq,
            f"the log ends at record {last}, before the last checkpoint's record {signed_seq}: "
            "it was truncated",
        )  # fmt: skip
    return Verification(count, expected_seq - 1, prev_hash)
