"""Conflicting orders (标准打架) in the API: listed for their parties, settled by one of them.

hub/conflicts.py finds and settles them; here each side's order is built like any record
(through the ``conflicting`` relation, a party reads the other's requirement), and a
settlement is a write of the request, in its access record.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import strawberry
from sqlalchemy import select

from hub import conflicts
from hub.conflicts import CONFLICT, ENTERPRISE
from hub.schema.context import Info
from hub.schema.sharing import id_of
from hub.schema.types import Department, Rectification, built
from hub.uscc import parse_uscc

__all__ = ["ConflictMutation", "ConflictQuery"]


@strawberry.type(description="One side of a conflict: an order and the code that contradicts.")
class ConflictSide:
    record_pk: strawberry.Private[int]
    owner: Department
    source_id: str
    code: str = strawberry.field(description="The requirement code, from requirements.csv.")

    @strawberry.field(description="The order as it is now, with the fields you may read.")
    async def rectification(self, info: Info) -> Rectification | None:
        row = await info.context.loaders.published["Rectification"].load(self.record_pk)
        if row is None:
            return None
        (order,) = await built(info, Rectification, [row])
        return order


@strawberry.type(description="Two departments' orders to one enterprise that contradict.")
class Conflict:
    id: strawberry.ID
    uscc: str = strawberry.field(description="The enterprise both orders are about.")
    first: ConflictSide
    second: ConflictSide
    reason: str = strawberry.field(description="Why the codes contradict (conflicts.csv).")
    found_at: datetime
    settled_at: datetime | None
    settled_by: Department | None = strawberry.field(description="The settling department.")
    settlement: str | None = strawberry.field(description="How it was settled.")


@strawberry.input(description="Which conflicts; every condition given applies.")
class ConflictFilter:
    uscc: str | None = None
    settled: bool | None = strawberry.field(
        default=False, description="false (the default): open ones; true: settled; null: all."
    )


CONFLICT_FIELDS = ("first", "second", "reason", "foundAt", "settledAt", "settledBy", "settlement")


def _conflict(info: Info, row: Any) -> Conflict:
    departments = info.context.access.departments
    sources = {row.first_id: row.first_source, row.second_id: row.second_source}
    return Conflict(
        id=strawberry.ID(str(row.id)),
        uscc=row.uscc,
        first=ConflictSide(record_pk=row.first_id, owner=departments[row.first_owner],
                           source_id=sources[row.first_id], code=row.first_code),
        second=ConflictSide(record_pk=row.second_id, owner=departments[row.second_owner],
                            source_id=sources[row.second_id], code=row.second_code),
        reason=row.reason, found_at=row.found_at, settled_at=row.settled_at,
        settled_by=departments[row.settled_department] if row.settled_department else None,
        settlement=row.settlement,
    )  # fmt: skip


def _select() -> Any:
    first, second = conflicts.RECTIFICATION.alias("first"), conflicts.RECTIFICATION.alias("second")
    return (
        select(CONFLICT, ENTERPRISE.c.uscc, first.c.source_id.label("first_source"),
               second.c.source_id.label("second_source"))
        .join(ENTERPRISE, ENTERPRISE.c.id == CONFLICT.c.enterprise_id)
        .join(first, first.c.id == CONFLICT.c.first_id)
        .join(second, second.c.id == CONFLICT.c.second_id)
    )  # fmt: skip


@strawberry.type
class ConflictQuery:
    @strawberry.field(
        description="Conflicts between your department's orders and another's (all of them "
        "for comprehensive law enforcement), oldest first; open ones unless filter says "
        "otherwise."
    )
    async def conflicts(self, info: Info, filter: ConflictFilter | None = None) -> list[Conflict]:
        wanted = filter or ConflictFilter()
        statement = _select().where(*conflicts.visible_to(info.context.access.principal))
        if wanted.uscc is not None:
            statement = statement.where(ENTERPRISE.c.uscc == parse_uscc(wanted.uscc))
        if wanted.settled is not None:
            settled = CONFLICT.c.settled_at
            statement = statement.where(
                settled.is_not(None) if wanted.settled else settled.is_(None)
            )
        rows = await info.context.loaders.reader.rows(statement.order_by(CONFLICT.c.id))
        trail = info.context.access.trail
        for row in rows:  # they name enterprises and other departments' orders: audited
            trail.serve(row.uscc, "Conflict", str(row.id), CONFLICT_FIELDS)
        return [_conflict(info, row) for row in rows]


@strawberry.type
class ConflictMutation:
    @strawberry.mutation(
        description="Settle a conflict between orders, as one of their departments or "
        "comprehensive law enforcement: say how (e.g. which order was changed)."
    )
    async def settle_conflict(
        self,
        info: Info,
        id: strawberry.ID,
        settlement: Annotated[str, strawberry.argument(description="How it was settled.")],
    ) -> Conflict:
        number = id_of(id, "conflict")  # before the write lock is taken
        access, writer = info.context.access, await info.context.writer()
        before, after = await conflicts.settle(writer, access.principal, number, settlement)
        access.trail.transition(
            "Conflict", str(after.id), "settled", conflicts.state(before), conflicts.state(after)
        )
        row = (await writer.execute(_select().where(CONFLICT.c.id == after.id))).one()
        return _conflict(info, row)
