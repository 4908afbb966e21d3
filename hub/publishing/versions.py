"""The versions of published records: what the change feed is made of.

Every change of a record is a version in ``record_version``, numbered under the feed head:
publishers take the head first, so versions commit in the order of their numbers and a
reader polling ``seq > cursor`` neither skips nor repeats one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, cast

from sqlalchemy import Table, and_, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from hub import models
from hub.audit import canonical
from hub.live import CHANNEL
from hub.records import BY_TYPE, Kind

VERSION = cast(Table, models.RecordVersion.__table__)


class Change(StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    RETRACTED = "retracted"
    REPAIRED = "repaired"  # a credit record whose repair was approved
    ACCEPTED = "accepted"  # an order whose acceptance passed (整改闭环)
    REOPENED = "reopened"  # an order whose acceptance failed: back in progress
    WARNED = "warned"  # an inspection past what a period bears: a warning recorded


@dataclass(frozen=True, slots=True)
class Publisher:
    """Who publishes: recorded with every version."""

    client: str
    department: str
    subject: str  # the policy subject (see auth.Principal)
    trace_id: str | None = None


@dataclass(frozen=True, slots=True)
class Published:
    """What publishing did to one record."""

    index: int  # in the batch
    kind: str  # type name
    source_id: str
    record_id: int | None  # None for a record a dry run would create
    version: int
    change: Change
    uscc: str
    # What a follow-up record says, where the answer shows more than its id (a warning).
    detail: Any = None


def now() -> datetime:
    return datetime.now(UTC)


async def lock_feed(connection: AsyncConnection) -> int:
    """Take the feed head (held until commit): publishers run one at a time, in every process."""
    head = cast(Table, models.FeedHead.__table__)
    await connection.execute(update(head).where(head.c.id == 1).values(seq=head.c.seq))
    seq: int = (await connection.execute(select(head.c.seq).where(head.c.id == 1))).scalar_one()
    return seq


async def advance_feed(connection: AsyncConnection, seq: int) -> None:
    """Move the feed head to ``seq``; on PostgreSQL, live subscribers hear of it when the
    transaction commits (hub/live/listener.py listens)."""
    head = cast(Table, models.FeedHead.__table__)
    await connection.execute(update(head).where(head.c.id == 1).values(seq=seq))
    if connection.dialect.name == "postgresql":
        await connection.execute(select(func.pg_notify(CHANNEL, str(seq))))


def new_version(
    seq: int,
    kind: str,  # the type name, e.g. Acceptance
    owner: str,
    source_id: str,
    record_id: int,
    uscc: str,
    version: int,
    change: Change,
    data: Mapping[str, Any],
    changed: str,
    reason: str | None,
    publisher: Publisher,
) -> dict[str, Any]:
    return {
        "seq": seq,
        "kind": kind,
        "record_id": record_id,
        "owner": owner,
        "source_id": source_id,
        "uscc": uscc,
        "version": version,
        "change": change.value,
        "data": canonical(data).decode(),
        "changed": changed,
        "reason": reason,
        "published_at": now(),
        "publisher": publisher.department,
        "client": publisher.client,
        "trace_id": publisher.trace_id,
    }


async def stored_records(
    connection: AsyncConnection, kind: Kind, owner: str, source_ids: Iterable[str]
) -> dict[str, Any]:
    """The stored records of ``owner`` with these source ids: id, version, data, uscc..."""
    table = kind.table
    enterprise = models.Enterprise.__table__
    parent = enterprise_column(kind)
    columns = [table.c.id, table.c.source_id, table.c.version, table.c.retracted, VERSION.c.data]
    statement = (
        select(*columns, enterprise.c.uscc)
        .select_from(table)
        .join(enterprise, enterprise.c.id == parent)
        .outerjoin(VERSION, is_current_version(kind))
        .where(table.c.owner == owner, table.c.source_id.in_(set(source_ids)))
    )
    if kind.type_name == "CreditRepair":
        statement = statement.add_columns(table.c.status, table.c.credit_record_id)
    return {row.source_id: row for row in (await connection.execute(statement)).all()}


def is_current_version(kind: Kind) -> Any:
    """Joins a record of ``kind`` to its current version (whose data it holds)."""
    table = kind.table
    return and_(
        VERSION.c.kind == kind.type_name,
        VERSION.c.record_id == table.c.id,
        VERSION.c.version == table.c.version,
    )


def enterprise_column(kind: Kind) -> Any:
    """The column that leads from a record of ``kind`` to its enterprise's id."""
    table = kind.table
    if "enterprise_id" in table.c:
        return table.c.enterprise_id
    # Acceptances and credit repairs belong to the enterprise of the record they are about.
    reference = kind.references[0]
    target = BY_TYPE[reference.kind].table
    return (
        select(target.c.enterprise_id)
        .where(target.c.id == table.c[reference.column])
        .scalar_subquery()
    )
